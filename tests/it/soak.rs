//! A soak under a fault schedule: mixed traffic on two cells over real Redis, with an oracle
//! that tracks every revocation and role narrowing.
//!
//! Topology: a Redis primary and one replica per cell, all with AOF (`appendfsync always`, so a
//! primary restart loses nothing acknowledged), and two real `authcell serve` processes (cell a
//! and cell b, `--stale-policy serve --vend-rate 0 --revoke-rate 0`), each reading its cell's
//! replica. Everything listens on 127.0.0.1.
//!
//! Traffic, until the deadline: role-bound keys (GenerateGlobalApiKey), disposable tokens
//! (GenerateDisposableToken, each with its own token_id), SDK keys (GenerateApiToken) and their
//! refreshes (RefreshApiToken, which revokes the old key), revocations (RevokeGlobalApiKey,
//! RevokeToken by id and by token_id, RevokeToken of an SDK key, RevokeIssuedBefore on a
//! separate account), custom roles created and then narrowed (CreateRole, UpdateRole), and
//! Authorize checks on both cells, of live, revoked and narrowed credentials.
//!
//! Faults, one at a time, cycling: pause a replica (SIGSTOP/SIGCONT), restart a replica,
//! restart the primary (SIGTERM, then SIGKILL on the next cycle; shorter than the Sentinels'
//! down-after, so no failover), cut a replica from its primary (`REPLICAOF 127.0.0.1 1`, then
//! back), pause an authcell node (SIGSTOP/SIGCONT), and last fail the primary over (SIGKILL;
//! three Sentinels promote a replica; the old primary comes back as a replica once the other
//! replica follows the new primary, and is switched back with `SENTINEL FAILOVER` after writes
//! were paused until it caught up). The cells alternate between cycles. The nodes find the
//! primary through the Sentinels (`--redis-sentinel`) and wait for one replica's
//! acknowledgement of every mutation (`--min-replica-acks`, automatic).
//!
//! # The oracle
//!
//! A revocation (or a narrowing) is *confirmed for cell X* at the earlier of:
//! 1. the reply of a `ConfirmRevocation` that lists X in `confirmed_cells` (asked with the
//!    revocation id the revoke call returned; for a refresh or a role edit, which return none,
//!    with an empty id, which means the newest event, asked after the call returned);
//! 2. the reply of an `Authorize` on X that refused the credential as revoked (for a narrowing:
//!    refused the narrowed permission), or refused any credential in its chain of makers so.
//!    Revocations are only ever added, so a cell that once refused must refuse for good.
//!
//! A **violation** is an `Authorize` *sent* to X after that moment that allowed the credential
//! (or the narrowed permission). At the end, after the faults stop and the topology heals, every
//! revoked credential and every narrowed permission must be refused on both cells within
//! [`FINAL_BOUND`]; any left allowed is **missed**. Both must be zero.
//!
//! `confirmed: true` promises more than rule 1: no cell with a node that could still allow the
//! credential is left out (a node that went silent keeps its cell pending while it could come
//! back with its old state). So an `Authorize` sent after a `confirmed: true` answer that allows
//! the credential on a cell the answer did not list ("allowed on a cell left out of a
//! confirmed=true answer") is a violation too. The soak found such cases before
//! `ConfirmRevocation` learned about silent nodes.
//!
//! Revoke calls that fail (UNAVAILABLE while the primary restarts, timeouts while a node is
//! paused) are retried until they succeed: only then is the credential counted as revoked.
//!
//! `run` uses blocking helpers of [`crate::support::redis`] from `spawn_blocking`, so it needs a
//! multi-threaded runtime.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use authcell::proto::authcell::v1 as pb;
use authcell::proto::permission_messages as pm;
use authcell::proto::permission_rules as pr;
use authcell::proto::{auth, global_admin as ga, token};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::support::redis::{start_sentinels, RedisServer, Topology, SENTINEL_MASTER};

/// After healing, how long every revoked credential may take to be refused on both cells.
pub(crate) const FINAL_BOUND: Duration = Duration::from_secs(15);
/// How long a replica may take to report its link up after a fault ends (a loaded machine may
/// need a full resync).
const LINK_BOUND: Duration = Duration::from_secs(60);
/// How long a node may take to serve after it starts.
const START_BOUND: Duration = Duration::from_secs(60);
/// How long a revoke (or role edit) is retried before it is given up as uncertain.
const RETRY_BOUND: Duration = Duration::from_secs(60);
/// ConfirmRevocation's own wait, per call.
const CONFIRM_WAIT_MS: u32 = 10_000;
/// ConfirmRevocation calls per revocation at most.
const CONFIRM_ATTEMPTS: usize = 4;
/// Operator keys (the makers of tokens and SDK keys) kept live at once.
const OPERATORS: usize = 6;
/// Credentials tracked at most: past this, only revocations, refreshes and checks go on.
const MAX_CREDENTIALS: usize = 20_000;
const CACHE: &str = "soak";
const ACCOUNT: &str = "soak";
const IB_ACCOUNT: &str = "soak-ib";
const CELLS: [&str; 2] = ["a", "b"];
/// Every operation the traffic makes (each must succeed at least once).
const OPERATIONS: [&str; 13] = [
    "Authorize",
    "GenerateGlobalApiKey",
    "GenerateDisposableToken",
    "GenerateApiToken",
    "RefreshApiToken",
    "RevokeGlobalApiKey",
    "RevokeToken(id)",
    "RevokeToken(token_id)",
    "RevokeToken(SDK key id)",
    "RevokeIssuedBefore",
    "ConfirmRevocation",
    "CreateRole",
    "UpdateRole",
];
/// Every kind of fault of a cycle (a run of 60 s or more runs each at least once).
const FAULTS: [&str; 6] = [
    "primary failover",
    "pause replica",
    "restart replica",
    "restart primary (SIGTERM)",
    "cut replica from primary",
    "pause authcell node",
];

