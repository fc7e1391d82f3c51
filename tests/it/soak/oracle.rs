//! The oracle: every credential and revocation the soak made, and the rule an Authorize verdict is judged by.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    ViewerKey,
    OperatorKey,
    Token,
    SdkKey,
    RoleKey,
    RoleToken,
    IbOwner,
    IbKey,
    IbToken,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::ViewerKey => "viewer key",
            Kind::OperatorKey => "operator key",
            Kind::Token => "disposable token",
            Kind::SdkKey => "SDK key",
            Kind::RoleKey => "custom-role key",
            Kind::RoleToken => "custom-role token",
            Kind::IbOwner => "owner key (issued-before account)",
            Kind::IbKey => "viewer key (issued-before account)",
            Kind::IbToken => "token (issued-before account)",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    RevokeKey,
    RevokeTokenById,
    RevokeTokenByTokenId,
    RevokeSdkKey,
    Refresh,
    IssuedBefore,
}

impl Method {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Method::RevokeKey => "RevokeGlobalApiKey",
            Method::RevokeTokenById => "RevokeToken(id)",
            Method::RevokeTokenByTokenId => "RevokeToken(token_id)",
            Method::RevokeSdkKey => "RevokeToken(SDK key id)",
            Method::Refresh => "RefreshApiToken",
            Method::IssuedBefore => "RevokeIssuedBefore",
        }
    }
}

pub(crate) struct Cred {
    pub(crate) kind: Kind,
    pub(crate) secret: String,
    /// Its jti (key id or token id).
    pub(crate) id: String,
    pub(crate) token_id: Option<String>,
    /// Oracle indexes of the credentials that made it, nearest first.
    pub(crate) makers: Vec<usize>,
    pub(crate) refresh_token: Option<String>,
    /// When the call that made it returned.
    pub(crate) created: Instant,
    /// The custom role it derives from.
    pub(crate) role: Option<usize>,
    /// Its own revocation (an index into `Oracle::revocations`).
    pub(crate) revocation: Option<usize>,
    /// Being refreshed or revoked: not picked again.
    pub(crate) busy: bool,
    /// When each cell first refused it as revoked (reply received).
    pub(crate) seen_revoked: [Option<Instant>; 2],
}

#[derive(Default)]
pub(crate) struct Confirmation {
    /// Per cell: the reply of a ConfirmRevocation that listed the cell.
    pub(crate) cells: [Option<Instant>; 2],
    /// The reply that said confirmed=true, and the cells it left out.
    pub(crate) all: Option<Instant>,
    pub(crate) left_out: [bool; 2],
}

pub(crate) struct Revocation {
    pub(crate) method: Method,
    pub(crate) sent: Instant,
    pub(crate) ok: Option<Instant>,
    pub(crate) confirmation: Confirmation,
    pub(crate) gave_up: bool,
}

pub(crate) struct Role {
    pub(crate) id: String,
    pub(crate) narrow_sent: Option<Instant>,
    pub(crate) narrow_ok: Option<Instant>,
    pub(crate) confirmation: Confirmation,
    /// When each cell first refused a write by a credential of this role, once narrowed.
    pub(crate) seen_denied: [Option<Instant>; 2],
}

pub(crate) struct Oracle {
    pub(crate) started: Instant,
    pub(crate) creds: Vec<Cred>,
    pub(crate) revocations: Vec<Revocation>,
    pub(crate) roles: Vec<Role>,
    pub(crate) operators: Vec<usize>,
    /// Recently revoked credentials and credentials of recently narrowed roles: checked more.
    pub(crate) recent_revoked: VecDeque<usize>,
    pub(crate) recent_roles: VecDeque<usize>,
    pub(crate) report: Report,
}

/// What a checker should ask about one credential.
pub(crate) struct Pick {
    pub(crate) index: usize,
    pub(crate) secret: String,
    pub(crate) write: bool,
}

impl Oracle {
    pub(crate) fn new(started: Instant, seed: u64) -> Oracle {
        Oracle {
            started,
            creds: Vec::new(),
            revocations: Vec::new(),
            roles: Vec::new(),
            operators: Vec::new(),
            recent_revoked: VecDeque::new(),
            recent_roles: VecDeque::new(),
            report: Report {
                seed,
                ..Report::default()
            },
        }
    }

    pub(crate) fn op<T>(&mut self, name: &'static str, result: &Result<T, Status>) {
        let stats = self.report.ops.entry(name).or_default();
        match result {
            Ok(_) => stats.ok += 1,
            Err(status) => {
                *stats
                    .errors
                    .entry(format!("{:?}", status.code()).to_uppercase())
                    .or_default() += 1
            }
        }
    }

    pub(crate) fn op_error(&mut self, name: &'static str, what: &str) {
        *self
            .report
            .ops
            .entry(name)
            .or_default()
            .errors
            .entry(what.to_owned())
            .or_default() += 1;
    }

