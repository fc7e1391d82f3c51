//! `authcell cells`: the nodes of every cell and how far each has applied the event stream.

use super::*;

pub(crate) async fn cells(client: &ClientArgs) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let cells = api
        .admin()
        .list_cells(api.req(pb::ListCellsRequest {}))
        .await
        .map_err(from_status)?
        .into_inner();
    if client.json {
        return json_out(&CellsJson {
            nodes: cells
                .nodes
                .into_iter()
                .map(|n| NodeJson {
                    node_id: n.node_id,
                    cell: n.cell,
                    position: n.position,
                    lag_ms: n.lag_ms,
                    last_seen_ms_ago: n.last_seen_ms_ago,
                    live: n.live,
                })
                .collect(),
            latest_event_id: Some(cells.latest_event_id).filter(|id| !id.is_empty()),
        });
    }
    let rows: Vec<Vec<String>> = cells
        .nodes
        .iter()
        .map(|n| {
            vec![
                cell(&n.node_id),
                cell(&n.cell),
                if n.live { "yes" } else { "no" }.to_owned(),
                cell(&n.position),
                format!("{} ms", n.lag_ms),
                format!("{} ms ago", n.last_seen_ms_ago),
            ]
        })
        .collect();
    out(&render_table(
        &["NODE ID", "CELL", "LIVE", "POSITION", "LAG", "LAST SEEN"],
        &rows,
    ));
    if !cells.latest_event_id.is_empty() {
        out(&format!(
            "latest event: {}\n",
            printable(&cells.latest_event_id)
        ));
    }
    Ok(())
}
