//! Token statement files -> `permission_messages.PermissionsType`.

use super::*;

impl StatementDoc {
    /// The protobuf statement a token request carries.
    pub fn to_proto(&self, field: &str) -> Result<pm::PermissionsType, String> {
        use pm::permissions_type as pt;
        let kind = match self {
            StatementDoc::Cache(s) => {
                use pt::cache_permissions::Cache;
                let f = format!("{field}.cache");
                let items = Items::parse(
                    &f,
                    &s.key,
                    &s.key_prefix,
                    &s.key_base64,
                    &s.key_prefix_base64,
                )?;
                pt::Kind::CachePermissions(pt::CachePermissions {
                    role: match s.role {
                        Access::Readwrite => pm::CacheRole::CacheReadWrite,
                        Access::Readonly => pm::CacheRole::CacheReadOnly,
                        Access::Writeonly => pm::CacheRole::CacheWriteOnly,
                    } as i32,
                    cache: Some(match named(&format!("{f}.cache"), &s.cache)? {
                        None => Cache::AllCaches(pt::All {}),
                        Some(name) => Cache::CacheSelector(pm_cache(name)),
                    }),
                    cache_item: Some(items.pm_cache()),
                })
            }
            StatementDoc::Topic(s) => {
                use pt::topic_permissions::{Cache, Topic};
                use pt::topic_selector::Kind;
                let f = format!("{field}.topic");
                let topics =
                    Names::parse(&f, ("topic", &s.topic), ("topic_prefix", &s.topic_prefix))?;
                pt::Kind::TopicPermissions(pt::TopicPermissions {
                    role: match s.role {
                        Access::Readwrite => pm::TopicRole::TopicReadWrite,
                        Access::Readonly => pm::TopicRole::TopicReadOnly,
                        Access::Writeonly => pm::TopicRole::TopicWriteOnly,
                    } as i32,
                    cache: Some(match named(&format!("{f}.cache"), &s.cache)? {
                        None => Cache::AllCaches(pt::All {}),
                        Some(name) => Cache::CacheSelector(pm_cache(name)),
                    }),
                    topic: Some(match topics {
                        Names::All => Topic::AllTopics(pt::All {}),
                        Names::Name(n) => Topic::TopicSelector(pt::TopicSelector {
                            kind: Some(Kind::TopicName(n)),
                        }),
                        Names::Prefix(p) => Topic::TopicSelector(pt::TopicSelector {
                            kind: Some(Kind::TopicNamePrefix(p)),
                        }),
                    }),
                })
            }
            StatementDoc::Function(s) => {
                use pt::function_permissions::{Cache, Function};
                use pt::function_selector::Kind;
                let f = format!("{field}.function");
                let functions = Names::parse(
                    &f,
                    ("function", &s.function),
                    ("function_prefix", &s.function_prefix),
                )?;
                pt::Kind::FunctionPermissions(pt::FunctionPermissions {
                    role: pm::FunctionRole::FunctionInvoke as i32,
                    cache: Some(match named(&format!("{f}.cache"), &s.cache)? {
                        None => Cache::AllCaches(pt::All {}),
                        Some(name) => Cache::CacheSelector(pm_cache(name)),
                    }),
                    function: Some(match functions {
                        Names::All => Function::AllFunctions(pt::All {}),
                        Names::Name(n) => Function::FunctionSelector(pt::FunctionSelector {
                            kind: Some(Kind::FunctionName(n)),
                        }),
                        Names::Prefix(p) => Function::FunctionSelector(pt::FunctionSelector {
                            kind: Some(Kind::FunctionNamePrefix(p)),
                        }),
                    }),
                })
            }
        };
        Ok(pm::PermissionsType { kind: Some(kind) })
    }
}

/// The statements of `tokens mint`, from its flags or its file.
pub(crate) fn mint_statements(args: &TokensMint) -> Result<Vec<pm::PermissionsType>, Failure> {
    let docs: Vec<StatementDoc> = if let Some(path) = &args.file {
        parse_statements(path, &read_file(path)?)?
    } else {
        // clap guarantees --cache and --role here; checked again rather than unwrapped.
        let (Some(cache), Some(role)) = (&args.cache, args.role) else {
            return Err(Failure::usage(
                "--cache and --role are required without --file",
            ));
        };
        let statement = if args.topic.is_some() || args.topic_prefix.is_some() {
            StatementDoc::Topic(TopicStatementDoc {
                role,
                cache: cache.clone(),
                topic: args.topic.clone(),
                topic_prefix: args.topic_prefix.clone(),
            })
        } else {
            StatementDoc::Cache(CacheStatementDoc {
                role,
                cache: cache.clone(),
                key: args.key.clone(),
                key_prefix: args.key_prefix.clone(),
                key_base64: None,
                key_prefix_base64: None,
            })
        };
        vec![statement]
    };
    let origin = match &args.file {
        Some(path) => format!("--file {}: ", path.display()),
        None => String::new(),
    };
    docs.iter()
        .enumerate()
        .map(|(i, s)| {
            s.to_proto(&format!("statements[{i}]"))
                .map_err(|e| Failure::usage(format!("{origin}{e}")))
        })
        .collect()
}
