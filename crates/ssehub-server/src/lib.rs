//! The connection layer of ssehub: accepts TCP connections and serves an axum [`Router`] on
//! each one, until shutdown — what `axum::serve` does, with control over what each connection
//! costs and over what a hostile client can make it hold.
//!
//! [`serve`] takes a bound [`Listener`], the router, the [`Limits`] and a shutdown future
//! (mini-redis `server::run` style), so a test can start a hub in-process on port 0.
//! [`serve_tls`] does the same over TLS, with a rustls configuration from [`TlsCerts`].
//!
//! # Layout
//!
//! - `limits.rs` — [`Limits`]: head size and header count, header-read, idle and body
//!   timeouts, the cap on open connections. One set for both paths below.
//! - `listener.rs` — [`Listener`]: the open-file limit, accepting without spinning at it, and
//!   the cap on open connections.
//! - `direct.rs` — the first request of a connection, answered without hyper when it is a
//!   plain `GET` (every SSE subscription); [`parse_head`] is its parser.
//! - `direct/sink.rs` — a streaming response's socket as the hub's fan-out may write to it
//!   (the idle-writable fast path, `--direct-writes`; off by default).
//! - `activity.rs` — the header-read and idle timers of connections served by hyper.
//! - `service.rs` — the router as hyper's service: requests in flight, the body timeout.
//! - `rewind.rs` — hands the bytes the direct path read to hyper.
//! - `tls.rs` — [`TlsCerts`]: the certificate from PEM files, reloadable (SIGHUP in the
//!   binary), and the rustls configuration (ALPN `h2`, `http/1.1`).
//!
//! # TLS and HTTP/2
//!
//! Over TLS every connection goes to hyper once its handshake is done (within
//! `tls_handshake_timeout`): HTTP/2 when ALPN chose `h2`, else HTTP/1.1. The plain listener
//! hands a connection that starts with HTTP/2's preface (h2c, prior knowledge) to hyper too.
//! An HTTP/2 connection holds at most `max_concurrent_streams` streams; its flow-control
//! windows and hyper's send buffer per stream are bounded (`limits.rs`), so a stream whose
//! client stops reading stops being polled, its events wait in its own subscriber queue and
//! the slow-consumer cut ends that stream alone. The same `Activity` timers (header, idle)
//! and body timeout apply to every stream.
//!
//! # What a connection holds
//!
//! An idle SSE connection is one socket, one small tokio task (about 450 bytes of state:
//! the socket, the response body, at most one chunk being written, a pointer to the shared
//! state), the subscription, and nothing else — no read or write buffer, no timer (the
//! header-read timer ends once the head is in). See `BENCHMARKS.md`, "Idle connections":
//! about 2 KiB of hub memory per idle stream, against 24 KiB with `axum::serve`, where hyper's
//! two 8 KiB buffers per connection (the read buffer grown to 16 KiB), an auto-detecting
//! HTTP/1+2 connection state and a router rebuilt per connection made most of it.
//!
//! Every connection has `TCP_NODELAY`: each write is a whole response or a batch of whole
//! events (a subscriber's queue hands over everything ready in one piece), and Nagle's
//! algorithm would only hold events back until the client's delayed ACK — under load that
//! added hundreds of milliseconds to fan-out latency.
//!
//! Requests that are not a plain `GET`, and every request after the first on a keep-alive
//! connection, are served by hyper (HTTP/1.1, and HTTP/2 with prior knowledge), with its
//! buffers at their minimum (8 KiB, grown up to `max_head_bytes` only for a head that needs
//! it) and body chunks copied into the write buffer rather than queued (`writev(false)`). The
//! router is shared, not rebuilt per connection.
//!
//! # Hostile clients
//!
//! Nothing a client does holds a connection open without a limit (see [`Limits`]): a head
//! must arrive within `header_read_timeout` of its first byte (of the accept, for a new
//! connection), a body within `body_read_timeout`, a connection with no request in flight
//! closes after `idle_timeout`, heads are bounded in bytes and fields alike on both paths
//! (431), and at most `max_open_connections` are open at once. Each is counted in
//! [`ConnMetrics`] (`/metrics`).
//!
//! # Shutdown
//!
//! When `shutdown` completes the listener is closed, every connection is told to finish
//! (hyper's graceful shutdown: requests in flight complete, idle keep-alive connections close;
//! a connection still waiting for its first request closes), and [`serve`] returns once all of
//! them are gone. Ending the SSE streams is the hub's job (`Hub::shutdown`, called by the
//! shutdown future).

mod activity;
mod direct;
mod limits;
mod listener;
mod rewind;
mod service;
mod tls;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use ssehub_http::ConnMetrics;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

pub use direct::{HeadVerdict, parse_head};
pub use limits::Limits;
pub use listener::{Listener, bind, raise_fd_limit};
pub use tls::TlsCerts;

use activity::{Activity, Watched};
use direct::First;
use listener::Slot;
use rewind::Rewind;
use service::HubService;

/// What every connection shares: built once, one pointer per connection.
struct Shared {
    app: Router,
    limits: Limits,
    metrics: ConnMetrics,
}

/// Serves `app` on every connection `listener` accepts, within `limits`, until `shutdown`
/// completes and every connection has finished.
pub async fn serve(
    listener: Listener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_with(listener, app, limits, None, shutdown).await;
}

/// Serves `app` over TLS (see `tls.rs`) on every connection `listener` accepts, within
/// `limits`, until `shutdown` completes and every connection has finished. Each connection
/// must finish its handshake within `limits.tls_handshake_timeout`, and is then served by
/// hyper, HTTP/2 or HTTP/1.1 as ALPN chose.
pub async fn serve_tls(
    listener: Listener,
    app: Router,
    limits: Limits,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_with(
        listener,
        app,
        limits,
        Some(TlsAcceptor::from(tls)),
        shutdown,
    )
    .await;
}

