//! HTTPS, HTTP/2 and h2c against the real binary: certificates made at test time (rcgen),
//! clients that check them (reqwest with rustls, curl), certificate reload on SIGHUP, and the
//! limits a hostile TLS or HTTP/2 client meets (the handshake timeout, the streams per
//! connection, a stream that stops reading).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
};
use reqwest::Version;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::util::{Sse, TestHub, data, metric_of, metric_of_reaches};

/// A certificate authority made for one test, and the files it writes.
pub(crate) struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub(crate) dir: tempfile::TempDir,
    /// The CA's certificate (PEM), what clients trust.
    pub(crate) ca_pem: PathBuf,
}

impl TestCa {
    pub(crate) fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // rcgen's default name is the same for every certificate: OpenSSL would take the
        // hub's certificate for a self-signed one.
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "ssehub test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, issuer.pem()).unwrap();
        TestCa {
            issuer,
            dir,
            ca_pem,
        }
    }

    /// Writes a certificate for `localhost` and 127.0.0.1 signed by this CA, and its key, to
    /// `cert` and `key`.
    pub(crate) fn issue(&self, cert: &Path, key: &Path) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key_pair = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key_pair, &self.issuer).unwrap();
        std::fs::write(cert, leaf.pem()).unwrap();
        std::fs::write(key, key_pair.serialize_pem()).unwrap();
    }

    /// Issues the hub's certificate into this CA's directory: `(cert, key)`.
    pub(crate) fn hub_files(&self) -> (PathBuf, PathBuf) {
        let (cert, key) = (
            self.dir.path().join("hub.pem"),
            self.dir.path().join("hub.key"),
        );
        self.issue(&cert, &key);
        (cert, key)
    }

    /// A client that trusts this CA alone.
    pub(crate) fn client(&self) -> reqwest::ClientBuilder {
        let pem = std::fs::read(&self.ca_pem).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .tls_info(true)
    }
}

/// Starts a hub serving HTTPS with a certificate of `ca`, in memory, plus `args`.
async fn start_tls(ca: &TestCa, args: &[&str]) -> (TestHub, PathBuf, PathBuf) {
    start_tls_with(ca, args, false).await
}

/// [`start_tls`], keeping the hub's log when `capture`.
async fn start_tls_with(ca: &TestCa, args: &[&str], capture: bool) -> (TestHub, PathBuf, PathBuf) {
    let (cert, key) = ca.hub_files();
    let mut all = vec![
        "--store",
        "memory",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let hub = if capture {
        TestHub::start_capturing(&all).await
    } else {
        TestHub::start(&all).await
    };
    assert!(hub.url.starts_with("https://127.0.0.1:"), "{}", hub.url);
    (hub, cert, key)
}

/// A config file holding `toml`, in `dir`.
fn config_file(dir: &Path, toml: &str) -> String {
    let path = dir.join("ssehub.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_str().unwrap().to_string()
}

/// Opens an SSE stream with `client`; asserts its HTTP version.
async fn subscribe(client: &reqwest::Client, url: &str, version: Version) -> Sse {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), version);
    Sse::new(response)
}

/// Publishes `data` to `topic` with `client`; asserts its HTTP version.
async fn publish(client: &reqwest::Client, base: &str, topic: &str, data: &str, version: Version) {
    let response = client
        .post(format!("{base}/topics/{topic}"))
        .body(data.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), version);
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// Over HTTPS, a client that offers HTTP/2 gets it (ALPN) and one that offers only HTTP/1.1
/// gets that; both subscribe and publish, and see each other's events. A client that does
/// not trust the hub's CA is refused.
#[tokio::test]
async fn https_serves_http2_and_http1() {
    let ca = TestCa::new();
    let (hub, _, _) = start_tls(&ca, &[]).await;
    let h2 = ca.client().build().unwrap();
    let h1 = ca.client().http1_only().build().unwrap();
    let url = format!("{}/topics/news", hub.url);
    let mut over_h2 = subscribe(&h2, &url, Version::HTTP_2).await;
    let mut over_h1 = subscribe(&h1, &url, Version::HTTP_11).await;
    publish(&h1, &hub.url, "news", "from http/1.1", Version::HTTP_11).await;
    publish(&h2, &hub.url, "news", "from h2", Version::HTTP_2).await;
    for sse in [&mut over_h2, &mut over_h1] {
        let events = sse.take(2).await;
        assert_eq!(data(&events), ["from http/1.1", "from h2"]);
    }
    assert_eq!(
        metric_of(&h1, &hub.url, "ssehub_http2_open_streams").await,
        1.0
    );

    let stranger = TestCa::new().client().build().unwrap();
    let refused = stranger.get(format!("{}/healthz", hub.url)).send().await;
    assert!(refused.is_err(), "a client that does not trust the CA");
}

