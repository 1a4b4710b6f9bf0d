//! A throwaway `redis-server` for tests: on 127.0.0.1 with a free port, its files in a temp
//! dir, with AOF and `appendfsync always` (so that a restart keeps every acknowledged event),
//! stopped (by its PID, through the child handle) when dropped.

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
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address").port()
        };
        let dir = std::env::temp_dir().join(format!("ssehub-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir for redis");
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pings() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
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

    /// Starts it again on the same port and files (its AOF): what it acknowledged is back.
    ///
    /// # Panics
    ///
    /// When it does not start.
    pub fn start_again(&mut self) {
        self.kill();
        self.spawn().expect("redis-server starts again");
    }

    /// Whether it answers `PING`.
    fn pings(&self) -> bool {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut reply = [0u8; 7];
        conn.set_read_timeout(Some(Duration::from_secs(1))).ok();
        conn.write_all(b"PING\r\n").is_ok()
            && conn.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
