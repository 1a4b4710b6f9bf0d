//! Authorization in process: JWTs with Mercure claims against the router, with the keys a
//! binary would load (`KeySet::hmac`, `KeySet::pem`, `KeySet::jwks`).
//!
//! - `rights_matrix`: who × how the token is sent × what it does, every cell a request.
//! - `private_updates_reach_only_their_user`: per-user private topics, live and on replay.
//! - `subscription_ends_when_the_token_expires`, `token_is_refused_from_its_exp_second`.
//! - `cookie_publish_needs_an_allowed_origin`: CSRF.
//! - `mercure_publish_needs_every_topic`: `POST /.well-known/mercure` with several topics.
//!
//! What stays with the binary (`crates/ssehub/tests/auth.rs`): loading keys from files and
//! flags, refusing to start without a publisher key, the `[auth]` options of the config file,
//! and that no token reaches the logs.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use ssehub_http::{AuthConfig, HttpConfig, KeySet};

use crate::jwt::{
    Key, OTHER_SECRET, PUBLISHER_SECRET, SUBSCRIBER_SECRET, alg_none, mercure, now, read_fixture,
    sign,
};
use crate::tokens::{How, check_refusal, request};
use crate::util::{Sse, TestApp, data};

/// The origin allowed to send cookie-authenticated POSTs (`--cors-origin`).
const ORIGIN: &str = "http://app.example";
/// The `kid` of the RSA key in `fixtures/auth/jwks.json`.
const KID: &str = "ssehub-test-rsa-1";

/// A hub with these keys, as the binary builds it: no anonymous publishing (there is a
/// publisher key), `ORIGIN` allowed for CORS and cookie-authenticated POSTs.
fn keyed_app(publisher: KeySet, subscriber: KeySet) -> TestApp {
    let config = HttpConfig {
        cors_origins: vec![ORIGIN.into()],
        ..HttpConfig::default()
    };
    let auth = AuthConfig {
        publisher: Some(publisher),
        subscriber: Some(subscriber),
        anonymous_publish: false,
        allowed_origins: vec![ORIGIN.into()],
        ..AuthConfig::default()
    };
    TestApp::with(config, auth)
}

/// A hub with both HS256 keys set.
fn hs256_app() -> TestApp {
    keyed_app(
        KeySet::hmac(PUBLISHER_SECRET.as_bytes()),
        KeySet::hmac(SUBSCRIBER_SECRET.as_bytes()),
    )
}

/// A token that may publish anything, for the HS256 hubs.
fn hs256_admin() -> String {
    sign(&Key::hs(PUBLISHER_SECRET), None, mercure(&["*"], &[], None))
}

/// Publishes `data` to `topic` with a token that may publish anything; returns the id.
async fn publish_as(app: &TestApp, admin: &str, topic: &str, data: &str, private: bool) -> String {
    let query = if private { "?private=1" } else { "" };
    let response = app
        .post(&format!("/topics/{topic}{query}"))
        .bearer_auth(admin)
        .body(data)
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await);
    response.json().await["id"].as_str().unwrap().to_string()
}

/// Publishes one private event through `POST /publish` (`"private": true`).
async fn publish_private_batch(app: &TestApp, admin: &str, topic: &str, data: &str) {
    let response = app
        .post("/publish")
        .bearer_auth(admin)
        .json(&json!([{"topic": topic, "data": data, "private": true}]))
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await);
}

/// Reads events until one with `marker` as its data; returns every data read, marker included.
async fn until_marker(sse: &mut Sse, marker: &str) -> Vec<String> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while got.last().is_none_or(|d| d != marker) {
            got.extend(data(&sse.take(1).await).into_iter().map(str::to_string));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {marker:?} within 20 s; got {got:?}"));
    got
}

/// Opens a stream at `path` with `token` sent as `how`; panics unless it is 200.
async fn open(app: &TestApp, path: &str, how: How, token: &str) -> Sse {
    let response = request(app, Method::GET, path, how, token, None)
        .send()
        .await;
    assert_eq!(response.status(), 200, "GET {path} ({how:?})");
    response.sse()
}

// ---------------------------------------------------------------------------------------------
// The rights matrix.

/// What one cell of the matrix came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The answer's status (a refused subscription shows it in every subscribe column).
    Status(u16),
    /// The subscription got the event.
    Received,
    /// The subscription did not get the event (it got a later public one).
    NotReceived,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Status(s) => write!(f, "{s}"),
            Outcome::Received => f.write_str("recv"),
            Outcome::NotReceived => f.write_str("none"),
        }
    }
}

