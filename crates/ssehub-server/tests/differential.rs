//! The direct path's parser against hyper: every head that [`parse_head`] takes as a plain
//! `GET` must be one hyper takes too, as the same request (method, target, version, header
//! fields in order). Heads it sends on are hyper's to judge by construction, and heads it
//! refuses as too large must be refused by hyper as well.
//!
//! hyper's verdict is the real server's: the head is sent as the *second* request of a
//! connection (the direct path answers the first, hyper the rest), to a router that records
//! what it is given.

use std::time::Duration;

use proptest::prelude::*;
use ssehub_server::{HeadVerdict, Limits, parse_head};

use crate::util::{SOON, Seen, Server, read_to_close, send};

/// What hyper made of `head`, sent after a plain `GET /ok` on one connection: the request the
/// router saw, if any.
async fn hyper_sees(server: &Server, head: &[u8]) -> Option<Seen> {
    server.seen.lock().unwrap().clear();
    let mut s = server.connect().await;
    let mut bytes = b"GET /ok HTTP/1.1\r\n\r\n".to_vec();
    bytes.extend_from_slice(head);
    // Ends the connection once `head` is answered (when it parses as a request).
    bytes.extend_from_slice(b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n");
    send(&mut s, &bytes).await;
    read_to_close(&mut s, SOON)
        .await
        .expect("the connection ends");
    let mut seen = server.seen.lock().unwrap();
    assert!(seen.len() <= 1, "{seen:?}");
    seen.pop()
}

/// Checks one head; returns what the direct path decided, for the statistics.
async fn check(server: &Server, limits: &Limits, head: &[u8]) -> &'static str {
    match parse_head(head, limits) {
        HeadVerdict::Get { request, len, .. } => {
            // A generated value may hold a line end, which ends the head early: what follows
            // would be the next request's.
            assert!(len <= head.len());
            let head = &head[..len];
            let hyper = hyper_sees(server, head).await.unwrap_or_else(|| {
                panic!(
                    "direct path took a head hyper refuses: {:?}",
                    String::from_utf8_lossy(head)
                )
            });
            let direct = Seen {
                method: request.method().clone(),
                uri: request.uri().clone(),
                version: request.version(),
                headers: crate::util::pairs(request.headers()),
            };
            assert_eq!(direct, hyper, "{:?}", String::from_utf8_lossy(head));
            "get"
        }
        HeadVerdict::TooLarge => {
            // Whole heads only: hyper counts fields once the head is complete.
            if head.ends_with(b"\r\n\r\n") {
                assert_eq!(
                    hyper_sees(server, head).await,
                    None,
                    "hyper took a head the direct path refuses: {:?}",
                    String::from_utf8_lossy(head)
                );
            }
            "too_large"
        }
        HeadVerdict::Hyper => "hyper",
        HeadVerdict::Partial => "partial",
    }
}

fn limits() -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(5),
        header_read_timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// Hand-picked heads, malformed ones included.