// --- The report ----------------------------------------------------------------------------------

/// Successes and failures (by gRPC status code) of one kind of operation.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpStats {
    pub(crate) ok: u64,
    pub(crate) errors: BTreeMap<String, u64>,
}

/// One allowed check that the oracle says must have been refused.
#[derive(Clone, Debug)]
pub(crate) struct Violation {
    /// Seconds since the traffic started, when the check was sent.
    pub(crate) at_s: f64,
    pub(crate) cell: &'static str,
    pub(crate) credential: String,
    /// What was broken: which revocation method, or a narrowing.
    pub(crate) what: String,
    /// How the confirmation was established (ConfirmRevocation or an earlier refusal).
    pub(crate) confirmed_by: &'static str,
    /// How long after the confirmation the check was sent.
    pub(crate) after_ms: u128,
}

/// What a soak run saw. `Display` prints it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Report {
    pub(crate) seed: u64,
    pub(crate) traffic: Duration,
    /// Authorize checks (single calls) per cell.
    pub(crate) checks: [u64; 2],
    /// Authorize verdicts per cell: "allowed" or the refusal reason.
    pub(crate) verdicts: [BTreeMap<String, u64>; 2],
    pub(crate) ops: BTreeMap<&'static str, OpStats>,
    /// Faults injected, by kind.
    pub(crate) faults: BTreeMap<&'static str, u64>,
    /// The schedule as it ran: seconds since start, and the fault.
    pub(crate) fault_log: Vec<(f64, String)>,
    /// Revocations acknowledged, by method (a refresh revokes the old key).
    pub(crate) revocations: BTreeMap<&'static str, u64>,
    /// Credentials covered by an acknowledged revocation (directly or through a maker).
    pub(crate) revoked_credentials: u64,
    /// Acknowledged revocations that ConfirmRevocation answered `confirmed: true` for.
    pub(crate) confirmed: u64,
    /// ... and of those, answered with both cells among `confirmed_cells`.
    pub(crate) confirmed_both: u64,
    /// Revocations ConfirmRevocation never confirmed within its attempts.
    pub(crate) unconfirmed: u64,
    pub(crate) narrowed_roles: u64,
    pub(crate) violations: Vec<Violation>,
    /// Allowed on a cell that a `confirmed: true` answer left out (its node was not live).
    pub(crate) not_covered: Vec<Violation>,
    /// (credential, cell) pairs still allowed when the final bound passed.
    pub(crate) missed: Vec<String>,
    /// How long after healing the last revoked credential was refused on both cells.
    pub(crate) converged_after: Option<Duration>,
    /// Credentials refused as revoked although no revocation of their chain had been asked.
    pub(crate) live_refused_as_revoked: u64,
    /// Other refusals of credentials the oracle holds live, by reason.
    pub(crate) unexpected_refusals: BTreeMap<String, u64>,
    /// ... and the oldest credential (time since it was made) refused so, by reason.
    pub(crate) unexpected_oldest: BTreeMap<String, Duration>,
    /// Final-sweep checks of live credentials (each on both cells) that were refused, of all.
    pub(crate) live_refused_at_end: u64,
    pub(crate) live_checked_at_end: u64,
    /// Revocations never acknowledged within the retry bound (left out of both zeros).
    pub(crate) uncertain: u64,
    /// VmRSS (KiB) of each node at the start and at the end of the traffic.
    pub(crate) rss_start_kib: [Option<u64>; 2],
    pub(crate) rss_end_kib: [Option<u64>; 2],
    /// Where the nodes' logs are (kept when something failed).
    pub(crate) logs: Option<PathBuf>,
}

impl Report {
    /// Revoked credentials (or narrowed permissions) allowed after confirmation: must be 0.
    pub(crate) fn violation_count(&self) -> usize {
        self.violations.len() + self.not_covered.len()
    }

    /// Revocations still not applied on a cell when the final bound passed: must be 0.
    pub(crate) fn missed_count(&self) -> usize {
        self.missed.len()
    }

    pub(crate) fn passed(&self) -> bool {
        self.violation_count() == 0 && self.missed.is_empty()
    }

    pub(crate) fn checks_total(&self) -> u64 {
        self.checks.iter().sum()
    }

    /// Successful calls of one operation.
    pub(crate) fn ok(&self, op: &str) -> u64 {
        self.ops.get(op).map_or(0, |s| s.ok)
    }

    /// The operations, faults and confirmations that never happened (a soak that did not
    /// exercise something proves nothing about it).
    pub(crate) fn gaps(&self) -> Vec<String> {
        let mut gaps: Vec<String> = OPERATIONS
            .iter()
            .filter(|op| self.ok(op) == 0)
            .map(|op| format!("a successful {op}"))
            .collect();
        gaps.extend(
            FAULTS
                .iter()
                .filter(|f| !self.faults.contains_key(*f))
                .map(|f| format!("the fault {f:?}")),
        );
        if self.confirmed == 0 {
            gaps.push("a confirmed revocation".into());
        }
        if self.narrowed_roles == 0 {
            gaps.push("a narrowed role".into());
        }
        gaps
    }