use Outcome::{NotReceived as NONE, Received as RECV};
const S200: Outcome = Outcome::Status(200);
const S401: Outcome = Outcome::Status(401);
const S403: Outcome = Outcome::Status(403);

const COLUMNS: [&str; 5] = [
    "publish allowed",
    "publish outside",
    "subscribe public",
    "private matching",
    "private not matching",
];

/// Publisher and subscriber rights: publish and receive in full.
const BOTH: [Outcome; 5] = [S200, S403, RECV, RECV, NONE];
/// A publisher token (signed with the publisher key): refused when subscribing.
const PUBLISHER_ONLY: [Outcome; 5] = [S200, S403, S401, S401, S401];
/// A subscriber token (signed with the subscriber key): refused when publishing.
const SUBSCRIBER_ONLY: [Outcome; 5] = [S401, S401, RECV, RECV, NONE];
/// No token: public events only, no publishing (the hub has a publisher key).
const ANONYMOUS: [Outcome; 5] = [S401, S401, RECV, NONE, NONE];
/// A token that must be refused everywhere.
const REFUSED: [Outcome; 5] = [S401; 5];

/// The hubs of the matrix, one per kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// `--publisher-key` and `--subscriber-key`: two different HS256 secrets.
    Hs256,
    /// `rsa_public.pem`, RS256, for both roles.
    Rs256,
    /// `ec_public.pem`, ES256, for both roles.
    Es256,
    /// `ed25519_public.pem`, EdDSA, for both roles.
    EdDsa,
    /// `jwks.json` for both roles.
    Jwks,
}

impl Keys {
    const ALL: [Keys; 5] = [
        Keys::Hs256,
        Keys::Rs256,
        Keys::Es256,
        Keys::EdDsa,
        Keys::Jwks,
    ];

    fn label(self) -> &'static str {
        match self {
            Keys::Hs256 => "HS256",
            Keys::Rs256 => "RS256",
            Keys::Es256 => "ES256",
            Keys::EdDsa => "EdDSA",
            Keys::Jwks => "JWKS",
        }
    }
}

struct MatrixHub {
    keys: Keys,
    app: TestApp,
    /// A token that may publish to any topic.
    admin: String,
}

impl MatrixHub {
    /// The hub a binary started with these keys builds: both roles keyed, so no anonymous
    /// publishing, and `ORIGIN` allowed for CORS and cookie-authenticated POSTs.
    fn start(keys: Keys) -> MatrixHub {
        let pem = |algorithm, file| KeySet::pem(algorithm, &read_fixture(file)).unwrap();
        let (publisher, subscriber, admin_key, kid) = match keys {
            Keys::Hs256 => (
                KeySet::hmac(PUBLISHER_SECRET.as_bytes()),
                KeySet::hmac(SUBSCRIBER_SECRET.as_bytes()),
                Key::hs(PUBLISHER_SECRET),
                None,
            ),
            Keys::Rs256 => {
                let keys = pem(Algorithm::RS256, "rsa_public.pem");
                (keys.clone(), keys, Key::Rsa, None)
            }
            Keys::Es256 => {
                let keys = pem(Algorithm::ES256, "ec_public.pem");
                (keys.clone(), keys, Key::Ec, None)
            }
            Keys::EdDsa => {
                let keys = pem(Algorithm::EdDSA, "ed25519_public.pem");
                (keys.clone(), keys, Key::Ed, None)
            }
            Keys::Jwks => {
                let text = String::from_utf8(read_fixture("jwks.json")).unwrap();
                let keys = KeySet::jwks(&text).unwrap();
                (keys.clone(), keys, Key::Rsa, Some(KID))
            }
        };
        let app = keyed_app(publisher, subscriber);
        let admin = sign(&admin_key, kid, mercure(&["*"], &[], None));
        MatrixHub { keys, app, admin }
    }
}

/// One row: a token (or none), which hub it goes to, how it is sent, what should happen.
struct Row {
    who: String,
    keys: Keys,
    how: How,
    /// The token of the publish columns.
    publish: String,
    /// The token of the subscribe columns.
    subscribe: String,
    expect: [Outcome; 5],
}

