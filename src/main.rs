//! The `authcell` binary: `serve`, `bootstrap`, `keygen`, and the operator client commands
//! (`keys`, `roles`, `tokens`, `cells`, `audit`; see `authcell::cli`).

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;

use std::time::Duration;

use authcell::clock::SystemClock;
use authcell::config::{BootstrapArgs, Cli, Command, CommonArgs, LogFormat, ServeArgs};
use authcell::verifier::StalePolicy;
use authcell::{cli, keyring, node, server};

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr: stdout carries only what a script may consume (the endpoint and key).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight calls");
}

fn redis_settings(common: &CommonArgs, serve: Option<&ServeArgs>) -> Option<node::RedisSettings> {
    use authcell::store::redis::link::Target;
    let primary = match (&common.redis_url, common.redis_sentinel.is_empty()) {
        (Some(url), _) => Target::Url(url.clone()),
        (None, false) => Target::Sentinel {
            sentinels: common.redis_sentinel.clone(),
            master: common.redis_master_name.clone().unwrap_or_default(),
            username: common.redis_username.clone(),
            password: common.redis_password.clone(),
            db: common.redis_db,
        },
        (None, true) => return None,
    };
    Some(node::RedisSettings {
        primary,
        read_url: common.redis_read_url.clone(),
        prefix: common.redis_prefix.clone(),
        stream_max_len: common.event_stream_max_len,
        max_staleness: Duration::from_secs(serve.map_or(30, |s| s.max_staleness)),
        stale_policy: serve.map_or(StalePolicy::Serve, |s| s.stale_policy),
        min_replica_acks: common.min_replica_acks,
        replica_ack_timeout: Duration::from_millis(common.replica_ack_timeout_ms),
    })
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let ring = node::keyring(&args.common).map_err(|e| e.to_string())?;
    let tls_files = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(authcell::server::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        }),
        _ => None,
    };
    // Bad TLS files are one clear error at start, not a half-working server.
    let tls = tls_files
        .as_ref()
        .map(authcell::server::tls::ServerTls::load)
        .transpose()
        .map_err(|e| e.to_string())?;
    let redis = redis_settings(&args.common, Some(&args));
    if redis.is_some() && ring.is_ephemeral() {
        return Err("--signing-key-file is required with --redis-url: keys signed by an ephemeral key could not be verified by other nodes or after a restart (create one with `authcell keygen`)".into());
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let endpoint = args.endpoint.clone().unwrap_or_else(|| local.to_string());
    validate_endpoint(&endpoint)?;
    let ephemeral_key = ring.is_ephemeral();
    let options = node::NodeOptions {
        cell: args.common.cell.clone(),
        endpoint: endpoint.clone(),
        vend_rate_per_second: args.vend_rate,
        vend_burst: args.vend_burst,
        revoke_rate_per_second: args.revoke_rate,
        revoke_burst: args.revoke_burst,
        max_token_id_revocations: args.max_token_id_revocations,
        max_confirmations: args.max_confirmations,
    };
    let reload = (!ephemeral_key).then(|| {
        (
            node::key_files(&args.common),
            Duration::from_secs(args.common.key_reload_interval.max(1)),
        )
    });
    let node = match redis {
        Some(settings) => node::Node::redis(ring, &options, &settings).await?,
        None => node::Node::embedded(ring, Arc::new(SystemClock), &options),
    };
    if let Some((files, every)) = reload {
        node::spawn_key_reloader(files, node.authority().clone(), every);
    }
    if node.sync().is_none() {
        // Embedded: the account and its owner key exist only in this process, so they are
        // made and printed here (a Redis-backed account is made once, by `authcell bootstrap`).
        let (owner_key, _) = node
            .authority()
            .bootstrap(&args.dev_account, false)
            .await
            .map_err(|e| format!("creating the {} account: {e}", args.dev_account))?;
        println!("AUTHCELL_ENDPOINT={endpoint}");
        println!("AUTHCELL_API_KEY={owner_key}");
        println!(
            "# embedded mode: state is in memory{}; it is all lost when authcell stops",
            if ephemeral_key {
                " and the signing key is ephemeral"
            } else {
                ""
            }
        );
        tracing::warn!(
            account = %args.dev_account,
            ephemeral_signing_key = ephemeral_key,
            "embedded mode: in-memory state, nothing survives exit"
        );
    }
    if node.sync().is_some() {
        tracing::info!(listen = %local, endpoint = %endpoint, cell = %args.common.cell, "serving with Redis");
    } else {
        tracing::info!(listen = %local, endpoint = %endpoint, cell = %args.common.cell, "serving");
    }
    start_metrics(args.metrics_listen, &node).await?;
    let tls = start_tls(tls_files, tls, &args);
    let served = server::run(
        listener,
        &node,
        server::Serving {
            drain: drain(&args),
            tls,
            cors_origins: args.cors_allowed_origins.clone(),
        },
        shutdown_signal(),
    )
    .await;
    node.stop().await;
    served.map_err(|e| format!("server: {e}"))
}

