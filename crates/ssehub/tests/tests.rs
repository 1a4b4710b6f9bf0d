//! End-to-end tests of the `ssehub` binary: each module drives the real executable.

mod cli;
mod decode;
mod serve;
mod util;
