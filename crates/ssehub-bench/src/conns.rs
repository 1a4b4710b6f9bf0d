//! `ssehub bench conns`: N idle SSE connections, held open; what they cost the hub.
//!
//! 1. With `--hub-pid`, read the hub's resident memory (`VmRSS` in `/proc/PID/status`).
//! 2. Open N connections, at most `--connect-concurrency` at a time per process, each within
//!    `--timeout`: a plain TCP socket (bound to the next `--sources` address, if any, before
//!    `connect`, so that each source address brings its own ephemeral ports), one `GET` of
//!    `{hub}/topics/{topic}` with `Accept: text/event-stream`, then read until the status
//!    line, the headers and the first bytes of the body (ssehub sends `retry:` at once). A
//!    status other than 200 is a failure. Nothing is retried.
//! 3. Read the hub's memory again, hold every connection for `--hold` seconds, read it once
//!    more, then close everything and report.
//!
//! While held, each connection is one small task that waits until the socket is readable and
//! discards what came (heartbeats), with a buffer that lives only during the read: so nothing
//! piles up in the kernel, a connection the hub ends is counted (`closed_by_hub`), and the
//! client side stays cheap. Sockets are closed with a reset (`SO_LINGER` 0), so that no
//! TIME_WAIT state keeps their source ports for a minute after the run.
//!
//! With `--http2 K` the N streams go over HTTP/2 with prior knowledge (h2c), K per
//! connection, from one process (`conns_h2.rs`); the memory is then per stream.
//!
//! # Several processes
//!
//! One process may not hold more descriptors than its open-file limit, so the connections are
//! spread over `--processes` copies of this binary (`bench conns --worker …`, a hidden flag),
//! each with its share. A worker opens its share, prints one JSON line (opened, failed,
//! errors), holds until its stdin closes (or its deadline passes), closes everything, prints
//! a second line (connections the hub closed) and exits. The parent measures the hub between
//! the two. With one process everything happens in this one, without a worker.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::args::ConnsArgs;
use crate::probe::{RESERVED_FDS, raise_fd_limit, rss_kib};
use crate::{now_micros, seconds};

/// The most connections one process takes by default.
const MAX_PER_PROCESS: u64 = 15_000;
/// The largest response head accepted.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// The run, as decided from the flags.
pub(crate) struct Plan {
    hub: String,
    topic: String,
    pub(crate) addr: SocketAddr,
    /// The whole request, sent as is on every connection.
    request: Arc<[u8]>,
    /// The subscription's URL, for HTTP/2 requests.
    pub(crate) uri: Arc<str>,
    /// With `--http2 K`: streams per HTTP/2 connection.
    http2: Option<u32>,
    pub(crate) sources: Arc<[IpAddr]>,
    /// Streams to open (one per connection over HTTP/1.1).
    pub(crate) connections: u32,
    processes: u32,
    pub(crate) connect_concurrency: usize,
    pub(crate) timeout: Duration,
    hold: Duration,
    hub_pid: Option<u32>,
    pub(crate) deadline: Instant,
    pub(crate) offset: u32,
}

/// What one process reports once its connections are open (the worker's first line).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Opened {
    opened: u64,
    failed: u64,
    /// Failure messages, with how many connections failed that way.
    errors: BTreeMap<String, u64>,
}

/// A worker's last line.
#[derive(Debug, Serialize, Deserialize)]
struct Closed {
    closed_by_hub: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    hub: String,
    topic: String,
    connections: u32,
    /// With `--http2 K`: the streams went over HTTP/2 (h2c), K per connection.
    http2_streams_per_connection: Option<u32>,
    processes: u32,
    sources: Vec<IpAddr>,
    opened: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    /// From the start of the first connection to the last one open (or failed).
    connect_secs: f64,
    held_secs: f64,
    /// Connections the hub ended while they were held.
    closed_by_hub: u64,
    hub_pid: Option<u32>,
    hub_rss_before_kib: Option<u64>,
    hub_rss_open_kib: Option<u64>,
    hub_rss_held_kib: Option<u64>,
    /// (held − before) / opened.
    rss_per_connection_bytes: Option<f64>,
}

pub(crate) async fn run(args: &ConnsArgs) -> anyhow::Result<()> {
    let fd_limit = raise_fd_limit();
    let plan = Plan::new(args, fd_limit).await?;
    if args.worker {
        return worker(plan).await;
    }
    let report = execute(plan).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    anyhow::ensure!(
        report.failed == 0,
        "{} of {} connections failed",
        report.failed,
        report.connections
    );
    Ok(())
}

