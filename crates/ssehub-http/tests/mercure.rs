//! The Mercure protocol (draft-dunglas-mercure-07) at `/.well-known/mercure`, in process:
//! publishing forms, URI-template and exact selectors, private updates, resume and the
//! `Last-Event-ID` response header, active subscriptions (events and API), refusals, and the
//! discovery `Link` header.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde_json::{Value, json};
use ssehub_wire::MessageEvent;

use ssehub_core::{BoxFuture, Hub, HubConfig, MemoryStore, Retention, StoreError};
use ssehub_http::{AppState, AuthConfig, HttpConfig, KeySet, SubscriptionDirectory};

use crate::jwt::{self, Key};
use crate::util::{Res, Sse, TestApp, seq};

const PUBLISHER_SECRET: &str = "mercure-test-publisher-secret-0123456789";
const SUBSCRIBER_SECRET: &str = "mercure-test-subscriber-secret-012345678";
const HUB: &str = "/.well-known/mercure";
const LINK: &str = "</.well-known/mercure>; rel=\"mercure\"";
/// The selector that matches every subscription event (draft-07's example).
const SUBSCRIPTIONS: &str = "/.well-known/mercure/subscriptions{/topic}{/subscriber}";

/// A hub with both HS256 keys, `config` and a history of at most `retention`.
fn start_with(config: HttpConfig, retention: Retention) -> TestApp {
    let auth = AuthConfig {
        publisher: Some(KeySet::hmac(PUBLISHER_SECRET.as_bytes())),
        subscriber: Some(KeySet::hmac(SUBSCRIBER_SECRET.as_bytes())),
        anonymous_publish: false,
        ..AuthConfig::default()
    };
    TestApp::with_retention(config, auth, retention)
}

/// A hub with both HS256 keys and default settings.
fn start() -> TestApp {
    start_with(HttpConfig::default(), Retention::default())
}

/// `claims` signed with the HS256 `secret`.
fn sign(secret: &str, claims: &Value) -> String {
    jwt::sign(&Key::hs(secret), None, claims.clone())
}

/// A publisher token for `publish` selectors.
fn publisher(publish: &[&str]) -> String {
    sign(PUBLISHER_SECRET, &json!({"mercure": {"publish": publish}}))
}

