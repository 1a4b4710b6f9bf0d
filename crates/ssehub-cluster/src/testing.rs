//! Throwaway Redis processes for tests, on 127.0.0.1 with free ports, their files in temp
//! dirs, stopped (by their PIDs, through the child handles) when dropped: a `redis-server`
//! ([`RedisServer`]) with AOF and `appendfsync always` (so that a restart keeps every
//! acknowledged event), and a `redis-sentinel` ([`Sentinel`]) that watches one.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` started by a test.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
    /// Arguments of its own (`--replicaof …`).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts one, or returns `None` (and says so on stderr) when `redis-server` is not
    /// installed: the caller skips its test. `scripts/test` installs it.
    ///
    /// # Panics
    ///
    /// When it is installed but does not start.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(Vec::new())
    }

    /// Starts a replica of `primary` (when `redis-server` is installed: `primary` was started).
    ///
    /// # Panics
    ///
    /// When it does not start.
    pub fn start_replica_of(primary: &RedisServer) -> RedisServer {
        let extra = vec![
            "--replicaof".to_string(),
            "127.0.0.1".to_string(),
            primary.port.to_string(),
        ];
        RedisServer::start_with(extra).expect("redis-server is installed")
    }

    fn start_with(extra: Vec<String>) -> Option<RedisServer> {
        let (port, dir) = free_port_and_dir("redis");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra,
        };
        match server.spawn() {
            Ok(()) => Some(server),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
                None
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        }
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--daemonize", "no"])
            .args(&self.extra)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        wait_for_pong(self.port, "redis-server");
        Ok(())
    }

    /// Its URL, `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL, by its PID): Redis is gone until [`start_again`](Self::start_again).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it (SIGSTOP) without killing it: its connections stay open, it answers nothing,
    /// and as a replica it copies nothing, until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](Self::pause)d server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Starts it again on the same port and files (its AOF): what it acknowledged is back.
    ///
    /// # Panics
    ///
    /// When it does not start.
    pub fn start_again(&mut self) {
        self.kill();
        self.spawn().expect("redis-server starts again");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `redis-sentinel` started by a test, watching one primary under a master name,
/// with short timeouts so that a failover takes a few seconds — not shorter: below a second
/// or two, Sentinel takes a primary it has just promoted (busy with its replicas' sync) for
/// down, fails over again and again, and two primaries take writes at once (split brain).
#[derive(Debug)]
pub struct Sentinel {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Sentinel {
    /// The master name it watches.
    pub const MASTER: &'static str = "ssehub-primary";

    /// Starts one watching `primary` (quorum 1: it alone decides a failover), or returns
    /// `None` (and says so on stderr) when `redis-sentinel` is not installed: the caller
    /// skips its test. `scripts/test` installs it.
    ///
    /// # Panics
    ///
    /// When it is installed but does not start.
    pub fn start(primary: &RedisServer) -> Option<Sentinel> {
        let (port, dir) = free_port_and_dir("sentinel");
        let master = Sentinel::MASTER;
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "bind 127.0.0.1\nport {port}\ndaemonize no\ndir {}\n\
                 sentinel monitor {master} 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds {master} 2000\n\
                 sentinel failover-timeout {master} 5000\n\
                 sentinel parallel-syncs {master} 2\n",
                dir.display(),
                primary.port
            ),
        )
        .expect("a sentinel.conf");
        let child = match Command::new("redis-sentinel")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "SKIPPED: redis-sentinel is not installed (apt-get install redis-sentinel)"
                );
                return None;
            }
            Err(e) => panic!("cannot start redis-sentinel: {e}"),
        };
        let sentinel = Sentinel { child, port, dir };
        wait_for_pong(port, "redis-sentinel");
        Some(sentinel)
    }

    /// The cluster URL that finds the primary through it,
    /// `redis+sentinel://127.0.0.1:PORT/ssehub-primary`.
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/{}",
            self.port,
            Sentinel::MASTER
        )
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port on 127.0.0.1 and a fresh temp dir named after it.
fn free_port_and_dir(what: &str) -> (u16, std::path::PathBuf) {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").port()
    };
    let dir = std::env::temp_dir().join(format!("ssehub-{what}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir for redis");
    (port, dir)
}

/// Waits (10 s at most) until the process on `port` answers `PING`.
fn wait_for_pong(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pings(port) {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the process on `port` answers `PING`.
fn pings(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0u8; 7];
    conn.set_read_timeout(Some(Duration::from_secs(1))).ok();
    conn.write_all(b"PING\r\n").is_ok()
        && conn.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
