//! Authorization end to end: what needs the real binary — keys loaded from flags and files,
//! the durable store, startup refusals, the config file and the logs. What each token may do
//! (the rights matrix, expiry, CSRF, the Mercure endpoint) is tested in process, in
//! `crates/ssehub-http/tests/auth.rs`.
//!
//! Keys: HS256 secrets given on the command line, and the test-only RSA, EC P-256 and
//! Ed25519 keys (and a JWKS) of `crates/ssehub-http/tests/fixtures/auth/`, given through a
//! config file. Tokens are signed here with `jsonwebtoken`; the `alg: none` one is put
//! together by hand.
//!
//! - `key_files_from_the_config_file`: each kind of key file loads and verifies.
//! - `private_updates_stay_private_after_a_restart`: per-user private topics, replayed from
//!   the durable store.
//! - `publishing_is_secure_by_default`: non-loopback listeners need a publisher key.
//! - `cookie_name_and_anonymous_subscribe_are_configurable`: `[auth]` in the config file.
//! - `tokens_never_appear_in_logs`: `--log debug`, stderr captured and searched.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::jwt::{
    Key, OTHER_SECRET, PUBLISHER_SECRET, SUBSCRIBER_SECRET, alg_none, fixture, mercure, now, sign,
    unique,
};
use crate::util::{Sse, TestHub, client, data};

/// The origin allowed to send cookie-authenticated POSTs (`--cors-origin`).
const ORIGIN: &str = "http://app.example";
/// The `kid` of the RSA key in `fixtures/auth/jwks.json`.
const KID: &str = "ssehub-test-rsa-1";

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

// ---------------------------------------------------------------------------------------------
// Keys from files.

/// The key files a config file can name, with the key that signs tokens for them.
const KEY_FILES: [(&str, &str, Key, Option<&str>); 4] = [
    ("rsa_public.pem", "RS256", Key::Rsa, None),
    ("ec_public.pem", "ES256", Key::Ec, None),
    ("ed25519_public.pem", "EdDSA", Key::Ed, None),
    ("jwks.json", "RS256", Key::Rsa, Some(KID)),
];

/// `publisher_key_file` / `subscriber_key_file` with their algorithms in `[auth]`: the hub
/// loads each kind of key, accepts tokens it signs and refuses others. (What every kind of
/// token may do is the rights matrix of `crates/ssehub-http/tests/auth.rs`.)
#[tokio::test]
async fn key_files_from_the_config_file() {
    for (file, algorithm, key, kid) in KEY_FILES {
        let dir = tempfile::tempdir().unwrap();
        let path = format!("{:?}", fixture(file).display().to_string());
        let config = dir.path().join("ssehub.toml");
        std::fs::write(
            &config,
            format!(
                "[auth]\npublisher_key_file = {path}\npublisher_algorithm = \"{algorithm}\"\n\
                 subscriber_key_file = {path}\nsubscriber_algorithm = \"{algorithm}\"\n"
            ),
        )
        .unwrap();
        let config = config.display().to_string();
        let hub = TestHub::start(&["--store", "memory", "--config", &config]).await;
        let token = sign(&key, kid, mercure(&["keys/{x}"], &["keys/{x}"], None));
        let mut sse = open(&hub, "/topics/keys/one", How::Bearer, &token).await;
        publish_as(&hub, &token, "keys/one", file, false).await;
        assert_eq!(data(&sse.take(1).await), [file]);
        let stranger = sign(&Key::hs(OTHER_SECRET), None, mercure(&["*"], &["*"], None));
        for method in [Method::POST, Method::GET] {
            let url = format!("{}/topics/keys/one", hub.url);
            let response = request(method.clone(), &url, How::Bearer, &stranger, None)
                .send()
                .await
                .unwrap();
            assert_eq!(
                check_refusal(response, &stranger).await,
                401,
                "{file} {method}"
            );
        }
    }
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

/// The private flag is stored with each event: replayed from the durable store after a
/// restart, private updates still reach only their user. (Live and from memory, with every
/// way of sending a token: `crates/ssehub-http/tests/auth.rs`.)
#[tokio::test]
async fn private_updates_stay_private_after_a_restart() {
    let args = [
        "--store",
        "disk",
        "--publisher-key",
        PUBLISHER_SECRET,
        "--subscriber-key",
        SUBSCRIBER_SECRET,
    ];
    let mut hub = TestHub::start(&args).await;
    let admin = sign(&Key::hs(PUBLISHER_SECRET), None, mercure(&["*"], &[], None));
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
    hub.terminate();
    assert!(hub.wait(Duration::from_secs(30)).await.success());
    let hub = TestHub::start_in(hub.data_dir.clone(), "127.0.0.1:0", &args).await;

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
    let replay = "/topics/users/*/notifications?lastEventId=earliest";
    let mut replayed = [
        open(&hub, replay, How::Cookie, &alice).await,
        open(&hub, replay, How::Bearer, &bob).await,
        open(&hub, replay, How::Nowhere, "").await,
    ];
    let want = [
        vec!["for alice", "for everyone"],
        vec!["for bob", "for everyone"],
        vec!["for everyone"],
    ];
    each_sees(&mut replayed, &want, "replayed after a restart").await;
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
