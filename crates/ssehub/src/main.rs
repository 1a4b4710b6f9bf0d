//! `ssehub`: the hub and its command-line client, in one binary.
//!
//! This file only parses the command line and hands off to one module per command; the logic
//! lives in the library crates (`ssehub-wire`, `ssehub-core`, `ssehub-http`, `ssehub-bench`, …).
//!
//! # Layout
//!
//! - `cli.rs` — the clap definitions of every command and flag.
//! - `decode.rs` — `ssehub decode`: event stream on stdin → one JSON object per event.
//! - `serve.rs` — `ssehub serve`: wiring, telemetry, signals and phased shutdown; the
//!   connection layer is the `ssehub-server` crate.
//! - `config.rs` — the typed TOML config file.
//! - `demo.rs` — `serve --demo`: the clock, build log and inbox that feed the demo pages.
//! - `ssehub bench` (`fanout`, `topics`, `conns`, `publish`) is the `ssehub-bench` crate: its
//!   flags come from there, and this binary only calls `ssehub_bench::run`.
//! - `pub_command.rs`, `sub_command.rs` — `ssehub pub` and `ssehub sub`.
//! - `tail.rs`, `exec.rs` — `ssehub tail` and `ssehub exec`: lines of a file or of a command's
//!   output, one event each. The publishing of those lines (ordered, batched, buffered) and
//!   the publish API client are `ssehub-client`'s `LinePublisher` and `HubClient`.

mod cli;
mod config;
mod decode;
mod demo;
mod exec;
mod pub_command;
mod serve;
mod sub_command;
mod tail;

use std::process::ExitCode;

use clap::Parser as _;

/// The runtime of the client commands (`pub`, `sub`, `tail`, `exec`): one thread is plenty.
pub(crate) fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Decode(args) => decode::run(&args),
        cli::Command::Serve(args) => serve::run(&args),
        cli::Command::Bench(args) => ssehub_bench::run(&args),
        cli::Command::Pub(args) => pub_command::run(&args),
        cli::Command::Sub(args) => sub_command::run(&args),
        cli::Command::Tail(args) => tail::run(&args),
        cli::Command::Exec(args) => return exec::main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ssehub: {error:#}");
            ExitCode::FAILURE
        }
    }
}
