//! `authcell audit`: the account's audit log.

use super::*;

pub(crate) async fn audit(args: AuditArgs) -> Result<(), Failure> {
    let now = now_ms();
    let since = args.since.map_or(0, |t| t.epoch_millis(now));
    let until = args.until.map_or(0, |t| t.epoch_millis(now));
    if since > 0 && until > 0 && since >= until {
        return Err(Failure::usage("--since must be before --until"));
    }
    let client = &args.client;
    let api = Api::connect(client).await?;
    let limit = (args.limit > 0).then_some(args.limit as usize);
    let mut events: Vec<pb::AuditEvent> = Vec::new();
    let mut next_token = String::new();
    let mut truncated = false;
    loop {
        let page_size = limit.map_or(MAX_PAGE, |n| {
            u32::try_from(n - events.len()).map_or(MAX_PAGE, |left| left.min(MAX_PAGE))
        });
        let page = api
            .admin()
            .list_audit_events(api.req(pb::ListAuditEventsRequest {
                since_epoch_millis: since,
                until_epoch_millis: until,
                limit: page_size,
                next_token: next_token.clone(),
            }))
            .await
            .map_err(from_status)?
            .into_inner();
        events.extend(page.events);
        if page.next_token.is_empty() {
            break;
        }
        if limit.is_some_and(|n| events.len() >= n) {
            truncated = true;
            break;
        }
        if page.next_token == next_token {
            return Err(Failure::new(
                Exit::Server,
                "the server returned the same page twice",
            ));
        }
        next_token = page.next_token;
    }
    if let Some(n) = limit {
        events.truncate(n);
    }
    if client.json {
        return json_out(&AuditJson {
            events: events
                .into_iter()
                .map(|e| AuditEventJson {
                    id: e.id,
                    at_epoch_millis: e.at_epoch_millis,
                    account_id: e.account_id,
                    actor_key_id: e.actor_key_id,
                    peer_address: e.peer_address,
                    action: e.action,
                    target: e.target,
                    detail: e.detail,
                })
                .collect(),
            truncated,
        });
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                format_time_ms(e.at_epoch_millis, true),
                cell(&e.action),
                cell(&e.target),
                cell(&e.actor_key_id),
                cell(&e.peer_address),
                cell(&e.detail),
            ]
        })
        .collect();
    out(&render_table(
        &["TIME", "ACTION", "TARGET", "ACTOR", "PEER", "DETAIL"],
        &rows,
    ));
    if truncated {
        note("More events exist: raise --limit (0 for all) or narrow --since/--until.\n");
    }
    Ok(())
}
