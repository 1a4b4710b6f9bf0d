//! `ssehub bench storm`: N clients on a durable hub that restarts, and the reconnection storm
//! that follows.
//!
//! 1. Start the hub with `--serve` (`sh -c "exec …"`: its PID is the hub's) and wait until
//!    `{hub}/healthz` answers.
//! 2. Open N clients on `{hub}/topics/{topic}`, at most `--connect-concurrency` connecting at
//!    a time. Each parses its stream ([`ssehub_wire::Parser`]), keeping the last event id and
//!    the reconnection time the hub announced (`retry:`).
//! 3. Publish `--events` events at `--rate` and wait until every client has them.
//! 4. Stop the hub (`--stop`), wait for it to exit, start it again with the same command
//!    (time zero of the storm), and publish `--events` more once it answers.
//! 5. Meanwhile each client does what a browser's `EventSource` does: when its stream ends or
//!    breaks, or a connection attempt fails, it waits its reconnection time and connects
//!    again, sending `Last-Event-ID`. The bench samples the new hub's CPU time every 100 ms.
//! 6. Once every client has every acknowledged event (or `--max-duration` passes), report:
//!    when the clients had reconnected (first, median, p99, last, from time zero), when all
//!    had every event, failed connection attempts, the new hub's peak CPU (busiest 100 ms)
//!    and peak resident memory (`VmHWM`), and events lost, duplicated, out of order, and gap
//!    notices.
//!
//! An event's data is `<run id>:<n>`, `n` counting from 0 over both phases, so that a client
//! checks each event by its number whatever its id.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use ssehub_wire::{Frame, Parser};
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::args::{StopSignal, StormArgs};
use crate::deliveries::Bitset;
use crate::histogram::Histogram;
use crate::http1::{Response, Target};
use crate::probe::{HubProbe, RESERVED_FDS, peak_rss_kib, raise_fd_limit};
use crate::{hub_base, micros, print_report, run_id, seconds};

/// How often the new hub's CPU time is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How long one connection attempt may take (connect, request, status).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the hub may take to answer `/healthz` after it is started, or to exit.
const HUB_TIMEOUT: Duration = Duration::from_secs(60);

/// The report.
#[derive(Debug, Serialize)]
struct Report {
    clients: u32,
    events_published: u32,
    events_acknowledged: u64,
    stop: &'static str,
    /// From the stop signal until the new hub answered `/healthz`.
    hub_back_ms: f64,
    /// Clients that reconnected after the restart.
    reconnected: u64,
    /// When the clients had reconnected, from the restart (the stop signal); first, p50 and
    /// p99 from the bench's histogram (at most 1.6 % high), last exact.
    reconnect_first_ms: f64,
    reconnect_p50_ms: f64,
    reconnect_p99_ms: f64,
    reconnect_last_ms: f64,
    /// When every client had every acknowledged event, from the restart.
    all_caught_up_ms: Option<f64>,
    /// Connection attempts after the restart that failed (refused, or not 200).
    failed_attempts: u64,
    /// The new hub's busiest 100 ms, in cores (1.0 = one core fully busy).
    peak_cpu_cores: f64,
    /// The new hub's CPU time until all caught up (or the end).
    hub_cpu_s: f64,
    /// The new hub's peak resident memory (VmHWM).
    peak_rss_mib: f64,
    /// Acknowledged events some client never got, summed over clients.
    lost: u64,
    duplicates: u64,
    out_of_order: u64,
    gap_notices: u64,
    parse_errors: u64,
}

/// What every client shares with the run.
struct Shared {
    url: String,
    run: String,
    default_retry: Duration,
    permits: Semaphore,
    /// Clients whose stream is open (before the restart: that opened once).
    opened: AtomicU64,
    /// Clients that reconnected after the restart.
    reconnected: AtomicU64,
    /// Failed attempts after the restart.
    failed: AtomicU64,
    /// Set at the restart (micros of `started`), 0 before.
    restarted_at: AtomicU64,
    /// Clients that have every event of the goal's current round.
    caught_up: AtomicU64,
    /// Events in all (numbered `0..events`).
    events: u32,
    started: Instant,
}

impl Shared {
    fn now_us(&self) -> u64 {
        micros(self.started.elapsed())
    }
}

/// What the run tells the clients: the events each should have by the end of the current
/// round (the acknowledged ones), and when to stop.
#[derive(Clone)]
struct Goal {
    acked: Arc<Bitset>,
    /// 1 once the events before the restart are published, 2 once all are; 0 before. A
    /// client with every event of `acked` counts itself in `caught_up`, once per round.
    round: u32,
    stop: bool,
}

