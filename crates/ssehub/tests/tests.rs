//! End-to-end tests of the `ssehub` binary: each module drives the real executable.

mod bench;
mod cli;
mod client_cmds;
mod decode;
mod durable;
mod serve;
mod util;
