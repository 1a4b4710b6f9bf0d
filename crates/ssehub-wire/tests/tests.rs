//! Integration tests of `ssehub-wire`: the conformance vectors and the properties.

mod conformance;
mod roundtrip;
mod util;
