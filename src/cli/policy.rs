//! `authcell policy show|set`: the account's key policy and the live keys that break it.

use serde::Serialize;

use super::*;

/// What `policy show --json` and `policy set --json` print.
#[derive(Serialize)]
struct PolicyJson {
    require_expiry: bool,
    max_key_lifetime_seconds: Option<u64>,
    max_sdk_key_lifetime_seconds: Option<u64>,
    max_disposable_token_lifetime_seconds: Option<u64>,
    violations: Vec<ViolationJson>,
    violations_total: u32,
}

#[derive(Serialize)]
struct ViolationJson {
    key: KeyJson,
    reason: String,
}

pub(crate) async fn policy_show(client: &ClientArgs) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let report = api
        .admin()
        .get_key_policy(api.req(pb::GetKeyPolicyRequest {}))
        .await
        .map_err(from_status)?
        .into_inner();
    print_report(client, report)
}

pub(crate) async fn policy_set(client: &ClientArgs, args: PolicySet) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs());
    let policy = pb::KeyPolicy {
        require_expiry: args.require_expiry,
        max_key_lifetime_seconds: secs(args.max_key_lifetime),
        max_sdk_key_lifetime_seconds: secs(args.max_sdk_key_lifetime),
        max_disposable_token_lifetime_seconds: secs(args.max_disposable_lifetime),
    };
    let report = api
        .admin()
        .set_key_policy(api.req(pb::SetKeyPolicyRequest {
            policy: Some(policy),
        }))
        .await
        .map_err(from_status)?
        .into_inner();
    print_report(client, report)
}

fn limit(secs: Option<u64>) -> String {
    match secs {
        Some(s) => format!("{s} s ({})", human_span(s)),
        None => "none".to_owned(),
    }
}

/// 90d, 25h, 90m, 45s: the largest unit that divides the span.
fn human_span(secs: u64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

fn print_report(client: &ClientArgs, report: pb::KeyPolicyResponse) -> Result<(), Failure> {
    let policy = report.policy.unwrap_or_default();
    if client.json {
        return json_out(&PolicyJson {
            require_expiry: policy.require_expiry,
            max_key_lifetime_seconds: policy.max_key_lifetime_seconds,
            max_sdk_key_lifetime_seconds: policy.max_sdk_key_lifetime_seconds,
            max_disposable_token_lifetime_seconds: policy.max_disposable_token_lifetime_seconds,
            violations: report
                .violations
                .iter()
                .map(|v| ViolationJson {
                    key: key_json(&v.key.clone().unwrap_or_default()),
                    reason: v.reason.clone(),
                })
                .collect(),
            violations_total: report.violations_total,
        });
    }
    out(&render_block(&[
        (
            "require expiry",
            if policy.require_expiry { "yes" } else { "no" }.to_owned(),
        ),
        ("max key lifetime", limit(policy.max_key_lifetime_seconds)),
        (
            "max SDK key lifetime",
            limit(policy.max_sdk_key_lifetime_seconds),
        ),
        (
            "max disposable token lifetime",
            limit(policy.max_disposable_token_lifetime_seconds),
        ),
    ]));
    if report.violations_total == 0 {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = report
        .violations
        .iter()
        .map(|v| {
            let key = v.key.clone().unwrap_or_default();
            vec![
                cell(&key.key_id),
                cell(&key.description),
                key.expires_at_epoch_seconds
                    .map_or_else(|| "never".to_owned(), format_secs),
                cell(&v.reason),
            ]
        })
        .collect();
    out(&format!(
        "\n{} live key(s) break this policy (they keep working until they lapse; their refresh and rotation are refused unless the new key fits){}:\n",
        report.violations_total,
        if report.violations.len() < report.violations_total as usize {
            format!(", the first {} shown", report.violations.len())
        } else {
            String::new()
        }
    ));
    out(&render_table(
        &["KEY ID", "DESCRIPTION", "EXPIRES", "REASON"],
        &rows,
    ));
    Ok(())
}