    pub(crate) fn add(&mut self, kind: Kind, secret: String, makers: Vec<usize>) -> usize {
        let claims = claims(&secret);
        let index = self.creds.len();
        self.creds.push(Cred {
            kind,
            id: claims.0,
            token_id: claims.1,
            secret,
            makers,
            refresh_token: None,
            created: Instant::now(),
            role: None,
            revocation: None,
            busy: false,
            seen_revoked: [None; 2],
        });
        index
    }

    pub(crate) fn full(&self) -> bool {
        self.creds.len() >= MAX_CREDENTIALS
    }

    /// The credential and its makers.
    pub(crate) fn chain(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(index).chain(self.creds[index].makers.iter().copied())
    }

    /// Whether a revocation of the credential or a maker was asked (or done).
    pub(crate) fn revocation_asked(&self, index: usize) -> bool {
        self.chain(index)
            .any(|i| self.creds[i].revocation.is_some())
    }

    pub(crate) fn revocation_asked_before(&self, index: usize, at: Instant) -> bool {
        self.chain(index).any(|i| {
            self.creds[i]
                .revocation
                .is_some_and(|r| self.revocations[r].sent <= at)
        })
    }

    /// Whether a revocation of the credential or a maker was acknowledged.
    pub(crate) fn revoked(&self, index: usize) -> bool {
        self.chain(index).any(|i| {
            self.creds[i]
                .revocation
                .is_some_and(|r| self.revocations[r].ok.is_some())
        })
    }

    pub(crate) fn uncertain(&self, index: usize) -> bool {
        self.chain(index).any(|i| {
            self.creds[i]
                .revocation
                .is_some_and(|r| self.revocations[r].gave_up)
        })
    }

    /// A credential nobody asked to revoke, free for a new operation.
    pub(crate) fn pick_live(&self, rng: &mut Rng, accept: impl Fn(&Cred) -> bool) -> Option<usize> {
        if self.creds.is_empty() {
            return None;
        }
        for _ in 0..64 {
            let i = rng.below(self.creds.len());
            let c = &self.creds[i];
            if !c.busy && accept(c) && !self.revocation_asked(i) {
                return Some(i);
            }
        }
        None
    }

    pub(crate) fn live_operator(&self, rng: &mut Rng) -> Option<usize> {
        let live: Vec<usize> = self
            .operators
            .iter()
            .copied()
            .filter(|&i| !self.revocation_asked(i))
            .collect();
        (!live.is_empty()).then(|| live[rng.below(live.len())])
    }

    pub(crate) fn live_operators(&self) -> usize {
        self.operators
            .iter()
            .filter(|&&i| !self.revocation_asked(i))
            .count()
    }

    /// Starts a revocation of `index`: from now on, a refusal as revoked is expected.
    pub(crate) fn ask_revocation(&mut self, index: usize, method: Method) -> usize {
        let r = self.revocations.len();
        self.revocations.push(Revocation {
            method,
            sent: Instant::now(),
            ok: None,
            confirmation: Confirmation::default(),
            gave_up: false,
        });
        self.creds[index].revocation = Some(r);
        self.creds[index].busy = true;
        r
    }

    /// The revocation `r` succeeded; it covers `members` (and what they made).
    pub(crate) fn acknowledge(&mut self, r: usize, members: &[usize]) {
        self.revocations[r].ok = Some(Instant::now());
        *self
            .report
            .revocations
            .entry(self.revocations[r].method.name())
            .or_default() += 1;
        for &index in members {
            self.recent_revoked.push_back(index);
            if self.recent_revoked.len() > 64 {
                self.recent_revoked.pop_front();
            }
        }
    }

    pub(crate) fn pick_check(&self, rng: &mut Rng) -> Option<Pick> {
        if self.creds.is_empty() {
            return None;
        }
        let roll = rng.below(100);
        let index = if roll < 40 && !self.recent_revoked.is_empty() {
            self.recent_revoked[rng.below(self.recent_revoked.len())]
        } else if roll < 60 && !self.recent_roles.is_empty() {
            self.recent_roles[rng.below(self.recent_roles.len())]
        } else {
            rng.below(self.creds.len())
        };
        let c = &self.creds[index];
        Some(Pick {
            index,
            secret: c.secret.clone(),
            write: c.role.is_some() && rng.below(100) < 70,
        })
    }

    pub(crate) fn violation(
        &self,
        index: usize,
        cell: usize,
        sent: Instant,
        what: String,
        by: &'static str,
        guard: Instant,
    ) -> Violation {
        let c = &self.creds[index];
        Violation {
            at_s: sent.duration_since(self.started).as_secs_f64(),
            cell: CELLS[cell],
            credential: format!("{} {}", c.kind.name(), c.id),
            what,
            confirmed_by: by,
            after_ms: sent.duration_since(guard).as_millis(),
        }
    }

