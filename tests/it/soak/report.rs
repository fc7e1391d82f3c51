//! The soak's report: what it counted, and how it prints.

use super::*;

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

pub(crate) fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

pub(crate) fn counts<K: fmt::Display>(map: &BTreeMap<K, u64>) -> String {
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
