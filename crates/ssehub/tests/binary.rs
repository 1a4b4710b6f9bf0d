//! Binary events through the real binary: an `application/octet-stream` body and a batch's
//! `data_base64` come out byte-exact (as marked base64), from the disk store after a restart
//! too, through `ssehub pub --file` and `ssehub sub`; bad base64, forged marks and bodies whose
//! base64 is over the limit are refused.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use ssehub_wire::MessageEvent;
use tokio::process::Command;

use crate::util::{TestHub, client};

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(30);

/// 64 KiB of pseudo-random bytes (xorshift, fixed seed) that surely hold NUL, CR, LF, CRLF
/// and sequences that are not UTF-8 (a lone continuation byte, a truncated lead byte).
pub(crate) fn payload() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    bytes[..8].copy_from_slice(&[0, b'\r', b'\n', b'\r', 0x80, 0xc3, b'\n', 0xff]);
    assert!(std::str::from_utf8(&bytes).is_err());
    bytes
}

fn decode(event: &MessageEvent) -> Vec<u8> {
    ssehub_client::binary_data(event)
        .expect("marked binary")
        .expect("valid base64")
}

async fn publish_bytes(hub: &TestHub, path: &str, bytes: Vec<u8>) -> reqwest::Response {
    client()
        .post(format!("{}{path}", hub.url))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

async fn post_batch(hub: &TestHub, batch: &serde_json::Value) -> reqwest::Response {
    client()
        .post(format!("{}/publish", hub.url))
        .json(batch)
        .send()
        .await
        .unwrap()
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

/// An octet-stream body arrives byte-exact, its type marked; the disk store replays it
/// byte-exact after a restart; a text event beside it is untouched.
#[tokio::test]
async fn octet_stream_body_round_trips_and_replays_after_a_restart() {
    let bytes = payload();
    let mut hub = TestHub::start(&[]).await;
    let mut live = hub.subscribe("/topics/bin", None).await;
    let response = publish_bytes(&hub, "/topics/bin?event=thumb", bytes.clone()).await;
    assert_eq!(response.status(), 200);
    hub.publish("bin", "text").await;
    let got = live.take(2).await;
    assert_eq!(got[0].event_type, "thumb.b64");
    assert!(!got[0].data.contains('\n'), "one data line");
    assert_eq!(decode(&got[0]), bytes);
    assert_eq!(
        (got[1].event_type.as_str(), got[1].data.as_str()),
        ("message", "text")
    );
    assert!(ssehub_client::binary_data(&got[1]).is_none());

    let dir = hub.data_dir.clone();
    hub.terminate();
    hub.wait(Duration::from_secs(10)).await;
    let hub = TestHub::start_in(dir, "127.0.0.1:0", &[]).await;
    let mut replay = hub.subscribe("/topics/bin", Some("earliest")).await;
    let got = replay.take(2).await;
    assert_eq!(got[0].event_type, "thumb.b64");
    assert_eq!(decode(&got[0]), bytes, "replayed from disk byte-exact");
    assert_eq!(got[1].data, "text");
}

/// A batch mixes text and `data_base64` items; bad base64, both fields, and a text type that
/// would forge the mark are refused whole (400) and counted.
#[tokio::test]
async fn batch_data_base64_and_refusals() {
    let hub = TestHub::start(&[]).await;
    let mut sub = hub.subscribe("/topics/mix", None).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let batch = serde_json::json!([
        {"topic": "mix", "data": "a"},
        {"topic": "mix", "data_base64": b64.encode([0u8, 0xff, b'\n']), "event": "blob"},
        {"topic": "mix", "data_base64": ""},
    ]);
    assert_eq!(post_batch(&hub, &batch).await.status(), 200);
    let got = sub.take(3).await;
    assert_eq!(got[0].data, "a");
    assert_eq!(got[1].event_type, "blob.b64");
    assert_eq!(decode(&got[1]), [0, 0xff, b'\n']);
    assert_eq!(got[2].event_type, "message.b64");
    assert_eq!(decode(&got[2]), b"");

    let refused = [
        (
            serde_json::json!([{"topic": "mix", "data_base64": "not base64!"}]),
            "invalid_base64",
        ),
        (
            serde_json::json!([{"topic": "mix", "data_base64": "AP8"}]),
            "invalid_base64",
        ),
        (
            serde_json::json!([{"topic": "mix", "data": "x", "data_base64": "AA=="}]),
            "invalid_json",
        ),
        (serde_json::json!([{"topic": "mix"}]), "invalid_json"),
        (
            serde_json::json!([{"topic": "mix", "data": "AA==", "event": "x.b64"}]),
            "invalid_event",
        ),
    ];
    for (body, reason) in refused {
        assert_eq!(
            error_of(post_batch(&hub, &body).await).await,
            (400, reason.to_string()),
            "{body}"
        );
    }
    let forged = client()
        .post(format!("{}/topics/mix?event=message.b64", hub.url))
        .body("AA==")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(forged).await, (400, "invalid_event".to_string()));
    let not_utf8 = client()
        .post(format!("{}/topics/mix", hub.url))
        .body(vec![0xffu8])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(not_utf8).await, (400, "invalid_utf8".to_string()));
    assert_eq!(
        hub.metric("ssehub_rejected_requests_total{reason=\"invalid_base64\"}")
            .await,
        2.0
    );
    sub.nothing_for(Duration::from_millis(200)).await;
}

