//! The command line: every command and flag, as clap definitions.

use clap::{Args, Parser, Subcommand};

/// ssehub — a Server-Sent Events push hub and its command-line client.
#[derive(Debug, Parser)]
#[command(name = "ssehub", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Read an event stream on stdin and print one JSON object per dispatched event.
    ///
    /// Each line is {"type": …, "data": …, "last_event_id": …}, printed as soon as the event
    /// is complete. The parser follows the WHATWG standard exactly: an incomplete final event
    /// is not printed.
    Decode(DecodeArgs),
    /// Run the hub: publish and subscribe over HTTP, with history and exact resume.
    ///
    /// Every flag can also be set as an SSEHUB_* environment variable; flags and variables
    /// override the config file.
    Serve(ServeArgs),
    /// Publish one event; prints its id.
    ///
    /// The data is the DATA argument, or stdin when DATA is absent or `-`.
    Pub(PubArgs),
    /// Subscribe and print events as they come; reconnects and resumes by itself.
    Sub(SubArgs),
    /// Follow a file like `tail -F` and publish each new line as one event.
    ///
    /// Events have type `message` and the line (without its line ending) as data. Follows
    /// rotation and truncation, waits for a file that does not exist yet, and publishes in
    /// batches. Ctrl-C or SIGTERM publishes what is left and exits 0.
    Tail(TailArgs),
    /// Run a command; publish its stdout and stderr lines as they come, then its exit.
    ///
    /// Events of type `stdout` and `stderr`, then `exit` with {"code": N} (or {"signal": N}).
    /// The output also goes to this terminal unchanged, whether or not the hub takes it. Exits
    /// with the command's code: 127 when it is not found, 125 when ssehub itself fails.
    Exec(ExecArgs),
    /// Load-test an SSE hub — this one or any other — and report deliveries and latency.
    ///
    /// Each scenario prints a table, or one JSON object with --json. Runs are bounded in time
    /// and nothing is retried silently: every failure is counted in the report.
    Bench(BenchArgs),
}

