//! The command line of `ssehub bench`: one clap `Args` struct per scenario, flattened into
//! the `ssehub` binary's own command line as its `bench` command.
//!
//! The field doc comments are the `--help` text (clap reads them), so they speak to the user.

use clap::{Args, Subcommand};

/// `ssehub bench`: which scenario to run.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The scenario and its flags.
    #[command(subcommand)]
    pub scenario: BenchScenario,
}

/// The scenarios; each variant's doc comment is its `--help` text.
#[derive(Debug, Subcommand)]
pub enum BenchScenario {
    /// N subscribers on one topic, M events published at R/s: deliveries, losses, order and
    /// end-to-end latency.
    ///
    /// Opens every subscription first (GET, with bounded concurrency), then publishes (POST,
    /// paced, from --publishers connections), then waits up to --drain seconds for the last
    /// deliveries. Each event's data is JSON holding the run id, a sequence number and the
    /// publish time in microseconds since the Unix epoch; latency is measured from that time
    /// to the moment the subscriber has parsed the event.
    Fanout(FanoutArgs),
    /// P publishers sending batches of B events, flat out or at a total rate: acknowledged
    /// events per second and acknowledgement latency (with a durable hub, each
    /// acknowledgement means the batch was fsync'd).
    #[command(alias = "throughput")]
    Publish(PublishBenchArgs),
    /// N idle SSE connections, held open: time to open them all, failures, and (with
    /// --hub-pid) the hub's resident memory per connection.
    ///
    /// Each connection is a plain TCP socket that sends one `GET` with `Accept:
    /// text/event-stream` and counts as open at status 200 plus the first bytes of the body;
    /// after that it only reads and discards (heartbeats). Sockets can be bound to several
    /// source addresses (`--source-count 4` is 127.0.0.1–127.0.0.4), each with its own
    /// ephemeral ports, and spread over several processes of this binary, each under its
    /// open-file limit. Everything is closed (with a reset, so no TIME_WAIT holds the ports)
    /// after --hold seconds.
    Conns(ConnsArgs),
    /// N topics with one subscriber each, and one event published to each: deliveries,
    /// losses, wrong-topic deliveries, latency, and whether the last events cost the hub
    /// more than the first.
    ///
    /// Opens N subscriptions, each to its own topic `bench/topics/<run id>/<i>` (one
    /// connection each), then publishes one event to every topic in batches (`POST
    /// /publish`), paced, then waits up to --drain seconds for the last deliveries. The events
    /// are cut into --parts parts in publish order, each with its own latency, publish
    /// acknowledgement time and (with --hub-pid) the hub's CPU time per event.
    Topics(TopicsArgs),
    /// N clients on a durable hub that restarts: every client reconnects with its
    /// `Last-Event-ID` after the reconnection time the hub announced (`retry:`), as a browser
    /// does; the time until all have resumed, the new hub's peak CPU and memory, and events
    /// lost and duplicated (both must be 0).
    ///
    /// The bench runs the hub itself: --serve is a shell command that starts it listening at
    /// --hub (run with `sh -c "exec …"`, so that its PID is the hub's). It opens every client,
    /// publishes --events events, stops the hub (--stop: SIGTERM, a deploy; or SIGKILL, a
    /// crash), starts it again with the same command, publishes --events more while the
    /// clients come back, and waits until every client has every acknowledged event.
    Storm(StormArgs),
    /// A topic with K keys (each published V times), then a late joiner asking for the
    /// snapshot (`?snapshot=true`): time to its first event and to the end of the snapshot.
    ///
    /// Fills a fresh topic `bench/snapshot/<run id>` with keyed batches (`POST /publish`,
    /// each key's versions in turn), then opens one stream with `snapshot=true` and reads
    /// until every key has arrived, checking each comes once, with its last version.
    Snapshot(SnapshotArgs),
}

/// `ssehub bench snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The hub's base URL.
    #[arg(long, env = "SSEHUB_URL", default_value = "http://127.0.0.1:8080")]
    pub hub: String,

    /// Keys in the topic (the snapshot's size).
    #[arg(long, short = 'k', default_value_t = 100_000)]
    pub keys: u32,

    /// Versions published per key (the log holds keys × versions events).
    #[arg(long, default_value_t = 1)]
    pub versions: u32,

    /// Data bytes per event (at least the key and version).
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,

    /// Stop after this many seconds even if not done.
    #[arg(long, default_value_t = 600.0)]
    pub max_duration: f64,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// How `ssehub bench storm` stops the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StopSignal {
    /// SIGTERM: the hub shuts down gracefully (ends its streams), as in a deploy.
    Term,
    /// SIGKILL: the hub dies at once, as in a crash.
    Kill,
}