/// [`serve`], or [`serve_tls`] when `tls` is given.
async fn serve_with(
    mut listener: Listener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut limits = limits;
    limits.max_open_connections = listener::fit_connection_cap(limits.max_open_connections);
    let shared = Arc::new(Shared {
        app,
        limits,
        metrics: listener.metrics(),
    });
    // `true` once connections must finish; every connection holds a receiver, so the
    // sender's `closed()` tells when the last one is gone.
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, slot) = tokio::select! {
            accepted = listener.accept_within(shared.limits.max_open_connections) => accepted,
            () = &mut shutdown => break,
        };
        // Every write is a whole response or whole events, already coalesced (a subscriber's
        // queue hands over everything ready at once): Nagle's algorithm would only hold
        // events back, waiting for the client's delayed ACKs.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        match &tls {
            None => tokio::spawn(serve_connection(
                stream,
                slot,
                shared.clone(),
                drain_rx.clone(),
            )),
            Some(tls) => tokio::spawn(serve_tls_connection(
                stream,
                slot,
                tls.clone(),
                shared.clone(),
                drain_rx.clone(),
            )),
        };
    }
    drop(listener);
    let _ = drain_tx.send(true);
    drop(drain_rx);
    drain_tx.closed().await;
}

/// Serves one connection: its first request directly when it can, the rest with hyper.
async fn serve_connection(
    stream: TcpStream,
    slot: Slot,
    shared: Arc<Shared>,
    mut drain: watch::Receiver<bool>,
) {
    let first = direct::serve_first(stream, &shared, &mut drain).await;
    let (read, pending, since, stream) = match first {
        First::Closed => return,
        First::TimedOut => {
            shared
                .metrics
                .record_timeout(ssehub_http::ConnTimeout::Header);
            return;
        }
        First::KeepAlive { rest, stream } => {
            let pending = !rest.is_empty();
            (rest, pending, Instant::now(), stream)
        }
        First::Hyper {
            read,
            since,
            stream,
        } => (read, true, since, stream),
    };
    let activity = Activity::new(since, pending);
    let io = Watched {
        inner: Rewind::new(read, stream),
        activity: activity.clone(),
    };
    // Boxed: hyper's connection state only exists for connections that get there.
    Box::pin(serve_hyper(io, activity, &shared, drain)).await;
    drop(slot);
}

/// Serves one TLS connection: the handshake, within `tls_handshake_timeout`, then hyper.
async fn serve_tls_connection(
    stream: TcpStream,
    slot: Slot,
    tls: TlsAcceptor,
    shared: Arc<Shared>,
    mut drain: watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(shared.limits.tls_handshake_timeout, tls.accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                shared
                    .metrics
                    .record_timeout(ssehub_http::ConnTimeout::TlsHandshake);
                return;
            }
        },
        _ = drain.wait_for(|drain| *drain) => return,
    };
    // The first request head is due within `header_read_timeout` of the handshake's end.
    let activity = Activity::new(Instant::now(), true);
    let io = Watched {
        inner: stream,
        activity: activity.clone(),
    };
    Box::pin(serve_hyper(io, activity, &shared, drain)).await;
    drop(slot);
}

/// Serves a connection with hyper until it closes, times out (see `activity.rs`), or, once
/// `drain` is set, until its requests in flight are done.
async fn serve_hyper<I>(
    io: I,
    activity: Arc<Activity>,
    shared: &Shared,
    mut drain: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // The head limit: hyper answers 431 once its read buffer is full without a whole
        // head in it (hyper-util's builder has no separate setting).
        .max_buf_size(limits.hyper_buf_size())
        .max_headers(limits.max_headers)
        // Our own timers (activity.rs): hyper's would close idle keep-alive connections
        // after the header timeout, and knows nothing of HTTP/2.
        .header_read_timeout(None)
        .writev(false);
    // HTTP/2 (h2 over TLS, or h2c with prior knowledge): streams per connection bounded,
    // flow-control windows and hyper's send buffer per stream bounded (see `limits.rs`), so
    // that one stream whose client stops reading waits alone.
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_head_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.max_concurrent_streams)
        .initial_stream_window_size(limits::H2_STREAM_WINDOW)
        .initial_connection_window_size(limits::H2_CONNECTION_WINDOW)
        .adaptive_window(false)
        .max_send_buf_size(limits::H2_SEND_BUFFER);
    let service = HubService {
        app: shared.app.clone(),
        activity: activity.clone(),
        body_timeout: limits.body_read_timeout,
        metrics: shared.metrics.clone(),
    };
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut connection = pin!(connection);
    let expired = activity.expired(limits.header_read_timeout, limits.idle_timeout);
    let mut expired = pin!(expired);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                note_error(&*error, &shared.metrics);
            }
            return;
        }
        kind = &mut expired => {
            // Nothing in flight: dropping the connection loses nothing.
            shared.metrics.record_timeout(kind);
            tracing::debug!(kind = kind.as_str(), "closing a connection on a timer");
            return;
        }
        _ = drain.wait_for(|drain| *drain) => connection.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        result = connection.as_mut() => if let Err(error) = result {
            tracing::trace!(%error, "connection ended with an error while shutting down");
        },
        kind = expired => shared.metrics.record_timeout(kind),
    }
}

/// Counts and logs how a connection served by hyper failed.
fn note_error(error: &(dyn std::error::Error + 'static), metrics: &ConnMetrics) {
    if let Some(error) = error.downcast_ref::<hyper::Error>()
        && error.is_parse_too_large()
    {
        metrics.record_head_too_large();
    }
    tracing::trace!(%error, "connection ended with an error");
}
