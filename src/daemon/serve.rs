//! The HTTP server's accept loop, on hyper's HTTP/1 connections, with the limits that
//! keep hostile or broken clients from starving it:
//!
//! - **Connection cap** (`max_connections`): a semaphore permit is taken *before*
//!   `accept`, so when every slot is in use the loop stops accepting (new connections
//!   wait in the kernel's backlog) until a connection ends; nothing is accepted and
//!   dropped in a loop.
//! - **Header-read timeout** (`header_read_timeout`, hyper's own): a request's headers
//!   must arrive within it, else the connection is closed. hyper 1.x also restarts
//!   this timer when a kept-alive connection goes idle after a response, so it bounds
//!   the wait for the *next* request as well (a test checks this).
//! - **Idle timeout** (`idle_timeout`): a connection on which no byte moved in either
//!   direction for that long is closed, whatever it is doing: a body that stopped
//!   arriving, a client that stopped reading its answer (a live stream whose reader
//!   went away), a kept-alive connection. Handlers answer well within it, and live
//!   streams send a keep-alive comment more often (see `web::pages::events`).
//! - **Body-read timeout** (`body_read_timeout`): the request body must arrive within
//!   it, counted from the end of the headers, so a body trickled a byte at a time
//!   cannot hold a slot; the answer is `408` and the connection is closed.
//!   `max_body_size` bounds the body's size.
//!
//! Every request carries [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo), the
//! peer's address. On `stop` the listener is closed, each connection finishes its
//! request in progress and closes (hyper's graceful shutdown), and connections still
//! open after the grace period are dropped. The timeouts are read from the
//! configuration the scheduler last published, for each new connection; `max_connections` is fixed at start.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::config::Config;
use crate::scheduler::Snapshot;

/// How long the accept loop pauses after an error that is not about one connection
/// (such as running out of file descriptors), so it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The per-connection time limits, read from the configuration at each accept.
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_read: Duration,
    idle: Duration,
    body_read: Duration,
}

impl Limits {
    fn of(config: &Config) -> Self {
        Self {
            header_read: config.header_read_timeout,
            idle: config.idle_timeout,
            body_read: config.body_read_timeout,
        }
    }
}

/// Serves `app` on `listener` with at most `max_connections` connections at once,
/// until `stop` is cancelled; then lets open requests finish for up to `grace`.
pub(crate) async fn serve<S>(
    listener: TcpListener,
    app: S,
    live: watch::Receiver<Arc<Snapshot>>,
    max_connections: usize,
    stop: CancellationToken,
    grace: Duration,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let slots = Arc::new(Semaphore::new(max_connections));
    let connections = TaskTracker::new();
    let force = CancellationToken::new();
    loop {
        let permit = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_error(err, &stop).await;
                    continue;
                }
            },
        };
        let limits = Limits::of(&live.borrow().config);
        connections.spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            permit,
            stop.clone(),
            force.clone(),
        ));
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "closing HTTP connections still open after the shutdown grace"
        );
        force.cancel();
        connections.wait().await;
    }
}

/// Logs an accept error; pauses unless it concerned one connection only.
async fn accept_error(err: io::Error, stop: &CancellationToken) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%err, "cannot accept an HTTP connection");
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
    }
}

/// Serves one connection; its slot is freed when this ends.
async fn connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    app: S,
    limits: Limits,
    _slot: OwnedSemaphorePermit,
    stop: CancellationToken,
    force: CancellationToken,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        handle(app.clone(), req, peer, limits.body_read)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, %err, "HTTP connection ended");
                }
                break;
            }
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(limits.idle) => {
                tracing::debug!(%peer, "closing an idle HTTP connection");
                break;
            }
            () = force.cancelled() => break,
        }
    }
}

