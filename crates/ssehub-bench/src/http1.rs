//! The bench's subscriber side: one streaming HTTP/1.1 `GET` on a plain TCP socket.
//!
//! A load generator must cost less than the server it measures, and on one machine every
//! cycle it spends is taken from the hub. A general HTTP client keeps, per connection, a
//! connection task, a body channel between the two and their wakers; for 10,000 streams that
//! was most of the generator's CPU. A streaming `GET` needs far less: write the request, parse
//! the response head (`httparse`), then undo the body's framing — chunked, `content-length`
//! or until close — straight out of a read buffer that lives on the stack only during the
//! read. Plain `http://` only, like the rest of the bench.

use reqwest::header::HeaderMap;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The largest response head accepted.
const MAX_HEAD_BYTES: usize = 16 << 10;
/// How much one read takes from the socket.
const READ_BYTES: usize = 16 << 10;

thread_local! {
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_BYTES]);
}

/// Where a `GET` goes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `host:port`, to connect to.
    authority: String,
    /// The request head, ready to send.
    request: Vec<u8>,
}

impl Target {
    /// A `GET` of `url` (which must be `http://`), with `Accept: text/event-stream` and
    /// `headers`.
    pub(crate) fn new(url: &str, headers: &HeaderMap) -> Result<Target, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        if parsed.scheme() != "http" {
            return Err(format!("{url}: the bench speaks plain http:// only"));
        }
        let host = parsed.host_str().ok_or_else(|| format!("{url}: no host"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let authority = format!("{host}:{port}");
        let path = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: text/event-stream\r\n")
                .into_bytes();
        for (name, value) in headers {
            request.extend_from_slice(name.as_str().as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        Ok(Target { authority, request })
    }
}

/// An open response whose body is being read.
pub(crate) struct Response {
    stream: TcpStream,
    body: Body,
}

/// How a read ended the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    /// The body ended (its last chunk, its length, or the connection's end when it has no
    /// other framing).
    Finished,
    /// The connection broke, or the body's framing was wrong.
    Failed(String),
}

impl Response {
    /// Connects, sends the request, and reads the head; a status other than 200 is an error.
    /// Body bytes that came with the head go to `sink`.
    pub(crate) async fn get(
        target: &Target,
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<Response, String> {
        let mut stream = TcpStream::connect(&target.authority)
            .await
            .map_err(|e| format!("connect to {}: {e}", target.authority))?;
        let _ = stream.set_nodelay(true);
        stream
            .write_all(&target.request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut head = Vec::with_capacity(1024);
        loop {
            head.reserve(1024);
            if stream
                .read_buf(&mut head)
                .await
                .map_err(|e| format!("read: {e}"))?
                == 0
            {
                return Err("closed before the response head".into());
            }
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response
                .parse(&head)
                .map_err(|e| format!("bad response head: {e}"))?;
            let httparse::Status::Complete(len) = parsed else {
                if head.len() > MAX_HEAD_BYTES {
                    return Err(format!("no end of the head in {MAX_HEAD_BYTES} bytes"));
                }
                continue;
            };
            if response.code != Some(200) {
                return Err(format!("status {}", response.code.unwrap_or(0)));
            }
            let mut body = Body::from_headers(response.headers)?;
            // No other task can see this response yet: its end is for the first read to say.
            let _ = body.decode(&head[len..], sink)?;
            return Ok(Response { stream, body });
        }
    }

    /// Waits for bytes and passes the body's share of them to `sink`; `Ok(())` while the
    /// body goes on.
    pub(crate) async fn read(&mut self, sink: &mut impl FnMut(&[u8])) -> Result<(), BodyEnd> {
        loop {
            if self.body.is_done() {
                return Err(BodyEnd::Finished);
            }
            self.stream
                .readable()
                .await
                .map_err(|e| BodyEnd::Failed(format!("read: {e}")))?;
            // One buffer per thread, borrowed only during the read: nothing per connection
            // while it waits, and nothing to clear before each read.
            let read = READ_BUFFER.with_borrow_mut(|buf| match self.stream.try_read(buf) {
                Ok(0) if self.body.ends_at_close() => Some(Err(BodyEnd::Finished)),
                Ok(0) => Some(Err(BodyEnd::Failed(
                    "the connection closed mid-body".into(),
                ))),
                Ok(n) => Some(match self.body.decode(&buf[..n], sink) {
                    Ok(false) => Ok(()),
                    Ok(true) => Err(BodyEnd::Finished),
                    Err(e) => Err(BodyEnd::Failed(e)),
                }),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                Err(e) => Some(Err(BodyEnd::Failed(format!("read: {e}")))),
            });
            if let Some(read) = read {
                return read;
            }
        }
    }
}

/// The body's framing, and how far through it the reader is.
#[derive(Debug)]
enum Body {
    /// `transfer-encoding: chunked`.
    Chunked(Chunk),
    /// `content-length`: the bytes still to come.
    Length(u64),
    /// Neither: the body ends with the connection.
    Close,
}

/// Where in a chunked body the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In a chunk-size line: the size so far, and whether an extension (ignored) began.
    Size {
        size: u64,
        digits: u8,
        extension: bool,
    },
    /// In a chunk's data: the bytes still to come.
    Data(u64),
    /// After a chunk's data: its line end.
    DataEnd { cr: bool },
    /// In the trailer section, which ends with an empty line; whether the current line is
    /// empty so far.
    Trailer { empty: bool },
    /// The last chunk and the trailers are in.
    Done,
}

const SIZE_LINE: Chunk = Chunk::Size {
    size: 0,
    digits: 0,
    extension: false,
};

impl Body {
    fn from_headers(headers: &[httparse::Header<'_>]) -> Result<Body, String> {
        let mut body = Body::Close;
        for header in headers {
            if header.name.eq_ignore_ascii_case("transfer-encoding") {
                let value = String::from_utf8_lossy(header.value);
                if value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
                {
                    // Chunked wins over any content-length (RFC 9112, 6.3).
                    return Ok(Body::Chunked(SIZE_LINE));
                }
            } else if header.name.eq_ignore_ascii_case("content-length") {
                let len = std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or("a content-length that is not a number")?;
                body = Body::Length(len);
            }
        }
        Ok(body)
    }

    fn is_done(&self) -> bool {
        matches!(self, Body::Chunked(Chunk::Done) | Body::Length(0))
    }

    fn ends_at_close(&self) -> bool {
        matches!(self, Body::Close)
    }

    /// Passes the body's bytes in `input` to `sink`; returns whether the body is complete.
    fn decode(&mut self, mut input: &[u8], sink: &mut impl FnMut(&[u8])) -> Result<bool, String> {
        match self {
            Body::Close => {
                if !input.is_empty() {
                    sink(input);
                }
                Ok(false)
            }
            Body::Length(left) => {
                let take = input
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                if take > 0 {
                    sink(&input[..take]);
                }
                *left -= take as u64;
                Ok(*left == 0)
            }
            Body::Chunked(state) => {
                while !input.is_empty() && *state != Chunk::Done {
                    if let Chunk::Data(left) = state {
                        let take = input
                            .len()
                            .min(usize::try_from(*left).unwrap_or(usize::MAX));
                        sink(&input[..take]);
                        input = &input[take..];
                        *left -= take as u64;
                        if *left == 0 {
                            *state = Chunk::DataEnd { cr: false };
                        }
                        continue;
                    }
                    let byte = input[0];
                    input = &input[1..];
                    *state = next(*state, byte)?;
                }
                Ok(*state == Chunk::Done)
            }
        }
    }
}

/// One byte of chunk framing (everything but chunk data).
fn next(state: Chunk, byte: u8) -> Result<Chunk, String> {
    Ok(match state {
        Chunk::Size {
            size,
            digits,
            extension,
        } => match byte {
            b'\n' if digits == 0 => return Err("a chunk-size line without a size".into()),
            b'\n' if size == 0 => Chunk::Trailer { empty: true },
            b'\n' => Chunk::Data(size),
            b'\r' => state,
            _ if extension => state,
            b';' | b' ' | b'\t' => Chunk::Size {
                size,
                digits,
                extension: true,
            },
            _ => {
                let digit = char::from(byte)
                    .to_digit(16)
                    .ok_or_else(|| format!("a chunk size with {:?} in it", char::from(byte)))?;
                if digits == 15 {
                    return Err("a chunk size too large".into());
                }
                Chunk::Size {
                    size: size << 4 | u64::from(digit),
                    digits: digits + 1,
                    extension,
                }
            }
        },
        Chunk::DataEnd { cr } => match byte {
            b'\r' if !cr => Chunk::DataEnd { cr: true },
            b'\n' => SIZE_LINE,
            _ => return Err("a chunk longer than its size".into()),
        },
        Chunk::Trailer { empty } => match byte {
            b'\n' if empty => Chunk::Done,
            b'\n' => Chunk::Trailer { empty: true },
            b'\r' => Chunk::Trailer { empty },
            _ => Chunk::Trailer { empty: false },
        },
        Chunk::Data(_) | Chunk::Done => state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(body: &mut Body, input: &[u8], split: usize) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut done = false;
        for piece in [&input[..split], &input[split..]] {
            done = body
                .decode(piece, &mut |b: &[u8]| out.extend_from_slice(b))
                .unwrap();
        }
        (out, done)
    }

    #[test]
    fn chunked_bodies_decode_the_same_at_every_split() {
        let input =
            b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\n";
        for split in 0..=input.len() {
            let mut body = Body::Chunked(SIZE_LINE);
            let (out, done) = decode_in_pieces(&mut body, input, split);
            assert_eq!(out, b"helloabcdefghijklmnopqrstuvwxyz", "split at {split}");
            assert!(done, "split at {split}");
        }
    }

    #[test]
    fn an_open_chunked_body_is_not_done() {
        let mut body = Body::Chunked(SIZE_LINE);
        let (out, done) = decode_in_pieces(&mut body, b"3\r\nabc\r\n4\r\nde", 7);
        assert_eq!(out, b"abcde");
        assert!(!done);
    }

    #[test]
    fn bad_chunk_framing_is_an_error() {
        for input in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"3\r\nabcd",
            b"1234567890abcdef0\r\n",
        ] {
            let mut body = Body::Chunked(SIZE_LINE);
            assert!(
                body.decode(input, &mut |_: &[u8]| {}).is_err(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn length_and_close_bodies() {
        let mut body = Body::Length(4);
        let (out, done) = decode_in_pieces(&mut body, b"abcdef", 2);
        assert_eq!((out.as_slice(), done), (&b"abcd"[..], true));
        let mut body = Body::Close;
        let (out, done) = decode_in_pieces(&mut body, b"abcdef", 2);
        assert_eq!((out.as_slice(), done), (&b"abcdef"[..], false));
    }

    #[test]
    fn framing_comes_from_the_headers() {
        let h = |name, value| httparse::Header { name, value };
        let chunked = [
            h("Content-Length", &b"3"[..]),
            h("Transfer-Encoding", b"gzip, chunked"),
        ];
        assert!(matches!(Body::from_headers(&chunked), Ok(Body::Chunked(_))));
        assert!(matches!(
            Body::from_headers(&[h("content-length", b" 12 ")]),
            Ok(Body::Length(12))
        ));
        assert!(matches!(Body::from_headers(&[]), Ok(Body::Close)));
        assert!(Body::from_headers(&[h("content-length", b"x")]).is_err());
    }

    #[test]
    fn targets_carry_path_query_and_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer t".parse().unwrap());
        let t = Target::new("http://localhost:8080/topics/a?lastEventId=x", &headers).unwrap();
        assert_eq!(t.authority, "localhost:8080");
        let request = String::from_utf8(t.request).unwrap();
        assert!(
            request.starts_with("GET /topics/a?lastEventId=x HTTP/1.1\r\nHost: localhost:8080\r\n")
        );
        assert!(request.contains("\r\nauthorization: Bearer t\r\n"));
        assert!(request.ends_with("\r\n\r\n"));
        assert!(Target::new("https://example.com/", &headers).is_err());
    }
}
