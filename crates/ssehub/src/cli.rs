//! The command line: every command and flag, as clap definitions (those of `ssehub bench`
//! come from the `ssehub-bench` crate, as [`BenchArgs`]).

use clap::{Args, Parser, Subcommand};
use ssehub_bench::BenchArgs;

use crate::config::{self, Config, Overrides};

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

/// `ssehub serve`'s flags: the process knobs, then the flags of each config section, which
/// `config.rs` declares with the section's fields (each section in the place its flags take in
/// `--help`).
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

    #[command(flatten)]
    pub(crate) storage: Overrides<config::Storage>,
    #[command(flatten)]
    pub(crate) cluster: Overrides<config::Cluster>,

    /// Feed the demos at /demos/ from inside the hub (a clock, a build log, a notification
    /// inbox, a fake model behind the relay /demo-ai) and print links with tokens for them;
    /// loopback listeners only.
    #[arg(long, env = "SSEHUB_DEMO")]
    pub(crate) demo: bool,

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

    #[command(flatten)]
    pub(crate) sse: Overrides<config::Sse>,
    #[command(flatten)]
    pub(crate) cors: Overrides<config::Cors>,
    #[command(flatten)]
    pub(crate) http: Overrides<config::Http>,
    #[command(flatten)]
    pub(crate) limits: Overrides<config::Limits>,
    #[command(flatten)]
    pub(crate) history: Overrides<config::History>,
    #[command(flatten)]
    pub(crate) auth: Overrides<config::Auth>,
    #[command(flatten)]
    pub(crate) shutdown: Overrides<config::Shutdown>,
    #[command(flatten)]
    pub(crate) mercure: Overrides<config::Mercure>,
    #[command(flatten)]
    pub(crate) console: Overrides<config::Console>,

    /// A relay: requests to PREFIX/… go to URL/…, and an event-stream answer is stored and
    /// resumable (repeat, or comma-separate in the variable; limits in `[[relay]]`).
    #[arg(
        long = "relay",
        env = "SSEHUB_RELAY",
        value_name = "PREFIX=URL",
        value_delimiter = ','
    )]
    pub(crate) relay: Vec<String>,
    #[command(flatten)]
    pub(crate) tls: Overrides<config::Tls>,
}

impl ServeArgs {
    /// Lays the flags and variables given over `config` (the file, or the defaults).
    ///
    /// # Errors
    ///
    /// Only on a bug in a section's clap attributes (see [`Overrides::apply`]).
    pub(crate) fn override_config(&self, config: &mut Config) -> Result<(), clap::Error> {
        self.storage.apply(&mut config.storage)?;
        self.sse.apply(&mut config.sse)?;
        self.cors.apply(&mut config.cors)?;
        self.http.apply(&mut config.http)?;
        self.limits.apply(&mut config.limits)?;
        self.history.apply(&mut config.history)?;
        self.auth.apply(&mut config.auth)?;
        self.shutdown.apply(&mut config.shutdown)?;
        self.mercure.apply(&mut config.mercure)?;
        self.console.apply(&mut config.console)?;
        self.tls.apply(&mut config.tls)?;
        self.cluster.apply(&mut config.cluster)
    }
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

/// The hub a client command talks to.
#[derive(Debug, Clone, Args)]
pub(crate) struct HubArg {
    /// The hub's base URL.
    #[arg(long, env = "SSEHUB_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) hub: String,

    /// For an https:// hub: trust only the CA certificate(s) in this PEM file (a self-signed
    /// hub's own certificate, or a private CA) instead of the system's.
    #[arg(
        long,
        env = "SSEHUB_CA_CERT",
        value_name = "FILE",
        conflicts_with = "insecure"
    )]
    pub(crate) ca_cert: Option<std::path::PathBuf>,

    /// For an https:// hub: accept any certificate (testing only: no protection against
    /// anyone on the path).
    #[arg(long)]
    pub(crate) insecure: bool,
}

impl HubArg {
    /// Which certificates the hub may present.
    pub(crate) fn trust(&self) -> anyhow::Result<ssehub_client::TlsTrust> {
        Ok(match &self.ca_cert {
            Some(path) => ssehub_client::TlsTrust::from_pem_file(path)?,
            None if self.insecure => ssehub_client::TlsTrust::Insecure,
            None => ssehub_client::TlsTrust::System,
        })
    }

    /// A publish client of the hub.
    pub(crate) fn client(&self) -> anyhow::Result<ssehub_client::HubClient> {
        Ok(ssehub_client::HubClient::with_tls(
            &self.hub,
            &self.trust()?,
        ))
    }
}

#[derive(Debug, Args)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    pub(crate) hub: HubArg,

    /// The topic (`builds/42/log`).
    pub(crate) topic: String,

    /// The event data; stdin when absent or `-` (without its final line break).
    #[arg(conflicts_with = "file")]
    pub(crate) data: Option<String>,

    /// Publish this file's bytes, exactly, as a binary event (`-`: stdin's bytes).
    #[arg(long, value_name = "PATH")]
    pub(crate) file: Option<std::path::PathBuf>,

    /// The event type (what `addEventListener` listens for); `message` when absent.
    #[arg(long)]
    pub(crate) event: Option<String>,

    /// The event's id (its SSE id, printed back); the hub gives one when absent. Refused when
    /// an event the hub retains already has it.
    #[arg(long)]
    pub(crate) id: Option<String>,

    /// The key the event is the newest value of: `--snapshot` subscribers start with each
    /// key's newest value.
    #[arg(long)]
    pub(crate) key: Option<String>,

    /// Publish the tombstone of --key instead (no data): the key leaves snapshots, and live
    /// subscribers get an `ssehub-delete` event with the key as data.
    #[arg(long, requires = "key")]
    pub(crate) delete: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    pub(crate) hub: HubArg,

    /// Topics or patterns (`*` is one segment, a trailing `**` the rest); with --post, the
    /// relay URL to POST to.
    #[arg(required = true)]
    pub(crate) topics: Vec<String>,

    /// POST this body to the URL (an ssehub relay) and print the answer, resuming it after a
    /// cut, until its end; exits 1 when the answer ended early (upstream error, timeout, …).
    #[arg(long, value_name = "BODY")]
    pub(crate) post: Option<String>,

    /// A request header, `NAME: VALUE` (repeat): `Authorization: Bearer …` for the upstream.
    #[arg(long, short = 'H', value_name = "NAME: VALUE")]
    pub(crate) header: Vec<String>,

    /// Start after this id, or `earliest` for all retained history (default: live only).
    #[arg(long, value_name = "ID|earliest")]
    pub(crate) last_event_id: Option<String>,

    /// Start with the newest value of every key of the topics (`?snapshot=true`), then live;
    /// a reconnection resumes from the last event as usual.
    #[arg(long)]
    pub(crate) snapshot: bool,

    /// One JSON object per event: {"type", "data", "last_event_id"}; a binary event's bytes
    /// as {"data_base64"} instead of "data", its type without the `.b64` mark, and "binary":
    /// true.
    #[arg(long)]
    pub(crate) json: bool,

    /// Write the bytes of each binary event to a file in this directory, named by its event id
    /// (characters other than letters, digits, `-`, `_` and `.` become `_`), and print its path.
    #[arg(long, value_name = "DIR")]
    pub(crate) save_dir: Option<std::path::PathBuf>,

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
