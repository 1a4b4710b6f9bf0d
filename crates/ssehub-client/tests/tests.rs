//! The client's test suite, run against a scriptable mock SSE server (`mock.rs`) that speaks
//! raw HTTP/1.1 so each test can send exactly the bytes a spec case describes.
//!
//! Layout, one module per public suite of cases:
//!
//! - `spec_wpt` — every test of web-platform-tests `eventsource/` that applies to a Rust
//!   client; test names start with the wpt test they reproduce.
//! - `spec_contract` — the required cases of LaunchDarkly's sse-contract-tests.
//! - `capabilities` — the optional capabilities of sse-contract-tests and what the crate adds on
//!   top (backoff, read timeout, retrying server errors, cancellation, limits).
//!
//! wpt tests skipped, because they test the browser and not the protocol:
//!
//! - `eventsource-cross-origin`, `request-credentials`: CORS and cookies. A Rust client has no
//!   origin to protect and no cookie store unless the caller passes a `reqwest::Client` with
//!   one ([`Builder::client`](ssehub_client::Builder::client)). What remains of them, the final
//!   URL after redirects that browsers use as the events' `origin`, is checked by the redirect
//!   tests (`Event::Open { url }`).
//! - `eventsource-constructor-*`, `eventsource-url`: DOM constructor and URL parsing (relative
//!   URLs, `new EventSource()` argument coercion, `withCredentials`).
//! - workers, realm, bfcache: browser execution contexts.
//! - `eventsource-eventtarget`: `addEventListener` on a DOM `EventTarget`; its protocol part
//!   (open, then the message) is `spec_wpt::onopen_then_onmessage`, and event types are
//!   `capabilities::event_types`.
//! - `eventsource-from-readable-stream*`: a proposed browser API that parses an arbitrary byte
//!   stream; this crate has no such entry point. Its parsing cases are in the vectors, which
//!   run against `ssehub-wire` (`ssehub-conformance`), and "the last event id and the
//!   reconnection time persist across bodies" is covered here across real reconnections.
//! - The `readyState` assertions of every row: the Rust API has no `readyState`. Its analogue
//!   is what the stream yields, and the tests check that instead: OPEN ↔ `Event::Open`;
//!   `error` with CONNECTING ↔ a non-fatal error (`Error::StreamEnded` after a clean end,
//!   `Error::Transport` after a break); `error` with CLOSED ↔ a fatal error followed by the end
//!   of the stream (`None`). A 204 ends the stream as the server's "stop" signal; the tests
//!   accept it with or without a (fatal) error before the end.

mod capabilities;
mod mock;
mod resumable;
mod spec_contract;
mod spec_wpt;
