//! In-process tests of the connection layer.