/// The rights every token of the matrix carries: publish to `p/{r}/ok`, receive the private
/// events of `m/{r}/yes` (`{r}` is one path segment, the row's id).
fn row_rights(exp: Option<u64>) -> Value {
    mercure(&["p/{r}/ok"], &["m/{r}/yes"], exp)
}

fn rows() -> Vec<Row> {
    let rights = || row_rights(None);
    let publisher = Key::hs(PUBLISHER_SECRET);
    let subscriber = Key::hs(SUBSCRIBER_SECRET);
    let mut rows = vec![Row {
        who: "no token".into(),
        keys: Keys::Hs256,
        how: How::Nowhere,
        publish: String::new(),
        subscribe: String::new(),
        expect: ANONYMOUS,
    }];
    // Valid tokens: (who, hub, publish-column token, subscribe-column token, expected).
    let mut valid: Vec<(&str, Keys, String, String, [Outcome; 5])> = Vec::new();
    let t = sign(&publisher, None, rights());
    valid.push(("HS256 publisher", Keys::Hs256, t.clone(), t, PUBLISHER_ONLY));
    let t = sign(&subscriber, None, rights());
    valid.push((
        "HS256 subscriber",
        Keys::Hs256,
        t.clone(),
        t,
        SUBSCRIBER_ONLY,
    ));
    let t = sign(&Key::Rsa, None, rights());
    valid.push(("RS256", Keys::Rs256, t.clone(), t, BOTH));
    let t = sign(&Key::Ec, None, rights());
    valid.push(("ES256", Keys::Es256, t.clone(), t, BOTH));
    // The namespaced claim, `https://mercure.rocks/`, instead of `mercure`.
    let namespaced = json!({"https://mercure.rocks/": rights()["mercure"].clone()});
    let t = sign(&Key::Ed, None, namespaced);
    valid.push((
        "EdDSA (mercure.rocks claim)",
        Keys::EdDsa,
        t.clone(),
        t,
        BOTH,
    ));
    let t = sign(&Key::Rsa, Some(KID), rights());
    valid.push(("JWKS, kid", Keys::Jwks, t.clone(), t, BOTH));
    // Without a `kid`, the keys of the token's algorithm are tried.
    let t = sign(&Key::Rsa, None, rights());
    valid.push(("JWKS, no kid", Keys::Jwks, t.clone(), t, BOTH));

    // Bad tokens: every one refused, whatever its claims.
    let everything = || mercure(&["*"], &["*"], None);
    let expired = now() - 120;
    let bad: Vec<(&str, Keys, String, String)> = vec![
        (
            "expired exp",
            Keys::Hs256,
            sign(&publisher, None, row_rights(Some(expired))),
            sign(&subscriber, None, row_rights(Some(expired))),
        ),
        (
            "malformed",
            Keys::Hs256,
            "this-is.not-a.jwt".into(),
            "this-is.not-a.jwt".into(),
        ),
        (
            "wrong key (HS256)",
            Keys::Hs256,
            sign(&Key::hs(OTHER_SECRET), None, everything()),
            sign(&Key::hs(OTHER_SECRET), None, everything()),
        ),
        (
            // The classic confusion: HMAC keyed with the RS256 hub's public key.
            "HS256 (RSA pub as secret) -> RS256 hub",
            Keys::Rs256,
            sign(&Key::Hs(read_fixture("rsa_public.pem")), None, everything()),
            sign(&Key::Hs(read_fixture("rsa_public.pem")), None, everything()),
        ),
        (
            "ES256 -> RS256 hub",
            Keys::Rs256,
            sign(&Key::Ec, None, everything()),
            sign(&Key::Ec, None, everything()),
        ),
        (
            "alg none -> HS256 hub",
            Keys::Hs256,
            alg_none(everything()),
            alg_none(everything()),
        ),
        (
            "alg none -> RS256 hub",
            Keys::Rs256,
            alg_none(everything()),
            alg_none(everything()),
        ),
        (
            "JWKS, unknown kid",
            Keys::Jwks,
            sign(&Key::Rsa, Some("not-in-the-jwks"), everything()),
            sign(&Key::Rsa, Some("not-in-the-jwks"), everything()),
        ),
    ];
    for (who, keys, publish, subscribe, expect) in valid {
        for how in How::ALL {
            rows.push(Row {
                who: who.into(),
                keys,
                how,
                publish: publish.clone(),
                subscribe: subscribe.clone(),
                expect,
            });
        }
    }
    for (who, keys, publish, subscribe) in bad {
        for how in How::ALL {
            rows.push(Row {
                who: who.into(),
                keys,
                how,
                publish: publish.clone(),
                subscribe: subscribe.clone(),
                expect: REFUSED,
            });
        }
    }
    rows
}