/// The body limit counts a binary event as sent: its base64 (4/3 of the bytes). A body under
/// the limit whose base64 is over it is refused with 413; one whose base64 fits is taken, and
/// the same size of text is taken too.
#[tokio::test]
async fn the_body_limit_counts_the_base64() {
    let hub = TestHub::start(&["--max-body-bytes", "4096"]).await;
    let over = publish_bytes(&hub, "/topics/lim", vec![0xff; 3500]).await;
    assert_eq!(error_of(over).await, (413, "body_too_large".to_string()));
    let fits = publish_bytes(&hub, "/topics/lim", vec![0xff; 2900]).await;
    assert_eq!(fits.status(), 200);
    hub.publish("lim", &"x".repeat(3500)).await;
    let too_big = publish_bytes(&hub, "/topics/lim", vec![0; 5000]).await;
    assert_eq!(error_of(too_big).await, (413, "body_too_large".to_string()));
}

/// `ssehub pub --file` publishes a file's bytes; `ssehub sub --save-dir` writes them back
/// byte-exact (named by id), `--json` shows them as `data_base64`, plain output as a size.
#[tokio::test]
async fn pub_file_and_sub_decode_byte_exact() {
    let bytes = payload();
    let hub = TestHub::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.bin");
    std::fs::write(&file, &bytes).unwrap();
    let run = |args: Vec<String>| async move {
        let output = Command::new(env!("CARGO_BIN_EXE_ssehub"))
            .args(&args)
            .env_remove("SSEHUB_URL")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(LIMIT, output)
            .await
            .expect("ssehub ends in time")
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let s = |v: &str| v.to_string();
    let id = run(vec![s("pub"), s("--hub"), hub.url.clone(), s("--file")]
        .into_iter()
        .chain([
            file.display().to_string(),
            s("--event"),
            s("blob"),
            s("files/a"),
        ])
        .collect())
    .await;
    let id = id.trim();
    let sub = |extra: &[&str]| {
        let mut args = vec![s("sub"), s("--hub"), hub.url.clone(), s("--last-event-id")];
        args.extend([s("earliest"), s("--count"), s("1")]);
        args.extend(extra.iter().map(|a| s(a)));
        args.push(s("files/a"));
        args
    };
    let saved = dir.path().join("out");
    std::fs::create_dir(&saved).unwrap();
    let printed = run(sub(&["--save-dir", saved.to_str().unwrap()])).await;
    let path = saved.join(id);
    assert_eq!(printed.trim(), path.display().to_string());
    assert!(std::fs::read(&path).unwrap() == bytes, "saved byte-exact");

    let json: serde_json::Value = serde_json::from_str(&run(sub(&["--json"])).await).unwrap();
    assert_eq!(
        (json["type"].as_str(), json["binary"].as_bool()),
        (Some("blob"), Some(true))
    );
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(json["data_base64"].as_str().unwrap())
        .unwrap();
    assert!(decoded == bytes, "--json data_base64 decodes byte-exact");
    assert!(json.get("data").is_none());

    let plain = run(sub(&[])).await;
    assert_eq!(plain.trim(), format!("[blob] {} bytes", bytes.len()));
}

/// In a cluster, a binary event published on one node reaches a live subscriber of another
/// (through the Redis log's tail) and a replay there, byte-exact.
#[tokio::test]
async fn a_binary_event_crosses_a_cluster_byte_exact() {
    let Some(redis) = ssehub_cluster::testing::RedisServer::start() else {
        return;
    };
    let nodes = crate::cluster::nodes(&redis, "binary", 2, &[]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut live = b.subscribe("/topics/c/bin", None).await;
    let bytes = payload();
    let response = publish_bytes(a, "/topics/c/bin?event=blob", bytes.clone()).await;
    assert_eq!(response.status(), 200);
    let got = live.take(1).await;
    assert_eq!(got[0].event_type, "blob.b64");
    assert!(
        decode(&got[0]) == bytes,
        "live on the other node, byte-exact"
    );
    let mut replay = b.subscribe("/topics/c/bin", Some("earliest")).await;
    assert!(
        decode(&replay.take(1).await[0]) == bytes,
        "replayed from Redis"
    );
}
