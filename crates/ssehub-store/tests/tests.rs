//! Integration tests of the durable store.

mod conformance;
mod disk;