/// Runs one row against its hub: two publishes, one subscription and what it receives.
async fn run_row(hub: &MatrixHub, id: &str, row: &Row) -> [Outcome; 5] {
    let app = &hub.app;
    // Cookie-authenticated POSTs come from the allowed origin (CSRF is tested on its own).
    let origin = (row.how == How::Cookie).then_some(ORIGIN);
    let mut got = [S200; 5];
    for (i, topic) in [format!("p/{id}/ok"), format!("q/{id}/denied")]
        .iter()
        .enumerate()
    {
        let path = format!("/topics/{topic}");
        let response = request(app, Method::POST, &path, row.how, &row.publish, origin)
            .body(format!("{} via {}", row.who, row.how.label()))
            .send()
            .await;
        got[i] = Outcome::Status(check_refusal(response, &row.publish).await.as_u16());
    }

    let path = format!("/subscribe?topic=m/{id}/pub&topic=m/{id}/yes&topic=m/{id}/no");
    let response = request(app, Method::GET, &path, row.how, &row.subscribe, None)
        .send()
        .await;
    if response.status() != 200 {
        let status = check_refusal(response, &row.subscribe).await.as_u16();
        got[2..].fill(Outcome::Status(status));
        return got;
    }
    let mut sse = response.sse();
    // Two private events, one the token's `m/{r}/yes` matches and one it does not, then a
    // public one: the stream is in order, so once the public one is there, the others are
    // there too or never will be.
    publish_as(app, &hub.admin, &format!("m/{id}/yes"), "yes", true).await;
    publish_private_batch(app, &hub.admin, &format!("m/{id}/no"), "no").await;
    publish_as(app, &hub.admin, &format!("m/{id}/pub"), "pub", false).await;
    let data = until_marker(&mut sse, "pub").await;
    let seen = |d: &str| {
        if data.iter().any(|x| x == d) {
            RECV
        } else {
            NONE
        }
    };
    got[2] = seen("pub");
    got[3] = seen("yes");
    got[4] = seen("no");
    got
}

