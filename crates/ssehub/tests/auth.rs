//! Authorization end to end: JWTs with Mercure claims against the real binary.
//!
//! Keys: HS256 secrets given on the command line, and the test-only RSA, EC P-256 and
//! Ed25519 keys (and a JWKS) of `tests/fixtures/auth/`, given through a config file. Tokens are
//! signed here with `jsonwebtoken`; the `alg: none` one is put together by hand.
//!
//! - `rights_matrix`: who × how the token is sent × what it does, every cell a real request.
//! - `private_updates_reach_only_their_user`: per-user private topics, live and on replay.
//! - `subscription_ends_when_the_token_expires`, and `token_is_refused_from_its_exp_second`
//!   (ignored: a known bug, the token is still accepted during that second).
//! - `publishing_is_secure_by_default`: non-loopback listeners need a publisher key.
//! - `cookie_publish_needs_an_allowed_origin`: CSRF.
//! - `mercure_publish_needs_every_topic`: `POST /.well-known/mercure` with several topics.
//! - `cookie_name_and_anonymous_subscribe_are_configurable`: `[auth]` in the config file.
//! - `tokens_never_appear_in_logs`: `--log debug`, stderr captured and searched.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::util::{Sse, TestHub, client, data};

/// The HS256 secret of publisher tokens (at least 32 bytes, as the hub requires).
const PUBLISHER_SECRET: &str = "test-publisher-secret-0123456789abcdef";
/// The HS256 secret of subscriber tokens.
const SUBSCRIBER_SECRET: &str = "test-subscriber-secret-0123456789abcdef";
/// A secret the hubs do not know.
const OTHER_SECRET: &str = "some-other-secret-nobody-configured-0123";
/// The origin allowed to send cookie-authenticated POSTs (`--cors-origin`).
const ORIGIN: &str = "http://app.example";
/// The `kid` of the RSA key in `fixtures/auth/jwks.json`.
const KID: &str = "ssehub-test-rsa-1";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auth")
        .join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A value that makes every token different (so each one can be looked for in the logs).
fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// What signs a token.
#[derive(Clone)]
enum Key {
    /// HS256 with this secret.
    Hs(Vec<u8>),
    /// RS256 with `rsa_private.pem`.
    Rsa,
    /// ES256 with `ec_private.pem`.
    Ec,
    /// EdDSA with `ed25519_private.pem`.
    Ed,
}

impl Key {
    fn hs(secret: &str) -> Key {
        Key::Hs(secret.as_bytes().to_vec())
    }
}

/// Signs `claims` (plus a unique `jti`) with `key`, with `kid` in the header if given.
fn sign(key: &Key, kid: Option<&str>, mut claims: Value) -> String {
    claims["jti"] = json!(unique());
    let (algorithm, key) = match key {
        Key::Hs(secret) => (Algorithm::HS256, EncodingKey::from_secret(secret)),
        Key::Rsa => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&read_fixture("rsa_private.pem")).unwrap(),
        ),
        Key::Ec => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&read_fixture("ec_private.pem")).unwrap(),
        ),
        Key::Ed => (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&read_fixture("ed25519_private.pem")).unwrap(),
        ),
    };
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// Mercure claims: `{"mercure": {"publish": […], "subscribe": […]}}`, with `exp` if given.
fn mercure(publish: &[&str], subscribe: &[&str], exp: Option<u64>) -> Value {
    let mut claims = json!({"mercure": {"publish": publish, "subscribe": subscribe}});
    if let Some(exp) = exp {
        claims["exp"] = json!(exp);
    }
    claims
}

/// Base64url without padding (RFC 7515), for the hand-made `alg: none` token.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// An unsigned token: header `{"alg":"none","typ":"JWT"}`, `claims`, and an empty signature.
fn alg_none(mut claims: Value) -> String {
    claims["jti"] = json!(unique());
    format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(claims.to_string().as_bytes())
    )
}

