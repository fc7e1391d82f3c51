//! The final sweep: after healing, every revoked credential is refused and every live one allowed, on both cells.

use super::*;

/// After healing: every revoked credential and narrowed write refused on both cells within
/// [`FINAL_BOUND`]; live credentials still allowed.
pub(crate) async fn final_sweep(shared: &Shared, checks: &[Channel; 2]) {
    #[derive(Clone, Copy)]
    struct Item {
        index: usize,
        cell: usize,
        write: bool,
    }
    let (mut pending, live) = {
        let state = shared.state();
        let mut pending = Vec::new();
        let mut live = Vec::new();
        let mut revoked = 0;
        for index in 0..state.creds.len() {
            if state.uncertain(index) {
                continue;
            }
            let narrowed = state.creds[index]
                .role
                .is_some_and(|r| state.roles[r].narrow_ok.is_some());
            if state.revoked(index) {
                revoked += 1;
            }
            for cell in 0..2 {
                if state.revoked(index) {
                    pending.push(Item {
                        index,
                        cell,
                        write: false,
                    });
                } else if !state.revocation_asked(index) {
                    live.push(Item {
                        index,
                        cell,
                        write: false,
                    });
                    if narrowed {
                        pending.push(Item {
                            index,
                            cell,
                            write: true,
                        });
                    }
                }
            }
        }
        drop(state);
        shared.state().report.revoked_credentials = revoked;
        (pending, live)
    };
    let secrets: Vec<String> = shared
        .state()
        .creds
        .iter()
        .map(|c| c.secret.clone())
        .collect();
    let healed = Instant::now();
    let batch = |cell: usize, items: Vec<pb::AuthorizeRequest>| {
        let channel = checks[cell].clone();
        async move {
            pb::verifier_client::VerifierClient::new(channel)
                .batch_authorize(pb::BatchAuthorizeRequest { requests: items })
                .await
                .map(|r| r.into_inner().responses)
        }
    };
    loop {
        let mut still = Vec::new();
        for cell in 0..2 {
            let items: Vec<&Item> = pending.iter().filter(|i| i.cell == cell).collect();
            for chunk in items.chunks(500) {
                let requests = chunk
                    .iter()
                    .map(|i| check(&secrets[i.index], i.write))
                    .collect();
                match batch(cell, requests).await {
                    Ok(responses) if responses.len() == chunk.len() => {
                        for (item, verdict) in chunk.iter().zip(responses) {
                            if verdict.allowed {
                                still.push(**item);
                            }
                        }
                    }
                    _ => still.extend(chunk.iter().map(|i| **i)),
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            shared.state().report.converged_after = Some(healed.elapsed());
            break;
        }
        if healed.elapsed() > FINAL_BOUND {
            let mut state = shared.state();
            let missed = pending
                .iter()
                .map(|i| {
                    let c = &state.creds[i.index];
                    format!(
                        "cell {}: {} {} still allowed{}",
                        CELLS[i.cell],
                        c.kind.name(),
                        c.id,
                        if i.write {
                            " to write after its role was narrowed"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            state.report.missed = missed;
            break;
        }
        sleep_ms(250).await;
    }
    // Live credentials: still allowed to read.
    let mut refused = 0;
    for cell in 0..2 {
        let items: Vec<&Item> = live.iter().filter(|i| i.cell == cell).collect();
        for chunk in items.chunks(500) {
            let requests = chunk
                .iter()
                .map(|i| check(&secrets[i.index], false))
                .collect();
            match batch(cell, requests).await {
                Ok(responses) => refused += responses.iter().filter(|v| !v.allowed).count(),
                Err(_) => refused += chunk.len(),
            }
        }
    }
    let mut state = shared.state();
    state.report.live_refused_at_end = refused as u64;
    state.report.live_checked_at_end = live.len() as u64;
}
