//! `ssehub decode`: the black-box face of the parser.
//!
//! Reads stdin in chunks as they arrive (never the whole input at once), and after each chunk
//! prints and flushes every event it completed, so `curl -N … | ssehub decode` shows events
//! live. Limit breaches are reported on stderr and decoding goes on, as the parser recovers.

use std::io::{self, Read, Write};

use anyhow::Context as _;
use serde::Serialize;
use ssehub_wire::{Frame, Limits, ParseError, Parser};

use crate::cli::DecodeArgs;

/// One output line. Field names are part of the contract (README.md, "`ssehub decode`").
#[derive(Serialize)]
#[serde(untagged)]
enum Output<'a> {
    Event {
        #[serde(rename = "type")]
        event_type: &'a str,
        data: &'a str,
        last_event_id: &'a str,
    },
    Comment {
        comment: &'a str,
    },
}

pub(crate) fn run(args: &DecodeArgs) -> anyhow::Result<()> {
    let mut parser = Parser::with_limits(Limits {
        max_line_bytes: args.max_line_bytes,
        max_data_bytes: args.max_data_bytes,
    })
    .with_comments(args.comments);
    parser.set_last_event_id(args.last_event_id.as_str());

    let mut stdin = io::stdin().lock();
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stdin.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("cannot read stdin"),
        };
        if !print_frames(parser.feed_iter(&chunk[..n]), &mut stdout)? {
            return Ok(());
        }
    }
    parser.end_body();
    Ok(())
}

/// Prints every frame of `frames` (those one chunk completed). Returns false when stdout was
/// closed (a pipe into `head`), which ends decoding quietly.
fn print_frames(
    frames: impl Iterator<Item = Result<Frame, ParseError>>,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    for frame in frames {
        let output = match &frame {
            Ok(Frame::Event(e)) => Output::Event {
                event_type: &e.event_type,
                data: &e.data,
                last_event_id: &e.last_event_id,
            },
            Ok(Frame::Comment(comment)) => Output::Comment { comment },
            Err(error) => {
                eprintln!("ssehub decode: warning: {error}");
                continue;
            }
        };
        serde_json::to_writer(&mut *out, &output)?;
        if !write_ok(out.write_all(b"\n"))? {
            return Ok(false);
        }
    }
    write_ok(out.flush())
}

fn write_ok(result: io::Result<()>) -> anyhow::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}
