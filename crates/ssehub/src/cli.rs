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
}

/// Where history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StoreKind {
    /// In memory: bounded by [history] in the config file, lost on restart.
    Memory,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "SSEHUB_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,

    /// Where history is kept.
    #[arg(long, env = "SSEHUB_STORE", value_enum, default_value = "memory")]
    pub(crate) store: StoreKind,

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

    /// Seconds between keep-alive comments on idle streams (0 for none). [sse.heartbeat_secs]
    #[arg(long, env = "SSEHUB_HEARTBEAT_SECS")]
    pub(crate) heartbeat_secs: Option<u64>,

    /// Reconnection time announced to clients, in milliseconds. [sse.retry_ms]
    #[arg(long, env = "SSEHUB_RETRY_MS")]
    pub(crate) retry_ms: Option<u64>,

    /// Random extra reconnection time per stream, in milliseconds. [sse.retry_jitter_ms]
    #[arg(long, env = "SSEHUB_RETRY_JITTER_MS")]
    pub(crate) retry_jitter_ms: Option<u64>,

    /// An origin allowed by CORS (repeat, or comma-separate in the variable). [cors.origins]
    #[arg(
        long = "cors-origin",
        env = "SSEHUB_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub(crate) cors_origins: Vec<String>,

    /// The largest request body, in bytes. [limits.max_body_bytes]
    #[arg(long, env = "SSEHUB_MAX_BODY_BYTES")]
    pub(crate) max_body_bytes: Option<usize>,

    /// The most SSE streams open at once. [limits.max_connections]
    #[arg(long, env = "SSEHUB_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,

    /// Bytes queued per subscriber before it is cut off as too slow.
    /// [limits.subscriber_buffer_bytes]
    #[arg(long, env = "SSEHUB_SUBSCRIBER_BUFFER_BYTES")]
    pub(crate) subscriber_buffer_bytes: Option<usize>,

    /// The most events kept in history. [history.max_events]
    #[arg(long, env = "SSEHUB_HISTORY_MAX_EVENTS")]
    pub(crate) history_max_events: Option<usize>,

    /// Seconds to let streams finish after SIGTERM before closing them. [shutdown.grace_secs]
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
