//! End-to-end tests of the `ssehub` binary: each module drives the real executable, for what
//! only a process shows — startup and config, signals and shutdown, the connection layer and
//! raw HTTP, the durable store and crashes, the CLI commands, and the hostile-client suites.
//! The HTTP API's own rules (auth, validation, errors, Mercure) are tested in process, in
//! `crates/ssehub-http/tests`.

mod architecture;
mod auth;
mod bench;
mod binary;
mod cli;
mod client_cmds;
mod cluster;
mod cluster_lb;
mod config;
mod connections;
mod console;
mod decode;
mod direct_writes;
mod durable;
mod haproxy;
mod hostile_conn;
mod hostile_costs;
mod hostile_trust;
// The test tokens, shared with the in-process tests of the HTTP API.
#[path = "../../ssehub-http/tests/jwt.rs"]
mod jwt;
mod keys;
mod limits;
mod nginx;
mod publisher_ids;
mod raw_http;
mod relay;
mod serve;
mod tls;
mod util;