/// h2c: HTTP/2 with prior knowledge on the plain listener (behind a TLS-terminating proxy),
/// beside the direct HTTP/1.1 path.
#[tokio::test]
async fn plain_listener_speaks_h2c_with_prior_knowledge() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let h1 = reqwest::Client::builder().http1_only().build().unwrap();
    let url = format!("{}/topics/plain", hub.url);
    let mut a = subscribe(&h2c, &url, Version::HTTP_2).await;
    let mut b = subscribe(&h2c, &url, Version::HTTP_2).await;
    let mut c = subscribe(&h1, &url, Version::HTTP_11).await;
    publish(&h2c, &hub.url, "plain", "one", Version::HTTP_2).await;
    for sse in [&mut a, &mut b, &mut c] {
        assert_eq!(data(&sse.take(1).await), ["one"]);
    }
    assert_eq!(hub.metric("ssehub_http2_open_streams").await, 2.0);
}

/// On SIGHUP the hub reads its certificate again: a new connection gets the new one, a
/// stream opened before keeps receiving; a bad file on a later SIGHUP keeps the current one.
#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_streams() {
    let old_ca = TestCa::new();
    let (mut hub, cert, key) = start_tls_with(&old_ca, &["--log", "info"], true).await;
    let old = old_ca.client().build().unwrap();
    let mut open = subscribe(&old, &format!("{}/topics/t", hub.url), Version::HTTP_2).await;

    let new_ca = TestCa::new();
    new_ca.issue(&cert, &key);
    hangup(&hub);
    let new = new_ca.client().build().unwrap();
    let reloaded = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            // A fresh client each time: a new connection, a new handshake.
            let fresh = new_ca.client().build().unwrap();
            if fresh
                .get(format!("{}/healthz", hub.url))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        reloaded.is_ok(),
        "the new certificate is served after SIGHUP"
    );
    let stale = old_ca.client().build().unwrap();
    assert!(
        stale
            .get(format!("{}/healthz", hub.url))
            .send()
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
    publish(&new, &hub.url, "t", "after reload", Version::HTTP_2).await;
    assert_eq!(data(&open.take(1).await), ["after reload"]);

    std::fs::write(&cert, "not a certificate").unwrap();
    hangup(&hub);
    // The hub logs the error and keeps serving the certificate it has.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = new_ca.client().build().unwrap();
    let response = fresh
        .get(format!("{}/healthz", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    publish(&fresh, &hub.url, "t", "still", Version::HTTP_2).await;
    assert_eq!(data(&open.take(1).await), ["still"]);
    hub.terminate();
    let (_, log) = hub.stop_capturing().await;
    assert!(log.contains("cannot reload the TLS certificate"), "{log}");
}

fn hangup(hub: &TestHub) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &hub.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Connections that open TCP and never finish the TLS handshake (nothing sent, or half a
/// ClientHello) are closed after `limits.tls_handshake_timeout_ms`, and counted.
#[tokio::test]
async fn unfinished_handshakes_are_closed() {
    let ca = TestCa::new();
    let config = config_file(
        ca.dir.path(),
        "[limits]\ntls_handshake_timeout_ms = 1500\nheader_read_timeout_ms = 60000\n",
    );
    // Long enough for the test's own handshakes (the scrapes) on a loaded machine.
    let (hub, _, _) = start_tls(&ca, &["--config", &config]).await;
    let addr = hub.url.trim_start_matches("https://").to_string();
    let mut attackers = Vec::new();
    for i in 0..6 {
        let mut socket = TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 1 {
            // A TLS record header announcing a ClientHello that never comes.
            socket
                .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .await
                .unwrap();
        }
        attackers.push(socket);
    }
    for mut socket in attackers {
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0) | Err(_))),
            "closed by the hub: {closed:?}"
        );
    }
    let client = ca.client().build().unwrap();
    metric_of_reaches(
        &client,
        &hub.url,
        "ssehub_connection_timeouts_total{kind=\"tls_handshake\"}",
        6.0,
    )
    .await;
}