    /// Records one Authorize verdict and judges it (see the module docs).
    pub(crate) fn record(
        &mut self,
        pick: &Pick,
        cell: usize,
        sent: Instant,
        received: Instant,
        verdict: &pb::AuthorizeResponse,
    ) {
        let index = pick.index;
        self.report.checks[cell] += 1;
        let reason = pb::Reason::try_from(verdict.reason)
            .map(|r| r.as_str_name().trim_start_matches("REASON_").to_owned())
            .unwrap_or_else(|_| format!("reason {}", verdict.reason));
        let label = if verdict.allowed {
            "allowed".to_owned()
        } else {
            reason.clone()
        };
        *self.report.verdicts[cell].entry(label).or_default() += 1;

        // Revocation: the earliest confirmation for this cell over the chain.
        let mut guard: Option<(Instant, &'static str, Method)> = None;
        let mut left_out: Option<(Instant, Method)> = None;
        for i in self.chain(index) {
            let c = &self.creds[i];
            if let Some(r) = c.revocation {
                let rev = &self.revocations[r];
                if let Some(at) = rev.confirmation.cells[cell] {
                    if guard.is_none_or(|(g, _, _)| at < g) {
                        guard = Some((at, "ConfirmRevocation", rev.method));
                    }
                }
                if let Some(at) = rev.confirmation.all {
                    if rev.confirmation.left_out[cell] && left_out.is_none_or(|(g, _)| at < g) {
                        left_out = Some((at, rev.method));
                    }
                }
            }
            if let Some(at) = c.seen_revoked[cell] {
                if guard.is_none_or(|(g, _, _)| at < g) {
                    let method = c
                        .revocation
                        .map_or(Method::RevokeKey, |r| self.revocations[r].method);
                    guard = Some((at, "an earlier refusal as revoked", method));
                }
            }
        }
        let asked = self.revocation_asked_before(index, received);
        if verdict.allowed {
            if let Some((g, by, method)) = guard.filter(|(g, _, _)| sent > *g) {
                let v = self.violation(index, cell, sent, method.name().into(), by, g);
                self.report.violations.push(v);
            } else if let Some((g, method)) = left_out.filter(|(g, _)| sent > *g) {
                let v = self.violation(
                    index,
                    cell,
                    sent,
                    method.name().into(),
                    "ConfirmRevocation confirmed=true without this cell",
                    g,
                );
                self.report.not_covered.push(v);
            }
        } else if verdict.reason == pb::Reason::Revoked as i32 {
            if asked {
                let seen = &mut self.creds[index].seen_revoked[cell];
                if seen.is_none_or(|s| received < s) {
                    *seen = Some(received);
                }
            } else {
                self.report.live_refused_as_revoked += 1;
            }
        } else if !asked && !self.uncertain(index) {
            let narrowed = self.creds[index]
                .role
                .and_then(|r| self.roles[r].narrow_sent)
                .is_some_and(|at| at <= received);
            if !(narrowed && pick.write && verdict.reason == pb::Reason::Permission as i32) {
                let age = sent.saturating_duration_since(self.creds[index].created);
                let oldest = self
                    .report
                    .unexpected_oldest
                    .entry(reason.clone())
                    .or_default();
                *oldest = (*oldest).max(age);
                *self.report.unexpected_refusals.entry(reason).or_default() += 1;
            }
        }

        // Narrowing: the write a narrowed role no longer grants.
        let Some(role) = self.creds[index].role.filter(|_| pick.write) else {
            return;
        };
        let r = &self.roles[role];
        if r.narrow_sent.is_none() {
            return;
        }
        let mut guard: Option<(Instant, &'static str)> =
            r.confirmation.cells[cell].map(|at| (at, "ConfirmRevocation"));
        if let Some(at) = r.seen_denied[cell] {
            if guard.is_none_or(|(g, _)| at < g) {
                guard = Some((at, "an earlier refusal of the narrowed write"));
            }
        }
        if verdict.allowed {
            if let Some((g, by)) = guard.filter(|(g, _)| sent > *g) {
                let what = format!("write after role {} was narrowed to read-only", r.id);
                let v = self.violation(index, cell, sent, what, by, g);
                self.report.violations.push(v);
            }
        } else if verdict.reason == pb::Reason::Permission as i32
            && r.narrow_ok.is_some_and(|ok| ok <= received)
        {
            // Only an acknowledged narrowing is promised: one whose call failed (UNAVAILABLE:
            // too few replicas acknowledged it) may or may not survive a failover.
            let seen = &mut self.roles[role].seen_denied[cell];
            if seen.is_none_or(|s| received < s) {
                *seen = Some(received);
            }
        }
    }
}

/// A credential's jti and token id, from its (unverified) claims.
pub(crate) fn claims(credential: &str) -> (String, Option<String>) {
    use base64::Engine;
    let value = credential
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    let text = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    (text("jti").unwrap_or_default(), text("tid"))
}

/// A small deterministic generator (xorshift64*): no extra crate, and a run can be replayed
/// from its seed (`AUTHCELL_SOAK_SEED`).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
