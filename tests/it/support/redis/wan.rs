//! A wide-area link for tests and benchmarks: a TCP proxy on 127.0.0.1 that delays every byte,
//! in each direction, by a chosen one-way latency (the kernel here has no netem).
//!
//! Each direction of each connection is a reader that stamps what it reads with the time it
//! may be delivered, and a writer that sleeps until then: bytes keep their order, bandwidth is
//! not limited, and a round trip through the link costs twice the one-way delay. The proxy runs
//! on a thread of its own (its own runtime), so synchronous harness code (Redis topologies) and
//! async tests alike can start one; dropping it closes the listener and every connection.
//!
//! It also counts what crossed it: `requests` is the number of times the client side sent
//! something after the server side had answered (a new round trip begins), which is how tests
//! count the WAN round trips an operation costs.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What crossed the link.
#[derive(Default, Debug)]
pub struct Crossings {
    /// Round trips begun: client-side sends that follow a server-side answer (or open a
    /// connection).
    pub requests: AtomicU64,
    /// Bytes from the client side to the server side.
    pub bytes_up: AtomicU64,
    /// Bytes from the server side to the client side.
    pub bytes_down: AtomicU64,
}

/// A running delayed link to `target` (see the module docs).
pub struct WanLink {
    port: u16,
    one_way: Duration,
    crossings: Arc<Crossings>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WanLink {
    /// A link to `127.0.0.1:target_port` delaying each direction by `one_way`.
    pub fn start(target_port: u16, one_way: Duration) -> WanLink {
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, target_port));
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the WAN link");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let crossings = Arc::new(Crossings::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let counted = crossings.clone();
        let thread = std::thread::Builder::new()
            .name(format!("wan-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("WAN runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    let accept = async {
                        loop {
                            let Ok((client, _)) = listener.accept().await else {
                                continue;
                            };
                            let counted = counted.clone();
                            tokio::spawn(async move {
                                // A target that is down: the client sees the connection close,
                                // as it would across a real link.
                                if let Ok(server) = TcpStream::connect(target).await {
                                    relay(client, server, one_way, counted).await;
                                }
                            });
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime cancels every relay: the connections close.
            })
            .expect("spawn the WAN link thread");
        WanLink {
            port,
            one_way,
            crossings,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The port to connect to instead of the target's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT` through the link.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn one_way(&self) -> Duration {
        self.one_way
    }

    /// Round trips begun through the link so far.
    pub fn requests(&self) -> u64 {
        self.crossings.requests.load(Ordering::SeqCst)
    }

    pub fn crossings(&self) -> &Crossings {
        &self.crossings
    }
}

impl Drop for WanLink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn relay(client: TcpStream, server: TcpStream, one_way: Duration, counted: Arc<Crossings>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Set when the server side sent something since the client side last did: the client's
    // next send begins a new round trip.
    let answered = Arc::new(AtomicBool::new(true));
    let up = direction(
        client_read,
        server_write,
        one_way,
        counted.clone(),
        Side::Up(answered.clone()),
    );
    let down = direction(
        server_read,
        client_write,
        one_way,
        counted,
        Side::Down(answered),
    );
    // Either side closing ends the connection (as a cut link would).
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Which way a direction carries bytes, with the connection's "answered" flag: the server
/// side sets it, the client side's next send clears it and counts a round trip.
enum Side {
    Up(Arc<AtomicBool>),
    Down(Arc<AtomicBool>),
}

/// One direction of a connection.
async fn direction(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    one_way: Duration,
    counted: Arc<Crossings>,
    side: Side,
) {
    let (queue, mut queued) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, bytes)) = queued.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match &side {
                Side::Up(answered) => {
                    if answered.swap(false, Ordering::SeqCst) {
                        counted.requests.fetch_add(1, Ordering::SeqCst);
                    }
                    counted.bytes_up.fetch_add(n as u64, Ordering::SeqCst);
                }
                Side::Down(answered) => {
                    answered.store(true, Ordering::SeqCst);
                    counted.bytes_down.fetch_add(n as u64, Ordering::SeqCst);
                }
            }
            if queue
                .send((Instant::now() + one_way, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
        // Dropping `queue` lets the writer drain what is in flight, then close.
    };
    tokio::join!(reader, writer);
}
