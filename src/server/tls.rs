//! TLS for the gRPC server, with certificates that reload without a restart.
//!
//! The server accepts TCP connections itself and runs the TLS handshake with the *current*
//! rustls configuration, held in an [`ArcSwap`] that a file watcher replaces when the PEM files
//! change (Kubernetes updates mounted secrets in place). Connections already open keep the
//! configuration they started with.
//!
//! With `--tls-client-ca`, clients may present a certificate; one that is presented must chain
//! to that CA (checked by rustls during the handshake). The Verifier service then requires one
//! (mTLS): only data-plane nodes may call Authorize. The other services do not, so SDKs and
//! operators connect with server-side TLS only.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why the TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{flag} {path}: cannot read: {source}")]
    Read {
        flag: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{flag} {path}: {what}")]
    Invalid {
        flag: &'static str,
        path: String,
        what: String,
    },
}

/// The PEM files of the server's TLS configuration.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
}

fn read(flag: &'static str, path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        flag,
        path: path.to_owned(),
        source,
    })
}

fn invalid(flag: &'static str, path: &str, what: impl std::fmt::Display) -> TlsError {
    TlsError::Invalid {
        flag,
        path: path.to_owned(),
        what: what.to_string(),
    }
}

fn certificates(flag: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(flag, path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(flag, path, "no certificate in the file"));
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // Chosen explicitly: other crates in a build may enable another provider, and rustls
    // refuses to guess.
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsFiles {
    /// Whether client certificates are verified (and required on the Verifier service).
    pub fn mutual(&self) -> bool {
        self.client_ca.is_some()
    }

    /// Reads and checks the files and builds a server configuration (ALPN h2, for gRPC).
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let certs = certificates("--tls-cert", &self.cert)?;
        let key_pem = read("--tls-key", &self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            invalid(
                "--tls-key",
                &self.key,
                format!("not a PEM private key: {e}"),
            )
        })?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("--tls-cert", &self.cert, e))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates("--tls-client-ca", ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| invalid("--tls-client-ca", ca, e))?;
                }
                // Optional at the handshake; the Verifier service requires it per call.
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| invalid("--tls-client-ca", ca, e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            invalid(
                "--tls-key",
                &self.key,
                format!("does not match the certificate: {e}"),
            )
        })?;
        // h2 for gRPC; http/1.1 too for gRPC-Web clients and proxies that speak only it.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A digest of the files' contents.
    fn fingerprint(&self) -> Option<Vec<u8>> {
        let mut hasher = Sha256::new();
        for path in [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
        {
            hasher.update(std::fs::read(path).ok()?);
        }
        Some(hasher.finalize().to_vec())
    }
}

/// How long a client may take, by default, from its TCP connection to the end of the TLS
/// handshake. A legitimate client needs a few round trips; one that sends nothing, or a
/// ClientHello byte by byte, only holds a socket and a task.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's TLS settings: a swappable configuration, whether mTLS is on, and how long a
/// handshake may take.
#[derive(Clone)]
pub struct ServerTls {
    pub config: Arc<ArcSwap<ServerConfig>>,
    pub mutual: bool,
    /// After this, a connection that has not finished its handshake is closed.
    pub handshake_timeout: Duration,
}

impl ServerTls {
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        Ok(ServerTls {
            config: Arc::new(ArcSwap::new(files.load()?)),
            mutual: files.mutual(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// The same settings with another handshake deadline.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

/// Re-reads the files every `interval` and swaps the new configuration in when they changed
/// and load; a configuration that does not load is logged and ignored.
pub fn spawn_reloader(
    files: TlsFiles,
    tls: ServerTls,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = files.fingerprint();
        loop {
            tokio::time::sleep(interval).await;
            let now = files.fingerprint();
            if now.is_none() || now == last {
                continue;
            }
            match files.load() {
                Ok(config) => {
                    tls.config.store(config);
                    last = now;
                    tracing::info!("TLS certificates reloaded");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS files changed but do not load; keeping the current ones")
                }
            }
        }
    })
}

/// Accepts TCP connections and yields them after a TLS handshake with the current
/// configuration.
///
/// Each handshake runs in its own task under `tls.handshake_timeout`, so a client that stalls
/// holds up nobody else and is disconnected at the deadline. The accept loop stops, and the
/// listening socket closes, as soon as the server drops the stream.
pub fn incoming(
    listener: TcpListener,
    tls: ServerTls,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(128);
    tokio::spawn(async move {
        let mut backoff = crate::server::accept::Backoff::default();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = crate::server::accept::accept("grpc-tls", &listener, &mut backoff) => accepted,
                // The server stopped accepting: release the port now, not at the next client.
                _ = tx.closed() => return,
            };
            let _ = stream.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.config.load_full());
            let timeout = tls.handshake_timeout;
            let tx = tx.clone();
            tokio::spawn(async move {
                // On timeout the handshake future, and with it the socket, is dropped.
                match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        let _ = tx.send(Ok(tls_stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                    Err(_) => {
                        tracing::debug!(peer = %peer, ?timeout, "TLS handshake timed out; connection closed")
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