/// A subscriber token with `subscribe` selectors and an optional payload.
fn subscriber(subscribe: &[&str], payload: Option<Value>) -> String {
    let mut mercure = json!({ "subscribe": subscribe });
    if let Some(payload) = payload {
        mercure["payload"] = payload;
    }
    sign(SUBSCRIBER_SECRET, &json!({ "mercure": mercure }))
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

/// `POST /.well-known/mercure` with `fields`, with a publisher token for `*`.
async fn post(app: &TestApp, fields: &[(&str, &str)]) -> Res {
    post_with(app, Some(&publisher(&["*"])), fields).await
}

async fn post_with(app: &TestApp, token: Option<&str>, fields: &[(&str, &str)]) -> Res {
    let mut request = app
        .post(HUB)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await
}

/// Publishes and returns the id (checking the draft's answer: 200, text/plain, the id: the
/// publisher's when it gave one, else the hub's).
async fn publish(app: &TestApp, fields: &[(&str, &str)]) -> String {
    let response = post(app, fields).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let id = response.text().await;
    match fields.iter().find(|(name, _)| *name == "id") {
        Some((_, mine)) => assert_eq!(&id, mine),
        None => assert!(
            id.split_once('-').is_some_and(
                |(log, seq)| log.len() == 8 && seq.bytes().all(|b| b.is_ascii_digit())
            ),
            "{id:?}"
        ),
    }
    id
}

/// `GET /.well-known/mercure?<query>` with an optional token and `Last-Event-ID`.
async fn get(
    app: &TestApp,
    query: &[(&str, &str)],
    token: Option<&str>,
    last_event_id: Option<&str>,
) -> Res {
    let mut request = app.get(&format!("{HUB}?{}", form(query)));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await
}

/// A Mercure stream, one event at a time.
struct Stream {
    sse: Sse,
    pending: VecDeque<MessageEvent>,
}

impl Stream {
    async fn open(
        app: &TestApp,
        query: &[(&str, &str)],
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Stream {
        let response = get(app, query, token, last_event_id).await;
        assert_eq!(response.status(), 200, "{query:?}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Stream {
            sse: response.sse(),
            pending: VecDeque::new(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.sse.headers.get(name).map(|v| v.to_str().unwrap())
    }

    async fn next(&mut self) -> MessageEvent {
        while self.pending.is_empty() {
            self.pending.extend(self.sse.take(1).await);
        }
        self.pending.pop_front().unwrap()
    }

    async fn data(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next().await.data);
        }
        out
    }

    /// The next subscription event, as JSON.
    async fn subscription_event(&mut self) -> Value {
        serde_json::from_str(&self.next().await.data).unwrap()
    }
}

/// `/.well-known/mercure/subscriptions…` with an optional token.
async fn api(app: &TestApp, path: &str, token: Option<&str>) -> Res {
    let mut request = app.get(&format!("{HUB}/subscriptions{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await
}

/// RFC 6570 simple-expansion encoding, as the hub writes subscription topics.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn error_of(response: Res) -> (StatusCode, String) {
    let status = response.status();
    assert_eq!(response.headers()["link"], LINK);
    let body: Value = response.json().await;
    (status, body["error"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn publish_and_subscribe_with_templates_and_exact_topics() {
    let app = start();
    let mut books = Stream::open(
        &app,
        &[("topic", "https://example.com/books/{id}")],
        None,
        None,
    )
    .await;
    let mut user = Stream::open(
        &app,
        &[("topic", "https://example.com/users/1")],
        None,
        None,
    )
    .await;
    assert_eq!(books.header("link"), Some(LINK));
    assert_eq!(books.header("last-event-id"), None);

    let id = publish(
        &app,
        &[
            ("topic", "https://example.com/books/1"),
            ("data", "line one\nline two"),
            ("type", "book"),
            ("retry", "1500"),
            ("id", "urn:example:book-1-rev-1"),
            ("unknown", "fields are ignored"),
        ],
    )
    .await;
    let event = books.next().await;
    assert_eq!(event.last_event_id, id);
    assert_eq!(
        id, "urn:example:book-1-rev-1",
        "the publisher's id is the event's"
    );
    assert_eq!(event.event_type, "book");
    assert_eq!(event.data, "line one\nline two");
    assert_eq!(books.sse.parser.reconnection_time_ms(), Some(1500));

    publish(
        &app,
        &[("topic", "https://example.com/users/1"), ("data", "u1")],
    )
    .await;
    // An alternate topic matching the template delivers too.
    publish(
        &app,
        &[
            ("topic", "urn:example:canonical"),
            ("topic", "https://example.com/books/2"),
            ("data", "alternate"),
        ],
    )
    .await;
    // `data` is optional.
    publish(&app, &[("topic", "https://example.com/users/1")]).await;
    assert_eq!(books.data(1).await, ["alternate"]);
    assert_eq!(user.data(1).await, ["u1"]);
    let empty = user.next().await;
    assert_eq!(
        (empty.event_type.as_str(), empty.data.as_str()),
        ("message", "")
    );
}

#[tokio::test]
async fn private_updates_go_only_to_subscribers_whose_token_matches() {
    let app = start();
    let books = [("topic", "https://example.com/books/{id}")];
    let alice_token = subscriber(&["https://example.com/users/alice/{?topic}"], None);
    let bob_token = subscriber(&["https://example.com/users/bob/{?topic}"], None);
    let mut alice = Stream::open(&app, &books, Some(&alice_token), None).await;
    let mut bob = Stream::open(&app, &books, Some(&bob_token), None).await;
    let mut anonymous = Stream::open(&app, &books, None, None).await;

    // draft-07's example: the private update's alternate topic names the user.
    let private = publish(
        &app,
        &[
            ("topic", "https://example.com/books/1"),
            (
                "topic",
                "https://example.com/users/alice/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
            ),
            ("data", "for alice"),
            ("private", "on"),
        ],
    )
    .await;
    // `private` with an empty value is private too.
    publish(
        &app,
        &[
            ("topic", "https://example.com/books/2"),
            ("data", "for nobody"),
            ("private", ""),
        ],
    )
    .await;
    publish(
        &app,
        &[("topic", "https://example.com/books/3"), ("data", "public")],
    )
    .await;
    assert_eq!(alice.data(2).await, ["for alice", "public"]);
    assert_eq!(bob.data(1).await, ["public"]);
    assert_eq!(anonymous.data(1).await, ["public"]);

    // In replay too.
    let mut again = Stream::open(&app, &books, Some(&alice_token), Some("earliest")).await;
    let first = again.next().await;
    assert_eq!(
        (first.data.as_str(), first.last_event_id.as_str()),
        ("for alice", private.as_str())
    );
    assert_eq!(again.data(1).await, ["public"]);
    let mut again = Stream::open(&app, &books, None, Some("earliest")).await;
    assert_eq!(again.data(1).await, ["public"]);

    // The stream ends when the token expires.
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let short = sign(
        SUBSCRIBER_SECRET,
        &json!({"exp": exp, "mercure": {"subscribe": ["*"]}}),
    );
    let mut expiring = Stream::open(&app, &books, Some(&short), None).await;
    expiring.sse.until_end(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn resume_and_the_last_event_id_response_header() {
    let app = start();
    let topic = [("topic", "https://example.com/log")];
    let mut ids = Vec::new();
    for data in ["e1", "e2", "e3"] {
        ids.push(
            publish(
                &app,
                &[("topic", "https://example.com/log"), ("data", data)],
            )
            .await,
        );
    }
    const LOG: &str = "https://example.com/log";

    // The query parameter (both spellings).
    let mut s = Stream::open(
        &app,
        &[("topic", LOG), ("lastEventID", &ids[0])],
        None,
        None,
    )
    .await;
    assert_eq!(s.header("last-event-id"), Some(ids[0].as_str()));
    assert_eq!(s.data(2).await, ["e2", "e3"]);
    let mut s = Stream::open(
        &app,
        &[("topic", LOG), ("lastEventId", &ids[1])],
        None,
        None,
    )
    .await;
    assert_eq!(s.header("last-event-id"), Some(ids[1].as_str()));
    assert_eq!(s.data(1).await, ["e3"]);

    // The header wins over the parameter.
    let mut s = Stream::open(
        &app,
        &[("topic", LOG), ("lastEventID", &ids[0])],
        None,
        Some(&ids[1]),
    )
    .await;
    assert_eq!(s.header("last-event-id"), Some(ids[1].as_str()));
    assert_eq!(s.data(1).await, ["e3"]);

    // The newest id: nothing to replay, the header names it.
    let mut s = Stream::open(&app, &topic, None, Some(&ids[2])).await;
    assert_eq!(s.header("last-event-id"), Some(ids[2].as_str()));
    publish(
        &app,
        &[("topic", "https://example.com/log"), ("data", "e4")],
    )
    .await;
    assert_eq!(s.data(1).await, ["e4"]);

    // `earliest`: everything retained.
    let mut s = Stream::open(
        &app,
        &[("topic", LOG), ("lastEventID", "earliest")],
        None,
        None,
    )
    .await;
    assert_eq!(s.header("last-event-id"), Some("earliest"));
    assert_eq!(s.data(4).await, ["e1", "e2", "e3", "e4"]);

    // An unknown id: `earliest`, ssehub's gap notice, then everything retained.
    let mut s = Stream::open(&app, &topic, None, Some("urn:uuid:not-ours")).await;
    assert_eq!(s.header("last-event-id"), Some("earliest"));
    let gap = s.next().await;
    assert_eq!(gap.event_type, "ssehub-gap");
    assert_eq!(
        serde_json::from_str::<Value>(&gap.data).unwrap()["reason"],
        "unknown"
    );
    assert_eq!(s.data(4).await, ["e1", "e2", "e3", "e4"]);
}

#[tokio::test]
async fn an_expired_id_answers_earliest() {
    let app = start_with(
        HttpConfig::default(),
        Retention {
            max_events: 2,
            ..Retention::default()
        },
    );
    let mut ids = Vec::new();
    for data in ["e1", "e2", "e3", "e4"] {
        ids.push(
            publish(
                &app,
                &[("topic", "https://example.com/log"), ("data", data)],
            )
            .await,
        );
    }
    let mut s = Stream::open(
        &app,
        &[
            ("topic", "https://example.com/log"),
            ("lastEventID", &ids[0]),
        ],
        None,
        None,
    )
    .await;
    assert_eq!(s.header("last-event-id"), Some("earliest"));
    let gap = s.next().await;
    assert_eq!(gap.event_type, "ssehub-gap");
    assert_eq!(
        serde_json::from_str::<Value>(&gap.data).unwrap()["reason"],
        "expired"
    );
    assert_eq!(s.data(2).await, ["e3", "e4"]);
}

#[tokio::test]
async fn active_subscriptions_events_and_api() {
    let app = start();
    let watcher_token = subscriber(&[SUBSCRIPTIONS], None);
    let mut watcher = Stream::open(
        &app,
        &[("topic", SUBSCRIPTIONS)],
        Some(&watcher_token),
        None,
    )
    .await;
    // The watcher's own subscription is announced first.
    let own = watcher.subscription_event().await;
    assert_eq!(own["topic"], SUBSCRIPTIONS);
    assert_eq!(own["active"], true);
    let watcher_id = own["subscriber"].as_str().unwrap().to_string();

    // Another subscriber, with two selectors and a payload.
    let other_token = subscriber(&[], Some(json!({"user": "o"})));
    let selectors = ["https://example.com/books/{id}", "https://example.com/x"];
    let other = get(
        &app,
        &[("topic", selectors[0]), ("topic", selectors[1])],
        Some(&other_token),
        None,
    )
    .await;
    assert_eq!(other.status(), 200);
    let mut started = Vec::new();
    for _ in 0..2 {
        started.push(watcher.subscription_event().await);
    }
    let other_id = started[0]["subscriber"].as_str().unwrap().to_string();
    assert_ne!(other_id, watcher_id);
    assert!(other_id.starts_with("urn:uuid:"), "{other_id}");
    for (event, selector) in started.iter().zip(selectors) {
        let id = format!(
            "{HUB}/subscriptions/{}/{}",
            encode(selector),
            encode(&other_id)
        );
        assert_eq!(
            *event,
            json!({
                "@context": "https://mercure.rocks/",
                "id": id,
                "type": "Subscription",
                "topic": selector,
                "subscriber": other_id,
                "active": true,
                "payload": {"user": "o"},
            })
        );
    }

    // The API: the whole collection.
    let response = api(&app, "", Some(&watcher_token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/ld+json");
    assert_eq!(response.headers()["link"], LINK);
    let all: Value = response.json().await;
    assert_eq!(all["@context"], "https://mercure.rocks/");
    assert_eq!(all["id"], "/.well-known/mercure/subscriptions");
    assert_eq!(all["type"], "Subscriptions");
    // Subscription events are live only: nothing is stored, so no event id yet.
    assert_eq!(all["lastEventID"], "earliest");
    let listed: Vec<(&str, &str)> = all["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["subscriber"].as_str().unwrap(),
                s["topic"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (watcher_id.as_str(), SUBSCRIPTIONS),
            (other_id.as_str(), selectors[0]),
            (other_id.as_str(), selectors[1]),
        ]
    );
    assert_eq!(all["subscriptions"][1], {
        let mut doc = started[0].clone();
        doc.as_object_mut().unwrap().remove("@context");
        doc
    });

    // One selector's collection, and one subscription.
    let by_topic: Value = api(
        &app,
        &format!("/{}", encode(selectors[0])),
        Some(&watcher_token),
    )
    .await
    .json()
    .await;
    assert_eq!(
        by_topic["id"],
        format!("{HUB}/subscriptions/{}", encode(selectors[0]))
    );
    assert_eq!(by_topic["type"], "Subscriptions");
    assert_eq!(by_topic["subscriptions"].as_array().unwrap().len(), 1);
    let single_path = format!("/{}/{}", encode(selectors[1]), encode(&other_id));
    let response = api(&app, &single_path, Some(&watcher_token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/ld+json");
    let single: Value = response.json().await;
    let mut expected = started[1].clone();
    expected["lastEventID"] = single["lastEventID"].clone();
    assert_eq!(single, expected);
    assert_eq!(single["lastEventID"], "earliest");

    // Refusals: unknown subscription, no token, a token for other URLs.
    let unknown = format!("/{}/{}", encode(selectors[1]), encode("urn:uuid:nobody"));
    assert_eq!(
        error_of(api(&app, &unknown, Some(&watcher_token)).await).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    assert_eq!(
        error_of(api(&app, "", None).await).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    let narrow = subscriber(&["https://example.com/{anything}"], None);
    assert_eq!(
        error_of(api(&app, "", Some(&narrow)).await).await,
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    let bad = sign(
        "not-the-subscriber-secret-0123456789abcd",
        &json!({"mercure": {"subscribe": ["*"]}}),
    );
    assert_eq!(
        error_of(api(&app, "", Some(&bad)).await).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    // A token for one subscription only sees that one.
    let only = subscriber(&[&format!("{HUB}/subscriptions{single_path}")], None);
    assert_eq!(api(&app, &single_path, Some(&only)).await.status(), 200);
    assert_eq!(api(&app, "", Some(&only)).await.status(), 403);

    // The other subscriber leaves: one `active: false` per selector.
    drop(other);
    for selector in selectors {
        let ended = watcher.subscription_event().await;
        assert_eq!(ended["subscriber"], other_id.as_str());
        assert_eq!(ended["topic"], selector);
        assert_eq!(ended["active"], false);
        assert_eq!(ended["payload"], json!({"user": "o"}));
    }
    assert_eq!(
        api(&app, &single_path, Some(&watcher_token)).await.status(),
        404
    );
    let all: Value = api(&app, "", Some(&watcher_token)).await.json().await;
    assert_eq!(all["subscriptions"].as_array().unwrap().len(), 1);

    // Subscription events are private: a subscriber without the rights sees none of them.
    let mut outsider =
        Stream::open(&app, &[("topic", SUBSCRIPTIONS)], None, Some("earliest")).await;
    publish(
        &app,
        &[("topic", "https://example.com/x"), ("data", "marker")],
    )
    .await;
    let mut public = Stream::open(&app, &[("topic", "*")], None, Some("earliest")).await;
    assert_eq!(public.data(1).await, ["marker"]);
    outsider.sse.nothing_for(Duration::from_millis(300)).await;
}

/// Subscription events are live only (never stored, so no anonymous connect writes to
/// history): a client that subscribes to them first, then lists the subscriptions, misses no
/// change; and nothing of them is replayed from history.
#[tokio::test]
async fn subscribing_then_listing_misses_no_subscription_change() {
    let app = start();
    let token = subscriber(&[SUBSCRIPTIONS], None);
    let all: Value = api(&app, "", Some(&token)).await.json().await;
    assert_eq!(all["lastEventID"], "earliest");
    assert_eq!(all["subscriptions"], json!([]));

    // A subscription from before the watcher: only the listing can show it.
    let first = get(&app, &[("topic", "a")], None, None).await;
    assert_eq!(first.status(), 200);
    let mut watch = Stream::open(&app, &[("topic", SUBSCRIPTIONS)], Some(&token), None).await;
    let own = watch.subscription_event().await;
    assert_eq!(own["topic"], SUBSCRIPTIONS);
    let all: Value = api(&app, "", Some(&token)).await.json().await;
    let listed: Vec<&str> = all["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["topic"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["a", SUBSCRIPTIONS], "{all}");
    assert_eq!(all["lastEventID"], "earliest", "nothing was stored");

    // What changes after the listing reaches the watcher's stream.
    drop(first);
    let ended = watch.subscription_event().await;
    assert_eq!(
        (&ended["topic"], &ended["active"]),
        (&json!("a"), &json!(false))
    );

    // Nothing is replayed: a new watcher from the earliest event gets its own announcement
    // only, live.
    let mut late = Stream::open(
        &app,
        &[("topic", SUBSCRIPTIONS)],
        Some(&token),
        Some("earliest"),
    )
    .await;
    let late_own = late.subscription_event().await;
    assert_eq!(late_own["topic"], SUBSCRIPTIONS);
    assert_ne!(late_own["subscriber"], own["subscriber"]);
    assert_eq!(late_own["active"], true);
    late.sse.nothing_for(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn refusals_use_the_draft_status_codes() {
    let app = start();
    type Case<'a> = (&'a [(&'a str, &'a str)], StatusCode, &'a str);
    let cases: [Case<'_>; 9] = [
        (&[("data", "x")], StatusCode::BAD_REQUEST, "invalid_topic"),
        (
            &[("topic", "a"), ("retry", "soon")],
            StatusCode::BAD_REQUEST,
            "invalid_event",
        ),
        (
            &[("topic", "a"), ("retry", "-5")],
            StatusCode::BAD_REQUEST,
            "invalid_event",
        ),
        (
            &[("topic", "a"), ("type", "x\ry")],
            StatusCode::BAD_REQUEST,
            "invalid_event",
        ),
        // Mercure publishes are text: the binary mark is the hub's alone.
        (
            &[("topic", "a"), ("type", "thumb.b64")],
            StatusCode::BAD_REQUEST,
            "invalid_event",
        ),
        (
            &[("topic", "a"), ("id", "x\ny")],
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            &[("topic", "a\nb")],
            StatusCode::BAD_REQUEST,
            "invalid_topic",
        ),
        (
            &[("topic", "/.well-known/mercure/subscriptions/a/b")],
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &[
                ("topic", "https://example.com/a"),
                ("topic", "https://hub.example/.well-known/mercure/x"),
            ],
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ];
    for (fields, status, error) in cases {
        assert_eq!(
            error_of(post(&app, fields).await).await,
            (status, error.to_string()),
            "{fields:?}"
        );
    }

    // Authorization: no token, a bad token, a token that does not cover every topic.
    let fields = [
        ("topic", "https://example.com/a"),
        ("topic", "https://example.com/b"),
    ];
    assert_eq!(
        error_of(post_with(&app, None, &fields).await).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    let forged = sign(SUBSCRIBER_SECRET, &json!({"mercure": {"publish": ["*"]}}));
    assert_eq!(
        error_of(post_with(&app, Some(&forged), &fields).await).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    let narrow = publisher(&["https://example.com/a"]);
    assert_eq!(
        error_of(post_with(&app, Some(&narrow), &fields).await).await,
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    let templated = publisher(&["https://example.com/{x}"]);
    assert_eq!(
        post_with(&app, Some(&templated), &fields).await.status(),
        200
    );

    // Too large.
    let big = "x".repeat(2 << 20);
    assert_eq!(
        error_of(post(&app, &[("topic", "a"), ("data", &big)]).await).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large".into())
    );

    // Subscribing: no topic, too many, bad selector.
    assert_eq!(
        error_of(get(&app, &[], None, None).await).await,
        (StatusCode::BAD_REQUEST, "invalid_topic".into())
    );
    let many: Vec<(&str, String)> = (0..33).map(|i| ("topic", format!("t{i}"))).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        error_of(get(&app, &many, None, None).await).await,
        (StatusCode::BAD_REQUEST, "too_many_topics".into())
    );
    assert_eq!(
        error_of(get(&app, &[("topic", "a\u{1}")], None, None).await).await,
        (StatusCode::BAD_REQUEST, "invalid_topic".into())
    );
    let bad = sign("not-the-subscriber-secret-0123456789abcd", &json!({}));
    assert_eq!(
        error_of(get(&app, &[("topic", "a")], Some(&bad), None).await).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
}

#[tokio::test]
async fn every_response_carries_the_discovery_link() {
    let app = start();
    for path in [
        "/healthz",
        "/metrics",
        "/no/such/route",
        "/.well-known/mercure",
    ] {
        let response = app.get(path).send().await;
        let links: Vec<_> = response.headers().get_all("link").iter().collect();
        assert_eq!(links, [LINK], "{path}");
    }
    let s = app.subscribe("/topics/chat", None).await;
    assert_eq!(s.headers["link"], LINK);
}

#[tokio::test]
async fn active_subscriptions_can_be_turned_off() {
    let app = start_with(
        HttpConfig {
            mercure_subscriptions: false,
            ..HttpConfig::default()
        },
        Retention::default(),
    );
    let token = subscriber(&["*"], None);
    let mut all = Stream::open(&app, &[("topic", "*")], Some(&token), None).await;
    let _other = Stream::open(&app, &[("topic", "a")], None, None).await;
    assert_eq!(
        error_of(api(&app, "", Some(&token)).await).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    all.sse.nothing_for(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn without_subscriber_keys_no_subscription_updates_are_stored() {
    // No keys at all: anonymous publishing on loopback, and no one could read private updates.
    let app = TestApp::new();
    let mut s = Stream::open(&app, &[("topic", "a")], None, None).await;
    let response = post_with(&app, None, &[("topic", "a"), ("data", "first")]).await;
    assert_eq!(response.status(), 200);
    let id = response.text().await;
    assert_eq!(seq(&id), 1, "{id}");
    assert_eq!(s.data(1).await, ["first"]);
}

/// The directory of a cluster, faked: the other hubs' records, what this hub entered and
/// removed, and a switch that makes reading fail.
#[derive(Debug, Default)]
struct FakeDirectory {
    others: std::sync::Mutex<Vec<(String, String)>>,
    changes: std::sync::Mutex<Vec<String>>,
    failing: std::sync::atomic::AtomicBool,
}

impl FakeDirectory {
    fn read(&self) -> Result<(), StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Io("redis: gone".into()));
        }
        Ok(())
    }
}

impl SubscriptionDirectory for FakeDirectory {
    fn enter(&self, subscriber: &str, record: String) {
        let record: Value = serde_json::from_str(&record).unwrap();
        let change = format!("enter {subscriber} {record}");
        self.changes.lock().unwrap().push(change);
    }

    fn leave(&self, subscriber: &str) {
        let change = format!("leave {subscriber}");
        self.changes.lock().unwrap().push(change);
    }

    fn others<'a>(
        &'a self,
        keep: &'a (dyn Fn(&str) -> bool + Send + Sync),
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, StoreError>> {
        Box::pin(async move {
            self.read()?;
            let others = self.others.lock().unwrap();
            Ok(others
                .iter()
                .filter(|(_, record)| keep(record))
                .take(max)
                .cloned()
                .collect())
        })
    }

    fn other<'a>(
        &'a self,
        subscriber: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            self.read()?;
            let others = self.others.lock().unwrap();
            Ok(others
                .iter()
                .find(|(s, _)| s == subscriber)
                .map(|(_, r)| r.clone()))
        })
    }
}

/// In a cluster, the API lists this hub's streams, then the other hubs' (from the
/// directory), and this hub enters its own there before announcing them.
#[tokio::test]
async fn the_api_lists_the_other_hubs_subscriptions_too() {
    let directory = std::sync::Arc::new(FakeDirectory::default());
    let remote = "urn:uuid:remote";
    directory.others.lock().unwrap().extend([
        (
            remote.to_string(),
            json!({"selectors": ["https://example.com/x", "b"], "payload": {"user": "r"}})
                .to_string(),
        ),
        ("urn:uuid:junk".to_string(), "not a record".to_string()),
    ]);
    let auth = AuthConfig {
        publisher: Some(KeySet::hmac(PUBLISHER_SECRET.as_bytes())),
        subscriber: Some(KeySet::hmac(SUBSCRIBER_SECRET.as_bytes())),
        anonymous_publish: false,
        ..AuthConfig::default()
    };
    let hub = Hub::new(
        std::sync::Arc::new(MemoryStore::new(Retention::default())),
        HubConfig::default(),
    );
    let state = AppState::new(hub, HttpConfig::default())
        .with_auth(auth)
        .with_subscription_directory(directory.clone());
    let app = TestApp::with_state(state);

    let token = subscriber(&[SUBSCRIPTIONS], Some(json!({"user": "l"})));
    let local = Stream::open(
        &app,
        &[("topic", "https://example.com/x")],
        Some(&token),
        None,
    )
    .await;
    let changes = directory.changes.lock().unwrap().clone();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let local_id = changes[0].split(' ').nth(1).unwrap().to_string();
    assert_eq!(
        changes[0],
        format!(
            "enter {local_id} {}",
            json!({"selectors": ["https://example.com/x"], "payload": {"user": "l"}})
        )
    );

    let listed = |all: &Value| -> Vec<(String, String, Value)> {
        all["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["subscriber"].as_str().unwrap().to_string(),
                    s["topic"].as_str().unwrap().to_string(),
                    s["payload"].clone(),
                )
            })
            .collect()
    };
    let all: Value = api(&app, "", Some(&token)).await.json().await;
    let x = "https://example.com/x".to_string();
    assert_eq!(
        listed(&all),
        [
            (local_id.clone(), x.clone(), json!({"user": "l"})),
            (remote.to_string(), x.clone(), json!({"user": "r"})),
            (remote.to_string(), "b".to_string(), json!({"user": "r"})),
        ]
    );
    let of_b: Value = api(&app, "/b", Some(&token)).await.json().await;
    assert_eq!(
        listed(&of_b),
        [(remote.to_string(), "b".to_string(), json!({"user": "r"}))]
    );
    let one: Value = api(&app, &format!("/b/{}", encode(remote)), Some(&token))
        .await
        .json()
        .await;
    assert_eq!(
        (&one["subscriber"], &one["payload"]),
        (&json!(remote), &json!({"user": "r"}))
    );
    let elsewhere = api(&app, &format!("/c/{}", encode(remote)), Some(&token)).await;
    assert_eq!(elsewhere.status(), 404);

    // The directory cannot be read: no listing rather than an incomplete one.
    directory
        .failing
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        error_of(api(&app, "", Some(&token)).await).await,
        (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable".into())
    );

    // The stream ends: it leaves the directory.
    drop(local);
    let left = format!("leave {local_id}");
    for _ in 0..100 {
        if directory.changes.lock().unwrap().contains(&left) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the ended stream did not leave the directory");
}
