//! Connecting to a server and the gRPC client calls the commands make.

use super::*;

/// The URL of an endpoint given as `host:port`, `http://host:port` or `https://host:port`.
pub fn endpoint_url(endpoint: &str) -> Result<String, Failure> {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if endpoint.is_empty() {
        return Err(no_endpoint());
    }
    let lower = endpoint.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(format!("https://{}", &endpoint["https://".len()..]));
    }
    if lower.starts_with("http://") {
        return Ok(format!("http://{}", &endpoint["http://".len()..]));
    }
    if endpoint.contains("://") {
        return Err(Failure::usage(format!(
            "--endpoint {endpoint}: use host:port, http://host:port or https://host:port"
        )));
    }
    Ok(format!("http://{endpoint}"))
}

pub(crate) fn no_endpoint() -> Failure {
    Failure::usage(
        "no endpoint: set AUTHCELL_ENDPOINT (as `authcell serve` prints it) or pass --endpoint",
    )
}

/// The URL the client connects to: `endpoint` as [`endpoint_url`] reads it, https when a CA
/// is given (`tls_ca`), and refused when it would carry the API key in plaintext to a host
/// that is not loopback, unless `insecure`. Decided from the text alone, before connecting.
pub fn target_url(endpoint: &str, tls_ca: bool, insecure: bool) -> Result<String, Failure> {
    use crate::endpoint::Transport;
    let mut url = endpoint_url(endpoint)?;
    if tls_ca && url.starts_with("http://") {
        url = format!("https://{}", &url["http://".len()..]);
    }
    match crate::endpoint::transport(&url) {
        Err(e) => Err(Failure::usage(format!("--endpoint {endpoint}: {e}"))),
        Ok(Transport::RemotePlaintext) if !insecure => Err(Failure::usage(format!(
            "--endpoint {endpoint}: refusing to send the API key in plaintext to a host that is \
             not loopback; use https:// (with --tls-ca for a private CA), or pass --insecure \
             (AUTHCELL_INSECURE=1) to send it anyway"
        ))),
        Ok(Transport::RemotePlaintext) => {
            note(&format!(
                "authcell: warning: sending the API key in plaintext to {endpoint} (--insecure)\n"
            ));
            Ok(url)
        }
        Ok(Transport::Tls | Transport::LoopbackPlaintext) => Ok(url),
    }
}

/// Opens the channel to `url` (from [`target_url`]; `endpoint` as the user gave it, for
/// messages). The one place transport settings live.
pub(crate) async fn open_channel(
    endpoint: &str,
    url: String,
    tls_ca: Option<&str>,
) -> Result<Channel, Failure> {
    let tls = if url.starts_with("https://") {
        let config = tonic::transport::ClientTlsConfig::new();
        Some(match tls_ca {
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| Failure::usage(format!("--tls-ca {path}: cannot read: {e}")))?;
                config.ca_certificate(tonic::transport::Certificate::from_pem(pem))
            }
            None => config.with_webpki_roots(),
        })
    } else {
        None
    };
    let mut target = Endpoint::from_shared(url)
        .map_err(|e| {
            Failure::usage(format!(
                "--endpoint {endpoint}: not a valid address ({})",
                error_chain(&e)
            ))
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        target = target
            .tls_config(tls)
            .map_err(|e| Failure::usage(format!("--tls-ca: cannot use it: {}", error_chain(&e))))?;
    }
    target.connect().await.map_err(|e| {
        Failure::new(
            Exit::Server,
            format!(
                "UNAVAILABLE: cannot connect to {endpoint}: {}",
                error_chain(&e)
            ),
        )
    })
}

/// A connected client: the channel and the caller's key.
pub(crate) struct Api {
    pub(crate) channel: Channel,
    pub(crate) key: MetadataValue<Ascii>,
    /// The endpoint as the operator gave it (what an SDK or another CLI would be pointed at).
    pub(crate) endpoint: String,
}

