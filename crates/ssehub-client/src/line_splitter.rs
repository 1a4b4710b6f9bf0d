//! [`LineSplitter`]: a byte stream cut into the lines that `ssehub tail` and `ssehub exec`
//! publish, one event each.

/// The longest line; a longer one is cut into lines of at most this many bytes, so that every
/// line fits in a request to a hub with the default limits (a 1 MiB body).
pub const MAX_LINE_BYTES: usize = 1_000_000;

/// Splits a byte stream into lines: on LF, without the line ending (CRLF too), invalid UTF-8
/// replaced by U+FFFD, lines longer than [`MAX_LINE_BYTES`] cut (at a character boundary).
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// `buf[..scanned]` holds no LF.
    scanned: usize,
}

impl LineSplitter {
    /// A splitter with nothing buffered.
    pub fn new() -> Self {
        LineSplitter::default()
    }

    /// Feeds bytes; calls `emit` with each complete line.
    pub fn feed(&mut self, bytes: &[u8], mut emit: impl FnMut(String)) {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            let newline = self.buf[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| self.scanned + i);
            match newline {
                Some(end) if end - start <= MAX_LINE_BYTES => {
                    emit(line(&self.buf[start..end]));
                    start = end + 1;
                    self.scanned = start;
                }
                _ if self.buf.len() - start > MAX_LINE_BYTES => {
                    let cut = start + char_boundary(&self.buf[start..], MAX_LINE_BYTES);
                    emit(String::from_utf8_lossy(&self.buf[start..cut]).into_owned());
                    start = cut;
                    self.scanned = start;
                }
                _ => {
                    self.scanned = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..start);
        self.scanned -= start;
    }

    /// The partial last line, if any (at the end of the input).
    pub fn finish(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            return None;
        }
        let last = line(&self.buf);
        self.buf.clear();
        self.scanned = 0;
        Some(last)
    }
}

fn line(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// The largest `n <= max` that does not split a UTF-8 character in `bytes` (or `max` when
/// there is none: the bytes are not UTF-8 there anyway).
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&n| bytes.get(n).is_none_or(|&b| (b as i8) >= -0x40))
        .filter(|&n| n > 0)
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    fn split(chunks: &[&[u8]]) -> (Vec<String>, Option<String>) {
        let mut splitter = LineSplitter::new();
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, |l| lines.push(l));
        }
        (lines, splitter.finish())
    }

    #[test]
    fn splits_on_lf_and_strips_crlf() {
        assert_eq!(
            split(&[b"a\nb\r\n\nc"]),
            (
                vec!["a".into(), "b".into(), String::new()],
                Some("c".into())
            )
        );
        assert_eq!(
            split(&[b"ab", b"c\r", b"\nd\n"]),
            (vec!["abc".into(), "d".into()], None)
        );
        // A lone CR inside a line stays.
        assert_eq!(split(&[b"a\rb\n"]).0, ["a\rb"]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split(&[b"a\xffb\n"]).0, ["a\u{fffd}b"]);
        // A character split across chunks survives.
        assert_eq!(split(&[b"\xc3", b"\xa9\n"]).0, ["é"]);
    }

    #[test]
    fn long_lines_are_cut_at_a_character_boundary() {
        let mut long = "é".repeat(MAX_LINE_BYTES / 2 + 10).into_bytes();
        long.push(b'\n');
        let (lines, rest) = split(&[&long[..1000], &long[1000..]]);
        assert_eq!(rest, None);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].len() <= MAX_LINE_BYTES);
        assert_eq!(lines.concat(), "é".repeat(MAX_LINE_BYTES / 2 + 10));
    }
}
