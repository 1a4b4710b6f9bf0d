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
