//! Encoding events to the bytes of an event stream, once.
//!
//! A hub sends the same event to thousands of subscribers, so an event is encoded once into
//! [`Bytes`] and every subscriber gets a reference-counted clone (axum's `Event::finalize` is
//! the model). The output follows the standard's ABNF exactly:
//!
//! ```text
//! [": " comment LF] ["id: " id LF] ["event: " type LF] ["retry: " ms LF] 1*("data: " line LF) LF
//! ```
//!
//! `data` is split on CRLF, CR and LF, and each piece becomes one `data:` line, so a receiver
//! rebuilds it with LF line ends. An empty `data` is still written as one `data:` line: without
//! it, nothing would be dispatched (axum 0.8's `data("")` has that bug).

use bytes::Bytes;

use crate::Event;

/// The keep-alive frame: a comment line followed by a blank line. Receivers ignore it, but it
/// keeps proxies and read timeouts from closing an idle stream.
pub const KEEP_ALIVE: &[u8] = b":\n\n";

/// [`KEEP_ALIVE`] as shared [`Bytes`], free to clone.
pub const KEEP_ALIVE_BYTES: Bytes = Bytes::from_static(KEEP_ALIVE);

impl Event {
    /// Encodes the event into a new [`Bytes`], ready to be shared by every subscriber.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut out);
        Bytes::from(out)
    }

    /// Appends the encoded event to `out`; use it to write several events into one buffer.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len_hint());
        if let Some(comment) = &self.comment {
            push_line(out, b": ", comment.as_bytes());
        }
        if let Some(id) = &self.id {
            push_line(out, b"id: ", id.as_bytes());
        }
        if let Some(event) = &self.event {
            push_line(out, b"event: ", event.as_bytes());
        }
        if let Some(ms) = self.retry_ms {
            push_retry(out, ms);
        }
        push_data(out, self.data.as_bytes());
        out.push(b'\n');
    }

    /// The exact number of bytes [`encode`](Event::encode) produces. A hub checks it against
    /// its limits before accepting an event: every line break of `data` costs a `data: `
    /// prefix, so the encoding of a text of newlines is seven times its size.
    pub fn encoded_len(&self) -> usize {
        let field = |v: &Option<String>, name: usize| v.as_ref().map_or(0, |v| name + v.len() + 1);
        field(&self.comment, 2)
            + field(&self.id, 4)
            + field(&self.event, 7)
            + self.retry_ms.map_or(0, |ms| 7 + ms.to_string().len() + 1)
            + data_encoded_len(self.data.as_bytes())
            + 1
    }

    /// The exact size when `data` has no line breaks, a close lower bound otherwise.
    fn encoded_len_hint(&self) -> usize {
        let field = |v: &Option<String>, name: usize| v.as_ref().map_or(0, |v| name + v.len() + 1);
        field(&self.comment, 2)
            + field(&self.id, 4)
            + field(&self.event, 7)
            + self.retry_ms.map_or(0, |_| 7 + 20 + 1)
            + 6
            + self.data.len()
            + 2
    }
}

/// Encodes a stream-level `retry:` frame (a retry line and a blank line), which sets the
/// receiver's reconnection time without dispatching anything.
pub fn retry_frame(ms: u64) -> Bytes {
    let mut out = Vec::with_capacity(30);
    push_retry(&mut out, ms);
    out.push(b'\n');
    Bytes::from(out)
}

/// Encodes a comment frame. Line breaks in `text` start new comment lines, so no text can
/// inject a field.
pub fn comment_frame(text: &str) -> Bytes {
    let mut out = Vec::with_capacity(text.len() + 4);
    for_each_line(text.as_bytes(), |line| push_line(&mut out, b":", line));
    out.push(b'\n');
    Bytes::from(out)
}

fn push_line(out: &mut Vec<u8>, prefix: &[u8], value: &[u8]) {
    out.extend_from_slice(prefix);
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn push_retry(out: &mut Vec<u8>, ms: u64) {
    out.extend_from_slice(b"retry: ");
    out.extend_from_slice(ms.to_string().as_bytes());
    out.push(b'\n');
}

/// The bytes of the `data:` lines that encode `data`: each line of it, plus `data: ` and LF.
pub fn data_encoded_len(data: &[u8]) -> usize {
    let mut len = 0;
    for_each_line(data, |line| len += 6 + line.len() + 1);
    len
}

fn push_data(out: &mut Vec<u8>, data: &[u8]) {
    for_each_line(data, |line| push_line(out, b"data: ", line));
}

/// Calls `f` with each line of `text`, split on CRLF, CR or LF. Always at least one call: the
/// empty text is one empty line, and a trailing break leaves a final empty line.
fn for_each_line(text: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = text;
    while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
        f(&rest[..i]);
        let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        rest = &rest[i + skip..];
    }
    f(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn enc(e: &Event) -> String {
        String::from_utf8(e.encode().to_vec()).unwrap()
    }

    #[test]
    fn encoded_len_is_exact() {
        let events = [
            Event::new(""),
            Event::new("a\r\nb\rc\nd\n"),
            Event::new("\n".repeat(100)),
            Event::new("x")
                .with_id("00000001-42")
                .unwrap()
                .with_event("t")
                .unwrap()
                .with_retry(Duration::from_millis(1500))
                .with_comment("c")
                .unwrap(),
        ];
        for e in &events {
            assert_eq!(e.encoded_len(), e.encode().len(), "{e:?}");
        }
    }

    #[test]
    fn empty_data_is_one_empty_data_line() {
        assert_eq!(enc(&Event::new("")), "data: \n\n");
    }

    #[test]
    fn data_splits_on_every_line_end() {
        assert_eq!(
            enc(&Event::new("a\r\nb\rc\nd\n")),
            "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
        );
        assert_eq!(enc(&Event::new("\r\r\n")), "data: \ndata: \ndata: \n\n");
    }

    #[test]
    fn all_fields_in_order() {
        let e = Event::new("x")
            .with_comment("c")
            .unwrap()
            .with_id("7")
            .unwrap()
            .with_event("t")
            .unwrap()
            .with_retry(Duration::from_millis(1500));
        assert_eq!(enc(&e), ": c\nid: 7\nevent: t\nretry: 1500\ndata: x\n\n");
    }

    #[test]
    fn frames() {
        assert_eq!(&retry_frame(2500)[..], b"retry: 2500\n\n");
        assert_eq!(&comment_frame("a\nb")[..], b":a\n:b\n\n");
        assert_eq!(KEEP_ALIVE_BYTES, Bytes::from_static(b":\n\n"));
    }

    #[test]
    fn encode_into_appends() {
        let mut out = b"x".to_vec();
        Event::new("1").encode_into(&mut out);
        Event::new("2").encode_into(&mut out);
        assert_eq!(out, b"xdata: 1\n\ndata: 2\n\n");
    }
}
