//! End-to-end tests of the `ssehub` binary: each module drives the real executable.

mod architecture;
mod auth;
mod bench;
mod cli;
mod client_cmds;
mod connections;
mod decode;
mod durable;
mod hostile_conn;
mod hostile_costs;
mod hostile_trust;
mod limits;
mod mercure;
mod raw_http;
mod serve;
mod util;
