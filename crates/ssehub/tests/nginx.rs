//! The real `ssehub serve` behind Debian's real `nginx`, configured with the text
//! `docs/deploy.md` documents (`docs/nginx-ssehub.conf`, read here verbatim, only its ports and
//! `proxy_read_timeout` filled in): an event reaches a subscriber through nginx at once (not
//! buffered), an idle stream outlives nginx's read timeout thanks to the hub's heartbeats (and
//! is cut without them), and a client resumes through nginx with `Last-Event-ID` across a hub
//! restart with exactly the events it missed. nginx runs unprivileged in the foreground on
//! 127.0.0.1 with a free port, as one process (`master_process off`), and is stopped by its
//! PID through the child handle; the tests skip, saying so, only when nginx is not installed
//! (`scripts/test` installs it).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::util::{Sse, TestHub, client, data};

/// The documented config: one source for the doc and this test.
const DOCUMENTED: &str = include_str!("../../../docs/nginx-ssehub.conf");

/// The name the documented config serves, and the test clients send as `Host`.
const NAME: &str = "sse.example.com";

/// A running `nginx` started by a test.
struct Nginx {
    child: Child,
    /// Its URL, `http://127.0.0.1:PORT` (requests must say `Host: sse.example.com`).
    url: String,
    /// Holds the config, pid file, temp dirs and `error.log`.
    dir: tempfile::TempDir,
}

/// `text` with `from` replaced by `to`; `from` must occur exactly once (the documented config
/// still has the line the test fills in).
fn fill(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "docs/nginx-ssehub.conf has `{from}` once"
    );
    text.replace(from, to)
}

/// The documented config with the test's ports and read timeout, inside a main config that
/// lets nginx run as this user from `dir`.
fn config(port: u16, hub: &str, read_timeout_secs: u64, edits: &[(&str, &str)]) -> String {
    let site = fill(
        DOCUMENTED,
        "listen 80;",
        &format!("listen 127.0.0.1:{port};"),
    );
    let site = fill(
        &site,
        "server 127.0.0.1:8080;",
        &format!("server {};", hub.trim_start_matches("http://")),
    );
    let site = fill(
        &site,
        "proxy_read_timeout 60s;",
        &format!("proxy_read_timeout {read_timeout_secs}s;"),
    );
    let site = edits
        .iter()
        .fold(site, |site, (from, to)| fill(&site, from, to));
    format!(
        "master_process off;\nworker_processes 1;\npid nginx.pid;\nerror_log error.log warn;\n\n\
         events {{\n    worker_connections 1024;\n}}\n\n\
         http {{\n    access_log off;\n    client_body_temp_path client_body;\n    \
         proxy_temp_path proxy;\n    fastcgi_temp_path fastcgi;\n    uwsgi_temp_path uwsgi;\n    \
         scgi_temp_path scgi;\n\n{site}}}\n"
    )
}

impl Nginx {
    /// Starts one in front of the hub at `hub` (`http://127.0.0.1:PORT`), with
    /// `proxy_read_timeout` shortened to `read_timeout_secs`, and waits until it proxies
    /// `/healthz`; or returns `None` (and says so on stderr) when nginx is not installed.
    async fn start(hub: &str, read_timeout_secs: u64) -> Option<Nginx> {
        Nginx::start_edited(hub, read_timeout_secs, &[]).await
    }

