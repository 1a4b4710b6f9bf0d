//! End-to-end tests of the `ssehub` binary: each module drives the real executable.

mod auth;
mod bench;
mod cli;
mod client_cmds;
mod decode;
mod durable;
mod mercure;
mod serve;
mod util;
