//! The HTTP API in process: each module drives `ssehub_http::router` through
//! `tower::ServiceExt::oneshot`, with no socket and no process (see `util`). What needs the
//! real binary — lifecycle, signals, the connection layer, the durable store, the CLI — is
//! tested in `crates/ssehub/tests`.

mod auth;
mod jwt;
mod mercure;
mod routes;
mod tokens;
mod util;
