//! Integration tests of the hub core, on the in-memory store.

mod feed;
mod hub;
mod relay;
mod snapshot;
mod store;
