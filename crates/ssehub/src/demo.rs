//! `ssehub serve --demo`: what feeds the demos at `/demos/`, inside the hub's process, so that
//! they work with no other program running.
//!
//! - the clock: `{"time": <unix ms>}` on `demo/clock` every second (type `tick`);
//! - a build log: a sample build replayed in a loop on `demo/build/log`, as `ssehub exec`
//!   publishes one (`stdout`, `stderr`, `exit`), each run opened by a `start` event;
//! - a notification inbox: now and then a private notification for alice or bob on
//!   `demo/users/{user}/notifications`, and subscriber tokens granting each their own topics;
//! - an LLM answer: a fake model upstream on a loopback port of its own ([`model`]), and a
//!   relay `/demo-ai` in front of it, so that its answers are stored and resumable.
//!
//! The tokens are signed with the hub's HS256 subscriber key; without one, `--demo` makes a
//! random one for the run and prints it. Anyone holding a printed token (or the key) reads
//! what it grants, so `--demo` refuses a listener that is not loopback: it is for a developer's
//! machine, never for a hub others can reach.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use ssehub_core::{Hub, NewEvent, Topic};

use crate::config::{Config, TopicRule};

mod model;

/// What [`prepare`] made for [`start`]: the subscriber key it made for this run (to print),
/// and the fake model's listener.
pub(crate) struct Prepared {
    made_key: Option<String>,
    model: std::net::TcpListener,
}

/// The users of the inbox demo.
const USERS: [&str; 2] = ["alice", "bob"];
/// How long demo tokens are valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The pause between two runs of the sample build.
const BETWEEN_BUILDS: Duration = Duration::from_secs(4);
/// How often a demo notification goes out (to alice and bob in turn).
const NOTIFICATION_EVERY: Duration = Duration::from_secs(6);

/// The sample build: which stream, the line, and the pause before it in milliseconds.
const BUILD: &[(&str, &str, u64)] = &[
    ("stdout", "$ make test", 100),
    ("stdout", "   Compiling ssehub-wire v0.1.0", 300),
    ("stdout", "   Compiling ssehub-core v0.1.0", 400),
    ("stderr", "warning: unused variable: `retry`", 200),
    ("stderr", "  --> crates/ssehub-core/src/hub.rs:42:9", 50),
    ("stdout", "   Compiling ssehub-http v0.1.0", 400),
    ("stdout", "   Compiling ssehub v0.1.0", 500),
    ("stdout", "    Finished `test` profile in 4.21s", 300),
    ("stdout", "     Running unittests src/lib.rs", 200),
    ("stdout", "running 12 tests", 150),
    ("stdout", "test parse::split_crlf ... ok", 120),
    ("stdout", "test parse::bom_once ... ok", 120),
    ("stdout", "test hub::resume_after_restart ... ok", 250),
    ("stdout", "test hub::gap_when_expired ... ok", 200),
    ("stdout", "test http::private_events ... ok", 200),
    ("stdout", "test result: ok. 12 passed; 0 failed", 300),
];

/// Sets up `config` for the demos before the hub starts: a subscriber key to sign the tokens
/// with (a random one when none is set: returned, so that it can be printed), and short
/// per-topic retention for the demo topics (disk store), and the relay to the fake model,
/// whose listener it binds. Refuses a non-loopback listener.
pub(crate) fn prepare(
    config: &mut Config,
    listen: std::net::SocketAddr,
) -> anyhow::Result<Prepared> {
    if !listen.ip().is_loopback() {
        bail!(
            "refusing --demo on {listen}: it prints tokens and, without a subscriber key, makes one anyone \
             could learn from this machine's output; run the demos on a loopback address (127.0.0.1)"
        );
    }
    if config.auth.subscriber_key_file.is_some() {
        bail!(
            "--demo signs its tokens with an HS256 subscriber key (auth.subscriber_key); \
             it cannot with auth.subscriber_key_file"
        );
    }
    let made = if config.auth.subscriber_key.is_none() {
        let key: String = rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        config.auth.subscriber_key = Some(key.clone());
        Some(key)
    } else {
        None
    };
    for (pattern, max_events) in [("demo/build/log", 400), ("demo/clock", 120)] {
        config.history.topics.insert(
            0,
            TopicRule {
                pattern: pattern.into(),
                max_events: Some(max_events),
                max_bytes: None,
                max_age_secs: None,
                keep: crate::config::Keep::All,
                tombstone_grace_secs: None,
            },
        );
    }
    // The cursors demo publishes on every pointer move: compaction keeps each window's newest
    // position (and a closed window's tombstone for a minute), not every move.
    config.history.topics.insert(
        0,
        TopicRule {
            pattern: "demo/cursors".into(),
            max_events: None,
            max_bytes: None,
            max_age_secs: None,
            keep: crate::config::Keep::LatestPerKey,
            tombstone_grace_secs: Some(60),
        },
    );
    if config.relay.iter().any(|r| r.prefix == model::PREFIX) {
        bail!(
            "--demo makes the relay {}: the configuration has one already",
            model::PREFIX
        );
    }
    let model = model::bind().context("cannot start the demo's fake model")?;
    let upstream = format!("http://{}", model.local_addr()?);
    config.add_relay_flags(&[format!("{}={upstream}", model::PREFIX)])?;
    config.validate_relays()?;
    Ok(Prepared {
        made_key: made,
        model,
    })
}

