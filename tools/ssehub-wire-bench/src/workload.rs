//! The streams every parser and encoder is measured on, built once and shared by the
//! benchmarks, the table generator and the tests so they cannot drift apart.

/// One event of a workload, in a form every crate's encoder can be built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// The `id` field.
    pub id: String,
    /// The `event` field.
    pub event: String,
    /// The data (may hold LF line breaks).
    pub data: String,
}

/// A named stream: its events and their bytes on the wire (as ssehub-wire encodes them).
#[derive(Debug, Clone)]
pub struct Workload {
    /// A short name used in benchmark ids (`small`, `large`, `large-multiline`).
    pub name: &'static str,
    /// What it is, for reports.
    pub description: &'static str,
    /// The events, in order.
    pub events: Vec<EventSpec>,
    /// The encoded stream.
    pub bytes: Vec<u8>,
}

impl Workload {
    /// The number of events in the stream.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// The total size of the events' data, which every correct parser must reproduce.
    pub fn data_bytes(&self) -> usize {
        self.events.iter().map(|e| e.data.len()).sum()
    }

    /// The stream cut into `size`-byte chunks, or whole when `size` is `None`.
    pub fn chunks(&self, size: Option<usize>) -> Vec<&[u8]> {
        match size {
            Some(size) => self.bytes.chunks(size).collect(),
            None => vec![&self.bytes[..]],
        }
    }
}

/// The chunk size a server's response body typically arrives in.
pub const CHUNK: usize = 16 * 1024;

/// The data size of a small event.
pub const SMALL_DATA: usize = 64;

/// The data size of a large event.
pub const LARGE_DATA: usize = 64 * 1024;

/// Printable ASCII payload of `len` bytes, different for each `seed`.
fn payload(len: usize, seed: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..len)
        .map(|i| ALPHABET[(i + seed) % ALPHABET.len()] as char)
        .collect()
}

/// Payload of `len` bytes cut into lines of `line` bytes (the last byte of each line is LF,
/// except at the very end).
fn multiline_payload(len: usize, line: usize, seed: usize) -> String {
    let mut text = payload(len, seed).into_bytes();
    for i in (line - 1..len).step_by(line) {
        text[i] = b'\n';
    }
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    String::from_utf8(text).expect("ASCII")
}

fn build(
    name: &'static str,
    description: &'static str,
    count: usize,
    data: impl Fn(usize) -> String,
) -> Workload {
    let events: Vec<EventSpec> = (0..count)
        .map(|n| EventSpec {
            id: n.to_string(),
            event: "tick".to_string(),
            data: data(n),
        })
        .collect();
    let mut bytes = Vec::new();
    for spec in &events {
        to_wire(spec).encode_into(&mut bytes);
    }
    Workload {
        name,
        description,
        events,
        bytes,
    }
}

/// The spec as an ssehub-wire event.
///
/// # Panics
///
/// Never for the workloads here, whose ids and types have no line breaks.
pub fn to_wire(spec: &EventSpec) -> ssehub_wire::Event {
    ssehub_wire::Event::new(spec.data.clone())
        .with_id(spec.id.clone())
        .expect("valid id")
        .with_event(spec.event.clone())
        .expect("valid event type")
}

/// 1,000 events `id: N\nevent: tick\ndata: <64 bytes>\n\n` (about 92 KiB).
pub fn small() -> Workload {
    build(
        "small",
        "1,000 events of 64 B data (id, event, one data line)",
        1000,
        |n| payload(SMALL_DATA, n),
    )
}

/// 16 events with 64 KiB of data on one line each (1 MiB).
pub fn large() -> Workload {
    build("large", "16 events of 64 KiB data on one line", 16, |n| {
        payload(LARGE_DATA, n)
    })
}

/// 16 events with 64 KiB of data in 64-byte lines (1,024 `data:` lines each, about 1.1 MiB).
pub fn large_multiline() -> Workload {
    build(
        "large-multiline",
        "16 events of 64 KiB data in 1,024 lines of 64 B",
        16,
        |n| multiline_payload(LARGE_DATA, 64, n),
    )
}

/// Every workload, in report order.
pub fn all() -> Vec<Workload> {
    vec![small(), large(), large_multiline()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_events_look_as_documented() {
        let w = small();
        let text = std::str::from_utf8(&w.bytes).unwrap();
        let first = text.split("\n\n").next().unwrap();
        assert_eq!(
            first,
            format!("id: 0\nevent: tick\ndata: {}", payload(SMALL_DATA, 0))
        );
        assert_eq!(w.event_count(), 1000);
        assert_eq!(w.data_bytes(), 64_000);
    }

    #[test]
    fn multiline_data_has_64_byte_lines() {
        let w = large_multiline();
        let data = &w.events[0].data;
        assert_eq!(data.len(), LARGE_DATA - 1);
        assert_eq!(data.lines().count(), 1024);
        assert!(data.lines().all(|l| l.len() == 63));
    }
}
