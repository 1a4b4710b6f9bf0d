//! The console and the demos, against the real binary: the pages and their headers, turning
//! them off, the stats stream (what it shows, its limits, who may watch it), and `--demo`.
//! What the pages do in a browser is tested in Chromium (`tests/js/console.test.mjs`).
//!
//! - `pages_have_their_types_a_strict_csp_and_revalidate`: every page and every asset it
//!   links to.
//! - `console_false_turns_every_console_route_off`: `--console false` and `[console]`.
//! - `stats_show_the_hub_its_topics_and_never_a_private_event`
//! - `stats_streams_are_bounded_by_max_watchers`
//! - `stats_list_at_most_max_topics_and_say_when_they_sample`
//! - `stats_need_a_token_granting_every_topic_when_the_hub_has_keys`
//! - `stats_streams_end_when_the_hub_shuts_down`
//! - `demo_feeds_the_demos_and_its_tokens_grant_one_user_each`
//! - `demo_refuses_a_listener_that_is_not_loopback`
//! - `demo_relays_the_fake_model_and_its_answer_resumes`: the LLM demo's relay `/demo-ai`.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::jwt::{Key, mercure, sign};
use crate::util::{Sse, TestHub, client, listen_url};

const SUBSCRIBER_KEY: &str = "console-test-subscriber-key-0123456789abcdef";

/// Every page of the console and the demos.
const PAGES: [&str; 6] = [
    "/",
    "/demos/",
    "/demos/clock.html",
    "/demos/build.html",
    "/demos/inbox.html",
    "/demos/llm.html",
];

/// The local paths a page links to (`src="/…"`, `href="/…"`), or a script imports
/// (`from './x.js'`, next to the script at `path`).
fn links(path: &str, text: &str) -> BTreeSet<String> {
    let dir = &path[..=path.rfind('/').unwrap_or(0)];
    let mut found = BTreeSet::new();
    for (attribute, prefix) in [("src=\"/", "/"), ("href=\"/", "/"), ("from './", dir)] {
        let quote = if attribute.starts_with("from") {
            '\''
        } else {
            '"'
        };
        for (at, _) in text.match_indices(attribute) {
            let rest = &text[at + attribute.len()..];
            if let Some(end) = rest.find(quote) {
                found.insert(format!("{prefix}{}", &rest[..end]));
            }
        }
    }
    found
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "text/html; charset=utf-8",
    }
}

/// A config file in a directory of its own, removed when dropped.
struct ConfigFile(tempfile::TempDir);

impl ConfigFile {
    fn new(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ssehub.toml"), toml).unwrap();
        ConfigFile(dir)
    }
}

/// An in-memory hub started with `file` and `args`.
async fn hub_with(file: &ConfigFile, args: &[&str]) -> TestHub {
    let path = file.0.path().join("ssehub.toml");
    let mut all = vec!["--store", "memory", "--config", path.to_str().unwrap()];
    all.extend_from_slice(args);
    TestHub::start(&all).await
}