/// Starts the feeds, and returns the lines to print once the hub listens at `base`
/// (`http://ADDR`): where the demos are, and a link with a token for the console and for each
/// user's inbox.
pub(crate) fn start(hub: &Hub, config: &Config, base: &str, prepared: Prepared) -> Vec<String> {
    tokio::spawn(clock(hub.clone()));
    tokio::spawn(model::serve(prepared.model));
    tokio::spawn(build_log(hub.clone()));
    tokio::spawn(notifications(hub.clone()));
    let key = config.auth.subscriber_key.as_deref().unwrap_or_default();
    let mut lines = vec![format!("ssehub demo: the demos are at {base}/demos/")];
    match token(key, &["*"]) {
        Ok(console) => {
            lines.push(format!("ssehub demo: the console, with a token granting every topic: {base}/#token={console}"));
            for user in USERS {
                match token(key, &[&format!("demo/users/{user}/{{rest}}")]) {
                    Ok(t) => lines.push(format!(
                        "ssehub demo: {user}'s inbox: {base}/demos/inbox.html#user={user}&token={t}"
                    )),
                    Err(error) => tracing::warn!(%error, "cannot sign a demo token"),
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot sign the demo tokens"),
    }
    lines.push(format!(
        "ssehub demo: an LLM answer through the relay {}: {base}/demos/llm.html",
        model::PREFIX
    ));
    if let Some(key) = prepared.made_key {
        lines.push(format!(
            "ssehub demo: WARNING: tokens are signed with a subscriber key made for this run, {key}: \
             anyone who has it or a printed token reads what it grants"
        ));
    }
    lines
}

/// A subscriber token granting `subscribe`, valid for [`TOKEN_LIFETIME`].
fn token(key: &str, subscribe: &[&str]) -> Result<String, jsonwebtoken::errors::Error> {
    let exp = (SystemTime::now() + TOKEN_LIFETIME)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({ "mercure": { "subscribe": subscribe }, "exp": exp });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Publishes one event; `false` once the hub is shutting down (the feed then stops).
async fn publish(hub: &Hub, topic: &str, event_type: &str, data: String, private: bool) -> bool {
    let Ok(topic) = Topic::new(topic) else {
        return false;
    };
    let Ok(mut event) = NewEvent::new(topic, data).with_type(event_type) else {
        return false;
    };
    event.private = private;
    match hub.publish(vec![event]).await {
        Ok(_) => true,
        Err(ssehub_core::PublishError::ShuttingDown) => false,
        Err(error) => {
            // A full or failing store: the demo skips this event and goes on.
            tracing::debug!(%error, "a demo event was not published");
            true
        }
    }
}

async fn clock(hub: Hub) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let data = serde_json::json!({ "time": unix_ms() }).to_string();
        if !publish(&hub, "demo/clock", "tick", data, false).await {
            return;
        }
    }
}

async fn build_log(hub: Hub) {
    const TOPIC: &str = "demo/build/log";
    for build in 1u64.. {
        let start = serde_json::json!({ "build": build }).to_string();
        if !publish(&hub, TOPIC, "start", start, false).await {
            return;
        }
        // Every third run fails, to show an exit code other than 0.
        let failing = build % 3 == 0;
        for (stream, line, pause) in BUILD {
            tokio::time::sleep(Duration::from_millis(*pause)).await;
            let (stream, line) = match (failing, *line) {
                (true, "test hub::gap_when_expired ... ok") => {
                    ("stderr", "test hub::gap_when_expired ... FAILED")
                }
                (true, "test result: ok. 12 passed; 0 failed") => {
                    ("stdout", "test result: FAILED. 11 passed; 1 failed")
                }
                _ => (*stream, *line),
            };
            if !publish(&hub, TOPIC, stream, line.to_string(), false).await {
                return;
            }
        }
        let exit = serde_json::json!({ "code": if failing { 2 } else { 0 } }).to_string();
        if !publish(&hub, TOPIC, "exit", exit, false).await {
            return;
        }
        tokio::time::sleep(BETWEEN_BUILDS).await;
    }
}

async fn notifications(hub: Hub) {
    const TEXTS: [&str; 4] = [
        "Your build #42 passed",
        "Someone mentioned you in #general",
        "Your report is ready to download",
        "A new device signed in to your account",
    ];
    for n in 0usize.. {
        tokio::time::sleep(NOTIFICATION_EVERY).await;
        let user = USERS[n % USERS.len()];
        let text = format!("{} (for {user})", TEXTS[(n / USERS.len()) % TEXTS.len()]);
        let data = serde_json::json!({ "text": text, "time": unix_ms() }).to_string();
        let topic = format!("demo/users/{user}/notifications");
        if !publish(&hub, &topic, "notification", data, true).await {
            return;
        }
    }
}
