//! The durable store through the real binary: restarts, crashes, foreign and broken data
//! dirs, read-only and full disks.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::util::{TestHub, client, data, seq};

/// Ids keep increasing across a restart, and an id from before it resumes exactly after it.
#[tokio::test]
async fn restart_keeps_ids_and_resumes_exactly() {
    let hub = TestHub::start(&[]).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(hub.publish("dur", &i.to_string()).await);
    }
    let dir = hub.data_dir.clone();
    let mut hub = hub;
    hub.terminate();
    hub.wait(Duration::from_secs(10)).await;

    let hub = TestHub::start_in(dir, "127.0.0.1:0", &[]).await;
    let next = hub.publish("dur", "10").await;
    assert_eq!(seq(&next), seq(&ids[9]) + 1, "the sequence continues");
    assert_eq!(next.split('-').next(), ids[0].split('-').next(), "same log");
    let mut sub = hub.subscribe("/topics/dur", Some(&ids[6])).await;
    assert_eq!(data(&sub.take(4).await), ["7", "8", "9", "10"]);
    sub.nothing_for(Duration::from_millis(200)).await;
}

/// An id from another data dir is unknown (gap notice), never a position in this log,
/// even though this log has events with the same sequence numbers.
#[tokio::test]
async fn id_from_another_data_dir_is_unknown() {
    let a = TestHub::start(&[]).await;
    let b = TestHub::start(&[]).await;
    for i in 0..5 {
        a.publish("w", &format!("a{i}")).await;
        b.publish("w", &format!("b{i}")).await;
    }
    let from_a = a.publish("w", "a5").await;
    let mut sub = b.subscribe("/topics/w", Some(&from_a)).await;
    let got = sub.take(6).await;
    assert_eq!(got[0].event_type, "ssehub-gap");
    let gap: serde_json::Value = serde_json::from_str(&got[0].data).unwrap();
    assert_eq!(gap["reason"], "unknown");
    assert_eq!(
        data(&got[1..]),
        ["b0", "b1", "b2", "b3", "b4"],
        "replayed from the start"
    );
}

/// Publishers get acknowledgements while the hub is killed with SIGKILL at random moments;
/// after each restart every acknowledged event is there exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_test_acknowledged_events_survive_sigkill() {
    let rounds: u64 = std::env::var("SSEHUB_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut acked: HashMap<String, String> = HashMap::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..rounds {
        let mut hub = TestHub::start_in(dir.clone(), "127.0.0.1:0", &[]).await;
        // Acknowledgements of this round so far: the kill waits for a few, so that a loaded
        // machine (a slow first fsync) still crashes the hub mid-stream rather than idle.
        let round_acks = Arc::new(AtomicUsize::new(0));
        let mut publishers = Vec::new();
        for p in 0..4 {
            let url = hub.url.clone();
            let round_acks = round_acks.clone();
            publishers.push(tokio::spawn(async move {
                let client = client();
                let mut mine = Vec::new();
                for i in 0..10_000 {
                    let body = format!("r{round}-p{p}-{i}");
                    let sent = client
                        .post(format!("{url}/topics/crash/{p}"))
                        .body(body.clone())
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                    let Ok(response) = sent else { break };
                    if response.status() != 200 {
                        break;
                    }
                    let Ok(v) = response.json::<serde_json::Value>().await else {
                        break;
                    };
                    mine.push((v["id"].as_str().unwrap().to_string(), body));
                    round_acks.fetch_add(1, Ordering::Relaxed);
                }
                mine
            }));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let started = tokio::time::Instant::now();
        while round_acks.load(Ordering::Relaxed) < 16 && started.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100 + seed % 400)).await;
        hub.kill().await;
        for p in publishers {
            for (id, body) in p.await.unwrap() {
                acked.insert(id, body);
            }
        }
        eprintln!("crash round {round}: {} acknowledged so far", acked.len());
    }
    let hub = TestHub::start_in(dir, "127.0.0.1:0", &[]).await;
    let total = usize::try_from(hub.metric_after_start_events().await).unwrap();
    let mut sub = hub
        .subscribe("/topics/crash/*?lastEventId=earliest", None)
        .await;
    let got = sub.take(total).await;
    let seqs: Vec<u64> = got.iter().map(|e| seq(&e.last_event_id)).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicate"
    );
    let stored: HashMap<&str, &str> = got
        .iter()
        .map(|e| (e.last_event_id.as_str(), e.data.as_str()))
        .collect();
    for (id, body) in &acked {
        assert_eq!(
            stored.get(id.as_str()),
            Some(&body.as_str()),
            "acknowledged {id} survived"
        );
    }
    assert!(
        acked.len() > 100,
        "the test published enough to mean something"
    );
    eprintln!(
        "crash test: {rounds} SIGKILL rounds, {} acknowledged, {} stored, all acknowledged present once",
        acked.len(),
        got.len()
    );
}