#[tokio::test]
async fn a_table_of_heads_gets_the_same_verdict() {
    let limits = limits();
    let server = Server::start(limits.clone()).await;
    let many: String = (0..65).map(|i| format!("x-{i}: v\r\n")).collect();
    let long = format!("GET /r HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(17 << 10));
    let heads: Vec<Vec<u8>> = [
        "GET /r HTTP/1.1\r\n\r\n",
        "GET /r HTTP/1.0\r\n\r\n",
        "GET /r?a=1&b=%20 HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n\r\n",
        "GET /r HTTP/1.1\nHost: h\n\n",
        "GET /r HTTP/1.1\r\nHost:h\r\n\r\n",
        "GET /r HTTP/1.1\r\nHost:  spaced  \r\n\r\n",
        "GET /r HTTP/1.1\r\nX-Empty:\r\n\r\n",
        "GET /r HTTP/1.1\r\nA: 1\r\nA: 2\r\nB: 3\r\nA: 4\r\n\r\n",
        "GET /r HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "GET /r HTTP/1.1\r\nContent-Length: 00\r\n\r\n",
        "GET /r HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        "GET /r HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /r HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n",
        "GET /r HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
        "GET /r HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        "GET /r#frag HTTP/1.1\r\n\r\n",
        "GET /r/../x HTTP/1.1\r\n\r\n",
        "GET /r{x}|^ HTTP/1.1\r\n\r\n",
        "GET /r\"<> HTTP/1.1\r\n\r\n",
        "GET //r HTTP/1.1\r\n\r\n",
        "GET * HTTP/1.1\r\n\r\n",
        "GET http://h/r HTTP/1.1\r\n\r\n",
        "GET /r HTTP/1.2\r\n\r\n",
        "GET /r HTTP/2.0\r\n\r\n",
        "get /r HTTP/1.1\r\n\r\n",
        "GET  /r HTTP/1.1\r\n\r\n",
        "GET /r  HTTP/1.1\r\n\r\n",
        "GET /r HTTP/1.1 \r\n\r\n",
        "GET /r\r\n\r\n",
        "GET /r HTTP/1.1\r\n Folded: x\r\n\r\n",
        "GET /r HTTP/1.1\r\nA: 1\r\n  continued\r\n\r\n",
        "GET /r HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET /r HTTP/1.1\r\nName : x\r\n\r\n",
        "GET /r HTTP/1.1\r\n: novalue\r\n\r\n",
        "GET /r HTTP/1.1\r\nX: a\tb\r\n\r\n",
        "GET /r HTTP/1.1\r\nX: a\0b\r\n\r\n",
        "GET /r HTTP/1.1\r\nX: a\rb\r\n\r\n",
        "GET /r HTTP/1.1\r\nX: \u{e9}t\u{e9}\r\n\r\n",
        "\r\nGET /r HTTP/1.1\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ]
    .iter()
    .map(|h| h.as_bytes().to_vec())
    .chain([
        format!("GET /r HTTP/1.1\r\n{many}\r\n").into_bytes(),
        long.into_bytes(),
        b"GET /r HTTP/1.1\r\nX: \xff\xfe\r\n\r\n".to_vec(),
        b"GET /r\xc3\xa9 HTTP/1.1\r\n\r\n".to_vec(),
    ])
    .collect();
    let mut verdicts = std::collections::BTreeMap::new();
    for head in &heads {
        *verdicts
            .entry(check(&server, &limits, head).await)
            .or_insert(0) += 1;
    }
    // The table exercises every outcome.
    for verdict in ["get", "too_large", "hyper"] {
        assert!(verdicts.contains_key(verdict), "{verdicts:?}");
    }
}

/// A request line and header fields built from pieces, many of them invalid.
fn head() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        8 => Just("GET".to_string()),
        1 => Just("get".to_string()),
        1 => Just("POST".to_string()),
        1 => "[A-Z]{1,5}",
    ];
    let target = prop_oneof![
        8 => "/r[a-zA-Z0-9%?=&#/._~!$'()*+,;:@\\[\\]{}|^`\"<>\\\\-]{0,16}",
        1 => "[a-z*/:]{1,8}",
    ];
    let version = prop_oneof![
        8 => Just("HTTP/1.1"),
        2 => Just("HTTP/1.0"),
        1 => Just("HTTP/2.0"),
        1 => Just("HTTP/1.2"),
        1 => Just("http/1.1"),
    ];
    let name = prop_oneof![
        16 => "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,10}",
        1 => Just("Content-Length".to_string()),
        1 => Just("Transfer-Encoding".to_string()),
        1 => Just("Connection".to_string()),
        1 => Just("Upgrade".to_string()),
        1 => Just("Expect".to_string()),
        1 => "[ -~]{1,6}",
    ];
    let value = prop_oneof![
        12 => "[ -~]{0,12}".prop_map(String::into_bytes),
        1 => Just(b"0".to_vec()),
        1 => Just(b"close".to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..8),
    ];
    let separator = prop_oneof![4 => Just(": "), 1 => Just(":"), 1 => Just(" : ")];
    let field = (name, separator, value);
    let eol = prop_oneof![8 => Just("\r\n"), 1 => Just("\n")];
    (
        method,
        target,
        version,
        proptest::collection::vec(field, 0..6),
        eol,
    )
        .prop_map(|(method, target, version, fields, eol)| {
            let mut head = format!("{method} {target} {version}{eol}").into_bytes();
            for (name, separator, value) in fields {
                head.extend_from_slice(name.as_bytes());
                head.extend_from_slice(separator.as_bytes());
                head.extend_from_slice(&value);
                head.extend_from_slice(eol.as_bytes());
            }
            head.extend_from_slice(eol.as_bytes());
            head
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn generated_heads_get_the_same_verdict(heads in proptest::collection::vec(head(), 1..4)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let limits = limits();
            let server = Server::start(limits.clone()).await;
            for head in &heads {
                check(&server, &limits, head).await;
            }
        });
    }
}
