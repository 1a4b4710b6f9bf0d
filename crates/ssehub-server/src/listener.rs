//! The hub's TCP listener: the file-descriptor limit, and what to do when it is reached.
//!
//! At start `serve` raises the soft `RLIMIT_NOFILE` to the hard limit ([`raise_fd_limit`]):
//! every SSE connection is one descriptor, and distributions still start processes with a
//! soft limit of 1024.
//!
//! When the hub is at its limit anyway, `accept` fails with `EMFILE` (or `ENFILE` for the
//! whole system) and the waiting connection stays in the kernel's backlog, so the listening
//! socket stays readable: retrying at once would spin a core. [`Listener`] instead waits
//! before the next try (10 ms, doubling up to 1 s, back to 10 ms after a success), logs one
//! warning per 10 s at most (with the count since the last one), and counts every failure in
//! `ssehub_accept_errors_total{reason}`. Connections already open are not touched and keep
//! being served; clients in the backlog are accepted as soon as descriptors free up.
//!
//! The cap on open connections (`limits.max_open_connections`) is applied here too: every
//! accepted connection takes a [`Slot`] (one increment of the `ssehub_open_connections`
//! gauge, given back when the connection ends); one accepted while the cap is reached is
//! closed at once and counted in `ssehub_refused_connections_total`. Closing costs nothing
//! but the accept, and keeps descriptors free for the store and for the clients that count:
//! hostile connections time out (see `Limits`) and make room again.
//!
//! The listening socket asks for a backlog of 65,535 ([`bind`]); the kernel caps it at
//! `net.core.somaxconn`.

use std::net::SocketAddr;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use ssehub_http::{AcceptError, AcceptErrors, ConnMetrics};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The first wait after a failed accept.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one warning per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The accept backlog asked for: the kernel caps it at `net.core.somaxconn`. Large, so that
/// a reconnection wave (every client of a restarted hub, spread over the `retry` jitter)
/// waits in the backlog rather than in SYN retransmissions.
const BACKLOG: u32 = 65_535;

/// Binds a listening socket on `addr` (with `SO_REUSEADDR`, like `TcpListener::bind`, and a larger backlog).
///
/// # Errors
///
/// When the address cannot be bound.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Raises the soft limit on open files to the hard limit, and logs both.
#[cfg(unix)]
pub fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    let before = getrlimit(Resource::Nofile);
    if before.current != before.maximum {
        let raised = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(
                soft = show(before.current),
                hard = show(before.maximum),
                %error,
                "cannot raise the open-file limit to its hard limit"
            );
        }
    }
    let now = getrlimit(Resource::Nofile);
    tracing::info!(
        soft = show(now.current),
        hard = show(now.maximum),
        was = show(before.current),
        "open-file limit (each connection takes one)"
    );
}

#[cfg(not(unix))]
pub fn raise_fd_limit() {}

/// Descriptors kept for everything but client connections — the listener, the store's files,
/// the runtime's own — at most: a process with a small limit keeps an eighth of it.
const FD_RESERVE: u64 = 32;

/// The cap on open connections that protects the process's descriptors: `max_open_connections`,
/// lowered (and logged) when it is not under the open-file limit less a reserve. Above the
/// limit the cap would never refuse anything — hostile sockets would run the process out of
/// descriptors first (accept fails, the store cannot open a file).
#[cfg(unix)]
pub(crate) fn fit_connection_cap(max_open_connections: usize) -> usize {
    let Some(soft) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current else {
        return max_open_connections;
    };
    let room = soft.saturating_sub(FD_RESERVE.min(soft / 8)).max(1);
    if max_open_connections as u64 <= room {
        return max_open_connections;
    }
    let fitted = usize::try_from(room).unwrap_or(usize::MAX);
    tracing::info!(
        max_open_connections,
        open_file_limit = soft,
        lowered_to = fitted,
        "limits.max_open_connections is lowered to stay under the open-file limit \
         (raise the limit, ulimit -n, to allow more connections)"
    );
    fitted
}

#[cfg(not(unix))]
pub(crate) fn fit_connection_cap(max_open_connections: usize) -> usize {
    max_open_connections
}