/// Runs one request through `app`: the peer's address in its extensions, its body
/// under the body-read deadline; `408` (and the connection closed) when the body was
/// late.
async fn handle<S>(
    app: S,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    body_read: Duration,
) -> Result<Response, Infallible>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send,
{
    let late = Arc::new(AtomicBool::new(false));
    let mut req = req.map(|body| Body::new(Deadline::new(body, body_read, late.clone())));
    req.extensions_mut().insert(ConnectInfo(peer));
    let response = app.oneshot(req).await?;
    if late.load(Ordering::Relaxed) {
        tracing::info!(%peer, "request body not received within body_read_timeout");
        return Ok((
            StatusCode::REQUEST_TIMEOUT,
            [
                (header::CONNECTION, "close"),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            "The request body did not arrive in time (body_read_timeout).\n",
        )
            .into_response());
    }
    Ok(response)
}

/// When a connection last moved a byte.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last read or write that moved bytes.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(millis, Ordering::Relaxed);
    }

    /// Completes once no byte has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A socket that records in [`Activity`] each read and write that moved bytes.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The error of a body that missed its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within body_read_timeout")]
struct BodyTimeout;

/// A request body that fails once `deadline` passes before it ended, and says so in
/// `late`.
struct Deadline {
    inner: Incoming,
    /// `None` for a body that is already complete (no body at all).
    deadline: Option<Pin<Box<Sleep>>>,
    late: Arc<AtomicBool>,
}

impl Deadline {
    fn new(inner: Incoming, limit: Duration, late: Arc<AtomicBool>) -> Self {
        use http_body::Body as _;
        let deadline = (!inner.is_end_stream()).then(|| Box::pin(tokio::time::sleep(limit)));
        Self {
            inner,
            deadline,
            late,
        }
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let expired = self
            .deadline
            .as_mut()
            .is_some_and(|d| d.as_mut().poll(cx).is_ready());
        if expired {
            self.deadline = None;
            self.late.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A live configuration with the defaults, and the directory it was loaded from.
    fn live() -> (tempfile::TempDir, watch::Receiver<Arc<Snapshot>>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("karajo.conf");
        let text = format!("[karajo]\ndir_base = {}\n", dir.path().display());
        std::fs::write(&file, text).expect("write config");
        let config = crate::config::load(&file).expect("config loads");
        // The receiver keeps the last value after the sender is gone.
        let (_, rx) = watch::channel(Arc::new(Snapshot::empty(Arc::new(config))));
        (dir, rx)
    }

    /// Serves `app` on 127.0.0.1; its address, the stop token and the server task.
    async fn start(
        app: Router,
        grace: Duration,
    ) -> (
        tempfile::TempDir,
        SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let (dir, live) = live();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, app, live, 8, stop.clone(), grace));
        (dir, addr, stop, task)
    }

    async fn fetch(addr: SocketAddr, path: &str) -> (SocketAddr, String) {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let local = s.local_addr().expect("local address");
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.expect("read");
        (local, answer)
    }

    #[tokio::test]
    async fn requests_carry_the_peer_address() {
        let app = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let (_dir, addr, stop, task) = start(app, Duration::from_secs(5)).await;
        let (local, answer) = fetch(addr, "/peer").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.ends_with(&local.to_string()),
            "{answer} from {local}"
        );
        stop.cancel();
        task.await.expect("server ends");
    }

    #[tokio::test]
    async fn shutdown_lets_the_request_in_progress_finish_and_accepts_no_more() {
        let app = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }),
        );
        let (_dir, addr, stop, task) = start(app, Duration::from_secs(5)).await;
        let slow = tokio::spawn(fetch(addr, "/slow"));
        tokio::time::sleep(Duration::from_millis(150)).await;
        stop.cancel();
        let (_, answer) = slow.await.expect("request task");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        task.await.expect("server ends");
        assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    }

    #[tokio::test]
    async fn connections_still_open_after_the_grace_are_dropped() {
        let app = Router::new().route(
            "/forever",
            get(|| async {
                std::future::pending::<()>().await;
                "never"
            }),
        );
        let (_dir, addr, stop, task) = start(app, Duration::from_millis(300)).await;
        let stuck = tokio::spawn(fetch(addr, "/forever"));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let stopping = Instant::now();
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the server ends after the grace")
            .expect("server task");
        assert!(stopping.elapsed() >= Duration::from_millis(250));
        let (_, answer) = tokio::time::timeout(Duration::from_secs(5), stuck)
            .await
            .expect("the connection is closed")
            .expect("request task");
        assert!(answer.is_empty(), "{answer}");
    }
}