/// Where history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StoreKind {
    /// On disk in --data-dir: acknowledged events survive crashes and restarts.
    Disk,
    /// In memory: lost on restart (ids from before a restart get the gap notice).
    Memory,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "SSEHUB_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,

    /// Where history is kept.
    #[arg(long, env = "SSEHUB_STORE", value_enum, default_value = "disk")]
    pub(crate) store: StoreKind,

    /// The directory of the durable store (created if missing).
    #[arg(long, env = "SSEHUB_DATA_DIR", default_value = "./ssehub-data")]
    pub(crate) data_dir: std::path::PathBuf,

    /// When publishes are fsync'd: `always` (before the 200; the default: a crash of the
    /// process or the machine loses nothing acknowledged) or `interval` (every
    /// storage.fsync_interval_ms: a crash of the process or the machine loses what was
    /// acknowledged since the last fsync; the next start takes a new log id, so clients
    /// resuming get the gap notice, never a silent skip). (config: storage.fsync)
    #[arg(long, env = "SSEHUB_FSYNC", value_enum)]
    pub(crate) fsync: Option<crate::config::Fsync>,

    /// A TOML config file (see --print-default-config).
    #[arg(long, env = "SSEHUB_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<std::path::PathBuf>,

    /// Validate the configuration, print it as it would be used, and exit.
    #[arg(long)]
    pub(crate) check_config: bool,

    /// Print the default configuration file and exit.
    #[arg(long)]
    pub(crate) print_default_config: bool,

    /// Log filter, in tracing's EnvFilter syntax (`info`, `ssehub=debug,info`, …).
    #[arg(long, env = "SSEHUB_LOG", default_value = "info")]
    pub(crate) log: String,

    /// Seconds between keep-alive comments on idle streams (0 for none). (config: sse.heartbeat_secs)
    #[arg(long, env = "SSEHUB_HEARTBEAT_SECS")]
    pub(crate) heartbeat_secs: Option<u64>,

    /// Reconnection time announced to clients, in milliseconds. (config: sse.retry_ms)
    #[arg(long, env = "SSEHUB_RETRY_MS")]
    pub(crate) retry_ms: Option<u64>,

    /// Random extra reconnection time per stream, in milliseconds. (config: sse.retry_jitter_ms)
    #[arg(long, env = "SSEHUB_RETRY_JITTER_MS")]
    pub(crate) retry_jitter_ms: Option<u64>,

    /// An origin allowed by CORS (repeat, or comma-separate in the variable). (config: cors.origins)
    #[arg(
        long = "cors-origin",
        env = "SSEHUB_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub(crate) cors_origins: Vec<String>,

    /// A Host name the hub answers to: `name`, `name:port` or `*` (repeat, or comma-separate
    /// in the variable). Default: loopback names on a loopback listener, any otherwise.
    /// (config: http.allowed_hosts)
    #[arg(
        long = "allowed-host",
        env = "SSEHUB_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub(crate) allowed_hosts: Vec<String>,

    /// The reverse proxy in front of the hub: the header it sets to the client's address.
    /// Without it, a request carrying Forwarded, X-Forwarded-For or Via may not publish
    /// anonymously. (config: http.trusted_proxy)
    #[arg(long, env = "SSEHUB_TRUSTED_PROXY", value_enum)]
    pub(crate) trusted_proxy: Option<crate::config::TrustedProxy>,

    /// The largest request body, and the largest event once SSE-encoded, in bytes.
    /// (config: limits.max_body_bytes)
    #[arg(long, env = "SSEHUB_MAX_BODY_BYTES")]
    pub(crate) max_body_bytes: Option<usize>,

    /// The most SSE streams open at once. (config: limits.max_connections)
    #[arg(long, env = "SSEHUB_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,

    /// Bytes queued per subscriber before it is cut off as too slow; at least
    /// --max-body-bytes. (config: limits.subscriber_buffer_bytes)
    #[arg(long, env = "SSEHUB_SUBSCRIBER_BUFFER_BYTES")]
    pub(crate) subscriber_buffer_bytes: Option<usize>,

    /// The most events kept in history. (config: history.max_events)
    #[arg(long, env = "SSEHUB_HISTORY_MAX_EVENTS")]
    pub(crate) history_max_events: Option<u64>,

    /// HS256 secret of publisher tokens (config: auth.publisher_key).
    #[arg(long, env = "SSEHUB_PUBLISHER_KEY", hide_env_values = true)]
    pub(crate) publisher_key: Option<String>,

    /// HS256 secret of subscriber tokens (config: auth.subscriber_key).
    #[arg(long, env = "SSEHUB_SUBSCRIBER_KEY", hide_env_values = true)]
    pub(crate) subscriber_key: Option<String>,

    /// Let anyone publish without a token on a non-loopback address.
    /// (config: auth.allow_anonymous_publish)
    #[arg(long, env = "SSEHUB_ALLOW_ANONYMOUS_PUBLISH")]
    pub(crate) allow_anonymous_publish: bool,

    /// Seconds to let streams finish after SIGTERM before closing them. (config: shutdown.grace_secs)
    #[arg(long, env = "SSEHUB_SHUTDOWN_GRACE_SECS")]
    pub(crate) shutdown_grace_secs: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// Also print comment lines, as {"comment": …}.
    #[arg(long)]
    pub(crate) comments: bool,

    /// The last event id before the stream starts (as after a reconnect).
    #[arg(long, value_name = "ID", default_value = "")]
    pub(crate) last_event_id: String,

    /// The longest line kept in memory; longer data/event/id lines drop their event.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub(crate) max_line_bytes: usize,

    /// The largest data of one event; larger events are dropped with a warning.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub(crate) max_data_bytes: usize,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    pub(crate) scenario: BenchScenario,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchScenario {
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
}

#[derive(Debug, Args)]
pub(crate) struct TopicsArgs {
    /// The hub's base URL.
    #[arg(long, env = "SSEHUB_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) hub: String,

    /// How many topics, each with one subscription (one connection, so at most the open-file
    /// limit).
    #[arg(long, short = 'n', default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) topics: u32,

    /// Events per `POST /publish` request (ssehub takes at most 1000 by default).
    #[arg(long, short = 'b', default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) batch: u32,

    /// Events published per second, in all (an upper bound).
    #[arg(long, short = 'r', default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rate: u32,

    /// Publishers working in parallel, one connection each, each sending one batch at a time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) publishers: u32,

    /// The size of each event's data, in bytes (padded; at least what the fields need).
    #[arg(long, default_value_t = 128)]
    pub(crate) payload_bytes: usize,