impl TestHub {
    /// How many events the store holds (the replay count of `earliest`).
    async fn metric_after_start_events(&self) -> u64 {
        // One more event marks the end, so the count comes from its sequence number.
        let marker = self.publish("crash-end", "end").await;
        seq(&marker) - 1
    }
}

/// Runs `ssehub serve` expecting it to refuse to start; returns its stderr.
fn refuses_to_start(data_dir: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the hub must not start on {data_dir:?}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A foreign or corrupt data dir is a clear startup error, and nothing in it is touched.
#[test]
fn foreign_or_corrupt_data_dir_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "my files").unwrap();
    let err = refuses_to_start(&foreign);
    assert!(err.contains("holds no ssehub store"), "{err}");
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).unwrap(),
        "my files"
    );

    let garbage = dir.path().join("garbage");
    std::fs::create_dir_all(&garbage).unwrap();
    std::fs::write(garbage.join("ssehub.redb"), vec![0x5a; 64 * 1024]).unwrap();
    let err = refuses_to_start(&garbage);
    assert!(
        err.contains("is not an ssehub store") || err.contains("corrupt"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(garbage.join("ssehub.redb")).unwrap(),
        vec![0x5a; 64 * 1024]
    );
}

/// A small tmpfs of our own, unmounted on drop. `None` when this machine does not let us mount
/// (not root): the tests that need one say so and check nothing else.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Some(Tmpfs { dir })
        } else {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            None
        }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn remount(&self, options: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A read-only data dir: the hub starts, serves what is stored, and refuses publishes with
/// 503 and a clear error.
#[tokio::test]
async fn read_only_data_dir_serves_history_and_refuses_publishes() {
    let Some(fs) = Tmpfs::mount("64m") else {
        return;
    };
    let data_dir = fs.path().join("data");
    let mut hub = spawn_on(&data_dir).await;
    hub.publish("ro", "stored before").await;
    hub.terminate();
    hub.wait(Duration::from_secs(10)).await;
    fs.remount("ro");

    let hub = spawn_on(&data_dir).await;
    let r = client()
        .post(format!("{}/topics/ro", hub.url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "store_unavailable");
    assert!(
        body["message"].as_str().unwrap().contains("read-only"),
        "{body}"
    );
    let mut sub = hub.subscribe("/topics/ro?lastEventId=earliest", None).await;
    assert_eq!(data(&sub.take(1).await), ["stored before"]);
    drop(hub);
    fs.remount("rw");
}

/// A full disk: publishes fail with 503 and a clear error, subscribers keep getting what is
/// stored, and publishing works again once there is room.
#[tokio::test]
async fn full_disk_refuses_publishes_and_keeps_serving() {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let data_dir = fs.path().join("data");
    let hub = spawn_on(&data_dir).await;
    let first = hub.publish("full", "first").await;
    let mut live = hub.subscribe("/topics/full", Some(&first)).await;
    // Leave a little room, then fill it with events.
    let filler = fs.path().join("filler");
    let free = fs2_free(fs.path());
    std::fs::write(&filler, vec![0u8; free.saturating_sub(256 * 1024) as usize]).unwrap();
    let payload = "y".repeat(8 * 1024);
    let mut stored = 0;
    let mut refusal = None;
    for _ in 0..10_000 {
        let r = client()
            .post(format!("{}/topics/full", hub.url))
            .body(payload.clone())
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            stored += 1;
            continue;
        }
        refusal = Some((r.status(), r.json::<serde_json::Value>().await.unwrap()));
        break;
    }
    let (status, body) = refusal.expect("the disk filled up");
    assert_eq!(status, 503);
    assert_eq!(body["error"], "store_unavailable");
    assert!(body["message"].as_str().unwrap().contains("full"), "{body}");
    // Everything acknowledged reached the live subscriber and is in history.
    assert_eq!(live.take(stored).await.len(), stored);
    let mut replay = hub
        .subscribe("/topics/full?lastEventId=earliest", None)
        .await;
    assert_eq!(replay.take(stored + 1).await.len(), stored + 1);
    // Room again: publishing recovers without a restart.
    std::fs::remove_file(&filler).unwrap();
    let after = hub.publish("full", "after").await;
    assert_eq!(data(&live.take(1).await), ["after"]);
    assert!(seq(&after) > seq(&first));
}

fn fs2_free(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn spawn_on(data_dir: &std::path::Path) -> TestHub {
    let holder = Arc::new(tempfile::tempdir().unwrap());
    TestHub::start_at(holder, data_dir, "127.0.0.1:0", &[]).await
}
