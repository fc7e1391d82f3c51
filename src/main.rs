//! The `authcell` binary: `serve`, `bootstrap`, `keygen`.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;

use authcell::clock::SystemClock;
use authcell::config::{Cli, Command, CommonArgs, LogFormat, ServeArgs};
use authcell::{keyring, node, server};

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

async fn serve(args: ServeArgs) -> Result<(), String> {
    let ring = node::keyring(&args.common).map_err(|e| e.to_string())?;
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
    };
    let authority = node::embedded(ring, Arc::new(SystemClock), &options);
    let (owner_key, _) = authority
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
    tracing::info!(listen = %local, endpoint = %endpoint, cell = %args.common.cell, "serving");
    server::run(listener, authority, shutdown_signal())
        .await
        .map_err(|e| format!("server: {e}"))
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

async fn bootstrap(common: &CommonArgs) -> Result<(), String> {
    // The embedded store lives only inside `serve`; a bootstrap there would vanish at exit.
    let _ = common;
    Err("bootstrap needs a persistent store: configure --redis-url (the embedded mode creates its own dev account at serve)".into())
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
            runtime.block_on(bootstrap(&args.common))
        }
        Command::Keygen(args) => keygen(args.public),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("authcell: {message}");
            ExitCode::FAILURE
        }
    }
}