/// Which counter an accept error goes to.
fn classify(error: &std::io::Error) -> AcceptError {
    use std::io::ErrorKind;
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        if let Some(errno) = Errno::from_io_error(error) {
            match errno {
                Errno::MFILE => return AcceptError::ProcessFdLimit,
                Errno::NFILE => return AcceptError::SystemFdLimit,
                Errno::NOMEM | Errno::NOBUFS => return AcceptError::NoMemory,
                _ => {}
            }
        }
    }
    match error.kind() {
        ErrorKind::ConnectionAborted
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionRefused
        | ErrorKind::Interrupted => AcceptError::Aborted,
        ErrorKind::OutOfMemory => AcceptError::NoMemory,
        _ => AcceptError::Other,
    }
}

/// A [`TcpListener`] that waits, counts and logs when accepting fails, and caps open
/// connections (see the module docs).
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    metrics: ConnMetrics,
    errors: AcceptErrors,
    backoff: Duration,
    /// Failures not yet in a warning, and when the last warning went out.
    unlogged: u64,
    last_log: Option<Instant>,
}

/// One open connection's place under the cap: given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Gauge);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Listener {
    /// Accepts on `inner`, counting in `metrics` (open connections, refusals, failed accepts).
    pub fn new(inner: TcpListener, metrics: ConnMetrics) -> Self {
        Listener {
            inner,
            errors: metrics.accept_errors(),
            metrics,
            backoff: MIN_BACKOFF,
            unlogged: 0,
            last_log: None,
        }
    }

    /// The connection layer's metrics.
    pub(crate) fn metrics(&self) -> ConnMetrics {
        self.metrics.clone()
    }

    /// The next connection while fewer than `cap` are open, with its slot; one accepted at
    /// the cap is closed at once (and counted), and the next one is waited for.
    pub(crate) async fn accept_within(&mut self, cap: usize) -> (TcpStream, Slot) {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        loop {
            let (stream, _addr) = self.accept().await;
            let open = self.metrics.open_gauge();
            if open.inc() < cap {
                return (stream, Slot(open.clone()));
            }
            open.dec();
            self.metrics.record_refused();
            // No linger, no answer: the cheapest close there is.
            drop(stream);
        }
    }

    /// The next connection; waits (never spins) while accepting fails.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok(accepted) => {
                    if self.backoff != MIN_BACKOFF {
                        self.backoff = MIN_BACKOFF;
                        tracing::info!(
                            failed_since_last_warning = self.unlogged,
                            "accepting connections again"
                        );
                        self.unlogged = 0;
                    }
                    return accepted;
                }
                Err(error) => {
                    let reason = classify(&error);
                    self.errors.record(reason);
                    if reason == AcceptError::Aborted {
                        // That client is gone; the next one may be waiting already.
                        tracing::debug!(%error, "a connection was aborted before it was accepted");
                        continue;
                    }
                    self.warn(reason, &error);
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Logs the failure, unless a warning went out less than [`LOG_EVERY`] ago.
    fn warn(&mut self, reason: AcceptError, error: &std::io::Error) {
        self.unlogged += 1;
        let now = Instant::now();
        if self.last_log.is_some_and(|last| now - last < LOG_EVERY) {
            return;
        }
        tracing::warn!(
            reason = reason.as_str(),
            %error,
            failures = self.unlogged,
            retry_in_ms = self.backoff.as_millis() as u64,
            "cannot accept connections (open connections are still served); \
             see ssehub_accept_errors_total"
        );
        self.unlogged = 0;
        self.last_log = Some(now);
    }

    /// The address it listens on.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl axum::serve::Listener for Listener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        Listener::accept(self).await
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Listener::local_addr(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn classifies_descriptor_exhaustion() {
        assert_eq!(
            classify(&std::io::Error::from_raw_os_error(24)),
            AcceptError::ProcessFdLimit
        );
        assert_eq!(
            classify(&std::io::Error::from_raw_os_error(23)),
            AcceptError::SystemFdLimit
        );
        assert_eq!(
            classify(&std::io::Error::from(std::io::ErrorKind::ConnectionAborted)),
            AcceptError::Aborted
        );
        assert_eq!(classify(&std::io::Error::other("x")), AcceptError::Other);
    }
}
