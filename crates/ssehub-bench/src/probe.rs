//! What the bench reads about processes: the hub's CPU time and memory (from `/proc`, Linux),
//! and this process's open-file limit, which bounds how many connections it can hold.

use anyhow::Context as _;

/// Descriptors a bench process keeps for itself (runtime, stdio, pipes, publishers'
/// connections), below its open-file limit.
pub(crate) const RESERVED_FDS: u64 = 64;

/// The hub's CPU time and memory, read from /proc (Linux).
#[derive(Clone, Copy)]
pub(crate) struct HubProbe {
    pid: u32,
}

impl HubProbe {
    /// A probe of `pid` (none without one), checked by a first reading of each figure.
    pub(crate) fn new(pid: Option<u32>) -> anyhow::Result<Option<HubProbe>> {
        let Some(pid) = pid else { return Ok(None) };
        let probe = HubProbe { pid };
        probe.cpu_us()?;
        probe.rss_kib()?;
        Ok(Some(probe))
    }

    /// The CPU time of the hub's threads, in microseconds: the sum of each thread's time on a
    /// CPU in `/proc/PID/task/*/schedstat` (nanoseconds; `/proc/PID/stat` counts in 10 ms
    /// ticks, too coarse for a part of a run). A thread that ended since the last reading
    /// takes its time with it, so a reading can fall; the hub's runtime threads live as long
    /// as the hub.
    pub(crate) fn cpu_us(&self) -> anyhow::Result<u64> {
        let dir = format!("/proc/{}/task", self.pid);
        let mut ns = 0u64;
        for task in std::fs::read_dir(&dir).with_context(|| format!("cannot read {dir}"))? {
            let path = task?.path().join("schedstat");
            // A thread may end between the listing and the read.
            let Ok(stat) = std::fs::read_to_string(&path) else {
                continue;
            };
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .with_context(|| format!("unexpected {}: {stat:?}", path.display()))?;
        }
        Ok(ns / 1000)
    }

    /// The hub's resident memory, in KiB.
    pub(crate) fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid)
    }
}

/// A process's resident memory, in KiB.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS")
}

/// A process's peak resident memory (its high-water mark), in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmHWM")
}

/// A `kB` field of `/proc/PID/status`.
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

/// Raises this process's soft open-file limit to its hard limit; returns the soft limit.
#[cfg(unix)]
pub(crate) fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Elsewhere the limit is not known: what one `conns` process takes by default.
#[cfg(not(unix))]
pub(crate) fn raise_fd_limit() -> u64 {
    15_000 + RESERVED_FDS
}
