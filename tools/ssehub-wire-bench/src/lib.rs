//! Benchmarks and peer conformance for ssehub-wire.
//!
//! Not published: this crate holds what `benches/codec.rs` (criterion: parse and encode
//! throughput against other Rust SSE crates) and `src/bin/peer-conformance.rs` (the 181
//! conformance vectors run against every parser) share, so both measure exactly the same
//! drivers on exactly the same streams. See `BENCHMARKS.md` at the workspace root for the
//! results and how to reproduce them.
//!
//! # Layout
//!
//! - `workload.rs` — the streams: [`workload::small`], [`workload::large`],
//!   [`workload::large_multiline`].
//! - `peers.rs` — every parser behind one [`peers::Peer`] interface (a counting driver for the
//!   benchmarks, a conformance driver for the vectors), with how each peer is adapted.
//! - `encoders.rs` — every encoder, from the same event specs.
//! - `table.rs` — turns criterion's saved estimates into the Markdown table of
//!   `BENCHMARKS.md` (`cargo run -p ssehub-wire-bench --bin bench-table`).
//!
//! The `async-sse` feature adds the async-sse crate as a peer; it is off by default because it
//! pulls `http-types` (and `url`, ICU, a second `syn`) into every workspace build.

pub mod encoders;
pub mod peers;
pub mod table;
pub mod workload;