impl Plan {
    async fn new(args: &ConnsArgs, fd_limit: u64) -> anyhow::Result<Plan> {
        let hub = args.hub.trim_end_matches('/').to_string();
        let rest = hub.strip_prefix("http://").with_context(|| {
            format!(
                "--hub must be an http:// URL (no TLS here), not {:?}",
                args.hub
            )
        })?;
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        anyhow::ensure!(!authority.is_empty(), "--hub {:?} names no host", args.hub);
        let with_port = if authority.rsplit_once(':').is_some_and(|(h, p)| {
            !h.ends_with(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
        }) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("cannot resolve {with_port}"))?
            .next()
            .with_context(|| format!("{with_port} resolves to no address"))?;
        let topic = args.topic.clone().unwrap_or_else(|| {
            format!(
                "bench/conns/{:x}",
                now_micros() ^ u64::from(std::process::id())
            )
        });
        let request = format!(
            "GET {prefix}/topics/{topic} HTTP/1.1\r\nHost: {authority}\r\n\
             Accept: text/event-stream\r\nCache-Control: no-cache\r\n\
             User-Agent: ssehub-bench-conns\r\n\r\n"
        );
        let sources: Vec<IpAddr> = match args.source_count {
            Some(k) => (1..=k)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
                .collect(),
            None => args.sources.clone(),
        };
        let per_process = MAX_PER_PROCESS
            .min(fd_limit.saturating_sub(RESERVED_FDS))
            .max(1);
        let processes = match args.processes {
            // HTTP/2 needs few connections: one process holds them.
            _ if args.http2.is_some() => 1,
            Some(p) => p,
            None => {
                u32::try_from(u64::from(args.connections).div_ceil(per_process)).unwrap_or(u32::MAX)
            }
        }
        .min(args.connections)
        .max(1);
        let timeout = seconds(args.timeout, "--timeout")?;
        let hold = if args.hold == 0.0 {
            Duration::ZERO
        } else {
            seconds(args.hold, "--hold")?
        };
        let concurrency = args.connect_concurrency.max(1);
        let max_duration = match args.max_duration {
            Some(secs) => seconds(secs, "--max-duration")?,
            None => {
                let share = args.connections.div_ceil(processes);
                timeout * share.div_ceil(concurrency) + hold + Duration::from_secs(30)
            }
        };
        if let Some(pid) = args.hub_pid {
            rss_kib(pid).with_context(|| format!("--hub-pid {pid}"))?;
        }
        Ok(Plan {
            uri: format!("{hub}/topics/{topic}").into(),
            hub,
            topic,
            addr,
            request: request.into_bytes().into(),
            http2: args.http2,
            sources: sources.into(),
            connections: args.connections,
            processes,
            connect_concurrency: concurrency as usize,
            timeout,
            hold,
            hub_pid: args.hub_pid,
            deadline: Instant::now() + max_duration,
            offset: args.worker_offset,
        })
    }
}

