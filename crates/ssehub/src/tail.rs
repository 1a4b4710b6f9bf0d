//! `ssehub tail --topic T FILE`: follow a file like `tail -F`, one event per line.
//!
//! The file is polled (every `--poll-ms`), which needs no platform API and costs one `read`
//! and two `stat`s per poll when nothing changes. Each poll reads to the end of the open file,
//! then looks for:
//! - truncation: the open file is shorter than what was read → read it again from the start;
//! - rotation: the path names another file (moved away and recreated, or replaced) → read the
//!   old file to its end once more, then follow the new one from its start. A path that was
//!   deleted keeps the old file open until a new one appears.
//!
//! Lines are published with type `message` and the line as data (LF or CRLF stripped, invalid
//! UTF-8 replaced). A partial last line waits for its line feed; it is published as it is when
//! the file is rotated or truncated, or when `tail` stops. When the buffer of lines waiting
//! for the hub is full, `tail` stops reading until there is room: the file is the buffer, so
//! a slow or unreachable hub costs no lines (unless the file is truncated or rotated twice
//! meanwhile). Ctrl-C or SIGTERM publishes what is left (for at most `--flush-timeout`) and
//! exits 0.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use ssehub_client::{LineOptions, LinePublisher, LineSplitter, MAX_LINE_BYTES};

use crate::cli::TailArgs;

const NAME: &str = "ssehub tail";
/// How much is read at once.
const CHUNK: usize = 64 * 1024;

pub(crate) fn run(args: &TailArgs) -> anyhow::Result<()> {
    ssehub_core::Topic::new(&args.topic)
        .map_err(|e| anyhow::anyhow!("invalid topic {:?}: {e}", args.topic))?;
    let options = crate::exec::line_options(&args.buffer)?;
    let runtime = crate::client_runtime()?;
    runtime.block_on(tail(args, options))
}

async fn tail(args: &TailArgs, options: LineOptions) -> anyhow::Result<()> {
    let mut follower = Follower::new(&args.file, args.from_start)?;
    if let Some(open) = &follower.open {
        eprintln!(
            "{NAME}: following {} from byte {}",
            args.file.display(),
            open.offset
        );
    }
    let publisher = LinePublisher::start(args.hub.client()?, args.topic.clone(), NAME, options);
    let poll = Duration::from_millis(args.poll_ms);
    let mut pending = VecDeque::new();
    let stop = crate::exec::shutdown_signal();
    tokio::pin!(stop);
    let outcome = loop {
        let step = async {
            if !pending.is_empty() {
                publisher.push_wait("message", &mut pending).await;
                return Ok(());
            }
            if !follower.poll(&mut pending)? {
                tokio::time::sleep(poll).await;
            }
            anyhow::Ok(())
        };
        tokio::select! {
            biased;
            error = publisher.failed() => break Err(anyhow::anyhow!(error)),
            () = &mut stop => break Ok(()),
            result = step => if let Err(e) = result { break Err(e) },
        }
    };
    // Whatever was read is published, the partial last line too.
    pending.extend(follower.splitter.finish());
    for line in pending {
        publisher.push("message", line);
    }
    let report = publisher.finish().await;
    if let Some(error) = report.fatal {
        return Err(anyhow::anyhow!(error));
    }
    outcome
}

/// The identity of a file: device and inode.
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(metadata: &std::fs::Metadata) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt as _;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn file_id(_metadata: &std::fs::Metadata) -> Option<FileId> {
    None // No rotation detection; truncation still works.
}

struct Open {
    file: File,
    id: Option<FileId>,
    /// Bytes read so far (the file's position).
    offset: u64,
    /// The path names another file: read this one to its end, then switch.
    replaced: bool,
}

/// The file being followed, and the lines read from it.
struct Follower {
    path: PathBuf,
    open: Option<Open>,
    splitter: LineSplitter,
    buf: Vec<u8>,
    /// Whether "waiting for the file" was said (once per absence).
    said_waiting: bool,
}

