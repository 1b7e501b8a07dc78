//! The accept loop: HTTP/1.1 connections served by hyper with a timer, so that no connection
//! holds the server's resources for free. A connection must deliver each request head within
//! the header-read timeout (counted from the moment the server waits for it: the connection's
//! opening or the end of its previous response, so an idle keep-alive connection is closed
//! after it too), each request body within the body-read timeout, and at most
//! `max_connections` are open at once (past it the server stops accepting; the kernel's
//! backlog holds new ones until a slot frees up).
//!
//! With the saturation signal on, each read of a request is timed from the wake-up that said
//! its connection had data to the moment a worker got to it ([`ReadyWait`]): under overload
//! that is where requests queue.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use futures_util::task::AtomicWaker;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use crate::overload::{self, Overload, ReadyWait};
use crate::routes::App;

/// Limits on every connection.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Longest wait for a complete request head (also the keep-alive idle limit).
    pub header_read_timeout: Duration,
    /// Longest a request body may take to arrive, from the end of its head.
    pub body_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets every open connection finish
/// its request in flight (idle ones close at once) and returns. With `overload`'s saturation
/// signal on, reads are timed into its [`ReadyWait`] and the share of evaluations it sheds is
/// refused here, before the router.
pub async fn run(
    listener: TcpListener,
    app: App,
    limits: &ConnectionLimits,
    overload: Arc<Overload>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ready_wait = overload.ready_wait();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let body_read_timeout = limits.body_read_timeout;
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (app, overload) = (app.clone(), Arc::clone(&overload));
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let shed = overload
                .sheds_at_admission(req.method(), req.uri().path())
                .then(|| shed_response(req.headers().get(header::ORIGIN)));
            let mut req =
                req.map(|body| axum::body::Body::new(BodyDeadline::new(body, body_read_timeout)));
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let app = app.clone();
            async move {
                Ok::<_, std::convert::Infallible>(match shed {
                    Some(refusal) => refusal,
                    None => app.serve(req).await,
                })
            }
        });
        let stream = ReadTimed::new(stream, ready_wait.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Errors here are the client's (reset, timeout, malformed head): nothing to answer.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The error of a request body that did not arrive within the body-read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyReadTimeout(Duration);

impl BodyReadTimeout {
    /// Whether `error` (a failure to read a body) comes from this timeout.
    pub fn caused(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if e.is::<BodyReadTimeout>() {
                return true;
            }
            cause = e.source();
        }
        false
    }
}

/// A request body that fails with [`BodyReadTimeout`] once its deadline passes. The timer is
/// only armed when the body is not already there, so a body that arrives with its head costs
/// one clock read.
struct BodyDeadline {
    inner: Incoming,
    timeout: Duration,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl BodyDeadline {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        BodyDeadline {
            inner,
            timeout,
            deadline: Instant::now() + timeout,
            sleep: None,
        }
    }
}

impl Body for BodyDeadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyReadTimeout(this.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The 503 of an evaluation shed before routing, readable by a page of any origin as the
/// public endpoints' CORS policy makes their answers.
fn shed_response(origin: Option<&HeaderValue>) -> axum::response::Response {
    let mut response = overload::shed_response();
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    response
}

/// Nanoseconds since the first call: wake-up times kept in an atomic.
fn now_ns() -> u64 {
    static BASE: OnceLock<std::time::Instant> = OnceLock::new();
    let base = BASE.get_or_init(std::time::Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A connection whose reads are timed into a [`ReadyWait`]: when a read finds no data, the
/// runtime is handed a waker of ours that notes when the data arrived (the readiness wake-up)
/// before waking the connection's task, and the read that then returns data records how long
/// the connection waited for a worker since. Without a `ReadyWait` reads pass straight through.
struct ReadTimed {
    inner: TcpStream,
    timing: Option<(Arc<ReadyWait>, Arc<ReadWake>)>,
}

/// The waker a pending read leaves with the runtime.
#[derive(Default)]
struct ReadWake {
    /// The connection task's own waker.
    task: AtomicWaker,
    /// When the runtime said data had arrived ([`now_ns`]); 0: not since the last read.
    woke_at: AtomicU64,
}

impl Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woke_at.store(now_ns().max(1), Ordering::Relaxed);
        self.task.wake();
    }
}

impl ReadTimed {
    fn new(inner: TcpStream, ready_wait: Option<Arc<ReadyWait>>) -> Self {
        ReadTimed {
            inner,
            timing: ready_wait.map(|r| (r, Arc::default())),
        }
    }
}

impl AsyncRead for ReadTimed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let Some((ready_wait, wake)) = &this.timing else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        wake.task.register(cx.waker());
        let waker = Waker::from(Arc::clone(wake));
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(&mut Context::from_waker(&waker), buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let woke_at = wake.woke_at.swap(0, Ordering::Relaxed);
            if woke_at != 0 {
                ready_wait.record(Duration::from_nanos(now_ns().saturating_sub(woke_at)));
            }
        }
        read
    }
}

impl AsyncWrite for ReadTimed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