/// Where a request carries its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// No token at all.
    Nowhere,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `?authorization=<token>`.
    Query,
    /// `Cookie: mercureAuthorization=<token>`.
    Cookie,
}

impl How {
    const ALL: [How; 3] = [How::Bearer, How::Query, How::Cookie];

    fn label(self) -> &'static str {
        match self {
            How::Nowhere => "-",
            How::Bearer => "Bearer",
            How::Query => "?authorization=",
            How::Cookie => "cookie",
        }
    }
}

/// A request to `url` with `token` where `how` says, and an `Origin` header if given.
fn request(
    method: Method,
    url: &str,
    how: How,
    token: &str,
    origin: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut url = url.to_string();
    if how == How::Query {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("authorization=");
        url.extend(form_urlencoded::byte_serialize(token.as_bytes()));
    }
    let mut request = client().request(method, url);
    match how {
        How::Bearer => request = request.bearer_auth(token),
        How::Cookie => request = request.header("cookie", format!("mercureAuthorization={token}")),
        How::Nowhere | How::Query => {}
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request
}

/// Publishes `data` to `topic` with a token that may publish anything; returns the id.
async fn publish_as(hub: &TestHub, admin: &str, topic: &str, data: &str, private: bool) -> String {
    let query = if private { "?private=1" } else { "" };
    let response = client()
        .post(format!("{}/topics/{topic}{query}", hub.url))
        .bearer_auth(admin)
        .body(data.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

/// Publishes one private event through `POST /publish` (`"private": true`).
async fn publish_private_batch(hub: &TestHub, admin: &str, topic: &str, data: &str) {
    let response = client()
        .post(format!("{}/publish", hub.url))
        .bearer_auth(admin)
        .json(&json!([{"topic": topic, "data": data, "private": true}]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
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
async fn open(hub: &TestHub, path: &str, how: How, token: &str) -> Sse {
    let response = request(Method::GET, &format!("{}{path}", hub.url), how, token, None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path} ({how:?})");
    Sse::new(response)
}

/// Asserts a 401 answer says how to authenticate, and does not echo `token`.
async fn check_refusal(response: reqwest::Response, token: &str) -> StatusCode {
    let status = response.status();
    if status == 401 {
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer")),
            "a 401 carries WWW-Authenticate: Bearer …, got {challenge:?}"
        );
    }
    if !status.is_success() {
        let body = response.text().await.unwrap();
        assert!(
            token.len() < 8 || !body.contains(token),
            "the error body echoes the token: {body}"
        );
    }
    status
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
    hub: TestHub,
    /// A token that may publish to any topic.
    admin: String,
    _config: Option<tempfile::TempDir>,
}

impl MatrixHub {
    async fn start(keys: Keys) -> MatrixHub {
        let mut args = vec!["--store", "memory", "--cors-origin", ORIGIN];
        let (file, algorithm, admin_key, kid) = match keys {
            Keys::Hs256 => (None, "", Key::hs(PUBLISHER_SECRET), None),
            Keys::Rs256 => (Some("rsa_public.pem"), "RS256", Key::Rsa, None),
            Keys::Es256 => (Some("ec_public.pem"), "ES256", Key::Ec, None),
            Keys::EdDsa => (Some("ed25519_public.pem"), "EdDSA", Key::Ed, None),
            Keys::Jwks => (Some("jwks.json"), "RS256", Key::Rsa, Some(KID)),
        };
        let config = file.map(|file| {
            let dir = tempfile::tempdir().unwrap();
            let path = format!("{:?}", fixture(file).display().to_string());
            let text = format!(
                "[auth]\npublisher_key_file = {path}\npublisher_algorithm = \"{algorithm}\"\n\
                 subscriber_key_file = {path}\nsubscriber_algorithm = \"{algorithm}\"\n"
            );
            std::fs::write(dir.path().join("ssehub.toml"), text).unwrap();
            dir
        });
        let config_path = config
            .as_ref()
            .map(|dir| dir.path().join("ssehub.toml").display().to_string());
        match &config_path {
            Some(path) => args.extend(["--config", path.as_str()]),
            None => args.extend([
                "--publisher-key",
                PUBLISHER_SECRET,
                "--subscriber-key",
                SUBSCRIBER_SECRET,
            ]),
        }
        let hub = TestHub::start(&args).await;
        let admin = sign(&admin_key, kid, mercure(&["*"], &[], None));
        MatrixHub {
            keys,
            hub,
            admin,
            _config: config,
        }
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
    let h = &hub.hub;
    // Cookie-authenticated POSTs come from the allowed origin (CSRF is tested on its own).
    let origin = (row.how == How::Cookie).then_some(ORIGIN);
    let mut got = [S200; 5];
    for (i, topic) in [format!("p/{id}/ok"), format!("q/{id}/denied")]
        .iter()
        .enumerate()
    {
        let url = format!("{}/topics/{topic}", h.url);
        let response = request(Method::POST, &url, row.how, &row.publish, origin)
            .body(format!("{} via {}", row.who, row.how.label()))
            .send()
            .await
            .unwrap();
        got[i] = Outcome::Status(check_refusal(response, &row.publish).await.as_u16());
    }

    let url = format!(
        "{}/subscribe?topic=m/{id}/pub&topic=m/{id}/yes&topic=m/{id}/no",
        h.url
    );
    let response = request(Method::GET, &url, row.how, &row.subscribe, None)
        .send()
        .await
        .unwrap();
    if response.status() != 200 {
        let status = check_refusal(response, &row.subscribe).await.as_u16();
        got[2..].fill(Outcome::Status(status));
        return got;
    }
    let mut sse = Sse::new(response);
    // Two private events, one the token's `m/{r}/yes` matches and one it does not, then a
    // public one: the stream is in order, so once the public one is there, the others are
    // there too or never will be.
    publish_as(h, &hub.admin, &format!("m/{id}/yes"), "yes", true).await;
    publish_private_batch(h, &hub.admin, &format!("m/{id}/no"), "no").await;
    publish_as(h, &hub.admin, &format!("m/{id}/pub"), "pub", false).await;
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
        hubs.push(MatrixHub::start(keys).await);
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
    for store in ["memory", "disk"] {
        let hub = TestHub::start(&[
            "--store",
            store,
            "--publisher-key",
            PUBLISHER_SECRET,
            "--subscriber-key",
            SUBSCRIBER_SECRET,
        ])
        .await;
        let admin = sign(&Key::hs(PUBLISHER_SECRET), None, mercure(&["*"], &[], None));
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
            open(&hub, path, How::Bearer, &alice).await,
            open(&hub, path, How::Query, &bob).await,
            open(&hub, path, How::Nowhere, "").await,
        ];
        publish_as(&hub, &admin, "users/alice/notifications", "for alice", true).await;
        publish_private_batch(&hub, &admin, "users/bob/notifications", "for bob").await;
        publish_as(
            &hub,
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
        each_sees(&mut live, &want, &format!("live ({store} store)")).await;

        // The same from history, with each token sent another way.
        let replay = format!("{path}?lastEventId=earliest");
        let mut replayed = [
            open(&hub, &replay, How::Cookie, &alice).await,
            open(&hub, &replay, How::Bearer, &bob).await,
            open(&hub, &replay, How::Nowhere, "").await,
        ];
        each_sees(
            &mut replayed,
            &want,
            &format!("replay of lastEventId=earliest ({store} store)"),
        )
        .await;
    }
}

/// An in-memory hub with both HS256 keys set.
async fn keyed_hub() -> TestHub {
    TestHub::start(&[
        "--store",
        "memory",
        "--publisher-key",
        PUBLISHER_SECRET,
        "--subscriber-key",
        SUBSCRIBER_SECRET,
    ])
    .await
}

// ---------------------------------------------------------------------------------------------
// Expiry.

#[tokio::test]
async fn subscription_ends_when_the_token_expires() {
    let hub = keyed_hub().await;
    let admin = sign(&Key::hs(PUBLISHER_SECRET), None, mercure(&["*"], &[], None));
    let exp = now() + 2;
    let token = sign(
        &Key::hs(SUBSCRIBER_SECRET),
        None,
        mercure(&[], &["expiry/private"], Some(exp)),
    );
    let path = "/subscribe?topic=expiry/public&topic=expiry/private";
    let mut streams = Vec::new();
    for how in How::ALL {
        streams.push((how, open(&hub, path, how, &token).await));
    }
    // Open and authorized until then.
    publish_as(&hub, &admin, "expiry/private", "private", true).await;
    publish_as(&hub, &admin, "expiry/public", "public", false).await;
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
    let response = request(
        Method::GET,
        &format!("{}{path}", hub.url),
        How::Bearer,
        &token,
        None,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(check_refusal(response, &token).await, 401);
}

/// RFC 7519 §4.1.4: a token "MUST NOT be accepted for processing" on or after its `exp` —
/// including during the second `exp` itself (a whole-second `exp < now` check would let it
/// publish, and answer a subscription with a stream that ends at once).
#[tokio::test]
async fn token_is_refused_from_its_exp_second() {
    let hub = keyed_hub().await;
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
    let url = format!("{}/topics/expiry/edge", hub.url);
    let response = request(Method::POST, &url, How::Bearer, &publisher, None)
        .body("at exp")
        .send()
        .await
        .unwrap();
    assert_eq!(check_refusal(response, &publisher).await, 401, "publish");
    let response = request(Method::GET, &url, How::Bearer, &subscriber, None)
        .send()
        .await
        .unwrap();
    assert_eq!(check_refusal(response, &subscriber).await, 401, "subscribe");
}

// ---------------------------------------------------------------------------------------------
// Secure defaults.

/// `ssehub serve --listen <listen> <args>`, expected to exit: its status and stderr.
async fn serve_expecting_exit(listen: &str, args: &[&str]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args(["serve", "--listen", listen, "--log", "warn", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("ssehub exits instead of serving")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("listening"), "it listened: {stdout}");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `http://0.0.0.0:PORT` → `http://127.0.0.1:PORT`: the tests only connect over loopback.
fn via_loopback(hub: &mut TestHub) {
    hub.url = hub.url.replace("://0.0.0.0:", "://127.0.0.1:");
}

async fn anonymous_publish(hub: &TestHub) -> reqwest::Response {
    client()
        .post(format!("{}/topics/secure/defaults", hub.url))
        .body("anyone")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn publishing_is_secure_by_default() {
    // All interfaces, no publisher key: refused, saying why and what to do.
    let (status, stderr) = serve_expecting_exit("0.0.0.0:0", &["--store", "memory"]).await;
    assert!(!status.success(), "{stderr}");
    for needle in [
        "refusing to listen on 0.0.0.0:0 without a publisher key",
        "--allow-anonymous-publish",
        "publisher_key",
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in: {stderr}");
    }
    // A subscriber key alone changes nothing.
    let (status, stderr) = serve_expecting_exit(
        "0.0.0.0:0",
        &["--store", "memory", "--subscriber-key", SUBSCRIBER_SECRET],
    )
    .await;
    assert!(
        !status.success() && stderr.contains("without a publisher key"),
        "{stderr}"
    );

    // Explicitly allowed, on the command line or in the config file: it starts, and anyone
    // may publish.
    let config = tempfile::tempdir().unwrap();
    let config_file = config.path().join("ssehub.toml");
    std::fs::write(&config_file, "[auth]\nallow_anonymous_publish = true\n").unwrap();
    let config_file = config_file.display().to_string();
    for args in [
        vec!["--store", "memory", "--allow-anonymous-publish"],
        vec!["--store", "memory", "--config", config_file.as_str()],
    ] {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let mut hub = TestHub::start_in(dir, "0.0.0.0:0", &args).await;
        via_loopback(&mut hub);
        let response = anonymous_publish(&hub).await;
        assert_eq!(response.status(), 200, "{args:?}");
    }

    // With a publisher key it starts on all interfaces, and anonymous publishing is refused.
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut hub = TestHub::start_in(
        dir,
        "0.0.0.0:0",
        &["--store", "memory", "--publisher-key", PUBLISHER_SECRET],
    )
    .await;
    via_loopback(&mut hub);
    let response = anonymous_publish(&hub).await;
    assert_eq!(check_refusal(response, "").await, 401);

    // Loopback, no key: anonymous publishing works (development).
    let hub = TestHub::start(&["--store", "memory"]).await;
    assert_eq!(anonymous_publish(&hub).await.status(), 200);

    // Loopback with a publisher key: 401 with a challenge, on both publish endpoints.
    let hub = TestHub::start(&["--store", "memory", "--publisher-key", PUBLISHER_SECRET]).await;
    let response = anonymous_publish(&hub).await;
    assert_eq!(check_refusal(response, "").await, 401);
    let response = client()
        .post(format!("{}/publish", hub.url))
        .json(&json!([{"topic": "secure/defaults", "data": "anyone"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(check_refusal(response, "").await, 401);
}

// ---------------------------------------------------------------------------------------------
// CSRF.

#[tokio::test]
async fn cookie_publish_needs_an_allowed_origin() {
    let hub = TestHub::start(&[
        "--store",
        "memory",
        "--publisher-key",
        PUBLISHER_SECRET,
        "--cors-origin",
        ORIGIN,
    ])
    .await;
    let token = sign(
        &Key::hs(PUBLISHER_SECRET),
        None,
        mercure(&["csrf/{x}"], &[], None),
    );
    let url = format!("{}/topics/csrf/one", hub.url);
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
        let response = request(Method::POST, &url, how, &token, origin)
            .body("csrf")
            .send()
            .await
            .unwrap();
        let got = check_refusal(response, &token).await.as_u16();
        report.push_str(&format!(
            "  {:<16} Origin {:<34} -> {got}\n",
            how.label(),
            origin.unwrap_or("(none)"),
        ));
        assert_eq!(got, want, "{how:?} with Origin {origin:?}");
    }
    // The batch endpoint too.
    let batch = format!("{}/publish", hub.url);
    for (origin, want) in [(None, 403), (Some(ORIGIN), 200)] {
        let response = request(Method::POST, &batch, How::Cookie, &token, origin)
            .json(&json!([{"topic": "csrf/two", "data": "batch"}]))
            .send()
            .await
            .unwrap();
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
    let hub = TestHub::start(&[
        "--store",
        "memory",
        "--publisher-key",
        PUBLISHER_SECRET,
        "--cors-origin",
        ORIGIN,
    ])
    .await;
    let url = format!("{}/.well-known/mercure", hub.url);
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
        let response = request(Method::POST, &url, how, token, origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(topics))
            .send()
            .await
            .unwrap();
        let got = check_refusal(response, token).await;
        assert_eq!(got, want, "{how:?}, Origin {origin:?}, topics {topics:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The `[auth]` options that change who is let in.

#[tokio::test]
async fn cookie_name_and_anonymous_subscribe_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssehub.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nsubscriber_key = \"{SUBSCRIBER_SECRET}\"\nanonymous_subscribe = false\n\
             cookie_name = \"session_jwt\"\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let hub = TestHub::start(&["--store", "memory", "--config", &config]).await;
    let token = sign(&Key::hs(SUBSCRIBER_SECRET), None, mercure(&[], &[], None));
    let url = format!("{}/topics/configured", hub.url);
    let get = |cookie: Option<String>| {
        let mut request = client().get(&url);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    // No token: refused, as anonymous subscribing is off.
    let response = get(None).await.unwrap();
    assert_eq!(check_refusal(response, "").await, 401, "anonymous");
    // The token in the default cookie is not looked at: still anonymous.
    let response = get(Some(format!("mercureAuthorization={token}")))
        .await
        .unwrap();
    assert_eq!(
        check_refusal(response, &token).await,
        401,
        "the default cookie name"
    );
    // In the configured cookie (among others), or in the header, it is.
    let response = get(Some(format!("theme=dark; session_jwt={token}; x=1")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the configured cookie name");
    drop(response);
    open(&hub, "/topics/configured", How::Bearer, &token).await;
}

// ---------------------------------------------------------------------------------------------
// Logs.

#[tokio::test]
async fn tokens_never_appear_in_logs() {
    let mut hub = TestHub::start_capturing(&[
        "--log",
        "debug",
        "--store",
        "memory",
        "--publisher-key",
        PUBLISHER_SECRET,
        "--subscriber-key",
        SUBSCRIBER_SECRET,
        "--cors-origin",
        ORIGIN,
    ])
    .await;
    let publisher = Key::hs(PUBLISHER_SECRET);
    let subscriber = Key::hs(SUBSCRIBER_SECRET);
    let mut tokens = Vec::new();
    let mut sent = |token: String| {
        tokens.push(token.clone());
        token
    };
    for how in How::ALL {
        // Accepted: publish, publish outside the rights (403), subscribe.
        let token = sent(sign(&publisher, None, mercure(&["logs/{x}"], &[], None)));
        for topic in ["logs/ok", "elsewhere/no"] {
            let url = format!("{}/topics/{topic}?private=1", hub.url);
            let response = request(Method::POST, &url, how, &token, Some(ORIGIN))
                .body("log test")
                .send()
                .await
                .unwrap();
            check_refusal(response, &token).await;
        }
        let token = sent(sign(&subscriber, None, mercure(&[], &["logs/{x}"], None)));
        let mut sse = open(&hub, "/topics/logs/ok?lastEventId=earliest", how, &token).await;
        sse.take(1).await;
        drop(sse);

        // Refused: wrong key, expired, malformed, alg none, and a cookie POST without Origin.
        let refused = [
            sign(&Key::hs(OTHER_SECRET), None, mercure(&["*"], &["*"], None)),
            sign(&subscriber, None, mercure(&[], &["*"], Some(now() - 60))),
            format!("malformed-{}", unique()),
            alg_none(mercure(&["*"], &["*"], None)),
        ];
        for token in refused {
            let token = sent(token);
            let url = format!("{}/topics/logs/ok", hub.url);
            let response = request(Method::POST, &url, how, &token, None)
                .body("refused")
                .send()
                .await
                .unwrap();
            assert!(matches!(
                check_refusal(response, &token).await.as_u16(),
                401 | 403
            ));
            let response = request(Method::GET, &url, how, &token, None)
                .send()
                .await
                .unwrap();
            assert_eq!(check_refusal(response, &token).await, 401);
        }
    }
    let log = hub.finish_capturing().await;
    assert!(
        log.contains("refused a request"),
        "the debug log was captured (it logs refusals):\n{log}"
    );
    eprintln!(
        "the hub's --log debug output: {} lines, {} bytes; looked for {} tokens",
        log.lines().count(),
        log.len(),
        tokens.len()
    );
    let mut leaks = Vec::new();
    for token in &tokens {
        // The whole token, and its signature alone (the part that makes it usable).
        let signature = token.rsplit('.').next().unwrap();
        if log.contains(token.as_str()) || (signature.len() >= 16 && log.contains(signature)) {
            leaks.push(token.clone());
        }
    }
    for secret in [PUBLISHER_SECRET, SUBSCRIBER_SECRET] {
        if log.contains(secret) {
            leaks.push(format!("the secret {secret}"));
        }
    }
    assert!(leaks.is_empty(), "in the log: {leaks:#?}\n{log}");
}
