//! The HTTP server of `ssehub serve`: accepts connections and serves the router on each one,
//! until shutdown. What `axum::serve` did, with control over what each connection costs.
//!
//! # Layout
//!
//! - `listener.rs` — the open-file limit, and accepting without spinning at it.
//! - `direct.rs` — the first request of a connection, answered without hyper when it is a
//!   plain `GET` (every SSE subscription).
//!
//! # What a connection holds
//!
//! An idle SSE connection is one socket, one small tokio task (about 450 bytes of state:
//! the socket, the response body, at most one chunk being written), the subscription, and
//! nothing else — no read or write buffer, no timer. See `BENCHMARKS.md`, "Idle
//! connections": about 2 KiB of hub memory per idle stream, against 24 KiB with
//! `axum::serve`, where hyper's two 8 KiB buffers per connection (the read buffer grown to
//! 16 KiB), an auto-detecting HTTP/1+2 connection state and a router rebuilt per connection
//! made most of it.
//!
//! Every connection has `TCP_NODELAY`: each write is a whole response or a batch of whole
//! events (a subscriber's queue hands over everything ready in one piece), and Nagle's
//! algorithm would only hold events back until the client's delayed ACK — under load that
//! added hundreds of milliseconds to fan-out latency.
//!
//! Requests that are not a plain `GET`, and every request after the first on a keep-alive
//! connection, are served by hyper (HTTP/1.1, and HTTP/2 with prior knowledge), with its
//! buffers at their minimum (8 KiB, `max_buf_size`) and body chunks copied into the write
//! buffer rather than queued (`writev(false)`). The router is shared, not rebuilt per
//! connection.
//!
//! # Shutdown
//!
//! When `stop` completes the listener is closed, every connection is told to finish (hyper's
//! graceful shutdown: requests in flight complete, idle keep-alive connections close; a
//! connection still waiting for its first request closes), and [`serve`] returns once all of
//! them are gone. Ending the SSE streams is the hub's job (`Hub::shutdown`, called by
//! `stop`).

mod direct;
pub(crate) mod listener;

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use axum::Router;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use direct::First;
use listener::HubListener;

/// hyper's smallest buffer size (it refuses less).
const MAX_BUF_SIZE: usize = 8192;

/// Serves `app` on every connection `listener` accepts, until `stop` completes and every
/// connection has finished.
pub(crate) async fn serve(
    mut listener: HubListener,
    app: Router,
    stop: impl Future<Output = ()> + Send,
) {
    // `true` once connections must finish; every connection holds a receiver, so the
    // sender's `closed()` tells when the last one is gone.
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut stop = pin!(stop);
    loop {
        let stream = tokio::select! {
            (stream, _addr) = listener.accept() => stream,
            () = &mut stop => break,
        };
        // Every write is a whole response or whole events, already coalesced (a subscriber's
        // queue hands over everything ready at once): Nagle's algorithm would only hold
        // events back, waiting for the client's delayed ACKs.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        tokio::spawn(serve_connection(stream, app.clone(), drain_rx.clone()));
    }
    drop(listener);
    let _ = drain_tx.send(true);
    drop(drain_rx);
    drain_tx.closed().await;
}

/// Serves one connection: its first request directly when it can, the rest with hyper.
async fn serve_connection(mut stream: TcpStream, app: Router, mut drain: watch::Receiver<bool>) {
    let read = match direct::serve_first(&mut stream, &app, &mut drain).await {
        First::Closed => return,
        First::KeepAlive { rest } => rest,
        First::Hyper { read } => read,
    };
    // Boxed: hyper's connection state only exists for connections that get there.
    Box::pin(serve_hyper(Rewind::new(read, stream), app, drain)).await;
}

/// A connection whose first bytes were read already: reads give them back first.
struct Rewind {
    prefix: Bytes,
    inner: TcpStream,
}

impl Rewind {
    fn new(prefix: Bytes, inner: TcpStream) -> Self {
        Rewind { prefix, inner }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            if this.prefix.is_empty() {
                // Let go of the buffer it was part of.
                this.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
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

/// Serves a connection with hyper until it closes (or, once `drain` is set, until its
/// requests in flight are done).
async fn serve_hyper<I>(io: I, app: Router, mut drain: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(MAX_BUF_SIZE).writev(false);
    let connection =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(app));
    let mut connection = pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::trace!(%error, "connection ended with an error");
            }
            return;
        }
        _ = drain.wait_for(|drain| *drain) => connection.as_mut().graceful_shutdown(),
    }
    if let Err(error) = connection.await {
        tracing::trace!(%error, "connection ended with an error while shutting down");
    }
}
