//! The data-plane library: what a cache node links to check credentials itself, with no server
//! of its own. A [`crate::verifier::Verifier`] needs public keys ([`fetch_jwks`], kept current
//! by [`spawn_jwks_refresher`]) and a live revocation view ([`revocation_view`], fed from the
//! cell's Redis replica). Nothing here needs the server, the CLI or the metrics endpoint: with
//! `default-features = false` the crate builds without clap, hyper and prometheus.

use std::sync::Arc;
use std::time::Duration;

use crate::keyring::KeyRing;
use crate::store::redis::sync::SyncHandle;
use crate::store::redis::{self as redis_store, sync, Keys};
use crate::verifier::view::View;
use crate::verifier::KeyRingHandle;

/// Where a verifier linked into a cache node gets authcell's public keys.
///
/// Whoever can alter this traffic can hand the node a key of their own and so forge any
/// credential: it must be TLS (`https://`), or stay on this machine (`http://` to a loopback
/// host, see [`crate::endpoint`]), unless `allow_insecure_http` says otherwise.
#[derive(Clone, Debug)]
pub struct JwksSource {
    /// An authcell endpoint serving `authcell.v1.Keys`: `https://host:port`, or
    /// `http://host:port` for a loopback host.
    pub endpoint: String,
    /// PEM CA certificate(s) to verify an `https://` endpoint with; `None`: the public web PKI.
    pub tls_ca_pem: Option<String>,
    /// Also fetch over plain http from a host that is not loopback: only on a network where
    /// nobody can alter the traffic.
    pub allow_insecure_http: bool,
}

impl JwksSource {
    /// `endpoint` with the defaults: public web PKI for https, no plain http off the machine.
    pub fn new(endpoint: impl Into<String>) -> Self {
        JwksSource {
            endpoint: endpoint.into(),
            tls_ca_pem: None,
            allow_insecure_http: false,
        }
    }

    /// Whether keys may be fetched from this endpoint; the error names the endpoint and the
    /// option that would allow it. Decided from the URL alone, before any connection.
    pub fn check(&self) -> Result<(), String> {
        self.transport().map(|_| ())
    }

    /// The checked transport.
    fn transport(&self) -> Result<crate::endpoint::Transport, String> {
        use crate::endpoint::Transport;
        let endpoint = &self.endpoint;
        match crate::endpoint::transport(endpoint) {
            Err(e) => Err(format!("JWK set endpoint {endpoint}: {e}")),
            Ok(Transport::RemotePlaintext) if !self.allow_insecure_http => Err(format!(
                "JWK set endpoint {endpoint}: refusing plain http to a host that is not loopback: \
                 anyone on the path could substitute a key and forge any credential; use \
                 https://, or set allow_insecure_http (cache_node: --insecure-jwks-http) if \
                 nobody can alter traffic on this network"
            )),
            Ok(transport) => Ok(transport),
        }
    }
}

impl From<&str> for JwksSource {
    fn from(endpoint: &str) -> Self {
        JwksSource::new(endpoint)
    }
}

impl From<String> for JwksSource {
    fn from(endpoint: String) -> Self {
        JwksSource::new(endpoint)
    }
}

impl From<&String> for JwksSource {
    fn from(endpoint: &String) -> Self {
        JwksSource::new(endpoint.as_str())
    }
}

/// How long connecting to the JWK set endpoint may take.
const JWKS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long fetching the JWK set may take.
const JWKS_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Fetches the JWK set of an authcell endpoint as a verification-only key ring: the
/// public-key source of a verifier linked into a cache node. The source is checked
/// ([`JwksSource::check`]) before connecting.
pub async fn fetch_jwks(source: impl Into<JwksSource>) -> Result<KeyRing, String> {
    let source = source.into();
    warn_if_insecure(&source)?;
    fetch(&source).await
}

/// Checks `source`, and warns when it is plain http off the machine.
fn warn_if_insecure(source: &JwksSource) -> Result<(), String> {
    if source.transport()? == crate::endpoint::Transport::RemotePlaintext {
        tracing::warn!(endpoint = %source.endpoint, "fetching verification keys over plain http from a host that is not loopback (allow_insecure_http)");
    }
    Ok(())
}

async fn fetch(source: &JwksSource) -> Result<KeyRing, String> {
    use crate::proto::authcell::v1 as pb;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let transport = source.transport()?;
    let endpoint = source.endpoint.as_str();
    let mut target = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| format!("{endpoint}: not a valid address: {e}"))?
        .connect_timeout(JWKS_CONNECT_TIMEOUT)
        .timeout(JWKS_REQUEST_TIMEOUT);
    if transport == crate::endpoint::Transport::Tls {
        let tls = match &source.tls_ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        target = target
            .tls_config(tls)
            .map_err(|e| format!("{endpoint}: TLS configuration: {e}"))?;
    }
    let channel = target
        .connect()
        .await
        .map_err(|e| format!("{endpoint}: cannot connect: {e}"))?;
    let response = pb::keys_client::KeysClient::new(channel)
        .get_jwks(pb::GetJwksRequest {})
        .await
        .map_err(|e| format!("{endpoint}: GetJwks: {e}"))?
        .into_inner();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&response.jwks)
        .map_err(|e| format!("{endpoint}: bad JWK set: {e}"))?;
    KeyRing::from_jwks(&set, &response.active_kid).map_err(|e| e.to_string())
}

/// Keeps a verifier's keys in step with an authcell endpoint's JWK set. A source that
/// [`JwksSource::check`] refuses is an error here, not a warning every `interval`.
pub fn spawn_jwks_refresher(
    source: impl Into<JwksSource>,
    keys: Arc<KeyRingHandle>,
    interval: Duration,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let source = source.into();
    warn_if_insecure(&source)?;
    Ok(tokio::spawn(async move {
        let mut last = keys.load().kids();
        loop {
            tokio::time::sleep(interval).await;
            match fetch(&source).await {
                Ok(ring) if ring.kids() != last => {
                    tracing::info!(kids = ?ring.kids(), "verification keys changed");
                    last = ring.kids();
                    keys.store(ring);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot refresh verification keys"),
            }
        }
    }))
}

/// A live revocation view fed from a cell's Redis replica, for a verifier linked into a cache
/// node (it reads only; it reports nothing).
pub async fn revocation_view(
    read_url: &str,
    prefix: &str,
) -> Result<(Arc<View>, SyncHandle), String> {
    let read = redis_store::connect(read_url)
        .await
        .map_err(|e| format!("{read_url}: cannot connect to Redis: {e}"))?;
    let view = Arc::new(View::tracked());
    let handle = sync::spawn(view.clone(), read, Keys::new(prefix), None);
    Ok((view, handle))
}
