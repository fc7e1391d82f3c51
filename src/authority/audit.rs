//! The audit log: listing it, and recording key-ring rotations.

use super::*;

impl Authority {
    /// ListAuditEvents: the caller's account's lifecycle events, newest first.
    pub async fn list_audit(
        &self,
        caller: &Caller,
        request: AuditListing,
    ) -> Result<(Vec<AuditRecord>, Option<String>)> {
        self.require(caller, Action::AuthList)?;
        let limit = request.limit;
        let query = AuditQuery {
            since_ms: request.since_ms,
            until_ms: request.until_ms,
            before_id: request.before_id,
            limit: limit + 1,
        };
        let mut events = self.store.list_audit(caller.account(), &query).await?;
        let next = if events.len() > limit {
            events.truncate(limit);
            events
                .last()
                .map(|e| encode_page_token(AUDIT_PAGE_PREFIX, &e.id))
        } else {
            None
        };
        Ok((events, next))
    }

    /// Records a signing key rotation (platform event, under the account `system`).
    pub async fn record_rotation(&self, kids: &[String], active: &str) {
        let audit = Self::audit(
            SYSTEM_ACCOUNT,
            SYSTEM_ACCOUNT,
            None,
            "signing_key.rotated",
            active,
            format!("trusted keys: {}", kids.join(", ")),
        );
        if let Err(e) = self.store.append_audit(&audit).await {
            tracing::warn!(error = %e, "cannot record the key rotation in the audit log");
        }
    }
}