#[tokio::test]
async fn rights_matrix() {
    let mut hubs = Vec::new();
    for keys in Keys::ALL {
        hubs.push(MatrixHub::start(keys));
    }
    let rows = rows();
    let mut results = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let hub = hubs.iter().find(|h| h.keys == row.keys).unwrap();
        results.push(run_row(hub, &format!("r{i}"), row).await);
    }

    // The table, with every cell that is not what it should be marked.
    let who_width = rows.iter().map(|r| r.who.len()).max().unwrap();
    let mut table = format!(
        "\n{:<who_width$} | {:<5} | {:<15} | {}\n",
        "who",
        "hub",
        "how",
        COLUMNS.join(" | ")
    );
    table.push_str(&format!("{}\n", "-".repeat(table.len() - 2)));
    let mut wrong = Vec::new();
    for (row, got) in rows.iter().zip(&results) {
        table.push_str(&format!(
            "{:<who_width$} | {:<5} | {:<15}",
            row.who,
            row.keys.label(),
            row.how.label()
        ));
        for (c, column) in COLUMNS.iter().enumerate() {
            let cell = if got[c] == row.expect[c] {
                got[c].to_string()
            } else {
                wrong.push(format!(
                    "{} via {} on the {} hub, {column}: got {}, want {}",
                    row.who,
                    row.how.label(),
                    row.keys.label(),
                    got[c],
                    row.expect[c]
                ));
                format!("{} (want {})", got[c], row.expect[c])
            };
            table.push_str(&format!(" | {cell:<width$}", width = column.len()));
        }
        table.push('\n');
    }
    table.push_str(
        "\nrecv: the subscription got the event; none: it did not (a later public event came \
         first); a status in a subscribe column: the subscription was refused.\n",
    );
    eprintln!("{table}");
    assert!(
        wrong.is_empty(),
        "{} cells are wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Private updates per user.

/// Alice's, bob's and the anonymous stream (in that order) each read exactly their `want` up
/// to the marker `for everyone`, then nothing more for 300 ms; `context` ends the message.
async fn each_sees(streams: &mut [Sse; 3], want: &[Vec<&str>; 3], context: &str) {
    for (who, (sse, want)) in ["alice", "bob", "anonymous"]
        .iter()
        .zip(streams.iter_mut().zip(want))
    {
        assert_eq!(
            until_marker(sse, "for everyone").await,
            *want,
            "{who}, {context}"
        );
        sse.nothing_for(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn private_updates_reach_only_their_user() {
    let app = hs256_app();
    let admin = hs256_admin();
    let subscriber = Key::hs(SUBSCRIBER_SECRET);
    // A URI template for alice, the exact topic for bob.
    let alice = sign(
        &subscriber,
        None,
        mercure(&[], &["users/alice/{rest}"], None),
    );
    let bob = sign(
        &subscriber,
        None,
        mercure(&[], &["users/bob/notifications"], None),
    );
    let path = "/topics/users/*/notifications";

    let mut live = [
        open(&app, path, How::Bearer, &alice).await,
        open(&app, path, How::Query, &bob).await,
        open(&app, path, How::Nowhere, "").await,
    ];
    publish_as(&app, &admin, "users/alice/notifications", "for alice", true).await;
    publish_private_batch(&app, &admin, "users/bob/notifications", "for bob").await;
    publish_as(
        &app,
        &admin,
        "users/everyone/notifications",
        "for everyone",
        false,
    )
    .await;
    let want = [
        vec!["for alice", "for everyone"],
        vec!["for bob", "for everyone"],
        vec!["for everyone"],
    ];
    each_sees(&mut live, &want, "live").await;

    // The same from history, with each token sent another way.
    let replay = format!("{path}?lastEventId=earliest");
    let mut replayed = [
        open(&app, &replay, How::Cookie, &alice).await,
        open(&app, &replay, How::Bearer, &bob).await,
        open(&app, &replay, How::Nowhere, "").await,
    ];
    each_sees(&mut replayed, &want, "replay of lastEventId=earliest").await;
}

// ---------------------------------------------------------------------------------------------
// Expiry.

#[tokio::test]
async fn subscription_ends_when_the_token_expires() {
    let app = hs256_app();
    let admin = hs256_admin();
    let exp = now() + 2;
    let token = sign(
        &Key::hs(SUBSCRIBER_SECRET),
        None,
        mercure(&[], &["expiry/private"], Some(exp)),
    );
    let path = "/subscribe?topic=expiry/public&topic=expiry/private";
    let mut streams = Vec::new();
    for how in How::ALL {
        streams.push((how, open(&app, path, how, &token).await));
    }
    // Open and authorized until then.
    publish_as(&app, &admin, "expiry/private", "private", true).await;
    publish_as(&app, &admin, "expiry/public", "public", false).await;
    for (how, sse) in &mut streams {
        assert_eq!(
            until_marker(sse, "public").await,
            ["private", "public"],
            "{how:?}"
        );
    }
    // Then each stream ends by itself (the bound is generous: it is about ending at all).
    for (how, sse) in &mut streams {
        tokio::time::timeout(
            Duration::from_secs(30),
            sse.until_end(Duration::from_secs(30)),
        )
        .await
        .unwrap_or_else(|_| panic!("the {how:?} stream still runs 30 s after its token expired"));
        assert!(sse.ended);
    }
    // And once past its `exp` second, the token no longer opens one. (Within that second it
    // still does: see `token_is_refused_from_its_exp_second`.)
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = request(&app, Method::GET, path, How::Bearer, &token, None)
        .send()
        .await;
    assert_eq!(check_refusal(response, &token).await, 401);
}

/// RFC 7519 §4.1.4: a token "MUST NOT be accepted for processing" on or after its `exp` —
/// including during the second `exp` itself (a whole-second `exp < now` check would let it
/// publish, and answer a subscription with a stream that ends at once).
#[tokio::test]
async fn token_is_refused_from_its_exp_second() {
    let app = hs256_app();
    // Not too close to the end of a second, so the requests below stay within it.
    while SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis()
        > 500
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let exp = Some(now());
    let publisher = sign(&Key::hs(PUBLISHER_SECRET), None, mercure(&["*"], &[], exp));
    let subscriber = sign(&Key::hs(SUBSCRIBER_SECRET), None, mercure(&[], &["*"], exp));
    let url = "/topics/expiry/edge".to_string();
    let response = request(&app, Method::POST, &url, How::Bearer, &publisher, None)
        .body("at exp")
        .send()
        .await;
    assert_eq!(check_refusal(response, &publisher).await, 401, "publish");
    let response = request(&app, Method::GET, &url, How::Bearer, &subscriber, None)
        .send()
        .await;
    assert_eq!(check_refusal(response, &subscriber).await, 401, "subscribe");
}

// ---------------------------------------------------------------------------------------------
// CSRF.

#[tokio::test]
async fn cookie_publish_needs_an_allowed_origin() {
    let app = hs256_app();
    let token = sign(
        &Key::hs(PUBLISHER_SECRET),
        None,
        mercure(&["csrf/{x}"], &[], None),
    );
    let url = "/topics/csrf/one".to_string();
    let cases: [(How, Option<&str>, u16); 9] = [
        (How::Cookie, None, 403),
        (How::Cookie, Some("http://evil.example"), 403),
        // A look-alike that starts with the allowed origin.
        (How::Cookie, Some("http://app.example.evil.example"), 403),
        (How::Cookie, Some("null"), 403),
        (How::Cookie, Some(ORIGIN), 200),
        // Not a cookie: no Origin needed; but a page of another origin may not publish
        // (issue 10, M3), whatever its credentials.
        (How::Bearer, None, 200),
        (How::Bearer, Some("http://evil.example"), 403),
        (How::Query, None, 200),
        (How::Query, Some("http://evil.example"), 403),
    ];
    let mut report = String::from("\ncookie-authenticated POST and Origin:\n");
    for (how, origin, want) in cases {
        let response = request(&app, Method::POST, &url, how, &token, origin)
            .body("csrf")
            .send()
            .await;
        let got = check_refusal(response, &token).await.as_u16();
        report.push_str(&format!(
            "  {:<16} Origin {:<34} -> {got}\n",
            how.label(),
            origin.unwrap_or("(none)"),
        ));
        assert_eq!(got, want, "{how:?} with Origin {origin:?}");
    }
    // The batch endpoint too.
    let batch = "/publish".to_string();
    for (origin, want) in [(None, 403), (Some(ORIGIN), 200)] {
        let response = request(&app, Method::POST, &batch, How::Cookie, &token, origin)
            .json(&json!([{"topic": "csrf/two", "data": "batch"}]))
            .send()
            .await;
        let got = check_refusal(response, &token).await.as_u16();
        report.push_str(&format!(
            "  POST /publish cookie Origin {:<28} -> {got}\n",
            origin.unwrap_or("(none)")
        ));
        assert_eq!(got, want, "POST /publish by cookie with Origin {origin:?}");
    }
    eprintln!("{report}");
}

// ---------------------------------------------------------------------------------------------
// The Mercure endpoint: an update with several topics.

/// `POST /.well-known/mercure` takes several `topic`s per update: the token must allow every
/// one of them. The endpoint shares the checks of the native ones, CSRF included.
#[tokio::test]
async fn mercure_publish_needs_every_topic() {
    let app = hs256_app();
    let url = "/.well-known/mercure".to_string();
    let only_a = sign(
        &Key::hs(PUBLISHER_SECRET),
        None,
        mercure(&["https://example.com/a"], &[], None),
    );
    let a_and_b = sign(
        &Key::hs(PUBLISHER_SECRET),
        None,
        mercure(&["https://example.com/{x}"], &[], None),
    );
    let form = |topics: &[&str]| {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for topic in topics {
            form.append_pair("topic", topic);
        }
        form.append_pair("data", "several topics");
        form.append_pair("private", "on");
        form.finish()
    };
    let both = ["https://example.com/a", "https://example.com/b"];
    /// Token, where it goes, Origin, the update's topics, the status wanted.
    type Case<'a> = (&'a str, How, Option<&'a str>, &'a [&'a str], u16);
    let cases: [Case<'_>; 7] = [
        (&only_a, How::Bearer, None, &both[..1], 200),
        (&only_a, How::Bearer, None, &both, 403),
        (&a_and_b, How::Bearer, None, &both, 200),
        (&a_and_b, How::Query, None, &both, 200),
        (&a_and_b, How::Cookie, None, &both, 403),
        (&a_and_b, How::Cookie, Some(ORIGIN), &both, 200),
        ("", How::Nowhere, None, &both, 401),
    ];
    for (token, how, origin, topics, want) in cases {
        let response = request(&app, Method::POST, &url, how, token, origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(topics))
            .send()
            .await;
        let got = check_refusal(response, token).await;
        assert_eq!(got, want, "{how:?}, Origin {origin:?}, topics {topics:?}");
    }
}