impl Api {
    /// Checks the endpoint and key, then connects.
    pub(crate) async fn connect(args: &ClientArgs) -> Result<Api, Failure> {
        let endpoint = args
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or_else(no_endpoint)?;
        // Fail on a bad endpoint, or one the key must not travel to, before complaining about
        // the key, and before connecting.
        let url = target_url(endpoint, args.tls_ca.is_some(), args.insecure)?;
        let key = args
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Failure::new(
                    Exit::Auth,
                    "no API key: set AUTHCELL_API_KEY or pass --api-key",
                )
            })?;
        let mut key = MetadataValue::try_from(key).map_err(|_| {
            Failure::new(
                Exit::Auth,
                "the API key is malformed: it must be printable ASCII",
            )
        })?;
        key.set_sensitive(true);
        let channel = open_channel(endpoint, url, args.tls_ca.as_deref()).await?;
        Ok(Api {
            channel,
            key,
            endpoint: endpoint.to_owned(),
        })
    }

    /// A request carrying the caller's key.
    pub(crate) fn req<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.key.clone());
        request
    }

    pub(crate) fn admin(&self) -> pb::admin_client::AdminClient<Channel> {
        pb::admin_client::AdminClient::new(self.channel.clone())
    }

    pub(crate) fn global_admin(&self) -> ga::global_admin_client::GlobalAdminClient<Channel> {
        ga::global_admin_client::GlobalAdminClient::new(self.channel.clone())
    }

    pub(crate) fn token(&self) -> token::token_client::TokenClient<Channel> {
        token::token_client::TokenClient::new(self.channel.clone())
    }

    pub(crate) async fn list_roles(&self) -> Result<Vec<pb::Role>, Failure> {
        Ok(self
            .admin()
            .list_roles(self.req(pb::ListRolesRequest {}))
            .await
            .map_err(from_status)?
            .into_inner()
            .roles)
    }

    /// A role id from an id or a name. System role ids and UUIDs are taken as they are;
    /// anything else is looked up by name, and sent as it is when no role has that name or the
    /// roles cannot be listed (the call that follows then says what is wrong).
    pub(crate) async fn resolve_role(&self, role: &str) -> String {
        if SYSTEM_ROLES.contains(&role) || uuid::Uuid::try_parse(role).is_ok() {
            return role.to_owned();
        }
        self.list_roles()
            .await
            .ok()
            .and_then(|roles| roles.into_iter().find(|r| r.name == role))
            .map_or_else(|| role.to_owned(), |r| r.role_id)
    }

    pub(crate) async fn confirm(
        &self,
        revocation_id: &str,
        timeout_ms: u32,
    ) -> Result<Confirmation, Failure> {
        let c = self
            .admin()
            .confirm_revocation(self.req(pb::ConfirmRevocationRequest {
                revocation_id: revocation_id.to_owned(),
                timeout_ms,
            }))
            .await
            .map_err(from_status)?
            .into_inner();
        Ok(Confirmation {
            confirmed: c.confirmed,
            confirmed_cells: c.confirmed_cells,
            pending_cells: c.pending_cells,
            revocation_id: c.revocation_id,
        })
    }
}

pub(crate) fn authcell_idempotency_key() -> tonic::metadata::MetadataKey<tonic::metadata::Ascii> {
    tonic::metadata::MetadataKey::from_static(crate::authority::IDEMPOTENCY_KEY)
}

/// Reads a paginated listing page by page, asking each page for at most what is still wanted:
/// `fetch(page_size, next_token)` returns one page and its next token. Stops at the last page
/// or at `limit` items (`None`: all); says whether more items were left unread.
pub(crate) async fn collect_pages<T, F, Fut>(
    limit: Option<usize>,
    mut fetch: F,
) -> Result<(Vec<T>, bool), Failure>
where
    F: FnMut(u32, String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), Failure>>,
{
    let mut items: Vec<T> = Vec::new();
    let mut next_token = String::new();
    let mut truncated = false;
    loop {
        let page_size = limit.map_or(MAX_PAGE, |n| {
            u32::try_from(n - items.len()).map_or(MAX_PAGE, |left| left.min(MAX_PAGE))
        });
        let (page, next) = fetch(page_size, next_token.clone()).await?;
        items.extend(page);
        if next.is_empty() {
            break;
        }
        if limit.is_some_and(|n| items.len() >= n) {
            truncated = true;
            break;
        }
        if next == next_token {
            return Err(Failure::new(
                Exit::Server,
                "the server returned the same page twice",
            ));
        }
        next_token = next;
    }
    if let Some(n) = limit {
        items.truncate(n);
    }
    Ok((items, truncated))
}