/// `ssehub bench storm`.
#[derive(Debug, Args)]
pub struct StormArgs {
    /// The hub's base URL (http:// only): where --serve makes it listen.
    #[arg(long, env = "SSEHUB_URL", default_value = "http://127.0.0.1:8080")]
    pub hub: String,
    /// The shell command that starts the hub (in the foreground), e.g. `ssehub serve --listen
    /// 127.0.0.1:8080 --data-dir /tmp/storm`. Run twice: before and after the restart.
    #[arg(long)]
    pub serve: String,
    /// How many clients (one connection each; at most the open-file limit).
    #[arg(long, short = 'n', default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// Events published before the restart, and as many again after it.
    #[arg(long, short = 'm', default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub events: u32,
    /// Events published per second.
    #[arg(long, short = 'r', default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,
    /// How the hub is stopped.
    #[arg(long, value_enum, default_value = "term")]
    pub stop: StopSignal,
    /// The topic (default: a new one per run, `bench/storm/<run id>`).
    #[arg(long)]
    pub topic: Option<String>,
    /// How many clients may be connecting at the same time (each client process of a real
    /// storm is one browser: this bounds the bench, not the clients).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_concurrency: u32,
    /// A client's reconnection time before the hub has announced one (a browser's is about
    /// 3 s).
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub default_retry_ms: u64,
    /// Seconds the whole run may take.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub max_duration: f64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `ssehub bench topics`.
#[derive(Debug, Args)]
pub struct TopicsArgs {
    /// The hub's base URL.
    #[arg(long, env = "SSEHUB_URL", default_value = "http://127.0.0.1:8080")]
    pub hub: String,

    /// How many topics, each with one subscription (one connection, so at most the open-file
    /// limit).
    #[arg(long, short = 'n', default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub topics: u32,

    /// Events per `POST /publish` request (ssehub takes at most 1000 by default).
    #[arg(long, short = 'b', default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,

    /// Events published per second, in all (an upper bound).
    #[arg(long, short = 'r', default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,

    /// Publishers working in parallel, one connection each, each sending one batch at a time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub publishers: u32,

    /// The size of each event's data, in bytes (padded; at least what the fields need).
    #[arg(long, default_value_t = 128)]
    pub payload_bytes: usize,

    /// Into how many parts (in publish order) the per-part figures are cut.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub parts: u32,

    /// How subscriptions open and how long the run may take.
    #[command(flatten)]
    pub run: RunArgs,

    /// The hub's process id: report its CPU time per event (overall and per part) and its
    /// resident memory per topic. Linux only (/proc).
    #[arg(long, value_name = "PID")]
    pub hub_pid: Option<u32>,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `ssehub bench conns`.
#[derive(Debug, Args)]
pub struct ConnsArgs {
    /// The hub's base URL (http:// only).
    #[arg(long, env = "SSEHUB_URL", default_value = "http://127.0.0.1:8080")]
    pub hub: String,

    /// How many connections to open.
    #[arg(long, short = 'n', default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,

    /// The topic subscribed to (default: a new one per run, `bench/conns/<run id>`).
    #[arg(long)]
    pub topic: Option<String>,

    /// Source addresses to bind the sockets to, comma-separated, used in turn (default: the
    /// kernel's choice, which allows about 28,000 connections to one hub address).
    #[arg(long, value_delimiter = ',', conflicts_with = "source_count")]
    pub sources: Vec<std::net::IpAddr>,

    /// Bind the sockets to 127.0.0.1 … 127.0.0.K in turn (for a hub on the loopback).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(1..))]
    pub source_count: Option<u8>,

    /// Client processes (default: enough to keep each one under 15,000 connections and its
    /// open-file limit).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub processes: Option<u32>,

    /// Open the streams over HTTP/2 with prior knowledge (h2c), K per connection (at most the
    /// hub's limits.max_concurrent_streams, 100 by default): --connections counts streams.
    /// One client process.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub http2: Option<u32>,

    /// How many connections each process may be opening at the same time.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_concurrency: u32,

    /// Seconds allowed to open one connection (connect, request, status and first bytes).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,

    /// Seconds to hold the connections once they are all open (the default covers one
    /// heartbeat interval of a default hub).
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub hold: f64,

