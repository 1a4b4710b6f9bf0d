//! A throwaway Debian `haproxy` in front of test hubs: its config generated here (HTTP mode,
//! timeouts long enough for SSE streams, health checks on `/healthz`), listening on 127.0.0.1
//! with a free port, stopped (by its PID, through the child handle) when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `haproxy` started by a test.
pub(crate) struct Haproxy {
    child: Child,
    /// Its URL, `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// Holds the generated config as long as haproxy runs.
    _dir: tempfile::TempDir,
}

/// The config for a balancer on `port` over `servers` (`127.0.0.1:PORT` each).
///
/// Why each line matters for SSE: `timeout server`/`timeout tunnel` bound how long a stream
/// may go without a byte, so they are far longer than the test; the request is not buffered
/// (`no option http-buffer-request`: a subscribe has no body to wait for); a server found dead
/// by its health check (`/healthz`, every 100 ms) takes no new streams, and a connection
/// refused by one that is dead but not yet found so is retried on another (`redispatch`).
fn config(port: u16, servers: &[String]) -> String {
    let mut text = format!(
        "global\n    maxconn 2000\n\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 120s\n    \
         timeout server 120s\n    timeout tunnel 120s\n    retries 3\n    option redispatch\n    \
         no option http-buffer-request\n\n\
         frontend sse\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\n\
         backend nodes\n    balance roundrobin\n    option httpchk GET /healthz\n    \
         http-check expect status 200\n"
    );
    for (i, server) in servers.iter().enumerate() {
        text.push_str(&format!(
            "    server node{i} {server} check inter 100ms fall 1 rise 1\n"
        ));
    }
    text
}

impl Haproxy {
    /// Starts one in front of the hubs at `urls` (`http://127.0.0.1:PORT`) and waits until it
    /// answers `/healthz`; or returns `None` (and says so on stderr) when `haproxy` is not
    /// installed: the caller skips its test. `scripts/test` installs it.
    ///
    /// # Panics
    ///
    /// When it is installed but does not start or answer within 10 s.
    pub(crate) async fn start(urls: &[&str]) -> Option<Haproxy> {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address").port()
        };
        let servers: Vec<String> = urls
            .iter()
            .map(|u| u.trim_start_matches("http://").to_string())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, config(port, &servers)).unwrap();
        // Debian puts it in /usr/sbin, which is not on every user's PATH.
        let spawn = |program: &str| {
            Command::new(program)
                .arg("-db")
                .arg("-f")
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        let not_found = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        let child = match spawn("haproxy").or_else(|e| {
            if not_found(&e) {
                spawn("/usr/sbin/haproxy")
            } else {
                Err(e)
            }
        }) {
            Ok(child) => child,
            Err(e) if not_found(&e) => {
                eprintln!("SKIPPED: haproxy is not installed (apt-get install haproxy)");
                return None;
            }
            Err(e) => panic!("cannot start haproxy: {e}"),
        };
        let haproxy = Haproxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let up = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let answer = crate::util::client()
                    .get(format!("{}/healthz", haproxy.url))
                    .send()
                    .await;
                if answer.is_ok_and(|r| r.status() == 200) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(up.is_ok(), "haproxy answers /healthz within 10 s");
        Some(haproxy)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