/// One client's account.
struct Client {
    parser: Parser,
    seen: Bitset,
    last_n: Option<u32>,
    duplicates: u64,
    out_of_order: u64,
    gaps: u64,
    parse_errors: u64,
    /// When it reconnected after the restart (micros since the run started).
    reconnected_at: Option<u64>,
    /// The last round it counted itself caught up in.
    counted_round: u32,
}

impl Client {
    fn feed(&mut self, run: &str, events: u32, bytes: &[u8]) {
        for frame in self.parser.feed_iter(bytes) {
            let event = match frame {
                Ok(Frame::Event(event)) => event,
                Ok(Frame::Comment(_)) => continue,
                Err(_) => {
                    self.parse_errors += 1;
                    continue;
                }
            };
            if event.event_type == "ssehub-gap" {
                self.gaps += 1;
                continue;
            }
            let Some(n) = event
                .data
                .strip_prefix(run)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|&n| n < events)
            else {
                self.parse_errors += 1;
                continue;
            };
            if self.seen.get(n) {
                self.duplicates += 1;
                continue;
            }
            self.seen.set(n);
            if self.last_n.is_some_and(|last| n < last) {
                self.out_of_order += 1;
            }
            self.last_n = Some(n);
        }
    }

    /// Counts itself caught up when it has every event of the goal's round.
    fn check(&mut self, goal: &Goal, caught_up: &AtomicU64) {
        if goal.round > self.counted_round && self.seen.count_and(&goal.acked) == goal.acked.count()
        {
            self.counted_round = goal.round;
            caught_up.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Follows the stream as an `EventSource` does until the goal says stop.
async fn client(shared: Arc<Shared>, mut goal: watch::Receiver<Goal>) -> Client {
    let mut me = Client {
        parser: Parser::new(),
        seen: Bitset::new(shared.events),
        last_n: None,
        duplicates: 0,
        out_of_order: 0,
        gaps: 0,
        parse_errors: 0,
        reconnected_at: None,
        counted_round: 0,
    };
    let (run, events) = (shared.run.as_str(), shared.events);
    let mut first = true;
    loop {
        let mut headers = HeaderMap::new();
        if let Ok(id) = HeaderValue::from_str(me.parser.last_event_id())
            && !id.is_empty()
        {
            headers.insert("last-event-id", id);
        }
        let opened = {
            let attempt = async {
                let target = Target::new(&shared.url, &headers)?;
                let _permit = shared.permits.acquire().await.map_err(|e| e.to_string())?;
                let mut sink = |bytes: &[u8]| me.feed(run, events, bytes);
                tokio::time::timeout(CONNECT_TIMEOUT, Response::get(&target, &mut sink))
                    .await
                    .map_err(|_| "not open in time".to_string())?
            };
            tokio::select! {
                opened = attempt => Some(opened),
                _ = goal.wait_for(|g| g.stop) => None,
            }
        };
        let Some(opened) = opened else { return me };
        let restarted = shared.restarted_at.load(Ordering::Acquire) > 0;
        match opened {
            Ok(mut response) => {
                if first {
                    shared.opened.fetch_add(1, Ordering::Relaxed);
                    first = false;
                } else if restarted && me.reconnected_at.is_none() {
                    me.reconnected_at = Some(shared.now_us());
                    shared.reconnected.fetch_add(1, Ordering::Relaxed);
                }
                loop {
                    me.check(&goal.borrow(), &shared.caught_up);
                    let read = {
                        let mut sink = |bytes: &[u8]| me.feed(run, events, bytes);
                        tokio::select! {
                            read = response.read(&mut sink) => read,
                            _ = goal.changed() => Ok(()),
                        }
                    };
                    if goal.borrow().stop {
                        return me;
                    }
                    if read.is_err() {
                        // The hub ended the stream, or the connection broke.
                        break;
                    }
                }
            }
            Err(_) if restarted => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {}
        }
        // An incomplete event at the end of a stream is dropped, as the standard says.
        me.parser.end_body();
        let retry = me
            .parser
            .reconnection_time_ms()
            .map_or(shared.default_retry, Duration::from_millis);
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            _ = goal.wait_for(|g| g.stop) => return me,
        }
    }
}

/// Waits (polling) until `done` holds; an error once `deadline` passes.
async fn wait_until(deadline: Instant, what: &str, done: impl Fn() -> bool) -> anyhow::Result<()> {
    while !done() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the run's --max-duration passed while waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The hub, run by the bench.
struct Hub {
    child: Child,
    pid: u32,
}

impl Hub {
    /// Starts `serve` and waits until `{base}/healthz` answers 200.
    async fn start(serve: &str, base: &str, http: &reqwest::Client) -> anyhow::Result<Hub> {
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {serve}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run --serve {serve:?}"))?;
        let pid = child.id().context("the hub exited at once")?;
        let mut hub = Hub { child, pid };
        let deadline = Instant::now() + HUB_TIMEOUT;
        loop {
            if let Ok(Some(status)) = hub.child.try_wait() {
                anyhow::bail!("the hub exited ({status}) before answering {base}/healthz");
            }
            let ok = http
                .get(format!("{base}/healthz"))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(hub);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the hub did not answer {base}/healthz within {HUB_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` and waits until the hub has exited.
    async fn stop(&mut self, signal: StopSignal) -> anyhow::Result<()> {
        #[cfg(unix)]
        {
            use rustix::process::{Pid, Signal, kill_process};
            let pid = Pid::from_raw(i32::try_from(self.pid)?).context("a PID of 0")?;
            let signal = match signal {
                StopSignal::Term => Signal::TERM,
                StopSignal::Kill => Signal::KILL,
            };
            kill_process(pid, signal).context("cannot signal the hub")?;
        }
        #[cfg(not(unix))]
        {
            let _ = signal;
            self.child.start_kill()?;
        }
        tokio::time::timeout(HUB_TIMEOUT, self.child.wait())
            .await
            .context("the hub did not exit")??;
        Ok(())
    }
}

/// Publishes events `from..to` at `rate`, one request each; marks the acknowledged ones.
async fn publish(
    http: &reqwest::Client,
    url: &str,
    run: &str,
    (from, to): (u32, u32),
    rate: u32,
    acked: &mut Bitset,
) {
    let every = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut ticks = tokio::time::interval(every);
    for n in from..to {
        ticks.tick().await;
        let sent = http
            .post(url)
            .body(format!("{run}:{n}"))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            acked.set(n);
        }
    }
}

pub(crate) async fn run(args: &StormArgs) -> anyhow::Result<()> {
    let base = hub_base(&args.hub)?;
    let deadline = Instant::now() + seconds(args.max_duration, "--max-duration")?;
    let limit = raise_fd_limit();
    anyhow::ensure!(
        u64::from(args.clients) + RESERVED_FDS <= limit,
        "--clients {} needs more open files than this process may have ({limit})",
        args.clients
    );
    let run = run_id();
    let topic = args
        .topic
        .clone()
        .unwrap_or_else(|| format!("bench/storm/{run}"));
    let topic_url = format!("{base}/topics/{topic}");
    let http = reqwest::Client::new();
    let events = args.events * 2;

    let mut hub = Hub::start(&args.serve, &base, &http).await?;
    let started = Instant::now();
    let shared = Arc::new(Shared {
        url: topic_url.clone(),
        run: run.clone(),
        default_retry: Duration::from_millis(args.default_retry_ms),
        permits: Semaphore::new(args.connect_concurrency as usize),
        opened: AtomicU64::new(0),
        reconnected: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        restarted_at: AtomicU64::new(0),
        caught_up: AtomicU64::new(0),
        events,
        started,
    });
    let mut acked = Bitset::new(events);
    let (goal_tx, goal) = watch::channel(Goal {
        acked: Arc::new(Bitset::new(events)),
        round: 0,
        stop: false,
    });
    let mut clients = JoinSet::new();
    for _ in 0..args.clients {
        clients.spawn(client(shared.clone(), goal.clone()));
    }
    let clients_n = u64::from(args.clients);
    wait_until(deadline, "every client to open", || {
        shared.opened.load(Ordering::Relaxed) == clients_n
    })
    .await?;

    // Before the restart: the first half, then every client has it.
    publish(
        &http,
        &topic_url,
        &run,
        (0, args.events),
        args.rate,
        &mut acked,
    )
    .await;
    let first_half = Arc::new(acked.clone());
    goal_tx.send_modify(|g| {
        g.acked = first_half;
        g.round = 1;
    });
    wait_until(
        deadline,
        "every client to get the events before the restart",
        || shared.caught_up.load(Ordering::Relaxed) == clients_n,
    )
    .await?;
    shared.caught_up.store(0, Ordering::Relaxed);

    // The restart.
    let restart = shared.now_us();
    shared.restarted_at.store(restart.max(1), Ordering::Release);
    hub.stop(args.stop).await?;
    let mut hub = Hub::start(&args.serve, &base, &http).await?;
    let hub_back_us = shared.now_us() - restart;
    let probe = HubProbe::new(Some(hub.pid))?.context("a probe of the new hub")?;
    let cpu_start = probe.cpu_us()?;

    // The second half, published while the clients come back; the hub's CPU meanwhile.
    let mut peak_cores = 0.0f64;
    let mut last_cpu = (cpu_start, Instant::now());
    let sample = |peak: &mut f64, last: &mut (u64, Instant)| -> anyhow::Result<()> {
        let cpu = probe.cpu_us()?;
        let now = Instant::now();
        let wall = micros(now - last.1).max(1);
        *peak = peak.max(cpu.saturating_sub(last.0) as f64 / wall as f64);
        *last = (cpu, now);
        Ok(())
    };
    {
        let publishing = publish(
            &http,
            &topic_url,
            &run,
            (args.events, events),
            args.rate,
            &mut acked,
        );
        tokio::pin!(publishing);
        let mut ticks = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tokio::select! {
                () = &mut publishing => break,
                _ = ticks.tick() => sample(&mut peak_cores, &mut last_cpu)?,
            }
        }
    }
    let all = Arc::new(acked);
    goal_tx.send_modify(|g| {
        g.acked = all.clone();
        g.round = 2;
    });
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    let all_caught_up = loop {
        ticks.tick().await;
        sample(&mut peak_cores, &mut last_cpu)?;
        if shared.caught_up.load(Ordering::Relaxed) == clients_n {
            break Some(shared.now_us() - restart);
        }
        if Instant::now() >= deadline {
            break None;
        }
    };
    let hub_cpu_us = probe.cpu_us()?.saturating_sub(cpu_start);
    let peak_rss_kib = peak_rss_kib(hub.pid)?;
    goal_tx.send_modify(|g| g.stop = true);

    // When each client reconnected, in microseconds after the stop.
    let reconnects = Histogram::new();
    let (mut lost, mut duplicates, mut out_of_order, mut gaps, mut parse_errors) = (0, 0, 0, 0, 0);
    while let Some(done) = clients.join_next().await {
        let c = done.context("a client task failed")?;
        if let Some(at) = c.reconnected_at {
            reconnects.record(at.saturating_sub(restart));
        }
        lost += all.count() - c.seen.count_and(&all);
        duplicates += c.duplicates;
        out_of_order += c.out_of_order;
        gaps += c.gaps;
        parse_errors += c.parse_errors;
    }
    hub.stop(StopSignal::Term).await?;
    let ms = |q: f64| reconnects.quantile(q).map_or(0.0, |us| us as f64 / 1000.0);
    let report = Report {
        clients: args.clients,
        events_published: events,
        events_acknowledged: all.count(),
        stop: match args.stop {
            StopSignal::Term => "SIGTERM",
            StopSignal::Kill => "SIGKILL",
        },
        hub_back_ms: hub_back_us as f64 / 1000.0,
        reconnected: reconnects.count(),
        reconnect_first_ms: ms(0.0),
        reconnect_p50_ms: ms(0.5),
        reconnect_p99_ms: ms(0.99),
        reconnect_last_ms: reconnects.max().map_or(0.0, |us| us as f64 / 1000.0),
        all_caught_up_ms: all_caught_up.map(|us| us as f64 / 1000.0),
        failed_attempts: shared.failed.load(Ordering::Relaxed),
        peak_cpu_cores: peak_cores,
        hub_cpu_s: hub_cpu_us as f64 / 1e6,
        peak_rss_mib: peak_rss_kib as f64 / 1024.0,
        lost,
        duplicates,
        out_of_order,
        gap_notices: gaps,
        parse_errors,
    };
    print_report(&report, args.json, table)
}

fn table(r: &Report) -> String {
    let caught_up = r
        .all_caught_up_ms
        .map_or("not within --max-duration".to_string(), |ms| {
            format!("{ms:.0} ms")
        });
    format!(
        "storm: {} clients, hub stopped with {}, back in {:.0} ms\n\
         events published / acknowledged: {} / {}\n\
         reconnected: {} (first {:.0} ms, p50 {:.0} ms, p99 {:.0} ms, last {:.0} ms after the stop)\n\
         all clients had every event: {caught_up}\n\
         failed connection attempts after the stop: {}\n\
         new hub: peak CPU {:.2} cores, {:.2} CPU-s until caught up, peak RSS {:.1} MiB\n\
         lost: {}  duplicates: {}  out of order: {}  gap notices: {}  parse errors: {}\n",
        r.clients,
        r.stop,
        r.hub_back_ms,
        r.events_published,
        r.events_acknowledged,
        r.reconnected,
        r.reconnect_first_ms,
        r.reconnect_p50_ms,
        r.reconnect_p99_ms,
        r.reconnect_last_ms,
        r.failed_attempts,
        r.peak_cpu_cores,
        r.hub_cpu_s,
        r.peak_rss_mib,
        r.lost,
        r.duplicates,
        r.out_of_order,
        r.gap_notices,
        r.parse_errors,
    )
}
