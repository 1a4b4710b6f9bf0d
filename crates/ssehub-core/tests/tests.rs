//! Integration tests of the hub core, on the in-memory store.

mod hub;
mod store;