/// A client that ignores `SETTINGS_MAX_CONCURRENT_STREAMS` and opens more SSE streams on one
/// HTTP/2 connection gets the extra ones refused (`RST_STREAM REFUSED_STREAM`): the hub holds
/// `limits.max_concurrent_streams` per connection. Raw frames over h2c, since a well-behaved
/// HTTP/2 client waits instead.
#[tokio::test]
async fn streams_per_connection_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "[limits]\nmax_concurrent_streams = 3\n");
    let hub = TestHub::start(&["--store", "memory", "--config", &config]).await;
    let mut socket = TcpStream::connect(hub.url.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[])); // SETTINGS, none
    // The server's SETTINGS first: it says 3.
    socket.write_all(&out).await.unwrap();
    let mut reader = FrameReader::default();
    let settings = reader.next(&mut socket).await;
    assert_eq!(settings.0, 0x4);
    assert!(
        settings.2.chunks(6).any(|s| s == [0, 3, 0, 0, 0, 3]),
        "MAX_CONCURRENT_STREAMS = 3 in {:?}",
        settings.2
    );
    socket.write_all(&frame(0x4, 0x1, 0, &[])).await.unwrap(); // SETTINGS ACK
    let mut sent = Vec::new();
    for n in 0..8u32 {
        let stream = 2 * n + 1;
        sent.extend(frame(0x1, 0x5, stream, &get_headers("/topics/many")));
    }
    socket.write_all(&sent).await.unwrap();
    let (mut answered, mut refused) = (Vec::new(), Vec::new());
    tokio::time::timeout(Duration::from_secs(10), async {
        while answered.len() + refused.len() < 8 {
            let (kind, _, payload, stream) = reader.next(&mut socket).await;
            match kind {
                0x1 => answered.push(stream),
                0x3 => {
                    assert_eq!(payload, [0, 0, 0, 7], "REFUSED_STREAM");
                    refused.push(stream);
                }
                _ => {}
            }
        }
    })
    .await
    .expect("every stream answered or refused");
    answered.sort_unstable();
    refused.sort_unstable();
    assert_eq!(answered, [1, 3, 5]);
    assert_eq!(refused, [7, 9, 11, 13, 15]);
    assert_eq!(hub.metric("ssehub_http2_open_streams").await, 3.0);
}

/// An HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// HPACK for `GET http://localhost{path}`: static-table entries and literals, no Huffman.
fn get_headers(path: &str) -> Vec<u8> {
    let mut out = vec![0x82, 0x86]; // :method GET, :scheme http
    for (index, value) in [(0x04u8, path), (0x01, "localhost")] {
        // Literal without indexing, name from the static table (:path, :authority).
        out.push(index);
        out.push(u8::try_from(value.len()).unwrap());
        out.extend(value.as_bytes());
    }
    out
}

