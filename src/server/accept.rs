//! Accept loops that survive errors: the backoff every listener of the process uses, and the
//! plain-TCP connection stream of the gRPC server.
//!
//! `accept` fails for two kinds of reasons. Either a connection died while it waited in the
//! backlog (reset, aborted): that concerns only that connection, and the next one may be fine.
//! Or the process ran out of something (`EMFILE`, `ENFILE`: file descriptors; `ENOBUFS`,
//! `ENOMEM`): then the listening socket stays readable and the next `accept` fails the same
//! way at once, so a loop that retries immediately spins a core (and floods the log) until a
//! descriptor frees up, which is exactly when the node needs its CPU for the connections it
//! already has. After such an error every accept loop waits as [`Backoff`] says.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// The first wait after an accept error.
pub const MIN_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait: how late, at worst, a listener notices that descriptors are free again.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Exponential backoff for an accept loop: [`MIN_BACKOFF`], doubling up to [`MAX_BACKOFF`]
/// after each consecutive failure, back to the start after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: MIN_BACKOFF }
    }
}

impl Backoff {
    /// How long to wait after one more failure.
    pub fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        delay
    }

    /// An accept succeeded: the next failure waits [`MIN_BACKOFF`] again.
    pub fn succeeded(&mut self) {
        self.next = MIN_BACKOFF;
    }
}

/// Whether an accept error concerns only the connection it was about (retry at once).
pub fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// The wait after an accept error on the listener `what` (logged), or `None` when the error
/// concerned one connection only.
pub fn after_error(what: &'static str, e: &io::Error, backoff: &mut Backoff) -> Option<Duration> {
    if is_connection_error(e) {
        tracing::debug!(listener = what, error = %e, "a connection failed before it was accepted");
        return None;
    }
    let delay = backoff.failed();
    tracing::warn!(listener = what, error = %e, retry_in = ?delay, "accept failed");
    Some(delay)
}

/// Accepts one connection from `listener`, waiting out errors as [`Backoff`] says: for
/// accept loops written as `async` loops.
pub async fn accept(
    what: &'static str,
    listener: &TcpListener,
    backoff: &mut Backoff,
) -> (TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => {
                backoff.succeeded();
                return accepted;
            }
            Err(e) => {
                if let Some(delay) = after_error(what, &e, backoff) {
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// The plain-TCP connections of the gRPC server (nodelay set), as the stream tonic serves.
///
/// tonic's own `TcpIncoming` hands accept errors to the server loop, which retries at once;
/// this one never yields an error and waits out failures instead. Dropping it (the server
/// stops accepting) closes the listening socket at once.
pub struct TcpIncoming {
    listener: TcpListener,
    backoff: Backoff,
    /// Armed after an accept error; no accept is tried before it fires.
    pause: Option<Pin<Box<Sleep>>>,
}

impl TcpIncoming {
    pub fn new(listener: TcpListener) -> Self {
        TcpIncoming {
            listener,
            backoff: Backoff::default(),
            pause: None,
        }
    }
}

impl futures_core::Stream for TcpIncoming {
    type Item = Result<TcpStream, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(pause) = this.pause.as_mut() {
                if pause.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.pause = None;
            }
            match this.listener.poll_accept(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok((stream, _))) => {
                    this.backoff.succeeded();
                    let _ = stream.set_nodelay(true);
                    return Poll::Ready(Some(Ok(stream)));
                }
                Poll::Ready(Err(e)) => {
                    if let Some(delay) = after_error("grpc", &e, &mut this.backoff) {
                        this.pause = Some(Box::pin(tokio::time::sleep(delay)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_5_ms_to_1_s_and_resets_on_success() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..10)
            .map(|_| backoff.failed().as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000],
            "capped at 1 s"
        );
        backoff.succeeded();
        assert_eq!(backoff.failed(), MIN_BACKOFF);
        assert_eq!(backoff.failed(), MIN_BACKOFF * 2);
    }

    #[test]
    fn only_errors_about_one_connection_are_retried_at_once() {
        let mut backoff = Backoff::default();
        for kind in [
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::ConnectionReset,
        ] {
            assert_eq!(
                after_error("test", &io::Error::from(kind), &mut backoff),
                None
            );
        }
        // EMFILE: too many open files.
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(
            after_error("test", &emfile, &mut backoff),
            Some(MIN_BACKOFF)
        );
        assert_eq!(
            after_error("test", &emfile, &mut backoff),
            Some(MIN_BACKOFF * 2)
        );
    }

    #[tokio::test]
    async fn accept_returns_the_next_connection_and_resets_the_backoff() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut backoff = Backoff::default();
        backoff.failed();
        backoff.failed();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await });
        let (_stream, _) = accept("test", &listener, &mut backoff).await;
        assert!(client.await.expect("join").is_ok());
        assert_eq!(backoff.failed(), MIN_BACKOFF);
    }
}
