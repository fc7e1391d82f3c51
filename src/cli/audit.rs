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
    let (events, truncated) = collect_pages(limit, |page_size, next_token| {
        let api = &api;
        async move {
            let page = api
                .admin()
                .list_audit_events(api.req(pb::ListAuditEventsRequest {
                    since_epoch_millis: since,
                    until_epoch_millis: until,
                    limit: page_size,
                    next_token,
                }))
                .await
                .map_err(from_status)?
                .into_inner();
            Ok((page.events, page.next_token))
        }
    })
    .await?;
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
