//! The browser test: headless Chromium (Debian's `chromium`) loads a page bundled at test time
//! from the official Momento web SDK (`@gomomento/sdk-web`, pinned in `tests/browser/`,
//! installed with `npm ci` and bundled with esbuild inside the target directory). The page is
//! served from a local origin the server allows; it refreshes an SDK key and mints a disposable
//! token over gRPC-Web, and posts the outcome back to its own origin, where the test reads it and
//! checks the token with Authorize. A page from an origin the server does not allow fails the
//! CORS preflight: its call never reaches the service.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use authcell::proto::authcell::v1 as pb;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::api::Api;
use crate::support::*;

/// The page's sources, committed with the pinned package versions and lock file.
const SOURCES: [&str; 4] = ["package.json", "package-lock.json", "page.js", "index.html"];

/// Where the page is built: inside the target directory, next to the test binary's.
fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_authcell"))
        .ancestors()
        .nth(2)
        .expect("the target directory")
        .join("browser-test")
}

fn run(dir: &Path, program: &str, args: &[&str], install: &str) {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): {install}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Installs the pinned packages (again only when the lock file changed) and bundles the page;
/// once per test binary run. Returns the directory holding `index.html` and `bundle.js`.
fn page() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    BUILT
        .get_or_init(|| {
            let dir = build_dir();
            std::fs::create_dir_all(&dir).expect("create the build directory");
            let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
            let lock = std::fs::read(sources.join("package-lock.json")).expect("lock file");
            let installed = std::fs::read(dir.join("installed.lock")).ok();
            for file in SOURCES {
                std::fs::copy(sources.join(file), dir.join(file)).expect("copy the page sources");
            }
            if installed.as_deref() != Some(lock.as_slice()) || !dir.join("node_modules").exists() {
                run(
                    &dir,
                    "npm",
                    &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    "install Node.js and npm: apt-get install -y nodejs npm",
                );
                std::fs::write(dir.join("installed.lock"), &lock).expect("stamp");
            }
            run(
                &dir,
                "node_modules/.bin/esbuild",
                &[
                    "page.js",
                    "--bundle",
                    "--format=iife",
                    "--outfile=bundle.js",
                    "--log-level=warning",
                ],
                "npm ci did not install esbuild",
            );
            dir
        })
        .clone()
}

/// Serves the page from `listener` (its own origin) and forwards each `POST /result` body.
fn serve_page(listener: TcpListener, dir: PathBuf, results: mpsc::UnboundedSender<String>) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (dir, results) = (dir.clone(), results.clone());
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let (dir, results) = (dir.clone(), results.clone());
                    async move {
                        let path = request.uri().path().to_owned();
                        let (status, kind, body) = match (request.method().as_str(), path.as_str())
                        {
                            ("GET", "/") => (
                                200,
                                "text/html",
                                std::fs::read(dir.join("index.html")).unwrap_or_default(),
                            ),
                            ("GET", "/bundle.js") => (
                                200,
                                "text/javascript",
                                std::fs::read(dir.join("bundle.js")).unwrap_or_default(),
                            ),
                            ("POST", "/result") => {
                                let body = request
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let _ = results.send(String::from_utf8_lossy(&body).into_owned());
                                (204, "text/plain", Vec::new())
                            }
                            _ => (404, "text/plain", Vec::new()),
                        };
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", kind)
                                .body(Full::new(Bytes::from(body)))
                                .expect("response"),
                        )
                    }
                },
            );
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

fn chromium() -> &'static str {
    for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(path).exists() {
            return path;
        }
    }
    panic!("Chromium not found: apt-get install -y chromium (scripts/test installs it)");
}

/// Opens `url` in headless Chromium and returns what the page posted back.
async fn load(url: &str, results: &mut mpsc::UnboundedReceiver<String>) -> serde_json::Value {
    let profile = std::env::temp_dir().join(format!("authcell-chromium-{}", uuid::Uuid::new_v4()));
    let mut browser = tokio::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            &format!("--user-data-dir={}", profile.display()),
            url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromium");
    let posted = tokio::time::timeout(Duration::from_secs(120), results.recv()).await;
    let _ = browser.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    let posted = posted
        .expect("the page posted no result within 120 s")
        .expect("result channel");
    serde_json::from_str(&posted).unwrap_or_else(|e| panic!("{e}: {posted}"))
}

