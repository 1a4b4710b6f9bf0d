//! Feeds arbitrary bytes to `ssehub_server::parse_head`, the direct path's request-head
//! parser (the first bytes of every connection to a hub), and checks that it never panics and
//! that its verdicts are sound:
//!
//! - a `Get` is a `GET` in origin form whose head is within the bytes given and within
//!   `max_head_bytes`, and the head alone (without what follows it) gets the same verdict;
//! - `Partial` only while under `max_head_bytes`.
//!
//! Input layout: byte 0 chooses the header-count limit (1 + byte 0 % 80); the rest is the
//! bytes a client sent. Both the default limits and those are tried. (Whether hyper agrees
//! with each `Get` is the differential test's job: crates/ssehub-server/tests/differential.rs.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use ssehub_server::{HeadVerdict, Limits, parse_head};

fn check(bytes: &[u8], limits: &Limits) {
    match parse_head(bytes, limits) {
        HeadVerdict::Get { request, len, .. } => {
            assert!(len <= bytes.len() && len <= limits.max_head_bytes);
            assert_eq!(request.method(), "GET");
            assert!(request.uri().path().starts_with('/'));
            assert!(request.headers().len() <= limits.max_headers);
            match parse_head(&bytes[..len], limits) {
                HeadVerdict::Get { len: again, .. } => assert_eq!(again, len),
                other => panic!("the head alone gets {other:?}"),
            }
        }
        HeadVerdict::Partial => assert!(bytes.len() < limits.max_head_bytes),
        HeadVerdict::Hyper | HeadVerdict::TooLarge => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    check(bytes, &Limits::default());
    check(
        bytes,
        &Limits {
            max_headers: 1 + usize::from(first % 80),
            ..Limits::default()
        },
    );
});