    /// Into how many parts (in publish order) the per-part figures are cut.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) parts: u32,

    #[command(flatten)]
    pub(crate) run: RunArgs,

    /// The hub's process id: report its CPU time per event (overall and per part) and its
    /// resident memory per topic. Linux only (/proc).
    #[arg(long, value_name = "PID")]
    pub(crate) hub_pid: Option<u32>,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ConnsArgs {
    /// The hub's base URL (http:// only).
    #[arg(long, env = "SSEHUB_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) hub: String,

    /// How many connections to open.
    #[arg(long, short = 'n', default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) connections: u32,

    /// The topic subscribed to (default: a new one per run, `bench/conns/<run id>`).
    #[arg(long)]
    pub(crate) topic: Option<String>,

    /// Source addresses to bind the sockets to, comma-separated, used in turn (default: the
    /// kernel's choice, which allows about 28,000 connections to one hub address).
    #[arg(long, value_delimiter = ',', conflicts_with = "source_count")]
    pub(crate) sources: Vec<std::net::IpAddr>,

    /// Bind the sockets to 127.0.0.1 … 127.0.0.K in turn (for a hub on the loopback).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(1..))]
    pub(crate) source_count: Option<u8>,

    /// Client processes (default: enough to keep each one under 15,000 connections and its
    /// open-file limit).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) processes: Option<u32>,

    /// How many connections each process may be opening at the same time.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) connect_concurrency: u32,

    /// Seconds allowed to open one connection (connect, request, status and first bytes).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub(crate) timeout: f64,

    /// Seconds to hold the connections once they are all open (the default covers one
    /// heartbeat interval of a default hub).
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub(crate) hold: f64,

    /// The hub's process id: report its resident memory (VmRSS) before, with every connection
    /// open, and at the end of --hold, and the difference per connection. Linux only.
    #[arg(long, value_name = "PID")]
    pub(crate) hub_pid: Option<u32>,

    /// Seconds the whole run may take (default: enough to open everything, then --hold).
    #[arg(long, value_name = "SECS")]
    pub(crate) max_duration: Option<f64>,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,

    /// Internal: run as one client process of a multi-process run, reporting on stdout and
    /// closing when stdin closes.
    #[arg(long, hide = true)]
    pub(crate) worker: bool,

    /// Internal: the index of this worker's first connection (which source it starts with).
    #[arg(long, hide = true, default_value_t = 0)]
    pub(crate) worker_offset: u32,
}

#[derive(Debug, Args)]
pub(crate) struct PublishBenchArgs {
    #[command(flatten)]
    pub(crate) hub: HubArg,

    /// Concurrent publishers, each waiting for its answer before the next request.
    #[arg(long, short = 'p', default_value_t = 64)]
    pub(crate) publishers: u32,

    /// Events per request (POST /publish).
    #[arg(long, short = 'b', default_value_t = 1)]
    pub(crate) batch: u32,

    /// Events to publish in total.
    #[arg(long, short = 'm', default_value_t = 100_000)]
    pub(crate) events: u32,

    /// Total events per second (0: flat out).
    #[arg(long, short = 'r', default_value_t = 0)]
    pub(crate) rate: u32,

    /// Data bytes per event.
    #[arg(long, default_value_t = 100)]
    pub(crate) payload_bytes: usize,

    /// Stop after this many seconds even if not done.
    #[arg(long, default_value_t = 120.0)]
    pub(crate) max_duration: f64,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// When a subscription counts as open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReadyOn {
    /// Status 200 and the first bytes of the body (ssehub sends `retry:` at once).
    FirstByte,
    /// Status 200 and the headers only: for servers that send nothing before the first event.
    Headers,
}

#[derive(Debug, Args)]
pub(crate) struct FanoutArgs {
    /// The hub's base URL.
    #[arg(long, env = "SSEHUB_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) hub: String,

    /// How many subscriptions to open (one connection each).
    #[arg(long, short = 'n', default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) subscribers: u32,

    /// How many events to publish.
    #[arg(long, short = 'm', default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) events: u32,

    /// Events published per second, in all (an upper bound: see --publishers).
    #[arg(long, short = 'r', default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rate: u32,

    /// The topic (default: a new one per run, `bench/fanout/<run id>`).
    #[arg(long)]
    pub(crate) topic: Option<String>,