    /// The hub's process id: report its resident memory (VmRSS) before, with every connection
    /// open, and at the end of --hold, and the difference per connection. Linux only.
    #[arg(long, value_name = "PID")]
    pub hub_pid: Option<u32>,

    /// Seconds the whole run may take (default: enough to open everything, then --hold).
    #[arg(long, value_name = "SECS")]
    pub max_duration: Option<f64>,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Internal: run as one client process of a multi-process run, reporting on stdout and
    /// closing when stdin closes.
    #[arg(long, hide = true)]
    pub worker: bool,

    /// Internal: the index of this worker's first connection (which source it starts with).
    #[arg(long, hide = true, default_value_t = 0)]
    pub worker_offset: u32,
}

/// `ssehub bench publish`.
#[derive(Debug, Args)]
pub struct PublishBenchArgs {
    /// The hub's base URL.
    #[arg(long, env = "SSEHUB_URL", default_value = "http://127.0.0.1:8080")]
    pub hub: String,

    /// Concurrent publishers, each waiting for its answer before the next request.
    #[arg(long, short = 'p', default_value_t = 64)]
    pub publishers: u32,

    /// Events per request (POST /publish).
    #[arg(long, short = 'b', default_value_t = 1)]
    pub batch: u32,

    /// Events to publish in total.
    #[arg(long, short = 'm', default_value_t = 100_000)]
    pub events: u32,

    /// Total events per second (0: flat out).
    #[arg(long, short = 'r', default_value_t = 0)]
    pub rate: u32,

    /// Data bytes per event.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,

    /// Stop after this many seconds even if not done.
    #[arg(long, default_value_t = 120.0)]
    pub max_duration: f64,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// When a subscription counts as open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadyOn {
    /// Status 200 and the first bytes of the body (ssehub sends `retry:` at once).
    FirstByte,
    /// Status 200 and the headers only: for servers that send nothing before the first event.
    Headers,
}

/// `ssehub bench fanout`.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// The hub's base URL.
    ///
    /// Give it more than once (or as a comma-separated list) for the nodes of one cluster:
    /// subscriber i opens on hub i mod H, publisher p publishes to hub p mod H, and every
    /// count (lost, duplicates, order, latency) is over all subscribers together.
    #[arg(
        long,
        env = "SSEHUB_URL",
        default_value = "http://127.0.0.1:8080",
        value_delimiter = ',',
        required = false
    )]
    pub hub: Vec<String>,

    /// How many subscriptions to open (one connection each).
    #[arg(long, short = 'n', default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub subscribers: u32,

    /// How many events to publish.
    #[arg(long, short = 'm', default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub events: u32,

    /// Events published per second, in all (an upper bound: see --publishers).
    #[arg(long, short = 'r', default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,

    /// The topic (default: a new one per run, `bench/fanout/<run id>`).
    #[arg(long)]
    pub topic: Option<String>,

    /// Publishers working in parallel, one connection each: publisher p sends events p, p+K,
    /// p+2K, …, each one at a time, so order is checked per publisher. One is enough while a
    /// publish takes less than 1/rate; a hub that fsyncs before answering needs more.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub publishers: u32,

    /// The size of each event's data, in bytes (padded; at least what the fields need).
    #[arg(long, default_value_t = 128)]
    pub payload_bytes: usize,

    /// How subscriptions open and how long the run may take.
    #[command(flatten)]
    pub run: RunArgs,

    /// Where to subscribe; `{hub}` and `{topic}` are replaced (the topic verbatim).
    #[arg(long, default_value = "{hub}/topics/{topic}")]
    pub subscribe_url_template: String,

    /// Where to publish (POST, the event data as the body); `{hub}` and `{topic}` are replaced.
    #[arg(long, default_value = "{hub}/topics/{topic}")]
    pub publish_url_template: String,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// What every scenario that opens subscriptions shares: how they open, how long a run may
/// take, and the extra headers of every request.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// How many subscriptions may be opening at the same time.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_concurrency: u32,

    /// Seconds allowed for one request: opening one subscription, or one publish.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,

    /// Seconds to wait for deliveries after the last publish.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub drain: f64,

    /// Seconds the whole run may take (default: enough to open, publish twice over, drain).
    #[arg(long, value_name = "SECS")]
    pub max_duration: Option<f64>,

    /// When a subscription counts as open.
    #[arg(long, value_enum, default_value = "first-byte")]
    pub ready_on: ReadyOn,

    /// An extra request header, `Name: value`, sent with every request (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
}