    /// [`start`](Nginx::start) with the documented config changed by `edits` (each `from`
    /// occurs once, replaced by `to`): the controls that show a check is real.
    async fn start_edited(
        hub: &str,
        read_timeout_secs: u64,
        edits: &[(&str, &str)],
    ) -> Option<Nginx> {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address").port()
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, config(port, hub, read_timeout_secs, edits)).unwrap();
        let prefix = format!("{}/", dir.path().display());
        // Debian puts it in /usr/sbin, which is not on every user's PATH.
        let spawn = |program: &str| {
            Command::new(program)
                .args(["-p", &prefix, "-g", "daemon off;", "-c"])
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        let not_found = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        let child = match spawn("nginx").or_else(|e| {
            if not_found(&e) {
                spawn("/usr/sbin/nginx")
            } else {
                Err(e)
            }
        }) {
            Ok(child) => child,
            Err(e) if not_found(&e) => {
                eprintln!("SKIPPED: nginx is not installed (apt-get install nginx)");
                return None;
            }
            Err(e) => panic!("cannot start nginx: {e}"),
        };
        let nginx = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let up = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let answer = nginx.get("/healthz").send().await;
                if answer.is_ok_and(|r| r.status() == 200) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            up.is_ok(),
            "nginx proxies /healthz within 10 s; its log:\n{}",
            nginx.log()
        );
        Some(nginx)
    }

    /// A GET through nginx, sent to the documented name.
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        client()
            .get(format!("{}{path}", self.url))
            .header("host", NAME)
    }

    /// Opens an SSE stream through nginx, with an optional `Last-Event-ID`; `None` while the
    /// answer is not 200 (e.g. 502: the hub is restarting).
    async fn try_subscribe(&self, path: &str, last_event_id: Option<&str>) -> Option<Sse> {
        let mut request = self.get(path);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.ok()?;
        (response.status() == 200).then(|| Sse::new(response))
    }

    async fn subscribe(&self, path: &str, last_event_id: Option<&str>) -> Sse {
        self.try_subscribe(path, last_event_id)
            .await
            .unwrap_or_else(|| panic!("a stream through nginx; its log:\n{}", self.log()))
    }

    /// What nginx has logged (`error_log`, warnings and up).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hub as the doc says to start it behind nginx: answering to the public name (and to
/// 127.0.0.1, for the test's direct publishes), trusting nginx's `X-Forwarded-For`.
fn hub_args(heartbeat_secs: &'static str) -> Vec<&'static str> {
    vec![
        "--allowed-host",
        NAME,
        "--allowed-host",
        "127.0.0.1",
        "--trusted-proxy",
        "x-forwarded-for",
        "--heartbeat-secs",
        heartbeat_secs,
    ]
}

/// `docs/deploy.md` shows the tested config verbatim.
#[test]
fn the_deploy_doc_shows_the_tested_config() {
    let doc = include_str!("../../../docs/deploy.md");
    assert!(
        doc.contains(&format!("```nginx\n{DOCUMENTED}```")),
        "docs/deploy.md must contain docs/nginx-ssehub.conf verbatim, in an nginx code block"
    );
}

/// An event published to the hub reaches a subscriber through nginx at once: nginx does not
/// hold it in a buffer. Also: the hub sees the client's `Host` (a name it does not answer to is
/// refused with 421 through nginx), and a same-origin publish through nginx is accepted (the
/// client's address comes from nginx's `X-Forwarded-For`, trusted).
#[tokio::test]
async fn an_event_reaches_a_subscriber_through_nginx_at_once() {
    let hub = TestHub::start(&hub_args("15")).await;
    let Some(nginx) = Nginx::start(&hub.url, 60).await else {
        return;
    };

    let mut sse = nginx.subscribe("/topics/deploy", None).await;
    assert_eq!(
        sse.headers["content-type"]
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("text/event-stream")
    );
    for i in 0..3 {
        let sent = Instant::now();
        let id = hub.publish("deploy", &format!("small {i}")).await;
        let got = tokio::time::timeout(Duration::from_secs(2), sse.take(1))
            .await
            .expect("a small event passes nginx within 2 s (not buffered)");
        assert_eq!(got[0].last_event_id, id);
        eprintln!("event {i} through nginx after {:?}", sent.elapsed());
    }

    let refused = client()
        .get(format!("{}/healthz", nginx.url))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        421,
        "the hub sees the Host nginx was sent"
    );

    let published = client()
        .post(format!("{}/topics/deploy", nginx.url))
        .header("host", NAME)
        .header("origin", format!("http://{NAME}"))
        .body("through nginx")
        .send()
        .await
        .unwrap();
    assert_eq!(
        published.status(),
        200,
        "{}",
        published.text().await.unwrap()
    );
    assert_eq!(data(&sse.take(1).await), ["through nginx"]);

    // The control: a config that holds small events — buffering on, the hub's
    // `X-Accel-Buffering: no` ignored, and gzip on the stream — fails the same 2 s bound.
    // (Either alone does not, with nginx 1.22: unbuffered gzip flushes each event, and
    // buffered proxying passes what it has read whenever the client can take it.)
    let holding = Nginx::start_edited(
        &hub.url,
        60,
        &[(
            "proxy_buffering off;",
            "proxy_buffering on;\n        proxy_ignore_headers X-Accel-Buffering;\n        \
             gzip on;\n        gzip_types text/event-stream;",
        )],
    )
    .await
    .expect("nginx started above");
    let request = holding
        .get("/topics/deploy")
        .header("accept-encoding", "gzip")
        .send();
    let reader = tokio::spawn(async move {
        let mut body = request.await.unwrap().bytes_stream();
        let mut received = 0;
        while let Some(chunk) = body.next().await {
            received += chunk.unwrap().len();
            if received >= 20 {
                break;
            }
        }
        received
    });
    // The first stream, and this one (through the buffering nginx).
    hub.metric_reaches("ssehub_connections", 2.0).await;
    hub.publish("deploy", "held").await;
    let held = tokio::time::timeout(Duration::from_secs(2), reader).await;
    assert!(held.is_err(), "a buffering nginx holds the event: {held:?}");
}

