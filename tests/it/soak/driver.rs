//! The driver: the tasks that make keys and tokens, revoke them, change roles, cut accounts and check credentials on both cells.

use super::*;

/// One cell's gRPC channels: calls that may wait (ConfirmRevocation waits up to 10 s) get a
/// longer timeout; a paused node answers nothing until it resumes.
#[derive(Clone)]
pub(crate) struct CellClient {
    pub(crate) ops: Channel,
    pub(crate) confirm: Channel,
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<Oracle>,
    pub(crate) cells: [CellClient; 2],
    pub(crate) owner: String,
    /// Traffic stops at this moment.
    pub(crate) deadline: Instant,
    pub(crate) confirmations: tokio::sync::Semaphore,
    pub(crate) setup_bin: PathBuf,
    pub(crate) key_file: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) redis: Vec<String>,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, Oracle> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    pub(crate) fn cell(&self, rng: &mut Rng) -> &CellClient {
        &self.cells[rng.below(2)]
    }

    pub(crate) fn setup(&self) -> Setup<'_> {
        Setup {
            bin: &self.setup_bin,
            dir: &self.dir,
            key_file: &self.key_file,
            redis: self.redis.clone(),
        }
    }
}

pub(crate) async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

pub(crate) async fn create_key(
    shared: &Shared,
    rng: &mut Rng,
    caller: &str,
    role_id: &str,
) -> Result<String, Status> {
    use ga::generate_global_api_key_request::{Expiry, Never};
    let result = ga::global_admin_client::GlobalAdminClient::new(shared.cell(rng).ops.clone())
        .generate_global_api_key(with_key(
            ga::GenerateGlobalApiKeyRequest {
                role_id: role_id.into(),
                description: "soak".into(),
                expiry: Some(Expiry::Never(Never {})),
            },
            caller,
        ))
        .await
        .map(|r| r.into_inner().api_key);
    shared.state().op("GenerateGlobalApiKey", &result);
    result
}

pub(crate) async fn mint(
    shared: &Shared,
    rng: &mut Rng,
    caller: &str,
    role: pm::CacheRole,
    token_id: &str,
) -> Result<String, Status> {
    let result = token::token_client::TokenClient::new(shared.cell(rng).ops.clone())
        .generate_disposable_token(token::GenerateDisposableTokenRequest {
            expires: Some(token::generate_disposable_token_request::Expires {
                valid_for_seconds: 3600,
            }),
            auth_token: caller.into(),
            permissions: Some(statement(role)),
            token_id: token_id.into(),
        })
        .await
        .map(|r| r.into_inner().api_key);
    shared.state().op("GenerateDisposableToken", &result);
    result
}

/// Makes credentials: viewer and operator keys, tokens and SDK keys made by operators, and
/// refreshes of SDK keys.
pub(crate) async fn maker(shared: Arc<Shared>, mut rng: Rng) {
    let mut n = 0u64;
    while shared.running() {
        sleep_ms(40 + rng.below(40) as u64).await;
        n += 1;
        let (full, operators) = {
            let state = shared.state();
            (state.full(), state.live_operators())
        };
        let roll = rng.below(100);
        if roll < 20 {
            refresh(&shared, &mut rng).await;
            continue;
        }
        if full {
            continue;
        }
        if operators < OPERATORS || roll < 30 {
            let role = if operators < OPERATORS {
                "operator"
            } else {
                "viewer"
            };
            if let Ok(key) = create_key(&shared, &mut rng, &shared.owner, role).await {
                let mut state = shared.state();
                if role == "operator" {
                    let i = state.add(Kind::OperatorKey, key, vec![]);
                    state.operators.push(i);
                } else {
                    state.add(Kind::ViewerKey, key, vec![]);
                }
            }
            continue;
        }
        let maker = {
            let state = shared.state();
            state
                .live_operator(&mut rng)
                .map(|i| (i, state.creds[i].secret.clone()))
        };
        let Some((maker, maker_secret)) = maker else {
            continue;
        };
        if roll < 70 {
            let token_id = format!("soak-{}-{n}", rng.next() % 1_000_000);
            if let Ok(token) = mint(
                &shared,
                &mut rng,
                &maker_secret,
                pm::CacheRole::CacheReadOnly,
                &token_id,
            )
            .await
            {
                let mut state = shared.state();
                let makers = std::iter::once(maker)
                    .chain(state.creds[maker].makers.iter().copied())
                    .collect();
                state.add(Kind::Token, token, makers);
            }
        } else {
            use auth::generate_api_token_request::{Expiry, Never};
            let result = auth::auth_client::AuthClient::new(shared.cell(&mut rng).ops.clone())
                .generate_api_token(auth::GenerateApiTokenRequest {
                    expiry: Some(Expiry::Never(Never {})),
                    auth_token: maker_secret,
                    permissions: Some(statement(pm::CacheRole::CacheReadOnly)),
                    token_id: String::new(),
                    description: "soak".into(),
                })
                .await
                .map(|r| r.into_inner());
            let mut state = shared.state();
            state.op("GenerateApiToken", &result);
            if let Ok(made) = result {
                let makers = std::iter::once(maker)
                    .chain(state.creds[maker].makers.iter().copied())
                    .collect();
                let i = state.add(Kind::SdkKey, made.api_key, makers);
                state.creds[i].refresh_token = Some(made.refresh_token);
            }
        }
    }
}