#[tokio::test]
async fn pages_have_their_types_a_strict_csp_and_revalidate() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let http = client();
    let mut paths: BTreeSet<String> = BTreeSet::new();
    let mut next: Vec<String> = PAGES.iter().map(|p| p.to_string()).collect();
    while let Some(path) = next.pop() {
        if path == "/metrics" || !paths.insert(path.clone()) {
            continue;
        }
        let text = http
            .get(format!("{}{path}", hub.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if path.ends_with(".html") || path.ends_with('/') {
            // Scripts and styles come from files of the hub: the policy forbids inline ones.
            assert!(!text.contains("<script>"), "{path} has an inline script");
            assert!(!text.contains("style=\""), "{path} has an inline style");
        }
        // SVG's namespace is a name, not a request.
        let text = text.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{path} names another origin"
        );
        next.extend(links(&path, &text));
    }
    assert!(
        paths.len() >= 16,
        "the pages link their scripts and styles: {paths:?}"
    );
    for path in &paths {
        let response = http.get(format!("{}{path}", hub.url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let h = response.headers();
        assert_eq!(h["content-type"], content_type(path), "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert_eq!(csp, ssehub_http::CONTENT_SECURITY_POLICY, "{path}");
        assert!(
            csp.starts_with("default-src 'none'")
                && !csp.contains("http")
                && !csp.contains("unsafe")
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        let etag = h["etag"].clone();
        let again = http
            .get(format!("{}{path}", hub.url))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }
    // `/demos` goes to `/demos/`, where the pages' relative paths work.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirect
        .get(format!("{}/demos", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()["location"], "/demos/");
}

#[tokio::test]
async fn console_false_turns_every_console_route_off() {
    let file = ConfigFile::new("[console]\nenabled = false\n");
    let from_file = hub_with(&file, &[]).await;
    let from_flag = TestHub::start(&["--store", "memory", "--console", "false"]).await;
    // The flag wins over the file, both ways.
    let flag_over_file = hub_with(&file, &["--console", "true"]).await;
    for hub in [&from_file, &from_flag] {
        for path in [
            "/",
            "/?topic=a",
            "/demos/",
            "/demos/clock.html",
            "/console/console.js",
            "/console/stats",
        ] {
            let response = client()
                .get(format!("{}{path}", hub.url))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "not_found", "{path}");
        }
        assert!(
            hub.metric("ssehub_rejected_requests_total{reason=\"not_found\"}")
                .await
                >= 6.0
        );
    }
    let response = client()
        .get(format!("{}/", flag_over_file.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Reads stats snapshots until one satisfies `want` (at most 15 s).
async fn snapshot_where(stream: &mut Sse, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let wait = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            for event in stream.take(1).await {
                assert_eq!(event.event_type, "stats");
                let snapshot: Value = serde_json::from_str(&event.data).unwrap();
                if want(&snapshot) {
                    return snapshot;
                }
            }
        }
    });
    wait.await
        .unwrap_or_else(|_| panic!("no snapshot {what} within 15 s"))
}

fn topic_names(snapshot: &Value) -> Vec<&str> {
    snapshot["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn stats_show_the_hub_its_topics_and_never_a_private_event() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    // Published before anyone watches: read back at start.
    let early = hub.publish("chat/early", "before the console").await;
    let mut stats = hub.subscribe("/console/stats", None).await;
    assert_eq!(stats.headers["content-type"], "text/event-stream");
    let first = snapshot_where(&mut stats, "with the early topic", |s| {
        topic_names(s).contains(&"chat/early")
    })
    .await;
    let entry = &first["topics"][0];
    assert_eq!(entry["last"]["id"], early.as_str());
    assert_eq!(entry["last"]["data"], "before the console");
    assert_eq!(first["store"]["newest"], early.as_str());
    assert!(first["store"]["retention"]["max_events"].as_u64().unwrap() > 0);

    let _subscriber = hub.subscribe("/topics/chat/room", None).await;
    let private = client()
        .post(format!("{}/topics/secret/plans?private=1", hub.url))
        .body("the private data")
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    for i in 0..5 {
        hub.publish("chat/room", &format!("m{i}")).await;
    }
    let later = snapshot_where(&mut stats, "with chat/room's five events", |s| {
        s["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["topic"] == "chat/room" && t["events"] == 5)
            && s["private_events"] == 1
    })
    .await;
    let room = later["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "chat/room")
        .unwrap();
    assert_eq!(room["last"]["data"], "m4");
    // The rate counts the events of the last seconds, the ones read back at start do not.
    assert!(room["rate"].as_f64().unwrap() > 0.0);
    assert!(later["published"].as_u64().unwrap() >= 7);
    assert!(later["subscriptions"].as_u64().unwrap() >= 1);
    let series = &later["series"]["events_in"];
    assert!(
        series
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
            >= 6
    );
    let text = later.to_string();
    assert!(
        !text.contains("secret/plans") && !text.contains("the private data"),
        "{text}"
    );
    assert_eq!(hub.metric("ssehub_console_watchers").await, 1.0);
    drop(stats);
    hub.metric_reaches("ssehub_console_watchers", 0.0).await;
}

#[tokio::test]
async fn stats_streams_are_bounded_by_max_watchers() {
    let hub = hub_with(&ConfigFile::new("[console]\nmax_watchers = 2\n"), &[]).await;
    let mut watchers = vec![
        hub.subscribe("/console/stats", None).await,
        hub.subscribe("/console/stats", None).await,
    ];
    for watcher in &mut watchers {
        assert_eq!(watcher.take(1).await[0].event_type, "stats");
    }
    let refused = client()
        .get(format!("{}/console/stats", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "over_connection_limit");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("console.max_watchers")
    );
    assert_eq!(hub.metric("ssehub_console_watchers").await, 2.0);
    assert_eq!(
        hub.metric("ssehub_rejected_requests_total{reason=\"over_connection_limit\"}")
            .await,
        1.0
    );
    // A watcher that leaves makes room.
    watchers.pop();
    hub.metric_reaches("ssehub_console_watchers", 1.0).await;
    let mut next = hub.subscribe("/console/stats", None).await;
    assert_eq!(next.take(1).await[0].event_type, "stats");
}

#[tokio::test]
async fn stats_list_at_most_max_topics_and_say_when_they_sample() {
    let file = ConfigFile::new("[console]\nmax_topics = 3\nscan_events = 20\n");
    let hub = hub_with(&file, &[]).await;
    let mut stats = hub.subscribe("/console/stats", None).await;
    stats.take(1).await;
    // 100 events on 50 topics in one batch: more than scan_events in one second.
    let batch: Vec<Value> = (0..100)
        .map(|i| serde_json::json!({"topic": format!("flood/{}", i % 50), "data": "x"}))
        .collect();
    let response = client()
        .post(format!("{}/publish", hub.url))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let snapshot = snapshot_where(&mut stats, "sampled", |s| s["sampled"] == true).await;
    let names = topic_names(&snapshot);
    assert!(!names.is_empty() && names.len() <= 3, "{names:?}");
    // The hub-wide figures stay exact.
    let published = snapshot_where(&mut stats, "with every event counted", |s| {
        s["published"].as_u64() == Some(100)
    })
    .await;
    assert!(topic_names(&published).len() <= 3);
}

#[tokio::test]
async fn stats_need_a_token_granting_every_topic_when_the_hub_has_keys() {
    let hub = TestHub::start(&["--store", "memory", "--subscriber-key", SUBSCRIBER_KEY]).await;
    hub.publish("team/secret-project", "x").await;
    let key = Key::hs(SUBSCRIBER_KEY);
    let some = sign(&key, None, mercure(&[], &["team/{x}"], None));
    let all = sign(&key, None, mercure(&[], &["*"], None));
    let url = format!("{}/console/stats", hub.url);
    let cases = [
        (None, StatusCode::UNAUTHORIZED),
        (Some(some.as_str()), StatusCode::FORBIDDEN),
        (Some("not-a-token"), StatusCode::UNAUTHORIZED),
    ];
    for (token, status) in cases {
        let mut request = client().get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{token:?}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("team/secret-project"), "{body}");
    }
    // EventSource sends its token in the query.
    let response = client()
        .get(format!("{url}?authorization={all}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stats = Sse::new(response);
    let snapshot = snapshot_where(&mut stats, "with the topic", |s| {
        topic_names(s).contains(&"team/secret-project")
    })
    .await;
    assert_eq!(snapshot["topics"][0]["last"]["data"], "x");
}

#[tokio::test]
async fn stats_streams_end_when_the_hub_shuts_down() {
    // A grace period longer than the test waits: the stream must end by itself, not be cut.
    let mut hub = TestHub::start(&["--store", "memory", "--shutdown-grace-secs", "60"]).await;
    let mut stats = hub.subscribe("/console/stats", None).await;
    stats.take(1).await;
    hub.terminate();
    stats.until_end(Duration::from_secs(20)).await;
    assert!(hub.wait(Duration::from_secs(20)).await.success());
}

/// The stream of `path` from its earliest event, with a token in the query.
async fn stream_with(hub_url: &str, path: &str, token: &str) -> Sse {
    let response = client()
        .get(format!(
            "{hub_url}{path}?lastEventId=earliest&authorization={token}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    Sse::new(response)
}

#[tokio::test]
async fn demo_feeds_the_demos_and_its_tokens_grant_one_user_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log",
            "warn",
            "--demo",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = listen_url(&mut lines).await;
    let mut printed = Vec::new();
    while printed.len() < 6 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        printed.push(line);
    }
    let token_of = |what: &str| {
        let line = printed
            .iter()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("{what} in {printed:?}"));
        line.rsplit_once("token=").unwrap().1.to_string()
    };
    assert!(
        printed
            .iter()
            .any(|l| l.contains("WARNING") && l.contains("subscriber key"))
    );
    let (console, alice, bob) = (
        token_of("console"),
        token_of("alice's inbox"),
        token_of("bob's inbox"),
    );

    // The clock ticks; the build log starts each run with `start`.
    let ticks = stream_with(&url, "/topics/demo/clock", &console)
        .await
        .take(2)
        .await;
    assert!(ticks.iter().all(|e| e.event_type == "tick"));
    let build = stream_with(&url, "/topics/demo/build/log", &console)
        .await
        .take(3)
        .await;
    assert_eq!(build[0].event_type, "start");
    assert!(
        build[1..]
            .iter()
            .all(|e| ["stdout", "stderr", "exit", "start"].contains(&e.event_type.as_str()))
    );

    // Alice's token reads alice's inbox; bob's does not get her notifications.
    let note = client()
        .post(format!(
            "{url}/topics/demo/users/alice/notifications?private=1&event=notification"
        ))
        .body(r#"{"text":"for alice only","time":0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 200);
    let hers = stream_with(&url, "/topics/demo/users/alice/notifications", &alice)
        .await
        .take(1)
        .await;
    assert!(hers[0].data.contains("for alice only"));
    stream_with(&url, "/topics/demo/users/alice/notifications", &bob)
        .await
        .nothing_for(Duration::from_millis(500))
        .await;
    // The console's token watches the stats.
    let stats = client()
        .get(format!("{url}/console/stats?authorization={console}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn demo_refuses_a_listener_that_is_not_loopback() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--store",
            "memory",
            "--demo",
            "--allow-anonymous-publish",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing --demo"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("token="));
}

#[tokio::test]
async fn demo_relays_the_fake_model_and_its_answer_resumes() {
    let hub = TestHub::start(&["--store", "memory", "--demo"]).await;
    let response = client()
        .post(format!("{}/demo-ai/chat", hub.url))
        .header("content-type", "application/json")
        .body(r#"{"prompt": "What is  SSE?"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let topic = response.headers()["ssehub-topic"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(topic.starts_with("relay/"), "{topic}");
    let mut answer = Sse::new(response);
    let first = answer.take(3).await;
    drop(answer); // the caller is cut after three tokens

    // The rest, from the last id the caller got, up to `ssehub-end`.
    let mut rest = hub
        .subscribe(&format!("/topics/{topic}"), Some(&first[2].last_event_id))
        .await;
    let rest = rest.until_end(Duration::from_secs(30)).await;
    let (end, rest) = rest.split_last().unwrap();
    assert_eq!(end.event_type, "ssehub-end");
    assert_eq!(end.data, r#"{"reason":"done"}"#);
    let tokens: Vec<Value> = first
        .iter()
        .chain(rest)
        .map(|e| {
            assert_eq!(e.event_type, "token");
            serde_json::from_str(&e.data).unwrap()
        })
        .collect();
    let of = tokens[0]["of"].as_u64().unwrap();
    assert!(of > 20, "{of} tokens");
    let numbers: Vec<u64> = tokens.iter().map(|t| t["n"].as_u64().unwrap()).collect();
    assert_eq!(
        numbers,
        (0..of).collect::<Vec<_>>(),
        "every token once, in order"
    );
    let text: String = tokens.iter().map(|t| t["text"].as_str().unwrap()).collect();
    assert!(
        text.starts_with("You asked: “What is SSE?”. Server-Sent Events "),
        "{text}"
    );
    hub.metric_reaches(
        r#"ssehub_relay_ended_total{relay="/demo-ai",reason="done"}"#,
        1.0,
    )
    .await;

    // A relay of the user's own at that prefix is refused, not replaced.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--demo",
        ])
        .args(["--relay", "/demo-ai=http://127.0.0.1:9", "--check-config"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/demo-ai"));
}