/// Starts watching the TLS files for changes.
fn start_tls(
    files: Option<authcell::server::tls::TlsFiles>,
    tls: Option<authcell::server::tls::ServerTls>,
    args: &ServeArgs,
) -> Option<authcell::server::tls::ServerTls> {
    if let (Some(files), Some(tls)) = (files, &tls) {
        let every = Duration::from_secs(args.common.key_reload_interval.max(1));
        authcell::server::tls::spawn_reloader(files, tls.clone(), every);
        tracing::info!(mutual = tls.mutual, "serving gRPC over TLS");
    }
    tls
}

fn drain(args: &ServeArgs) -> server::Drain {
    server::Drain {
        delay: Duration::from_secs(args.drain_seconds),
        timeout: Duration::from_secs(args.shutdown_timeout),
    }
}

/// With `--metrics-listen`, serves the node's metrics over HTTP.
async fn start_metrics(
    listen: Option<std::net::SocketAddr>,
    node: &node::Node,
) -> Result<(), String> {
    if let Some(addr) = listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        tracing::info!(listen = %addr, "serving metrics on /metrics");
        tokio::spawn(server::serve_metrics(
            listener,
            node.metrics().clone(),
            std::future::pending::<()>(),
        ));
    }
    Ok(())
}

/// The SDKs wrap the endpoint in JSON and base64 that their parser decodes with the URL-safe
/// alphabet, so only plain host[:port] characters are safe in it.
fn validate_endpoint(endpoint: &str) -> Result<(), String> {
    let ok = !endpoint.is_empty()
        && endpoint
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--endpoint {endpoint:?}: use host[:port] with letters, digits, '.', '-', '_', ':', '[' and ']' only"
        ))
    }
}

async fn bootstrap(args: &BootstrapArgs) -> Result<(), String> {
    let Some(settings) = redis_settings(&args.common, None) else {
        return Err("bootstrap needs a persistent store: set --redis-url or --redis-sentinel (the embedded mode creates its own dev account when it starts)".into());
    };
    let ring = node::keyring(&args.common).map_err(|e| e.to_string())?;
    if ring.is_ephemeral() {
        return Err("--signing-key-file is required: a key signed by an ephemeral key could never be verified".into());
    }
    let authority = node::bootstrap_authority(ring, &args.common.cell, &settings).await?;
    let minted = if args.platform {
        if args.account != authcell::authority::SYSTEM_ACCOUNT {
            return Err(format!(
                "--platform creates the platform account: pass --account {}",
                authcell::authority::SYSTEM_ACCOUNT
            ));
        }
        authority.bootstrap_platform(args.force).await
    } else {
        authority.bootstrap(&args.account, args.force).await
    };
    let (key, record) = minted.map_err(|e| e.to_string())?;
    println!("AUTHCELL_API_KEY={key}");
    tracing::info!(account = %record.account, key_id = %record.key_id, "owner key created");
    Ok(())
}

fn keygen(public: bool) -> Result<(), String> {
    if public {
        let mut pem = String::new();
        std::io::stdin()
            .read_to_string(&mut pem)
            .map_err(|e| format!("reading the private key from stdin: {e}"))?;
        let public = keyring::public_pem_of(&pem).map_err(|e| e.to_string())?;
        print!("{public}");
    } else {
        let pem = keyring::generate_pem().map_err(|e| e.to_string())?;
        print!("{}", pem.as_str());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("authcell: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => {
            init_logging(args.common.log_format);
            runtime.block_on(serve(args))
        }
        Command::Bootstrap(args) => {
            init_logging(args.common.log_format);
            runtime.block_on(bootstrap(&args))
        }
        Command::Keygen(args) => keygen(args.public),
        // The client prints its own results and errors and has its own exit codes.
        Command::Client(command) => return runtime.block_on(cli::run(command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("authcell: {message}");
            ExitCode::FAILURE
        }
    }
}