/// Refreshes a live SDK key: the old key is revoked by the call. If the call fails, the old key
/// is revoked explicitly (RevokeToken by its id), so the oracle is never left guessing.
pub(crate) async fn refresh(shared: &Arc<Shared>, rng: &mut Rng) {
    let picked = {
        let mut state = shared.state();
        let picked = state.pick_live(rng, |c| c.kind == Kind::SdkKey && c.refresh_token.is_some());
        picked.map(|i| {
            let r = state.ask_revocation(i, Method::Refresh);
            let c = &state.creds[i];
            (
                i,
                r,
                c.secret.clone(),
                c.refresh_token.clone().unwrap_or_default(),
                c.makers.clone(),
            )
        })
    };
    let Some((index, r, secret, refresh_token, makers)) = picked else {
        return;
    };
    let result = auth::auth_client::AuthClient::new(shared.cell(rng).ops.clone())
        .refresh_api_token(auth::RefreshApiTokenRequest {
            api_key: secret,
            refresh_token,
        })
        .await
        .map(|r| r.into_inner());
    let refreshed = {
        let mut state = shared.state();
        state.op("RefreshApiToken", &result);
        match result {
            Ok(made) => {
                state.acknowledge(r, &[index]);
                let i = state.add(Kind::SdkKey, made.api_key, makers);
                state.creds[i].refresh_token = Some(made.refresh_token);
                true
            }
            Err(_) => {
                // Make it certain: the old key is revoked by id below.
                state.revocations[r].method = Method::RevokeSdkKey;
                false
            }
        }
    };
    if refreshed {
        confirm(shared.clone(), Target::Revocation(r), None, rng.next());
    } else {
        revoke_until_ok(shared, rng, index, r).await;
    }
}

/// Revokes live credentials at a steady pace, each with the method that fits it.
pub(crate) async fn revoker(shared: Arc<Shared>, mut rng: Rng) {
    while shared.running() {
        sleep_ms(150 + rng.below(150) as u64).await;
        let picked = {
            let mut state = shared.state();
            let picked = state.pick_live(&mut rng, |c| {
                !matches!(c.kind, Kind::IbOwner | Kind::IbKey | Kind::IbToken)
            });
            picked.map(|i| {
                let method = match state.creds[i].kind {
                    Kind::Token | Kind::RoleToken => {
                        if state.creds[i].token_id.is_some() && rng.below(2) == 0 {
                            Method::RevokeTokenByTokenId
                        } else {
                            Method::RevokeTokenById
                        }
                    }
                    Kind::SdkKey => Method::RevokeSdkKey,
                    _ => Method::RevokeKey,
                };
                (i, state.ask_revocation(i, method))
            })
        };
        if let Some((index, r)) = picked {
            let shared = shared.clone();
            let seed = rng.next();
            // Retries may take a fault's length: the next revocation does not wait for them.
            tokio::spawn(async move {
                let mut rng = Rng::new(seed);
                revoke_until_ok(&shared, &mut rng, index, r).await;
            });
        }
    }
}