/// Reads whole HTTP/2 frames from a socket.
#[derive(Default)]
struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// The next frame: `(type, flags, payload, stream)`.
    async fn next(&mut self, socket: &mut TcpStream) -> (u8, u8, Vec<u8>, u32) {
        loop {
            if self.buf.len() >= 9 {
                let len = usize::from(self.buf[0]) << 16
                    | usize::from(self.buf[1]) << 8
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9).collect();
                    let payload: Vec<u8> = self.buf.drain(..len).collect();
                    let stream =
                        u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                    return (head[3], head[4], payload, stream);
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut chunk))
                .await
                .expect("a frame within 10 s")
                .unwrap();
            assert!(n > 0, "the hub closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Two SSE streams on one HTTP/2 connection: the client stops reading one (its stream window
/// fills), and the other keeps receiving while the stalled one is cut as a slow consumer —
/// per-stream flow control, and the slow-consumer cut per stream.
#[tokio::test]
async fn a_stalled_stream_does_not_hold_its_connection() {
    let ca = TestCa::new();
    let (hub, _, _) = start_tls(
        &ca,
        &[
            "--max-body-bytes",
            "4096",
            "--subscriber-buffer-bytes",
            "8192",
            "--heartbeat-secs",
            "0",
        ],
    )
    .await;
    let client = ca
        .client()
        .http2_initial_stream_window_size(16 << 10)
        .http2_initial_connection_window_size(4 << 20)
        .build()
        .unwrap();
    let mut stalled = subscribe(
        &client,
        &format!("{}/topics/flood", hub.url),
        Version::HTTP_2,
    )
    .await;
    let mut reader = subscribe(
        &client,
        &format!("{}/topics/calm", hub.url),
        Version::HTTP_2,
    )
    .await;
    let h1 = ca.client().http1_only().build().unwrap();
    let chunk = "x".repeat(1000);
    for _ in 0..300 {
        publish(&client, &hub.url, "flood", &chunk, Version::HTTP_2).await;
    }
    publish(&client, &hub.url, "calm", "still flowing", Version::HTTP_2).await;
    assert_eq!(data(&reader.take(1).await), ["still flowing"]);
    metric_of_reaches(&h1, &hub.url, "ssehub_slow_consumer_disconnects_total", 1.0).await;
    // What was sent before the cut is there; then the stream ends.
    let events = stalled.until_end(Duration::from_secs(10)).await;
    assert!(events.len() < 300, "cut before the end: {}", events.len());
    assert_eq!(
        metric_of(&h1, &hub.url, "ssehub_http2_open_streams").await,
        1.0
    );
}

/// curl (libcurl with nghttp2) over HTTPS with `--http2`, and over h2c with
/// `--http2-prior-knowledge`: it publishes, and its answer came over HTTP/2.
#[tokio::test]
async fn curl_speaks_http2_to_the_hub() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl is not installed (scripts/test installs it): skipped");
        return;
    }
    let ca = TestCa::new();
    let (tls_hub, _, _) = start_tls(&ca, &[]).await;
    let plain_hub = TestHub::start(&["--store", "memory"]).await;
    let ca_pem = ca.ca_pem.to_str().unwrap();
    let cases = [
        (&tls_hub, vec!["--http2", "--cacert", ca_pem]),
        (&plain_hub, vec!["--http2-prior-knowledge"]),
    ];
    for (hub, flags) in cases {
        let published = tokio::process::Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
            ])
            .args(&flags)
            .args(["--data-binary", "from curl"])
            .arg(format!("{}/topics/curl", hub.url))
            .output()
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&published.stdout),
            "2 200",
            "{}",
            String::from_utf8_lossy(&published.stderr)
        );
    }
    // A stream opened by curl receives an event (over HTTP/2 with TLS).
    let mut subscriber = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-N",
            "--max-time",
            "10",
            "--http2",
            "--cacert",
            ca_pem,
        ])
        .arg(format!("{}/topics/live", tls_hub.url))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = ca.client().build().unwrap();
    let h1 = ca.client().http1_only().build().unwrap();
    metric_of_reaches(&h1, &tls_hub.url, "ssehub_http2_open_streams", 1.0).await;
    publish(&client, &tls_hub.url, "live", "to curl", Version::HTTP_2).await;
    let mut stdout = subscriber.stdout.take().unwrap();
    let mut seen = Vec::new();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&seen).contains("data: to curl") {
            let n = stdout.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "curl's stream ended: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(got.is_ok(), "{}", String::from_utf8_lossy(&seen));
}

