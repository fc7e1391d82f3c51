//! The real `authcell serve` binary as one node of a cell (optionally under libfaketime), and
//! an in-process node beside it, for tests that need a process: its clock, its signals.

use std::time::{Duration, Instant};

use tonic::transport::Channel;

use super::cells::{Node, NodeConfig};

/// One in-process node of `cell`, and an owner key of account `acme` bootstrapped through it
/// (the other cell's node is a real process in these tests).
pub(crate) async fn in_process_node(
    pem: &str,
    cell: &str,
    primary: &str,
    replica: &str,
) -> (Node, String) {
    let node = Node::start(NodeConfig::new(pem, cell, primary, replica)).await;
    let (owner, _) = node
        .authority
        .bootstrap("acme", false)
        .await
        .expect("bootstrap");
    (node, owner)
}

/// libfaketime's library (Debian's `faketime` package), or a failure with the install command.
pub(crate) fn libfaketime() -> String {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|dir| dir.path().join("faketime/libfaketime.so.1"))
        .find(|path| path.is_file());
    match found {
        Some(path) => path.to_string_lossy().into_owned(),
        None => panic!(
            "libfaketime not found: run `apt-get install -y faketime` (Debian/Ubuntu); ./scripts/test installs it"
        ),
    }
}

/// The real `authcell serve` binary as one node of a cell, killed on drop.
pub(crate) struct ProcessNode {
    pub(crate) child: std::process::Child,
    pub(crate) channel: Channel,
    dir: std::path::PathBuf,
}

impl ProcessNode {
    /// Starts the binary (with `env` added, e.g. libfaketime's) with the signing key `pem`,
    /// reading `replica`, and waits until it accepts connections. The process is the binary
    /// itself (no wrapper in between), so killing it on drop leaves nothing behind.
    pub(crate) async fn start(
        pem: &str,
        cell: &str,
        primary: &str,
        replica: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> ProcessNode {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("authcell-node-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key_file = dir.join("signing.pem");
        std::fs::write(&key_file, pem).expect("write key");
        let port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_authcell"))
            .envs(env.iter().copied())
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}"), "--cell", cell])
            .args(["--drain-seconds", "0"])
            .args(extra)
            .env("AUTHCELL_REDIS_URL", primary)
            .env("AUTHCELL_REDIS_READ_URL", replica)
            .env("AUTHCELL_SIGNING_KEY_FILE", &key_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start authcell serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        let channel = loop {
            let url = format!("http://127.0.0.1:{port}");
            match Channel::from_shared(url).expect("url").connect().await {
                Ok(channel) => break channel,
                Err(e) => {
                    assert!(Instant::now() < deadline, "the node never listened: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        ProcessNode {
            child,
            channel,
            dir,
        }
    }

    /// Sends a signal (`-STOP`, `-CONT`) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads a node's metrics page over plain HTTP.
pub(crate) fn metrics_page(port: u16) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut page = String::new();
    let _ = stream.read_to_string(&mut page);
    page
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("probe")
        .local_addr()
        .expect("addr")
        .port()
}