/// With nginx's `proxy_read_timeout` at 2 s and the hub's heartbeat at 1 s, a stream idle for
/// 5 s is still open and then gets an event; with no heartbeat, nginx cuts the same stream
/// after its read timeout (so the first check is a real one).
#[tokio::test]
async fn heartbeats_keep_an_idle_stream_open_past_nginx_read_timeout() {
    let hub = TestHub::start(&hub_args("1")).await;
    let Some(nginx) = Nginx::start(&hub.url, 2).await else {
        return;
    };
    let mut sse = nginx.subscribe("/topics/idle", None).await;
    sse.nothing_for(Duration::from_secs(5)).await;
    assert!(!sse.ended, "the stream outlives nginx's 2 s read timeout");
    hub.publish("idle", "still here").await;
    assert_eq!(data(&sse.take(1).await), ["still here"]);

    // The control: no heartbeat, and nginx cuts the idle stream.
    let quiet = TestHub::start(&hub_args("0")).await;
    let nginx = Nginx::start(&quiet.url, 2)
        .await
        .expect("nginx started above");
    let mut sse = nginx.subscribe("/topics/idle", None).await;
    let opened = Instant::now();
    let events = sse.until_end(Duration::from_secs(10)).await;
    let lasted = opened.elapsed();
    assert!(events.is_empty());
    assert!(
        lasted >= Duration::from_millis(1900) && lasted < Duration::from_secs(6),
        "without heartbeats nginx cuts the stream after its 2 s read timeout, not {lasted:?}"
    );
    assert!(
        nginx.log().contains("upstream timed out"),
        "nginx says why:\n{}",
        nginx.log()
    );
}

/// A subscriber through nginx whose stream ends when the hub restarts reconnects through nginx
/// with its `Last-Event-ID` and gets exactly the events published meanwhile, then the live
/// ones, none twice.
#[tokio::test]
async fn a_client_resumes_through_nginx_with_last_event_id_after_a_hub_restart() {
    let mut hub = TestHub::start(&hub_args("15")).await;
    let Some(nginx) = Nginx::start(&hub.url, 60).await else {
        return;
    };
    let mut sse = nginx.subscribe("/topics/resume", None).await;
    hub.publish("resume", "one").await;
    let first = sse.take(1).await;
    assert_eq!(data(&first), ["one"]);

    // A restart: SIGTERM ends the stream (nginx closes it too), the same data dir and address.
    hub.terminate();
    let tail = sse.until_end(Duration::from_secs(15)).await;
    assert!(tail.is_empty(), "{tail:?}");
    hub.wait(Duration::from_secs(30)).await;
    let address = hub.url.trim_start_matches("http://").to_string();
    let hub = TestHub::start_in(hub.data_dir.clone(), &address, &hub_args("15")).await;
    let missed = [
        hub.publish("resume", "two").await,
        hub.publish("resume", "three").await,
    ];

    let last = &first[0].last_event_id;
    let mut sse = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(sse) = nginx.try_subscribe("/topics/resume", Some(last)).await {
                return sse;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("nginx takes the reconnection within 10 s");
    let replayed = sse.take(2).await;
    assert_eq!(data(&replayed), ["two", "three"]);
    let ids: Vec<&str> = replayed.iter().map(|e| e.last_event_id.as_str()).collect();
    assert_eq!(ids, missed.iter().map(String::as_str).collect::<Vec<_>>());
    let live = hub.publish("resume", "four").await;
    let next = sse.take(1).await;
    assert_eq!(
        (next[0].data.as_str(), next[0].last_event_id.as_str()),
        ("four", live.as_str())
    );
    sse.nothing_for(Duration::from_millis(300)).await;
}