/// Runs `ssehub args...` to its end (at most 30 s); `(success, stdout, stderr)`.
async fn ssehub(args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .env_remove("SSEHUB_URL")
        .env_remove("SSEHUB_CA_CERT")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("ssehub ends in time")
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `ssehub pub` and `ssehub sub` with an `https://` hub: `--ca-cert` trusts the hub's CA,
/// `--insecure` trusts anything, and with neither a hub whose CA the system does not know is
/// refused.
#[tokio::test]
async fn cli_pub_and_sub_speak_https() {
    let ca = TestCa::new();
    let (hub, _, _) = start_tls(&ca, &[]).await;
    let ca_pem = ca.ca_pem.to_str().unwrap();
    let (ok, id, err) =
        ssehub(&["pub", "--hub", &hub.url, "--ca-cert", ca_pem, "cli", "one"]).await;
    assert!(ok, "{err}");
    let (ok, id2, err) = ssehub(&["pub", "--hub", &hub.url, "--insecure", "cli", "two"]).await;
    assert!(ok, "{err}");
    assert_ne!(id.trim(), id2.trim());

    for trust in [["--ca-cert", ca_pem].as_slice(), ["--insecure"].as_slice()] {
        let mut args = vec!["sub", "--hub", &hub.url, "--last-event-id", "earliest"];
        args.extend_from_slice(trust);
        args.extend(["--count", "2", "cli"]);
        let (ok, out, err) = ssehub(&args).await;
        assert!(ok, "{err}");
        assert_eq!(out, "one\ntwo\n");
    }

    let (ok, _, err) = ssehub(&["pub", "--hub", &hub.url, "cli", "refused"]).await;
    assert!(!ok, "a hub whose CA the system does not trust");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let (ok, _, err) = ssehub(&[
        "pub",
        "--hub",
        &hub.url,
        "--ca-cert",
        "/nonexistent.pem",
        "cli",
        "x",
    ])
    .await;
    assert!(!ok);
    assert!(err.contains("/nonexistent.pem"), "{err}");
}

/// A certificate without its key, or files that do not load, stop the start with a message
/// that names the problem (the hub never serves plain HTTP in their place).
#[tokio::test]
async fn a_half_or_bad_tls_config_stops_the_start() {
    let ca = TestCa::new();
    let (cert, key) = ca.hub_files();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let serve = ["serve", "--listen", "127.0.0.1:0", "--store", "memory"];
    let (ok, _, err) = ssehub(&[&serve[..], &["--tls-cert", cert]].concat()).await;
    assert!(!ok);
    assert!(err.contains("go together"), "{err}");
    let other_key = ca.dir.path().join("other.key");
    ca.issue(&ca.dir.path().join("other.pem"), &other_key);
    let other_key = other_key.to_str().unwrap();
    let (ok, out, err) =
        ssehub(&[&serve[..], &["--tls-cert", cert, "--tls-key", other_key]].concat()).await;
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("does not fit"), "{err}");
    let (ok, _, err) = ssehub(&[&serve[..], &["--tls-cert", key, "--tls-key", key]].concat()).await;
    assert!(!ok);
    assert!(err.contains("no certificate in"), "{err}");
}

/// `ssehub bench conns --http2 K` opens its streams over h2c, K per connection, and reports
/// them (what BENCHMARKS.md's HTTP/2 idle-stream figure is measured with).
#[tokio::test]
async fn bench_conns_holds_http2_streams() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let (ok, out, err) = ssehub(&[
        "bench",
        "conns",
        "--hub",
        &hub.url,
        "--connections",
        "30",
        "--http2",
        "10",
        "--hold",
        "0.5",
        "--json",
    ])
    .await;
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["opened"], 30, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["http2_streams_per_connection"], 10, "{report}");
    assert_eq!(report["closed_by_hub"], 0, "{report}");
}

/// Over TLS the connection layer's timers hold as on the plain listener: a client that
/// finishes its handshake (HTTP/1.1 or HTTP/2 by ALPN) and then sends no request is closed
/// after `limits.header_read_timeout_ms`, counted as `kind="header"`.
#[tokio::test]
async fn a_silent_client_after_the_handshake_is_closed() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("openssl is not installed: skipped");
        return;
    }
    let ca = TestCa::new();
    let config = config_file(ca.dir.path(), "[limits]\nheader_read_timeout_ms = 500\n");
    let (hub, _, _) = start_tls(&ca, &["--config", &config]).await;
    let addr = hub.url.trim_start_matches("https://").to_string();
    let mut silent = Vec::new();
    for alpn in ["h2", "http/1.1"] {
        let client = tokio::process::Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &addr, "-alpn", alpn])
            .args(["-CAfile", ca.ca_pem.to_str().unwrap()])
            // stdin stays open and says nothing: no request after the handshake.
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        silent.push(client);
    }
    for client in &mut silent {
        let ended = tokio::time::timeout(Duration::from_secs(10), client.wait()).await;
        assert!(ended.is_ok(), "the hub closed the silent TLS connection");
    }
    let h1 = ca.client().http1_only().build().unwrap();
    metric_of_reaches(
        &h1,
        &hub.url,
        "ssehub_connection_timeouts_total{kind=\"header\"}",
        2.0,
    )
    .await;
}