impl Plan {
    /// A place among the connections being opened, or `None` once the run's deadline passed.
    pub(crate) async fn permit(
        &self,
        permits: &Arc<Semaphore>,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        tokio::time::timeout_at(self.deadline, permits.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// The source address of the `i`-th connection after the run's `offset`-th (the sources
    /// in turn), if any.
    pub(crate) fn source(&self, offset: u32, i: u32) -> Option<IpAddr> {
        let n = offset as usize + i as usize;
        (!self.sources.is_empty()).then(|| self.sources[n % self.sources.len()])
    }
}

/// The clients of a run: connections in this process, or worker processes.
enum Clients {
    Local(Local),
    Workers(Vec<Worker>),
}

impl Clients {
    /// Closes every connection; returns how many the hub had closed before.
    async fn close(self, deadline: Instant) -> u64 {
        match self {
            Clients::Local(local) => local.close().await,
            Clients::Workers(workers) => {
                let closing = workers.into_iter().map(|w| w.close(deadline));
                futures_util::future::join_all(closing)
                    .await
                    .into_iter()
                    .sum()
            }
        }
    }
}

async fn execute(plan: Plan) -> anyhow::Result<Report> {
    let rss = |pid: Option<u32>| pid.and_then(|pid| rss_kib(pid).ok());
    let rss_before = rss(plan.hub_pid);
    eprintln!(
        "ssehub bench conns: opening {} connections to {} ({} process{}, {} source address{})",
        plan.connections,
        plan.addr,
        plan.processes,
        if plan.processes == 1 { "" } else { "es" },
        plan.sources.len(),
        if plan.sources.len() == 1 { "" } else { "es" },
    );
    let started = Instant::now();
    let (clients, opened) = if let Some(per_connection) = plan.http2 {
        let (local, opened) = crate::conns_h2::open_all(&plan, per_connection).await;
        (Clients::Local(local), opened)
    } else if plan.processes == 1 {
        let (local, opened) = open_all(&plan, plan.connections, plan.offset).await;
        (Clients::Local(local), opened)
    } else {
        let (workers, opened) = start_workers(&plan).await?;
        (Clients::Workers(workers), opened)
    };
    let connect_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "ssehub bench conns: {} open, {} failed in {connect_secs:.2} s; holding for {:.1} s",
        opened.opened,
        opened.failed,
        plan.hold.as_secs_f64()
    );
    let rss_open = rss(plan.hub_pid);
    let held_from = Instant::now();
    tokio::time::sleep_until((held_from + plan.hold).min(plan.deadline)).await;
    let held_secs = held_from.elapsed().as_secs_f64();
    let rss_held = rss(plan.hub_pid);
    let closed_by_hub = clients
        .close(Instant::now() + Duration::from_secs(30))
        .await;
    let per_connection = match (rss_before, rss_held) {
        (Some(before), Some(held)) if opened.opened > 0 => {
            Some((held as f64 - before as f64) * 1024.0 / opened.opened as f64)
        }
        _ => None,
    };
    Ok(Report {
        hub: plan.hub,
        topic: plan.topic,
        connections: plan.connections,
        http2_streams_per_connection: plan.http2,
        processes: plan.processes,
        sources: plan.sources.to_vec(),
        opened: opened.opened,
        failed: opened.failed,
        errors: opened.errors,
        connect_secs,
        held_secs,
        closed_by_hub,
        hub_pid: plan.hub_pid,
        hub_rss_before_kib: rss_before,
        hub_rss_open_kib: rss_open,
        hub_rss_held_kib: rss_held,
        rss_per_connection_bytes: per_connection,
    })
}

/// Connections held by this process.
pub(crate) struct Local {
    tasks: JoinSet<()>,
    closed_by_hub: Arc<AtomicU64>,
}

impl Local {
    /// Connections held by `tasks`, each counting in `closed_by_hub` what the hub ends.
    pub(crate) fn new(tasks: JoinSet<()>, closed_by_hub: Arc<AtomicU64>) -> Self {
        Local {
            tasks,
            closed_by_hub,
        }
    }