    /// Calls that failed, by gRPC status code, over every operation.
    pub(crate) fn errors_by_code(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for stats in self.ops.values() {
            for (code, n) in &stats.errors {
                *out.entry(code.clone()).or_default() += n;
            }
        }
        out
    }
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn counts<K: fmt::Display>(map: &BTreeMap<K, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "soak under faults: {:.0} s of traffic on cells a and b (seed {})",
            self.traffic.as_secs_f64(),
            self.seed
        )?;
        writeln!(f, "rule: a revocation is confirmed for a cell at the reply of a ConfirmRevocation listing that cell, or of an Authorize on that cell refusing the credential (or a maker of it) as revoked; an Authorize sent to that cell afterwards that allows it is a violation")?;
        writeln!(f, "faults: {}", counts(&self.faults))?;
        writeln!(
            f,
            "checks made (Authorize calls): {} (cell a {}, cell b {})",
            self.checks_total(),
            self.checks[0],
            self.checks[1]
        )?;
        for (i, cell) in CELLS.iter().enumerate() {
            writeln!(
                f,
                "  verdicts on cell {cell}: {}",
                counts(&self.verdicts[i])
            )?;
        }
        writeln!(f, "operations (ok, then errors by gRPC status code):")?;
        for (op, stats) in &self.ops {
            writeln!(
                f,
                "  {op:<24} {:>7} ok   {}",
                stats.ok,
                if stats.errors.is_empty() {
                    String::new()
                } else {
                    counts(&stats.errors)
                }
            )?;
        }
        writeln!(
            f,
            "errors by gRPC status code (UNAVAILABLE and timeouts during faults are expected): {}",
            counts(&self.errors_by_code())
        )?;
        writeln!(
            f,
            "revocations acknowledged: {} ({}), covering {} credentials; ConfirmRevocation confirmed=true for {} ({} with both cells), never confirmed {}; role narrowings {}",
            self.revocations.values().sum::<u64>(),
            counts(&self.revocations),
            self.revoked_credentials,
            self.confirmed,
            self.confirmed_both,
            self.unconfirmed,
            self.narrowed_roles
        )?;
        writeln!(
            f,
            "REVOKED CREDENTIALS ACCEPTED AFTER THEIR REVOCATION WAS CONFIRMED: {}",
            self.violations.len()
        )?;
        for v in self.violations.iter().take(20) {
            writeln!(f, "  {v}")?;
        }
        writeln!(
            f,
            "REVOCATIONS MISSED AT THE END (both cells, within {:?} of healing): {}{}",
            FINAL_BOUND,
            self.missed.len(),
            self.converged_after
                .map(|d| format!(" (all refused {:.2} s after healing)", d.as_secs_f64()))
                .unwrap_or_default()
        )?;
        for m in self.missed.iter().take(20) {
            writeln!(f, "  {m}")?;
        }
        writeln!(
            f,
            "allowed on a cell LEFT OUT of a confirmed=true answer: {} (violations too: confirmed=true leaves out no cell that could still allow the credential)",
            self.not_covered.len()
        )?;
        for v in self.not_covered.iter().take(10) {
            writeln!(f, "  {v}")?;
        }
        writeln!(
            f,
            "live credentials refused as revoked: {}; other refusals of live credentials: {} (the oldest credential refused so: {}); final-sweep checks of live credentials (each on both cells) refused: {} of {}",
            self.live_refused_as_revoked,
            counts(&self.unexpected_refusals),
            if self.unexpected_oldest.is_empty() {
                "none".to_owned()
            } else {
                self.unexpected_oldest
                    .iter()
                    .map(|(k, d)| format!("{k} {:.1} s after it was made", d.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            self.live_refused_at_end,
            self.live_checked_at_end
        )?;
        writeln!(
            f,
            "uncertain (revocation never acknowledged, left out of both zeros): {}",
            self.uncertain
        )?;
        for (i, cell) in CELLS.iter().enumerate() {
            writeln!(
                f,
                "RSS of node {cell}: {} at start, {} at end",
                mib(self.rss_start_kib[i]),
                mib(self.rss_end_kib[i])
            )?;
        }
        write!(f, "fault schedule as run:")?;
        for (at, fault) in &self.fault_log {
            write!(f, "\n  t+{at:>6.1} s  {fault}")?;
        }
        if let Some(dir) = &self.logs {
            write!(f, "\nnode logs kept in {}", dir.display())?;
        }
        Ok(())
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "t+{:.2} s cell {}: {} allowed ({}), sent {} ms after confirmation by {}",
            self.at_s, self.cell, self.credential, self.what, self.after_ms, self.confirmed_by
        )
    }
}

// --- The oracle --------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
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
    fn name(self) -> &'static str {
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
enum Method {
    RevokeKey,
    RevokeTokenById,
    RevokeTokenByTokenId,
    RevokeSdkKey,
    Refresh,
    IssuedBefore,
}

impl Method {
    fn name(self) -> &'static str {
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

struct Cred {
    kind: Kind,
    secret: String,
    /// Its jti (key id or token id).
    id: String,
    token_id: Option<String>,
    /// Oracle indexes of the credentials that made it, nearest first.
    makers: Vec<usize>,
    refresh_token: Option<String>,
    /// When the call that made it returned.
    created: Instant,
    /// The custom role it derives from.
    role: Option<usize>,
    /// Its own revocation (an index into `Oracle::revocations`).
    revocation: Option<usize>,
    /// Being refreshed or revoked: not picked again.
    busy: bool,
    /// When each cell first refused it as revoked (reply received).
    seen_revoked: [Option<Instant>; 2],
}

#[derive(Default)]
struct Confirmation {
    /// Per cell: the reply of a ConfirmRevocation that listed the cell.
    cells: [Option<Instant>; 2],
    /// The reply that said confirmed=true, and the cells it left out.
    all: Option<Instant>,
    left_out: [bool; 2],
}

struct Revocation {
    method: Method,
    sent: Instant,
    ok: Option<Instant>,
    confirmation: Confirmation,
    gave_up: bool,
}

struct Role {
    id: String,
    narrow_sent: Option<Instant>,
    narrow_ok: Option<Instant>,
    confirmation: Confirmation,
    /// When each cell first refused a write by a credential of this role, once narrowed.
    seen_denied: [Option<Instant>; 2],
}

struct Oracle {
    started: Instant,
    creds: Vec<Cred>,
    revocations: Vec<Revocation>,
    roles: Vec<Role>,
    operators: Vec<usize>,
    /// Recently revoked credentials and credentials of recently narrowed roles: checked more.
    recent_revoked: VecDeque<usize>,
    recent_roles: VecDeque<usize>,
    report: Report,
}

/// What a checker should ask about one credential.
struct Pick {
    index: usize,
    secret: String,
    write: bool,
}

impl Oracle {
    fn new(started: Instant, seed: u64) -> Oracle {
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

    fn op<T>(&mut self, name: &'static str, result: &Result<T, Status>) {
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

    fn op_error(&mut self, name: &'static str, what: &str) {
        *self
            .report
            .ops
            .entry(name)
            .or_default()
            .errors
            .entry(what.to_owned())
            .or_default() += 1;
    }

    fn add(&mut self, kind: Kind, secret: String, makers: Vec<usize>) -> usize {
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

    fn full(&self) -> bool {
        self.creds.len() >= MAX_CREDENTIALS
    }

    /// The credential and its makers.
    fn chain(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(index).chain(self.creds[index].makers.iter().copied())
    }

    /// Whether a revocation of the credential or a maker was asked (or done).
    fn revocation_asked(&self, index: usize) -> bool {
        self.chain(index)
            .any(|i| self.creds[i].revocation.is_some())
    }

    fn revocation_asked_before(&self, index: usize, at: Instant) -> bool {
        self.chain(index).any(|i| {
            self.creds[i]
                .revocation
                .is_some_and(|r| self.revocations[r].sent <= at)
        })
    }

    /// Whether a revocation of the credential or a maker was acknowledged.
    fn revoked(&self, index: usize) -> bool {
        self.chain(index).any(|i| {
            self.creds[i]
                .revocation
                .is_some_and(|r| self.revocations[r].ok.is_some())
        })
    }

    fn uncertain(&self, index: usize) -> bool {
        self.chain(index).any(|i| {
            self.creds[i]
                .revocation
                .is_some_and(|r| self.revocations[r].gave_up)
        })
    }

    /// A credential nobody asked to revoke, free for a new operation.
    fn pick_live(&self, rng: &mut Rng, accept: impl Fn(&Cred) -> bool) -> Option<usize> {
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

    fn live_operator(&self, rng: &mut Rng) -> Option<usize> {
        let live: Vec<usize> = self
            .operators
            .iter()
            .copied()
            .filter(|&i| !self.revocation_asked(i))
            .collect();
        (!live.is_empty()).then(|| live[rng.below(live.len())])
    }

    fn live_operators(&self) -> usize {
        self.operators
            .iter()
            .filter(|&&i| !self.revocation_asked(i))
            .count()
    }

    /// Starts a revocation of `index`: from now on, a refusal as revoked is expected.
    fn ask_revocation(&mut self, index: usize, method: Method) -> usize {
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
    fn acknowledge(&mut self, r: usize, members: &[usize]) {
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

    fn pick_check(&self, rng: &mut Rng) -> Option<Pick> {
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

    fn violation(
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
    fn record(
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
fn claims(credential: &str) -> (String, Option<String>) {
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
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

// --- Processes ---------------------------------------------------------------------------------

/// The authcell binary: `AUTHCELL_SOAK_BIN` if set, else the one cargo built for this target
/// (cargo sets `CARGO_BIN_EXE_authcell` for integration tests and benchmarks alike, and builds
/// the binary, in the same profile, before running them).
pub(crate) fn authcell_bin() -> PathBuf {
    let path = std::env::var_os("AUTHCELL_SOAK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_authcell")));
    assert!(
        path.is_file(),
        "the authcell binary {} does not exist: build it first (`cargo build --release` for the bench, `cargo build` for the test), or point AUTHCELL_SOAK_BIN at one",
        path.display()
    );
    path
}

fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One `authcell serve` process, logging to a file; killed on drop.
struct NodeProcess {
    port: u16,
    child: Child,
    log: PathBuf,
}

impl NodeProcess {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        signal(self.child.id(), "-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup<'a> {
    bin: &'a Path,
    dir: &'a Path,
    key_file: &'a Path,
    /// How authcell finds the primary: `--redis-sentinel ... --redis-master-name ...`.
    redis: Vec<String>,
}

impl Setup<'_> {
    fn command(&self) -> Command {
        let mut command = Command::new(self.bin);
        // The flags say everything; nothing leaks in from the caller's environment.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AUTHCELL_") {
                command.env_remove(name);
            }
        }
        command
    }

    /// `authcell bootstrap --force` of `account`: its owner key.
    fn bootstrap(&self, account: &str) -> Result<String, String> {
        let out = self
            .command()
            .args(["bootstrap", "--force", "--account", account])
            .args(&self.redis)
            .args(["--min-replica-acks", "2"])
            .arg("--signing-key-file")
            .arg(self.key_file)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run authcell bootstrap: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.trim().strip_prefix("AUTHCELL_API_KEY=") {
            Some(key) if out.status.success() => Ok(key.to_owned()),
            _ => Err(format!(
                "authcell bootstrap failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }

    /// Starts `authcell serve` for `cell` on a free port and waits until it allows `owner`.
    async fn node(&self, cell: &str, replica: &str, owner: &str) -> NodeProcess {
        for attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("find a free port")
                .port();
            let log = self.dir.join(format!("node-{cell}-{attempt}.log"));
            let file = std::fs::File::create(&log).expect("create the node's log file");
            let child = self
                .command()
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .args(["--cell", cell])
                .args(&self.redis)
                .args(["--redis-read-url", replica, "--signing-key-file"])
                .arg(self.key_file)
                .args(["--stale-policy", "serve", "--vend-rate", "0"])
                // Every replica must hold a mutation before it is acknowledged: then no
                // acknowledged write is lost whichever replica Sentinel promotes.
                .args(["--min-replica-acks", "2"])
                .args(["--revoke-rate", "0", "--drain-seconds", "0"])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("start authcell serve");
            let mut node = NodeProcess { port, child, log };
            let started = Instant::now();
            let channel = channel(port, Duration::from_secs(5));
            loop {
                if let Ok(Some(status)) = node.child.try_wait() {
                    let tail = node.log_tail();
                    if tail.contains("Address already in use") {
                        break;
                    }
                    panic!("authcell serve (cell {cell}) exited during start-up: {status}\n{tail}");
                }
                let verdict = pb::verifier_client::VerifierClient::new(channel.clone())
                    .authorize(read_check(owner))
                    .await;
                if verdict.is_ok_and(|v| v.into_inner().allowed) {
                    return node;
                }
                assert!(
                    started.elapsed() < START_BOUND,
                    "authcell serve (cell {cell}) did not serve within {START_BOUND:?}\n{}",
                    node.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("authcell serve (cell {cell}): no free port after 5 attempts")
    }
}

fn channel(port: u16, timeout: Duration) -> Channel {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("a valid loopback URL")
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .connect_lazy()
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = key.parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn read_check(credential: &str) -> pb::AuthorizeRequest {
    check(credential, false)
}

fn check(credential: &str, write: bool) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        credential: credential.into(),
        action: if write {
            pb::Action::CacheWrite
        } else {
            pb::Action::CacheRead
        } as i32,
        cache: CACHE.into(),
        key: b"k".to_vec(),
        peer_address: "127.0.0.1".into(),
        ..Default::default()
    }
}

fn statement(role: pm::CacheRole) -> pm::Permissions {
    use pm::permissions_type as pt;
    pm::Permissions {
        kind: Some(pm::permissions::Kind::Explicit(pm::ExplicitPermissions {
            permissions: vec![pm::PermissionsType {
                kind: Some(pt::Kind::CachePermissions(pt::CachePermissions {
                    role: role as i32,
                    cache: Some(pt::cache_permissions::Cache::CacheSelector(
                        pt::CacheSelector {
                            kind: Some(pt::cache_selector::Kind::CacheName(CACHE.into())),
                        },
                    )),
                    cache_item: Some(pt::cache_permissions::CacheItem::AllItems(pt::All {})),
                })),
            }],
        })),
    }
}

fn role_set(perms: &[pr::CacheApiPermissions]) -> pr::PermissionSet {
    pr::PermissionSet {
        kind: Some(pr::permission_set::Kind::Explicit(
            pr::ExplicitPermissions {
                rules: vec![pr::Rule {
                    kind: Some(pr::rule::Kind::CacheRule(pr::rule::CacheRule {
                        permissions: perms.iter().map(|p| *p as i32).collect(),
                        cache: Some(pr::rule::cache_rule::Cache::CacheSelector(
                            pr::CacheSelector {
                                kind: Some(pr::cache_selector::Kind::CacheName(CACHE.into())),
                            },
                        )),
                        cache_item: Some(pr::rule::cache_rule::CacheItem::AllItems(pr::All {})),
                    })),
                }],
            },
        )),
        conditions: vec![],
    }
}

// --- The driver --------------------------------------------------------------------------------

/// One cell's gRPC channels: calls that may wait (ConfirmRevocation waits up to 10 s) get a
/// longer timeout; a paused node answers nothing until it resumes.
#[derive(Clone)]
struct CellClient {
    ops: Channel,
    confirm: Channel,
}

struct Shared {
    state: Mutex<Oracle>,
    cells: [CellClient; 2],
    owner: String,
    /// Traffic stops at this moment.
    deadline: Instant,
    confirmations: tokio::sync::Semaphore,
    setup_bin: PathBuf,
    key_file: PathBuf,
    dir: PathBuf,
    redis: Vec<String>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, Oracle> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    fn cell(&self, rng: &mut Rng) -> &CellClient {
        &self.cells[rng.below(2)]
    }

    fn setup(&self) -> Setup<'_> {
        Setup {
            bin: &self.setup_bin,
            dir: &self.dir,
            key_file: &self.key_file,
            redis: self.redis.clone(),
        }
    }
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

async fn create_key(
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

async fn mint(
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
async fn maker(shared: Arc<Shared>, mut rng: Rng) {
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
async fn refresh(shared: &Arc<Shared>, rng: &mut Rng) {
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
async fn revoker(shared: Arc<Shared>, mut rng: Rng) {
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
async fn revoke_until_ok(shared: &Arc<Shared>, rng: &mut Rng, index: usize, r: usize) {
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
enum Target {
    Revocation(usize),
    Role(usize),
}

/// Asks ConfirmRevocation (with `id`, or the newest event) until it says confirmed=true, at
/// most [`CONFIRM_ATTEMPTS`] times, and records which cells it confirmed, when.
fn confirm(shared: Arc<Shared>, target: Target, id: Option<String>, seed: u64) {
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
fn record_confirmation(
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
async fn checker(shared: Arc<Shared>, cell: usize, channel: Channel, mut rng: Rng) {
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
async fn roles(shared: Arc<Shared>, mut rng: Rng) {
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
async fn issued_before(shared: Arc<Shared>, mut rng: Rng) {
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
                    Err(_) if started.elapsed() > RETRY_BOUND => {
                        state.revocations[r].gave_up = true;
                        state.report.uncertain += 1;
                        break;
                    }
                    Err(_) => None,
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

// --- Faults --------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Fault {
    Failover,
    PauseReplica(usize),
    RestartReplica(usize),
    RestartPrimary { kill: bool },
    CutReplica(usize),
    PauseNode(usize),
}

impl Fault {
    fn kind(self) -> &'static str {
        match self {
            Fault::Failover => "primary failover",
            Fault::PauseReplica(_) => "pause replica",
            Fault::RestartReplica(_) => "restart replica",
            Fault::RestartPrimary { kill: false } => "restart primary (SIGTERM)",
            Fault::RestartPrimary { kill: true } => "restart primary (SIGKILL)",
            Fault::CutReplica(_) => "cut replica from primary",
            Fault::PauseNode(_) => "pause authcell node",
        }
    }

    fn describe(self, hold: Duration) -> String {
        let cell = match self {
            Fault::PauseReplica(c)
            | Fault::RestartReplica(c)
            | Fault::CutReplica(c)
            | Fault::PauseNode(c) => format!(" of cell {}", CELLS[c]),
            Fault::RestartPrimary { .. } | Fault::Failover => String::new(),
        };
        format!("{}{cell}, {:.0} s", self.kind(), hold.as_secs_f64())
    }
}

/// The faults of cycle `n`: every kind once; the cells alternate between cycles.
fn cycle(n: usize) -> [(Fault, Duration); 6] {
    let (x, y) = (n % 2, 1 - n % 2);
    let s = Duration::from_secs;
    [
        (Fault::PauseReplica(x), s(3)),
        (Fault::RestartReplica(y), s(3)),
        (Fault::RestartPrimary { kill: n % 2 == 1 }, s(3)),
        (Fault::CutReplica(x), s(4)),
        // Cycles 1 and 2 (one per cell) keep the node paused past the 5 s liveness window.
        (
            Fault::PauseNode(y),
            if matches!(n % 4, 1 | 2) { s(7) } else { s(3) },
        ),
        // Last: it takes 30-40 s (SENTINEL_DOWN, the promotion, the old primary's return and
        // the switch-back), so a 60 s run starts it after every other kind, and finishes it
        // after the traffic deadline.
        (Fault::Failover, s(0)),
    ]
}

fn replica(topology: &mut Topology, cell: usize) -> &mut RedisServer {
    if cell == 0 {
        &mut topology.replica_a
    } else {
        &mut topology.replica_b
    }
}

/// Polls a replica until its link to its primary is up, for up to [`LINK_BOUND`].
fn wait_link(server: &RedisServer) {
    let started = Instant::now();
    loop {
        let info = server
            .try_command(&["INFO", "replication"])
            .unwrap_or_default();
        if info
            .lines()
            .any(|l| l.trim_end() == "master_link_status:up")
        {
            return;
        }
        assert!(
            started.elapsed() < LINK_BOUND,
            "replica on port {}: link not up within {LINK_BOUND:?}\n{info}\n{}",
            server.port(),
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Sentinels' `down-after-milliseconds`: longer than a primary restart (so that only the
/// failover fault fails over), short enough for a 60 s run.
const SENTINEL_DOWN: Duration = Duration::from_secs(6);

/// The soak's Redis: the topology and the Sentinels watching it.
struct Redis {
    topology: Topology,
    sentinels: Vec<RedisServer>,
}

/// Polls until the Sentinels name the server on `port` as the primary and it says so.
fn wait_named(redis: &Redis, port: u16) {
    if named_within(redis, port, LINK_BOUND) {
        return;
    }
    let t = &redis.topology;
    let roles: Vec<String> = [&t.primary, &t.replica_a, &t.replica_b]
        .into_iter()
        .map(|s| {
            let role = s.try_command(&["ROLE"]).unwrap_or_default();
            format!("{}: {}", s.port(), role.replace('\n', " "))
        })
        .collect();
    panic!(
        "the Sentinels did not promote port {port} within {LINK_BOUND:?}; roles: {roles:?}\n{}",
        redis.sentinels[0].log_tail()
    );
}

/// Whether the Sentinels name the server on `port` as the primary, and it says so, within
/// `within`.
fn named_within(redis: &Redis, port: u16, within: Duration) -> bool {
    let started = Instant::now();
    loop {
        let named = redis.sentinels.iter().all(|s| s.master_port() == port);
        if named
            && redis
                .topology
                .server(port)
                .try_command(&["ROLE"])
                .is_some_and(|r| r.starts_with("master"))
        {
            return true;
        }
        if started.elapsed() >= within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the primary; waits for the Sentinels to promote a replica; starts the old primary
/// again (the Sentinels make it a replica of the new one) and switches back to it with a
/// graceful `SENTINEL FAILOVER` (it is given the best replica priority), so that the other
/// faults find the roles where they expect them.
fn failover(redis: &mut Redis) {
    let old = redis.topology.primary.port();
    redis.topology.primary.kill();
    let started = Instant::now();
    let promoted = loop {
        let port = redis.sentinels[0].master_port();
        if port != old {
            break port;
        }
        assert!(
            started.elapsed() < LINK_BOUND,
            "no replica promoted within {LINK_BOUND:?} of the primary's death"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    wait_named(redis, promoted);
    // Only once every other replica follows the new primary may the old one come back: it
    // restarts as a primary with its own (older) data until the Sentinels demote it, and a
    // replica still pointed at its address would copy that stale data meanwhile.
    let promoted_port = promoted.to_string();
    let started = Instant::now();
    loop {
        let t = &redis.topology;
        let following = [&t.replica_a, &t.replica_b]
            .into_iter()
            .filter(|s| s.port() != promoted)
            .all(|s| {
                let info = s.try_command(&["INFO", "replication"]).unwrap_or_default();
                info.lines()
                    .any(|l| l.trim_end() == format!("master_port:{promoted_port}"))
                    && info
                        .lines()
                        .any(|l| l.trim_end() == "master_link_status:up")
            });
        if following {
            break;
        }
        assert!(
            started.elapsed() < LINK_BOUND,
            "the other replica did not follow the new primary within {LINK_BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    redis.topology.primary.start_again();
    let started = Instant::now();
    while !redis
        .topology
        .primary
        .try_command(&["ROLE"])
        .is_some_and(|r| r.starts_with("slave"))
    {
        assert!(
            started.elapsed() < LINK_BOUND,
            "the old primary was not made a replica within {LINK_BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_link(&redis.topology.primary);
    // It runs with --replica-priority 1 (the replicas have the default 100): once a Sentinel
    // has read that from it, a failover picks it.
    let started = Instant::now();
    let port = old.to_string();
    loop {
        let replicas = redis.sentinels[0].command(&["SENTINEL", "replicas", SENTINEL_MASTER]);
        let lines: Vec<&str> = replicas.lines().collect();
        // Flattened: one entry's fields run from its "name" to the next "name".
        let ready = lines.split(|l| *l == "name").any(|entry| {
            let field = |name: &str| {
                entry
                    .iter()
                    .position(|l| *l == name)
                    .and_then(|i| entry.get(i + 1).copied())
            };
            field("port") == Some(port.as_str())
                && field("slave-priority") == Some("1")
                && field("master-link-status") == Some("ok")
                && field("flags") == Some("slave")
        });
        if ready {
            break;
        }
        assert!(
            started.elapsed() < LINK_BOUND,
            "the Sentinel did not see the old primary as a ready replica within {LINK_BOUND:?}: {replicas}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A graceful switch-over loses nothing only if the replica to be promoted holds every
    // acknowledged write (Sentinel promotes by priority first, data second): pause writes on
    // the current primary, wait until the old primary has caught up, then fail over. The
    // writes held meanwhile run after the switch, answered READONLY by the demoted server, and
    // the nodes resend them to the new primary.
    let current = redis.topology.server(promoted);
    let offset = |server: &RedisServer, field: &str| -> Option<u64> {
        server
            .try_command(&["INFO", "replication"])?
            .lines()
            .find_map(|l| l.trim_end().strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.parse().ok())
    };
    // A Sentinel sometimes aborts a requested failover (`-failover-abort-slave-timeout`): the
    // whole switch-back is tried again, writes paused anew each time.
    for _ in 0..3 {
        let reply = current.command(&["CLIENT", "PAUSE", "15000", "WRITE"]);
        assert_eq!(reply, "OK", "CLIENT PAUSE WRITE");
        let started = Instant::now();
        loop {
            let want = offset(current, "master_repl_offset");
            if want.is_some() && offset(&redis.topology.primary, "slave_repl_offset") == want {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "the old primary did not catch up with the paused primary"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // A Sentinel refuses a failover while it still considers one in progress: retry.
        let started = Instant::now();
        loop {
            let reply = redis.sentinels[0].command(&["SENTINEL", "FAILOVER", SENTINEL_MASTER]);
            if reply == "OK" {
                break;
            }
            assert!(
                started.elapsed() < LINK_BOUND,
                "SENTINEL FAILOVER kept failing: {reply}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        if named_within(redis, old, Duration::from_secs(14)) {
            break;
        }
        let _ = current.try_command(&["CLIENT", "UNPAUSE"]);
        std::thread::sleep(Duration::from_secs(1));
    }
    wait_named(redis, old);
    // Now a replica: the held writes are released (to be refused READONLY).
    let _ = current.command(&["CLIENT", "UNPAUSE"]);
    wait_link(&redis.topology.replica_a);
    wait_link(&redis.topology.replica_b);
}

/// Injects one fault, holds it, and undoes it (blocking).
fn inject(redis: &mut Redis, pids: [u32; 2], fault: Fault, hold: Duration) {
    if let Fault::Failover = fault {
        failover(redis);
        return;
    }
    let topology = &mut redis.topology;
    match fault {
        Fault::Failover => {}
        Fault::PauseReplica(c) => {
            let server = replica(topology, c);
            server.pause();
            std::thread::sleep(hold);
            server.resume();
            wait_link(server);
        }
        Fault::RestartReplica(c) => {
            let server = replica(topology, c);
            server.stop();
            std::thread::sleep(hold);
            server.start_again_unlinked();
            wait_link(server);
        }
        Fault::RestartPrimary { kill } => {
            if kill {
                topology.primary.kill();
            } else {
                topology.primary.stop();
            }
            std::thread::sleep(hold);
            topology.primary.start_again();
            wait_link(&topology.replica_a);
            wait_link(&topology.replica_b);
        }
        Fault::CutReplica(c) => {
            let port = topology.primary.port().to_string();
            let server = replica(topology, c);
            let reply = server.command(&["REPLICAOF", "127.0.0.1", "1"]);
            assert_eq!(reply, "OK", "REPLICAOF 127.0.0.1 1");
            std::thread::sleep(hold);
            let reply = server.command(&["REPLICAOF", "127.0.0.1", &port]);
            assert_eq!(reply, "OK", "REPLICAOF back to the primary");
            wait_link(server);
        }
        Fault::PauseNode(c) => {
            assert!(signal(pids[c], "-STOP"), "SIGSTOP authcell node");
            std::thread::sleep(hold);
            assert!(signal(pids[c], "-CONT"), "SIGCONT authcell node");
        }
    }
}

/// Runs the schedule until the deadline, one fault at a time, 2 s apart.
async fn faults(shared: Arc<Shared>, topology: Arc<Mutex<Redis>>, pids: [u32; 2]) {
    let mut n = 0;
    'cycles: loop {
        for (fault, hold) in cycle(n) {
            sleep_ms(2000).await;
            if !shared.running() {
                break 'cycles;
            }
            {
                let mut state = shared.state();
                let at = state.started.elapsed().as_secs_f64();
                state.report.fault_log.push((at, fault.describe(hold)));
                *state.report.faults.entry(fault.kind()).or_default() += 1;
            }
            let topology = topology.clone();
            tokio::task::spawn_blocking(move || {
                let mut topology = topology.lock().unwrap_or_else(PoisonError::into_inner);
                inject(&mut topology, pids, fault, hold);
            })
            .await
            .expect("a fault could not be injected or undone (see the panic above)");
        }
        n += 1;
    }
}

// --- The final sweep -----------------------------------------------------------------------------

/// After healing: every revoked credential and narrowed write refused on both cells within
/// [`FINAL_BOUND`]; live credentials still allowed.
async fn final_sweep(shared: &Shared, checks: &[Channel; 2]) {
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

// --- run -----------------------------------------------------------------------------------------

fn seed() -> u64 {
    std::env::var("AUTHCELL_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// Runs the soak: set-up, `duration` of traffic under the fault schedule, healing, the final
/// sweep. Panics only if the set-up (or a fault's undoing) fails; everything the traffic meets
/// is counted in the report.
pub(crate) async fn run(duration: Duration) -> Report {
    let bin = authcell_bin();
    let seed = seed();
    let dir = std::env::temp_dir().join(format!(
        "authcell-soak-{}-{}",
        std::process::id(),
        seed % 1_000_000
    ));
    std::fs::create_dir_all(&dir).expect("create the soak's directory");
    let key_file = dir.join("signing.pem");
    let pem = Command::new(&bin)
        .arg("keygen")
        .output()
        .expect("run authcell keygen");
    assert!(pem.status.success(), "authcell keygen failed");
    std::fs::write(&key_file, &pem.stdout).expect("write the signing key");

    let redis = tokio::task::spawn_blocking(|| {
        let mut topology = Topology::start(true);
        // So that a switch-back failover picks it (see `failover`).
        topology.primary.set_replica_priority(1);
        let sentinels = start_sentinels(topology.primary.port(), SENTINEL_DOWN);
        Redis {
            topology,
            sentinels,
        }
    })
    .await
    .expect("start the Redis topology");
    let redis_args = vec![
        "--redis-sentinel".to_owned(),
        redis
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect::<Vec<_>>()
            .join(","),
        "--redis-master-name".to_owned(),
        SENTINEL_MASTER.to_owned(),
    ];
    let topology = &redis.topology;
    let (replica_a, replica_b) = (topology.replica_a.url(), topology.replica_b.url());
    let setup = Setup {
        bin: &bin,
        dir: &dir,
        key_file: &key_file,
        redis: redis_args.clone(),
    };
    let owner = setup
        .bootstrap(ACCOUNT)
        .expect("bootstrap the soak account");
    let node_a = setup.node("a", &replica_a, &owner).await;
    let node_b = setup.node("b", &replica_b, &owner).await;
    let nodes = [&node_a, &node_b];
    let pids = [node_a.pid(), node_b.pid()];

    let started = Instant::now();
    let cell = |n: &NodeProcess| CellClient {
        ops: channel(n.port, Duration::from_secs(10)),
        confirm: channel(n.port, Duration::from_secs(20)),
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(Oracle::new(started, seed)),
        cells: [cell(&node_a), cell(&node_b)],
        owner,
        deadline: started + duration,
        confirmations: tokio::sync::Semaphore::new(12),
        setup_bin: bin.clone(),
        key_file: key_file.clone(),
        dir: dir.clone(),
        redis: redis_args,
    });
    {
        let mut state = shared.state();
        state.report.traffic = duration;
        for (i, n) in nodes.iter().enumerate() {
            state.report.rss_start_kib[i] = rss_kib(n.pid());
        }
    }
    let topology = Arc::new(Mutex::new(redis));
    let mut rng = Rng::new(seed);
    let mut tasks = vec![
        tokio::spawn(maker(shared.clone(), Rng::new(rng.next()))),
        tokio::spawn(revoker(shared.clone(), Rng::new(rng.next()))),
        tokio::spawn(roles(shared.clone(), Rng::new(rng.next()))),
        tokio::spawn(issued_before(shared.clone(), Rng::new(rng.next()))),
    ];
    for (cell, node) in nodes.iter().enumerate() {
        for _ in 0..2 {
            tasks.push(tokio::spawn(checker(
                shared.clone(),
                cell,
                channel(node.port, Duration::from_secs(5)),
                Rng::new(rng.next()),
            )));
        }
    }
    let fault_task = tokio::spawn(faults(shared.clone(), topology.clone(), pids));
    fault_task
        .await
        .expect("the fault schedule failed (see the panic above)");
    for task in tasks {
        task.await.expect("a traffic task panicked");
    }
    // Revocations still being retried and confirmations still waiting finish: every permit
    // free means no confirmation runs. Bounded by the retry and confirmation bounds.
    let quiet = Instant::now();
    while quiet.elapsed() < RETRY_BOUND + Duration::from_secs(60) {
        let busy = {
            let state = shared.state();
            state
                .revocations
                .iter()
                .any(|r| r.ok.is_none() && !r.gave_up)
        };
        if !busy && shared.confirmations.available_permits() == 12 {
            break;
        }
        sleep_ms(200).await;
    }

    // Heal: every fault was undone by its own step; wait for both links and both nodes.
    {
        let topology = topology.clone();
        tokio::task::spawn_blocking(move || {
            let redis = topology.lock().unwrap_or_else(PoisonError::into_inner);
            wait_link(&redis.topology.replica_a);
            wait_link(&redis.topology.replica_b);
        })
        .await
        .expect("the topology did not heal");
    }
    let checks = [
        channel(node_a.port, Duration::from_secs(10)),
        channel(node_b.port, Duration::from_secs(10)),
    ];
    final_sweep(&shared, &checks).await;

    let mut report = {
        let mut state = shared.state();
        for (i, n) in nodes.iter().enumerate() {
            state.report.rss_end_kib[i] = rss_kib(n.pid());
        }
        state.report.clone()
    };
    drop(node_a);
    drop(node_b);
    if report.passed() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        report.logs = Some(dir);
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_under_faults_loses_no_revocation() {
    let seconds = std::env::var("AUTHCELL_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let report = run(Duration::from_secs(seconds)).await;
    println!("{report}");
    assert_eq!(
        report.violation_count(),
        0,
        "revoked credentials accepted after their revocation was confirmed:\n{report}"
    );
    assert_eq!(
        report.missed_count(),
        0,
        "revocations missed at the end:\n{report}"
    );
    let gaps = report.gaps();
    assert!(gaps.is_empty(), "{gaps:?} never happened:\n{report}");
}