impl Follower {
    /// Opens `path` if it exists, at its end unless `from_start`.
    fn new(path: &Path, from_start: bool) -> anyhow::Result<Follower> {
        let mut follower = Follower {
            path: path.to_path_buf(),
            open: None,
            splitter: LineSplitter::new(),
            buf: vec![0; CHUNK],
            said_waiting: false,
        };
        match File::open(path) {
            Ok(file) => {
                let mut open = Open::new(file)?;
                if !from_start {
                    open.offset = start_of_last_line(&mut open.file)?;
                    open.file.seek(SeekFrom::Start(open.offset))?;
                }
                follower.open = Some(open);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot open {}", path.display()));
            }
        }
        Ok(follower)
    }

    /// Reads what is new into `lines`; false when there was nothing to do (time to sleep).
    fn poll(&mut self, lines: &mut VecDeque<String>) -> anyhow::Result<bool> {
        let path = self.path.display();
        let Some(open) = &mut self.open else {
            // Waiting for the file: a new file is read from its start.
            match File::open(&self.path) {
                Ok(file) => {
                    if self.said_waiting {
                        eprintln!("{NAME}: {path} has appeared; following it");
                    }
                    self.open = Some(Open::new(file)?);
                    self.said_waiting = false;
                    return Ok(true);
                }
                Err(e) => {
                    if !self.said_waiting {
                        eprintln!("{NAME}: waiting for {path} ({e})");
                        self.said_waiting = true;
                    }
                    return Ok(false);
                }
            }
        };
        let n = open
            .file
            .read(&mut self.buf)
            .with_context(|| format!("cannot read {path}"))?;
        if n > 0 {
            open.offset += n as u64;
            self.splitter
                .feed(&self.buf[..n], |line| lines.push_back(line));
            return Ok(true);
        }
        // At the end of the open file.
        let len = open.file.metadata()?.len();
        if len < open.offset {
            eprintln!("{NAME}: {path}: file truncated; reading it from the start");
            lines.extend(self.splitter.finish());
            open.file.seek(SeekFrom::Start(0))?;
            open.offset = 0;
            return Ok(true);
        }
        if open.replaced {
            // The old file is read to its end: on to the new one.
            lines.extend(self.splitter.finish());
            self.open = None;
            // When the new file is gone again, wait for the next one.
            if let Ok(file) = File::open(&self.path) {
                eprintln!("{NAME}: {path} has been replaced; following the new file");
                self.open = Some(Open::new(file)?);
            }
            return Ok(true);
        }
        match std::fs::metadata(&self.path) {
            Ok(now) if file_id(&now) != open.id => {
                // Read what was written to the old file since, then switch.
                open.replaced = true;
                Ok(true)
            }
            // Deleted, or not readable for now: keep the old file until a new one appears.
            _ => Ok(false),
        }
    }
}

impl Open {
    fn new(file: File) -> anyhow::Result<Open> {
        let id = file_id(&file.metadata()?);
        Ok(Open {
            file,
            id,
            offset: 0,
            replaced: false,
        })
    }
}

/// Where following from the end starts: after the last line feed, so that a line being written
/// right now is published whole once its line feed arrives (the end, when the file ends with a
/// line feed, is empty, or has no line feed in its last `MAX_LINE_BYTES`).
fn start_of_last_line(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let floor = len.saturating_sub(MAX_LINE_BYTES as u64);
    let mut buf = vec![0; CHUNK];
    while end > floor {
        let start = end.saturating_sub(CHUNK as u64).max(floor);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(if floor == 0 { 0 } else { len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn following_starts_after_the_last_line_feed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for (content, start) in [(&b""[..], 0), (b"a\nb\n", 4), (b"a\nbc", 2), (b"abc", 0)] {
            File::create(&path).unwrap().write_all(content).unwrap();
            let mut file = File::open(&path).unwrap();
            assert_eq!(start_of_last_line(&mut file).unwrap(), start, "{content:?}");
        }
    }
}