/// Calls the revocation `r` of credential `index` until it succeeds (on either cell), then asks
/// for its confirmation. Gives up after [`RETRY_BOUND`] (the revocation is then uncertain).
pub(crate) async fn revoke_until_ok(shared: &Arc<Shared>, rng: &mut Rng, index: usize, r: usize) {
    let (method, id, token_id) = {
        let state = shared.state();
        let c = &state.creds[index];
        (
            state.revocations[r].method,
            c.id.clone(),
            c.token_id.clone().unwrap_or_default(),
        )
    };
    let started = Instant::now();
    loop {
        let cell = shared.cell(rng).clone();
        let result: Result<Option<String>, Status> = match method {
            Method::RevokeKey => ga::global_admin_client::GlobalAdminClient::new(cell.ops)
                .revoke_global_api_key(with_key(
                    ga::RevokeGlobalApiKeyRequest { key_id: id.clone() },
                    &shared.owner,
                ))
                .await
                .map(|response| {
                    response
                        .metadata()
                        .get("authcell-revocation-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                }),
            Method::RevokeTokenById | Method::RevokeSdkKey | Method::RevokeTokenByTokenId => {
                use pb::revoke_token_request::Token;
                let token = if method == Method::RevokeTokenByTokenId {
                    Token::TokenId(token_id.clone())
                } else {
                    Token::Id(id.clone())
                };
                pb::admin_client::AdminClient::new(cell.ops)
                    .revoke_token(with_key(
                        pb::RevokeTokenRequest {
                            token: Some(token),
                            expires_at_epoch_seconds: 0,
                        },
                        &shared.owner,
                    ))
                    .await
                    .map(|r| Some(r.into_inner().revocation_id))
            }
            Method::Refresh | Method::IssuedBefore => {
                unreachable!("refreshes and cuts are not retried here")
            }
        };
        let ok = {
            let mut state = shared.state();
            state.op(method.name(), &result);
            match result {
                Ok(revocation_id) => {
                    state.acknowledge(r, &[index]);
                    Some(revocation_id.filter(|id| !id.is_empty()))
                }
                Err(_) if started.elapsed() > RETRY_BOUND => {
                    state.revocations[r].gave_up = true;
                    state.report.uncertain += 1;
                    return;
                }
                Err(_) => None,
            }
        };
        match ok {
            Some(revocation_id) => {
                confirm(
                    shared.clone(),
                    Target::Revocation(r),
                    revocation_id,
                    rng.next(),
                );
                return;
            }
            None => sleep_ms(300 + rng.below(400) as u64).await,
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Target {
    Revocation(usize),
    Role(usize),
}

/// Asks ConfirmRevocation (with `id`, or the newest event) until it says confirmed=true, at
/// most [`CONFIRM_ATTEMPTS`] times, and records which cells it confirmed, when.
pub(crate) fn confirm(shared: Arc<Shared>, target: Target, id: Option<String>, seed: u64) {
    tokio::spawn(async move {
        let mut rng = Rng::new(seed);
        let Ok(_permit) = shared.confirmations.acquire().await else {
            return;
        };
        for _ in 0..CONFIRM_ATTEMPTS {
            let result = pb::admin_client::AdminClient::new(shared.cell(&mut rng).confirm.clone())
                .confirm_revocation(with_key(
                    pb::ConfirmRevocationRequest {
                        revocation_id: id.clone().unwrap_or_default(),
                        timeout_ms: CONFIRM_WAIT_MS,
                    },
                    &shared.owner,
                ))
                .await
                .map(|r| r.into_inner());
            let received = Instant::now();
            let done = {
                let mut state = shared.state();
                state.op("ConfirmRevocation", &result);
                match result {
                    Ok(answer) => record_confirmation(&mut state, target, &answer, received),
                    Err(_) => false,
                }
            };
            if done {
                return;
            }
            sleep_ms(500).await;
        }
        if let Target::Revocation(_) = target {
            shared.state().report.unconfirmed += 1;
        }
    });
}

/// Records one ConfirmRevocation answer; true when it said confirmed=true.
pub(crate) fn record_confirmation(
    state: &mut Oracle,
    target: Target,
    answer: &pb::ConfirmRevocationResponse,
    received: Instant,
) -> bool {
    let confirmation = match target {
        Target::Revocation(r) => &mut state.revocations[r].confirmation,
        Target::Role(r) => &mut state.roles[r].confirmation,
    };
    let listed = |cell: &str| answer.confirmed_cells.iter().any(|c| c == cell);
    for (i, cell) in CELLS.iter().enumerate() {
        if listed(cell) {
            confirmation.cells[i].get_or_insert(received);
        }
    }
    if !answer.confirmed {
        return false;
    }
    confirmation.all = Some(received);
    for (i, cell) in CELLS.iter().enumerate() {
        confirmation.left_out[i] = !listed(cell);
    }
    if let Target::Revocation(_) = target {
        state.report.confirmed += 1;
        if CELLS.iter().all(|c| listed(c)) {
            state.report.confirmed_both += 1;
        }
    }
    true
}

/// Checks credentials on one cell as fast as a loaded machine lets it, judging each verdict.
pub(crate) async fn checker(shared: Arc<Shared>, cell: usize, channel: Channel, mut rng: Rng) {
    let mut verifier = pb::verifier_client::VerifierClient::new(channel);
    while shared.running() {
        let pick = shared.state().pick_check(&mut rng);
        let Some(pick) = pick else {
            sleep_ms(20).await;
            continue;
        };
        let sent = Instant::now();
        let result = verifier
            .authorize(check(&pick.secret, pick.write))
            .await
            .map(|r| r.into_inner());
        let received = Instant::now();
        {
            let mut state = shared.state();
            state.op("Authorize", &result);
            if let Ok(verdict) = result {
                state.record(&pick, cell, sent, received, &verdict);
            }
        }
        sleep_ms(2).await;
    }
}

/// Custom roles: create one (read and write on the cache), a key bound to it and a token made
/// by that key, let the checkers use them, then narrow the role to read-only and confirm.
pub(crate) async fn roles(shared: Arc<Shared>, mut rng: Rng) {
    let mut n = 0u64;
    while shared.running() {
        n += 1;
        let name = format!("soak-{}-{n}", rng.next() % 1_000_000);
        let result = pb::admin_client::AdminClient::new(shared.cell(&mut rng).ops.clone())
            .create_role(with_key(
                pb::CreateRoleRequest {
                    name,
                    permissions: Some(role_set(&[
                        pr::CacheApiPermissions::CacheRead,
                        pr::CacheApiPermissions::CacheWrite,
                    ])),
                    description: "soak".into(),
                },
                &shared.owner,
            ))
            .await
            .map(|r| r.into_inner().role.map(|r| r.role_id).unwrap_or_default());
        shared.state().op("CreateRole", &result);
        let Ok(role_id) = result else {
            sleep_ms(1000).await;
            continue;
        };
        let role = {
            let mut state = shared.state();
            state.roles.push(Role {
                id: role_id.clone(),
                narrow_sent: None,
                narrow_ok: None,
                confirmation: Confirmation::default(),
                seen_denied: [None; 2],
            });
            state.roles.len() - 1
        };
        // The key may take a node that did not see the role yet: retry a little.
        let mut key = None;
        for _ in 0..10 {
            if let Ok(k) = create_key(&shared, &mut rng, &shared.owner, &role_id).await {
                key = Some(k);
                break;
            }
            sleep_ms(300).await;
        }
        let Some(key) = key else { continue };
        let key_index = {
            let mut state = shared.state();
            let i = state.add(Kind::RoleKey, key.clone(), vec![]);
            state.creds[i].role = Some(role);
            i
        };
        let token_id = format!("soak-role-{}-{n}", rng.next() % 1_000_000);
        for _ in 0..10 {
            if let Ok(token) = mint(
                &shared,
                &mut rng,
                &key,
                pm::CacheRole::CacheReadWrite,
                &token_id,
            )
            .await
            {
                let mut state = shared.state();
                let i = state.add(Kind::RoleToken, token, vec![key_index]);
                state.creds[i].role = Some(role);
                break;
            }
            sleep_ms(300).await;
        }
        {
            let mut state = shared.state();
            let members: Vec<usize> = (0..state.creds.len())
                .filter(|&i| state.creds[i].role == Some(role))
                .collect();
            for i in members {
                state.recent_roles.push_back(i);
                if state.recent_roles.len() > 32 {
                    state.recent_roles.pop_front();
                }
            }
        }
        sleep_ms(1500 + rng.below(1500) as u64).await;
        shared.state().roles[role].narrow_sent = Some(Instant::now());
        let started = Instant::now();
        let narrowed = loop {
            let result = pb::admin_client::AdminClient::new(shared.cell(&mut rng).ops.clone())
                .update_role(with_key(
                    pb::UpdateRoleRequest {
                        role_id: role_id.clone(),
                        permissions: Some(role_set(&[pr::CacheApiPermissions::CacheRead])),
                        ..Default::default()
                    },
                    &shared.owner,
                ))
                .await;
            shared.state().op("UpdateRole", &result);
            if result.is_ok() {
                break true;
            }
            if started.elapsed() > RETRY_BOUND {
                break false;
            }
            sleep_ms(500).await;
        };
        if narrowed {
            {
                let mut state = shared.state();
                state.roles[role].narrow_ok = Some(Instant::now());
                state.report.narrowed_roles += 1;
            }
            confirm(shared.clone(), Target::Role(role), None, rng.next());
        } else {
            shared.state().report.uncertain += 1;
        }
        sleep_ms(500 + rng.below(1000) as u64).await;
    }
}

/// RevokeIssuedBefore on a separate account: bootstrap an owner there (the binary), make a key
/// and a token with it, then cut everything issued before now.
pub(crate) async fn issued_before(shared: Arc<Shared>, mut rng: Rng) {
    while shared.running() {
        sleep_ms(4000 + rng.below(4000) as u64).await;
        let setup_shared = shared.clone();
        let owner = tokio::task::spawn_blocking(move || setup_shared.setup().bootstrap(IB_ACCOUNT))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let owner = match owner {
            Ok(owner) => {
                shared.state().op::<()>("bootstrap (binary)", &Ok(()));
                owner
            }
            Err(_) => {
                shared
                    .state()
                    .op_error("bootstrap (binary)", "EXIT_FAILURE (process)");
                continue;
            }
        };
        let mut members = vec![shared.state().add(Kind::IbOwner, owner.clone(), vec![])];
        let owner_index = members[0];
        if let Ok(key) = create_key(&shared, &mut rng, &owner, "viewer").await {
            members.push(shared.state().add(Kind::IbKey, key, vec![owner_index]));
        }
        if let Ok(token) = mint(&shared, &mut rng, &owner, pm::CacheRole::CacheReadOnly, "").await {
            members.push(shared.state().add(Kind::IbToken, token, vec![owner_index]));
        }
        sleep_ms(1000 + rng.below(1000) as u64).await;
        let r = {
            let mut state = shared.state();
            let r = state.ask_revocation(owner_index, Method::IssuedBefore);
            for &i in &members[1..] {
                state.creds[i].revocation = Some(r);
            }
            r
        };
        let started = Instant::now();
        // Whether an attempt failed in a way that may have applied the cut (UNAVAILABLE, a
        // timeout): the cut revokes the owner key too, so every later attempt is refused as
        // UNAUTHENTICATED and can never succeed; the round is then uncertain, and the next
        // round (a fresh owner) tries again.
        let mut maybe_applied = false;
        loop {
            let result = pb::admin_client::AdminClient::new(shared.cell(&mut rng).ops.clone())
                .revoke_issued_before(with_key(pb::RevokeIssuedBeforeRequest::default(), &owner))
                .await
                .map(|r| r.into_inner().revocation_id);
            let outcome = {
                let mut state = shared.state();
                state.op(Method::IssuedBefore.name(), &result);
                match result {
                    Ok(id) => {
                        state.acknowledge(r, &members);
                        Some(Some(id).filter(|id| !id.is_empty()))
                    }
                    // A "revoked" refusal of the owner key is not an acknowledgement: the cell
                    // that refuses may have read an earlier attempt that was never acknowledged
                    // (its WAIT fell short) and that a failover then discards, so retry until a
                    // call succeeds or give up (uncertain), like every other revocation here.
                    Err(status)
                        if started.elapsed() > RETRY_BOUND
                            || (maybe_applied && status.code() == tonic::Code::Unauthenticated) =>
                    {
                        state.revocations[r].gave_up = true;
                        state.report.uncertain += 1;
                        break;
                    }
                    Err(status) => {
                        maybe_applied |= status.code() != tonic::Code::Unauthenticated;
                        None
                    }
                }
            };
            match outcome {
                Some(id) => {
                    confirm(shared.clone(), Target::Revocation(r), id, rng.next());
                    break;
                }
                None => sleep_ms(500).await,
            }
        }
    }
}