    /// Publishers working in parallel, one connection each: publisher p sends events p, p+K,
    /// p+2K, …, each one at a time, so order is checked per publisher. One is enough while a
    /// publish takes less than 1/rate; a hub that fsyncs before answering needs more.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) publishers: u32,

    /// The size of each event's data, in bytes (padded; at least what the fields need).
    #[arg(long, default_value_t = 128)]
    pub(crate) payload_bytes: usize,

    #[command(flatten)]
    pub(crate) run: RunArgs,

    /// Where to subscribe; `{hub}` and `{topic}` are replaced (the topic verbatim).
    #[arg(long, default_value = "{hub}/topics/{topic}")]
    pub(crate) subscribe_url_template: String,

    /// Where to publish (POST, the event data as the body); `{hub}` and `{topic}` are replaced.
    #[arg(long, default_value = "{hub}/topics/{topic}")]
    pub(crate) publish_url_template: String,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The hub a client command talks to.
#[derive(Debug, Clone, Args)]
pub(crate) struct HubArg {
    /// The hub's base URL.
    #[arg(long, env = "SSEHUB_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) hub: String,
}

#[derive(Debug, Args)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    pub(crate) hub: HubArg,

    /// The topic (`builds/42/log`).
    pub(crate) topic: String,

    /// The event data; stdin when absent or `-` (without its final line break).
    pub(crate) data: Option<String>,

    /// The event type (what `addEventListener` listens for); `message` when absent.
    #[arg(long)]
    pub(crate) event: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    pub(crate) hub: HubArg,

    /// Topics or patterns (`*` is one segment, a trailing `**` the rest).
    #[arg(required = true)]
    pub(crate) topics: Vec<String>,

    /// Start after this id, or `earliest` for all retained history (default: live only).
    #[arg(long, value_name = "ID|earliest")]
    pub(crate) last_event_id: Option<String>,

    /// One JSON object per event: {"type", "data", "last_event_id"}.
    #[arg(long)]
    pub(crate) json: bool,

    /// Exit after this many events.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
}

/// How `tail` and `exec` buffer lines that the hub has not taken yet.
#[derive(Debug, Clone, Args)]
pub(crate) struct LineBufferArgs {
    /// The most lines waiting for the hub (while it is slow or unreachable). When full, `exec`
    /// drops the newest lines (counted, with a warning); `tail` stops reading until there is
    /// room.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_buffered_lines: u64,

    /// The most bytes of line data waiting for the hub (same behaviour when full).
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_buffered_bytes: u64,

    /// Seconds to keep trying to publish what is left when the command ends; what is still
    /// waiting after that is reported on stderr.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub(crate) flush_timeout: f64,
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    pub(crate) hub: HubArg,

    /// The topic to publish to (`logs/web`).
    #[arg(long)]
    pub(crate) topic: String,

    /// The file to follow (it may not exist yet).
    pub(crate) file: std::path::PathBuf,

    /// Publish the lines already in the file first (default: only lines added from now on).
    #[arg(long)]
    pub(crate) from_start: bool,

    /// How often to look for new lines, truncation and rotation, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) poll_ms: u64,

    #[command(flatten)]
    pub(crate) buffer: LineBufferArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    #[command(flatten)]
    pub(crate) hub: HubArg,

    /// The topic to publish to (`builds/42/log`).
    #[arg(long)]
    pub(crate) topic: String,

    #[command(flatten)]
    pub(crate) buffer: LineBufferArgs,

    /// The command to run and its arguments (put `--` before them).
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) command: Vec<std::ffi::OsString>,
}

/// What every scenario that opens subscriptions shares: how they open, how long a run may
/// take, and the extra headers of every request.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// How many subscriptions may be opening at the same time.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) connect_concurrency: u32,

    /// Seconds allowed for one request: opening one subscription, or one publish.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub(crate) timeout: f64,

    /// Seconds to wait for deliveries after the last publish.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub(crate) drain: f64,

    /// Seconds the whole run may take (default: enough to open, publish twice over, drain).
    #[arg(long, value_name = "SECS")]
    pub(crate) max_duration: Option<f64>,

    /// When a subscription counts as open.
    #[arg(long, value_enum, default_value = "first-byte")]
    pub(crate) ready_on: ReadyOn,

    /// An extra request header, `Name: value`, sent with every request (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
}