    /// Closes every connection (with a reset); returns how many the hub had closed.
    async fn close(mut self) -> u64 {
        self.tasks.abort_all();
        let limit = Instant::now() + Duration::from_secs(10);
        while let Ok(Some(_)) = tokio::time::timeout_at(limit, self.tasks.join_next()).await {}
        self.closed_by_hub.load(Ordering::Relaxed)
    }
}

/// Opens `count` connections, the first being the run's `offset`-th (for the choice of the
/// source address). Each one is a task that keeps its socket until aborted.
async fn open_all(plan: &Plan, count: u32, offset: u32) -> (Local, Opened) {
    let permits = Arc::new(Semaphore::new(plan.connect_concurrency));
    let closed_by_hub = Arc::new(AtomicU64::new(0));
    let (results, results_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let mut tasks = JoinSet::new();
    let mut spawned = 0;
    for i in 0..count {
        let Some(permit) = plan.permit(&permits).await else {
            break;
        };
        let source = plan.source(offset, i);
        let (addr, request, timeout) = (plan.addr, plan.request.clone(), plan.timeout);
        let results = results.clone();
        let closed_by_hub = closed_by_hub.clone();
        tasks.spawn(async move {
            let opening = tokio::time::timeout(timeout, open(addr, source, &request)).await;
            drop(permit);
            let stream = match opening {
                Ok(Ok(stream)) => {
                    let _ = results.send(Ok(()));
                    stream
                }
                Ok(Err(error)) => {
                    let _ = results.send(Err(error));
                    return;
                }
                Err(_) => {
                    let _ = results.send(Err("timed out".to_string()));
                    return;
                }
            };
            drop(results);
            if !hold(&stream).await {
                closed_by_hub.fetch_add(1, Ordering::Relaxed);
            }
        });
        spawned += 1;
    }
    drop(results);
    let opened = tally_of(count, spawned, plan, results_rx).await;
    (Local::new(tasks, closed_by_hub), opened)
}

/// Counts the outcomes of the `spawned` openings of a run of `plan.connections` streams.
pub(crate) async fn tally(
    plan: &Plan,
    spawned: u32,
    results_rx: mpsc::UnboundedReceiver<Result<(), String>>,
) -> Opened {
    tally_of(plan.connections, spawned, plan, results_rx).await
}

/// Counts the outcomes of `spawned` openings out of `count` (the rest were not started).
async fn tally_of(
    count: u32,
    spawned: u32,
    plan: &Plan,
    mut results_rx: mpsc::UnboundedReceiver<Result<(), String>>,
) -> Opened {
    let mut opened = Opened::default();
    if spawned < count {
        opened.failed += u64::from(count - spawned);
        opened.errors.insert(
            "not started before the deadline".to_string(),
            u64::from(count - spawned),
        );
    }
    let mut answered = 0;
    while answered < spawned {
        match tokio::time::timeout_at(plan.deadline, results_rx.recv()).await {
            Ok(Some(Ok(()))) => opened.opened += 1,
            Ok(Some(Err(error))) => {
                opened.failed += 1;
                *opened.errors.entry(error).or_default() += 1;
            }
            Ok(None) | Err(_) => break,
        }
        answered += 1;
    }
    if answered < spawned {
        let left = u64::from(spawned - answered);
        opened.failed += left;
        *opened
            .errors
            .entry("no answer before the deadline".to_string())
            .or_default() += left;
    }
    opened
}

/// Connects to `addr` from `source` (if given), with `SO_LINGER` 0 (closed with a reset).
pub(crate) async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, String> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_zero_linger()
        .map_err(|e| format!("SO_LINGER: {e}"))?;
    Ok(stream)
}

/// Connects, sends the request and reads the status, the headers and the first body bytes.
async fn open(
    addr: SocketAddr,
    source: Option<IpAddr>,
    request: &[u8],
) -> Result<TcpStream, String> {
    let mut stream = connect(addr, source).await?;
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::with_capacity(1024);
    loop {
        head.reserve(1024);
        let n = stream
            .read_buf(&mut head)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let end = head.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = end {
            let status = head
                .split(|&b| b == b'\r')
                .next()
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .unwrap_or_default();
            let ok = status.split(' ').nth(1).is_some_and(|code| code == "200")
                && status.starts_with("HTTP/1.");
            if !ok {
                return Err(format!("status {status}"));
            }
            if head.len() > end + 4 {
                return Ok(stream);
            }
        }
        if n == 0 {
            return Err(if end.is_some() {
                "closed after the headers, before the first bytes".to_string()
            } else {
                "closed before the response".to_string()
            });
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(format!("no end of the headers in {MAX_HEAD_BYTES} bytes"));
        }
    }
}

/// Reads and discards until the hub closes the connection (false) or the task is aborted.
async fn hold(stream: &TcpStream) -> bool {
    loop {
        if stream.readable().await.is_err() {
            return false;
        }
        // Only alive during the read: not part of the task's state while it waits.
        let mut discard = [0u8; 512];
        match stream.try_read(&mut discard) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
}

/// A worker process and its pipes.
struct Worker {
    index: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Worker {
    /// Tells the worker to close everything, and reads its last line.
    async fn close(mut self, deadline: Instant) -> u64 {
        drop(self.stdin.take());
        let closed = match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => serde_json::from_str::<Closed>(&line)
                .map(|c| c.closed_by_hub)
                .unwrap_or_else(|e| {
                    eprintln!(
                        "ssehub bench conns: worker {}: bad last line {line:?}: {e}",
                        self.index
                    );
                    0
                }),
            _ => {
                eprintln!(
                    "ssehub bench conns: worker {} did not report how it closed",
                    self.index
                );
                0
            }
        };
        if tokio::time::timeout_at(deadline, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
        }
        closed
    }
}

/// Starts the workers, each with its share, and waits for each one's first report.
async fn start_workers(plan: &Plan) -> anyhow::Result<(Vec<Worker>, Opened)> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let sources = plan
        .sources
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let left = plan.deadline.saturating_duration_since(Instant::now());
    let mut workers = Vec::new();
    let mut offset = plan.offset;
    for index in 0..plan.processes {
        let share = plan.connections / plan.processes
            + u32::from(index < plan.connections % plan.processes);
        let mut command = Command::new(&exe);
        command
            .args([
                "bench",
                "conns",
                "--worker",
                "--hub",
                &plan.hub,
                "--topic",
                &plan.topic,
            ])
            .arg(format!("--connections={share}"))
            .arg(format!("--worker-offset={offset}"))
            .arg(format!(
                "--connect-concurrency={}",
                plan.connect_concurrency
            ))
            .arg(format!("--timeout={}", plan.timeout.as_secs_f64()))
            // A little after the parent's deadline: the parent closes it before.
            .arg(format!("--max-duration={}", left.as_secs_f64() + 30.0))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if !sources.is_empty() {
            command.arg(format!("--sources={sources}"));
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start worker {index} ({})", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("worker stdout")?;
        workers.push((
            share,
            Worker {
                index,
                child,
                stdin,
                lines: BufReader::new(stdout).lines(),
            },
        ));
        offset += share;
    }
    let deadline = plan.deadline;
    let reports = futures_util::future::join_all(workers.iter_mut().map(|(share, worker)| {
        let share = u64::from(*share);
        async move {
            let line = tokio::time::timeout_at(deadline, worker.lines.next_line()).await;
            match line {
                Ok(Ok(Some(line))) => serde_json::from_str::<Opened>(&line).unwrap_or_else(|e| {
                    failed_share(
                        share,
                        format!("worker {}: bad report {line:?}: {e}", worker.index),
                    )
                }),
                Ok(Ok(None)) => failed_share(
                    share,
                    format!("worker {} exited without a report", worker.index),
                ),
                Ok(Err(e)) => failed_share(share, format!("worker {}: {e}", worker.index)),
                Err(_) => failed_share(
                    share,
                    format!("worker {}: no report before the deadline", worker.index),
                ),
            }
        }
    }))
    .await;
    let mut total = Opened::default();
    for report in reports {
        total.opened += report.opened;
        total.failed += report.failed;
        for (error, count) in report.errors {
            *total.errors.entry(error).or_default() += count;
        }
    }
    Ok((workers.into_iter().map(|(_, w)| w).collect(), total))
}

fn failed_share(share: u64, error: String) -> Opened {
    Opened {
        opened: 0,
        failed: share,
        errors: BTreeMap::from([(error, share)]),
    }
}

/// The worker side: open the share, report, hold until stdin closes, close, report.
async fn worker(plan: Plan) -> anyhow::Result<()> {
    let (local, opened) = open_all(&plan, plan.connections, plan.offset).await;
    println!("{}", serde_json::to_string(&opened)?);
    std::io::Write::flush(&mut std::io::stdout()).ok();
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    // Any line, the end of stdin (the parent closed it or died) or the deadline: close.
    let _ = tokio::time::timeout_at(plan.deadline, stdin.next_line()).await;
    let closed_by_hub = local.close().await;
    println!("{}", serde_json::to_string(&Closed { closed_by_hub })?);
    Ok(())
}

impl Report {
    fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let kib = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| format!("{v} KiB"));
        let rows: Vec<(&str, String)> = vec![
            ("hub", self.hub.clone()),
            ("connections", self.connections.to_string()),
            (
                "HTTP/2 streams/conn",
                self.http2_streams_per_connection
                    .map_or_else(|| "- (HTTP/1.1)".to_string(), |k| k.to_string()),
            ),
            ("processes", self.processes.to_string()),
            ("source addresses", self.sources.len().to_string()),
            ("opened", self.opened.to_string()),
            ("failed", self.failed.to_string()),
            ("connect s", format!("{:.2}", self.connect_secs)),
            ("held s", format!("{:.1}", self.held_secs)),
            ("closed by hub", self.closed_by_hub.to_string()),
            ("hub RSS before", kib(self.hub_rss_before_kib)),
            ("hub RSS all open", kib(self.hub_rss_open_kib)),
            ("hub RSS after hold", kib(self.hub_rss_held_kib)),
            (
                "RSS per connection",
                self.rss_per_connection_bytes
                    .map_or_else(|| "-".to_string(), |b| format!("{b:.0} bytes")),
            ),
        ];
        for (name, value) in rows {
            let _ = writeln!(out, "{name:<20} {value}");
        }
        for (error, count) in &self.errors {
            let _ = writeln!(out, "error ×{count:<14} {error}");
        }
        out
    }
}