/// The SDK's credential format: base64 of `{"endpoint", "api_key"}`; the key inside.
fn unwrap_key(wrapped: &serde_json::Value) -> String {
    let text = wrapped.as_str().expect("a string");
    let json = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64");
    let doc: serde_json::Value = serde_json::from_slice(&json).expect("json");
    doc["api_key"].as_str().expect("api_key").to_owned()
}

/// Calls of `method` the server handled, whatever their status.
fn handled(server: &TestServer, method: &str) -> usize {
    let text = server.served.node().metrics().render();
    let prefix = format!(r#"authcell_grpc_server_handled_total{{grpc_method="{method}","#);
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<usize>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_web_sdk_refreshes_and_mints_from_an_allowed_origin_only() {
    let dir = tokio::task::spawn_blocking(page)
        .await
        .expect("build the page");
    let (tx, mut results) = mpsc::unbounded_channel();
    let allowed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let other = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let allowed_origin = format!(
        "http://127.0.0.1:{}",
        allowed.local_addr().expect("addr").port()
    );
    let other_origin = format!(
        "http://127.0.0.1:{}",
        other.local_addr().expect("addr").port()
    );
    serve_page(allowed, dir.clone(), tx.clone());
    serve_page(other, dir, tx);
    let server = TestServer::start_with_origins(&[&allowed_origin]).await;
    let api = Api::of_server(&server).await;
    let made = api
        .sdk_key(
            &server.owner_key,
            vec![statements::read_cache("sessions")],
            Some(3600),
        )
        .await
        .expect("an SDK key for the browser app");
    let fragment = format!(
        "#server=http://{}&key={}&refresh={}",
        server.addr, made.api_key, made.refresh_token
    );

    // From an origin the server does not allow: the preflight fails, the call never arrives.
    let refused = load(&format!("{other_origin}/{fragment}"), &mut results).await;
    assert!(refused.get("refreshed").is_none(), "{refused}");
    assert!(refused["refreshError"]["code"].is_string(), "{refused}");
    assert_eq!(handled(&server, "auth.Auth/RefreshApiToken"), 0);

    // From the allowed origin: refresh, then mint with the refreshed key.
    let out = load(&format!("{allowed_origin}/{fragment}"), &mut results).await;
    assert!(
        out.get("refreshError").is_none() && out.get("mintError").is_none(),
        "{out}"
    );
    assert_eq!(handled(&server, "auth.Auth/RefreshApiToken"), 1);
    let refreshed = unwrap_key(&out["refreshed"]["apiKey"]);
    let check =
        |key: &str, action: pb::Action, item: &[u8]| cache_check(key, action, "sessions", item);
    assert!(
        server
            .authorize(check(&refreshed, pb::Action::CacheRead, b"x"))
            .await
            .allowed
    );
    let old = server
        .authorize(check(&made.api_key, pb::Action::CacheRead, b"x"))
        .await;
    assert_eq!(
        old.reason,
        pb::Reason::Revoked as i32,
        "a refresh replaces the key: {old:?}"
    );
    let token = unwrap_key(&out["minted"]["authToken"]);
    assert!(
        server
            .authorize(check(&token, pb::Action::CacheRead, b"user:42"))
            .await
            .allowed
    );
    let other_key = server
        .authorize(check(&token, pb::Action::CacheRead, b"user:43"))
        .await;
    assert_eq!(
        other_key.reason,
        pb::Reason::Permission as i32,
        "{other_key:?}"
    );
    assert!(
        !server
            .authorize(check(&token, pb::Action::CacheWrite, b"user:42"))
            .await
            .allowed
    );
    let expires = out["minted"]["expiresAt"].as_u64().expect("expiresAt");
    let now = server.clock_now();
    assert!(
        (now + 590..=now + 600).contains(&expires),
        "{expires} vs {now}"
    );
}
