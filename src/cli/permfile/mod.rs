//! Permission files: a JSON model of `permission_rules.PermissionSet` (roles) and of token
//! statements, read from `--file`.

use super::*;

mod rules;
mod statements;

pub(crate) use rules::*;
pub(crate) use statements::*;

/// A role's permissions as operators write them (`roles create --file`) and as `roles list
/// --json` prints them: the same format both ways.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsDoc {
    /// Everything (the owner role). Custom roles cannot have it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub super_user: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleDoc>,
    /// Allowed client networks (CIDR ranges, IPv4 or IPv6); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_filter: Vec<String>,
    /// Several ip_filter conditions, each of which must allow the client (rarely needed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_filters: Vec<Vec<String>>,
}

pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// One rule, keyed by its family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleDoc {
    Account(ManagementDoc),
    Auth(ManagementDoc),
    Resource(ManagementDoc),
    Cache(CacheRuleDoc),
    Topic(TopicRuleDoc),
    Store(StoreRuleDoc),
    Function(FunctionRuleDoc),
    /// A rule type this client does not know (printed, never sent).
    #[serde(skip_deserializing)]
    Unknown {},
}

/// Account, auth (keys, roles, tokens) or resource management: read, write, list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementDoc {
    pub permissions: Vec<String>,
}

/// Cache data. Of `key`, `key_prefix`, `key_base64` and `key_prefix_base64` at most one may be
/// set; none means every item. The `*_base64` forms carry keys that are not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheRuleDoc {
    /// read, write, list.
    pub permissions: Vec<String>,
    /// A cache name, or "*" for every cache.
    pub cache: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix_base64: Option<String>,
}

/// Store data; the item fields work as in [`CacheRuleDoc`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreRuleDoc {
    /// read, write, list.
    pub permissions: Vec<String>,
    /// A store name, or "*" for every store.
    pub store: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix_base64: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRuleDoc {
    /// read (subscribe), write (publish), list.
    pub permissions: Vec<String>,
    /// A cache name, or "*" for every cache.
    pub cache: String,
    /// A topic name; with neither this nor topic_prefix, every topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionRuleDoc {
    /// invoke (the default).
    #[serde(default = "invoke")]
    pub permissions: Vec<String>,
    /// A cache name, or "*" for every cache.
    pub cache: String,
    /// A function name; with neither this nor function_prefix, every function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_prefix: Option<String>,
}

pub(crate) fn invoke() -> Vec<String> {
    vec!["invoke".to_owned()]
}

/// A disposable token's statements (`tokens mint --file`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementsDoc {
    pub statements: Vec<StatementDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementDoc {
    Cache(CacheStatementDoc),
    Topic(TopicStatementDoc),
    Function(FunctionStatementDoc),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheStatementDoc {
    pub role: Access,
    /// A cache name, or "*" for every cache.
    pub cache: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix_base64: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicStatementDoc {
    pub role: Access,
    /// A cache name, or "*" for every cache.
    pub cache: String,
    /// A topic name ("*" or neither field: every topic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionStatementDoc {
    /// A cache name, or "*" for every cache.
    pub cache: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_prefix: Option<String>,
}

/// Reads a file ("-" for stdin) for --file. Any problem is a usage error.
pub(crate) fn read_file(path: &Path) -> Result<String, Failure> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("--file -: cannot read stdin: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("--file {}: cannot read it: {e}", path.display())))
}

pub(crate) fn parse_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
    text: &str,
) -> Result<T, Failure> {
    serde_json::from_str(text)
        .map_err(|e| Failure::usage(format!("--file {}: {e}", path.display())))
}

/// Reads a role permissions file into the protobuf the server takes.
pub(crate) fn read_permissions(path: &Path) -> Result<pr::PermissionSet, Failure> {
    parse_permissions(path, &read_file(path)?)
}

/// Parses the text of a role permissions file (`roles create --file`); `path` names it in
/// errors. Public for the fuzz targets ([`crate::fuzzing`]).
pub fn parse_permissions(path: &Path, text: &str) -> Result<pr::PermissionSet, Failure> {
    let doc: PermissionsDoc = parse_json(path, text)?;
    doc.to_proto()
        .map_err(|e| Failure::usage(format!("--file {}: {e}", path.display())))
}

/// Parses the text of a token statements file (`tokens mint --file`): at least one statement.
/// Public for the fuzz targets ([`crate::fuzzing`]).
pub fn parse_statements(path: &Path, text: &str) -> Result<Vec<StatementDoc>, Failure> {
    let doc: StatementsDoc = parse_json(path, text)?;
    if doc.statements.is_empty() {
        return Err(Failure::usage(format!(
            "--file {}: statements: at least one statement is required",
            path.display()
        )));
    }
    Ok(doc.statements)
}
