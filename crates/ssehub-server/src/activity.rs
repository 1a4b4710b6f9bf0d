//! The timers of a connection served by hyper: the header-read and idle timeouts.
//!
//! hyper's own `header_read_timeout` starts as soon as hyper waits for a head, idle or not, so
//! it cannot tell a slowloris head (10 s) from a quiet keep-alive connection (60 s), and it
//! does not cover HTTP/2. [`Activity`] watches the connection instead, the same way for both
//! protocols:
//!
//! - a request in flight (its response not yet fully sent: an SSE stream, for as long as it
//!   lasts) means no timer at all — the connection is woken when the last one ends;
//! - with none in flight, if nothing was read since the last one ended, the connection is
//!   idle: it closes `idle_timeout` after that moment;
//! - if bytes were read but no request came of them (a partial head, HTTP/2's preface and
//!   nothing else), it closes `header_read_timeout` after the first of those bytes.
//!
//! With HTTP/2 any frame counts as such bytes (a `WINDOW_UPDATE` or `PING` after the last
//! stream ended, too): a quiet HTTP/2 connection that sent one closes after the header
//! timeout rather than the idle one. Clients reconnect; a client cannot keep a connection with
//! no stream open past the header timeout by sending frames.
//!
//! The state is a few atomics per hyper connection (the reads happen in the connection's task,
//! requests may run in others with HTTP/2); the timer is one `Sleep` in the connection's task,
//! armed only while no request is in flight. Connections served by the direct path (every
//! plain SSE `GET`) never get here.

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use ssehub_http::ConnTimeout;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// "No byte read since the connection last became idle."
const NONE: u64 = u64::MAX;

/// What a connection is doing, for its timers. Shared by the connection's IO (reads), its
/// requests (in flight or not) and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    /// Times below are milliseconds since this instant.
    epoch: Instant,
    in_flight: AtomicUsize,
    /// When the last request in flight ended (or the connection came to hyper).
    idle_since: AtomicU64,
    /// The first byte read since `idle_since`, or [`NONE`].
    first_read: AtomicU64,
    /// Woken when the last request in flight ends, and at the first byte read after it.
    idle: Notify,
}

impl Activity {
    /// A connection that has been open since `epoch`; `pending` when bytes of a head it has
    /// not finished were read already (they count from `epoch`).
    pub(crate) fn new(epoch: Instant, pending: bool) -> Arc<Self> {
        Arc::new(Activity {
            epoch,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            first_read: AtomicU64::new(if pending { 0 } else { NONE }),
            idle: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    /// Bytes were read.
    fn read(&self) {
        if self.first_read.load(Ordering::Relaxed) == NONE {
            let first = self.first_read.compare_exchange(
                NONE,
                self.now_ms(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            if first.is_ok() {
                // The watchdog sleeps towards the idle deadline: the header one is sooner.
                self.idle.notify_one();
            }
        }
    }

    /// A request started; it is in flight until the guard is dropped (with its response body).
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Resolves when the connection has been idle or stuck in a head for too long, with
    /// which of the two it was. Never resolves while a request is in flight.
    pub(crate) async fn expired(&self, header: Duration, idle: Duration) -> ConnTimeout {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE / 2);
        loop {
            let mut woken = pin!(self.idle.notified());
            woken.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) > 0 {
                woken.await;
                continue;
            }
            let idle_since = self.idle_since.load(Ordering::Acquire);
            let first_read = self.first_read.load(Ordering::Acquire);
            let (deadline, kind) = if first_read == NONE {
                (idle_since.saturating_add(ms(idle)), ConnTimeout::Idle)
            } else {
                (
                    first_read.max(idle_since).saturating_add(ms(header)),
                    ConnTimeout::Header,
                )
            };
            if self.now_ms() >= deadline {
                return kind;
            }
            let at = self.epoch + Duration::from_millis(deadline);
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = woken => {}
            }
        }
    }
}

/// A request in flight; dropped with its response (or when the request is abandoned).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity
                .idle_since
                .store(activity.now_ms(), Ordering::Release);
            activity.first_read.store(NONE, Ordering::Release);
            activity.idle.notify_one();
        }
    }
}

/// A connection's IO that tells its [`Activity`] about reads.
pub(crate) struct Watched<I> {
    pub(crate) inner: I,
    pub(crate) activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_then_header_then_in_flight() {
        let header = Duration::from_secs(10);
        let idle = Duration::from_secs(60);
        let activity = Activity::new(Instant::now(), false);
        let started = Instant::now();
        assert_eq!(activity.expired(header, idle).await, ConnTimeout::Idle);
        assert!(started.elapsed() >= idle);

        let activity = Activity::new(Instant::now(), true);
        let started = Instant::now();
        assert_eq!(activity.expired(header, idle).await, ConnTimeout::Header);
        assert!(started.elapsed() >= header && started.elapsed() < idle);

        // A request in flight: no timeout however long it lasts; idle again after it.
        let activity = Activity::new(Instant::now(), true);
        let guard = activity.start();
        let waiting = tokio::spawn({
            let activity = activity.clone();
            async move { activity.expired(header, idle).await }
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!waiting.is_finished());
        let ended = Instant::now();
        drop(guard);
        assert_eq!(waiting.await.unwrap(), ConnTimeout::Idle);
        assert!(ended.elapsed() >= idle);
    }
}
