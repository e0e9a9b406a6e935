//! HTTP/1.1 message framing for the fast path: which requests it may take, where a
//! response body ends. Pure functions over bytes, so every edge is unit-tested.

use bytes::BytesMut;
use smallvec::SmallVec;

/// Headers whose presence sends a request to the general (Pingora) path: hop-by-hop
/// headers the fast path would have to interpret or strip, and anything announcing a body
/// or a protocol switch.
const REQUEST_DISQUALIFIERS: &[&str] = &[
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "expect",
    "transfer-encoding",
    "http2-settings",
    "trailer",
];

/// Response headers that belong to the upstream hop and are not forwarded.
const RESPONSE_HOP_BY_HOP: &[&str] = &["connection", "keep-alive", "proxy-connection", "upgrade"];

/// A request the fast path may serve: HTTP/1.1 GET in origin form, no body, one Host.
#[derive(Debug, PartialEq, Eq)]
pub struct SimpleGet<'a> {
    pub target: &'a str,
    pub host: &'a str,
    /// Every header of the request, Host included.
    pub headers: &'a [httparse::Header<'a>],
    /// Length of the request head in the buffer, blank line included.
    pub head_len: usize,
    /// The client said `Connection: close`: the connection ends after this response.
    pub close: bool,
    /// Where the `Connection` header line sits in the head: it belongs to the client's
    /// hop and is not forwarded (the upstream connection stays reusable).
    pub connection_line: Option<std::ops::Range<usize>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RequestHead<'a> {
    /// More bytes are needed to see the whole head.
    Partial,
    Simple(SimpleGet<'a>),
    /// Anything else, including heads that do not parse: the general path decides (and
    /// answers malformed ones with its own errors).
    General,
}

pub const MAX_HEADERS: usize = 64;

/// Classifies the request at the start of `buf`.
pub fn request_head<'a>(
    buf: &'a [u8],
    headers: &'a mut [httparse::Header<'a>; MAX_HEADERS],
) -> RequestHead<'a> {
    let mut req = httparse::Request::new(headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return RequestHead::Partial,
        Err(_) => return RequestHead::General,
    };
    if req.method != Some("GET") || req.version != Some(1) {
        return RequestHead::General;
    }
    let Some(target) = req.path.filter(|p| p.starts_with('/')) else {
        return RequestHead::General;
    };
    let mut host = None;
    let mut close = false;
    let mut connection_line = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return RequestHead::General;
            }
            host = std::str::from_utf8(h.value).ok();
        } else if h.name.eq_ignore_ascii_case("content-length") {
            if h.value != b"0" {
                return RequestHead::General;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            // Browsers send `keep-alive`, clients without keep-alive `close` (the Gateway
            // API conformance suite among them); any other token (upgrade, a header to
            // strip) needs the general path.
            let value = h.value.trim_ascii();
            if value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !value.eq_ignore_ascii_case(b"keep-alive") {
                return RequestHead::General;
            }
            if connection_line.is_some() {
                return RequestHead::General;
            }
            connection_line = Some(line_of(buf, h));
        } else if REQUEST_DISQUALIFIERS
            .iter()
            .any(|d| h.name.eq_ignore_ascii_case(d))
        {
            return RequestHead::General;
        }
    }
    match host {
        Some(host) if !host.is_empty() => RequestHead::Simple(SimpleGet {
            target,
            host,
            headers: req.headers,
            head_len,
            close,
            connection_line,
        }),
        _ => RequestHead::General,
    }
}

/// The byte range of a parsed header's whole line in `buf`, line ending included.
fn line_of(buf: &[u8], h: &httparse::Header<'_>) -> std::ops::Range<usize> {
    // httparse's slices point into `buf`: their offsets are address differences.
    let start = h.name.as_ptr() as usize - buf.as_ptr() as usize;
    let value_end = h.value.as_ptr() as usize - buf.as_ptr() as usize + h.value.len();
    let end = buf[value_end..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(buf.len(), |i| value_end + i + 1);
    start..end
}

/// How the body of a response to a GET ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
    /// No length and not chunked: the body ends when the upstream closes, so the
    /// downstream connection must close after it too.
    UntilClose,
}

/// A parsed response head, and the bytes to send downstream in its place.
#[derive(Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub head_len: usize,
    pub framing: BodyFraming,
    /// The upstream connection may carry another request after this response.
    pub reusable: bool,
    /// The lines of hop-by-hop headers, in order, line endings included: removed before
    /// the head goes downstream (see [`ResponseHead::strip_hop_by_hop`]).
    pub hop_by_hop_lines: SmallVec<[std::ops::Range<usize>; 2]>,
}

impl ResponseHead {
    /// Removes the hop-by-hop lines from the head at the start of `buf`, in place (what
    /// follows the head moves up), and returns the new head length. The rest of the head
    /// goes downstream byte for byte as the upstream sent it.
    pub fn strip_hop_by_hop(&self, buf: &mut BytesMut) -> usize {
        let mut head_len = self.head_len;
        // From the last line back, so that the earlier ranges stay where they were.
        for line in self.hop_by_hop_lines.iter().rev() {
            buf.copy_within(line.end.., line.start);
            buf.truncate(buf.len() - line.len());
            head_len -= line.len();
        }
        head_len
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("malformed response head: {0}")]
    Malformed(String),
    #[error("invalid content-length")]
    ContentLength,
    #[error("unsupported transfer-encoding")]
    TransferEncoding,
    #[error("unexpected status 101")]
    Switching,
}

/// Parses the response head at the start of `buf`; `Ok(None)` when more bytes are needed.
pub fn response_head(buf: &[u8]) -> Result<Option<ResponseHead>, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ResponseError::Malformed(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    if status == 101 {
        return Err(ResponseError::Switching);
    }
    let mut reusable = resp.version == Some(1);
    let mut length = None;
    let mut chunked = false;
    let mut hop_by_hop_lines = SmallVec::new();
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(ResponseError::ContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(ResponseError::ContentLength);
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(ResponseError::TransferEncoding);
            }
            chunked = true;
        } else if RESPONSE_HOP_BY_HOP
            .iter()
            .any(|n| h.name.eq_ignore_ascii_case(n))
        {
            hop_by_hop_lines.push(line_of(buf, h));
            if h.name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        reusable = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && resp.version == Some(0) {
                        reusable = true;
                    }
                }
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyFraming::None
    } else if chunked {
        // Transfer-Encoding wins over Content-Length (RFC 9112 6.3).
        BodyFraming::Chunked
    } else if let Some(n) = length {
        BodyFraming::Length(n)
    } else {
        reusable = false;
        BodyFraming::UntilClose
    };
    Ok(Some(ResponseHead {
        status,
        head_len,
        framing,
        reusable,
        hop_by_hop_lines,
    }))
}

/// Follows a chunked body through the bytes that pass by, to find where it ends.
#[derive(Debug, Default)]
pub struct ChunkedScanner {
    state: ChunkState,
    size: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    /// Chunk extensions, up to the end of the size line.
    SizeLine,
    Data(u64),
    DataEnd,
    TrailerStart,
    TrailerLine,
    LastLf,
    Done,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct ChunkedError;

impl ChunkedScanner {
    /// Consumes `buf`; `Some(n)`: the body ended after its first `n` bytes.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ChunkedError> {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match self.state {
                ChunkState::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                        self.size = self
                            .size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(digit))
                            .ok_or(ChunkedError)?;
                    }
                    b';' | b' ' | b'\t' | b'\r' => self.state = ChunkState::SizeLine,
                    b'\n' => self.end_size_line(),
                    _ => return Err(ChunkedError),
                },
                ChunkState::SizeLine => {
                    if b == b'\n' {
                        self.end_size_line();
                    }
                }
                ChunkState::Data(left) => {
                    let take = (buf.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    i += take;
                    continue;
                }
                ChunkState::DataEnd => match b {
                    b'\r' => {}
                    b'\n' => self.state = ChunkState::Size,
                    _ => return Err(ChunkedError),
                },
                ChunkState::TrailerStart => match b {
                    b'\r' => self.state = ChunkState::LastLf,
                    b'\n' => {
                        self.state = ChunkState::Done;
                        return Ok(Some(i + 1));
                    }
                    _ => self.state = ChunkState::TrailerLine,
                },
                ChunkState::TrailerLine => {
                    if b == b'\n' {
                        self.state = ChunkState::TrailerStart;
                    }
                }
                ChunkState::LastLf => {
                    if b != b'\n' {
                        return Err(ChunkedError);
                    }
                    self.state = ChunkState::Done;
                    return Ok(Some(i + 1));
                }
                ChunkState::Done => return Ok(Some(0)),
            }
            i += 1;
        }
        Ok(None)
    }

    fn end_size_line(&mut self) {
        self.state = match std::mem::take(&mut self.size) {
            0 => ChunkState::TrailerStart,
            n => ChunkState::Data(n),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(raw: &str) -> String {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match request_head(raw.as_bytes(), &mut headers) {
            RequestHead::Partial => "partial".into(),
            RequestHead::General => "general".into(),
            RequestHead::Simple(s) => {
                let mut out = format!("{} {} {}", s.host, s.target, s.head_len);
                if s.close {
                    out.push_str(" close");
                }
                if let Some(line) = s.connection_line {
                    out.push_str(&format!(" [{}]", &raw[line].trim_end()));
                }
                out
            }
        }
    }

    #[test]
    fn only_plain_gets_with_one_host_take_the_fast_path() {
        let get = "GET /a?b=1 HTTP/1.1\r\nHost: x.test\r\nAccept: */*\r\n\r\n";
        assert_eq!(classify(get), format!("x.test /a?b=1 {}", get.len()));
        assert_eq!(classify("GET / HTTP/1.1\r\nHost: x.test\r\n"), "partial");
        for general in [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close, x-strip\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            "GARBAGE\r\n\r\n",
        ] {
            assert_eq!(classify(general), "general", "{general:?}");
        }
        let browser = "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n";
        assert_eq!(
            classify(browser),
            format!("x / {} [Connection: keep-alive]", browser.len())
        );
        let closing = "GET / HTTP/1.1\r\nconnection: close\r\nHost: x\r\n\r\n";
        assert_eq!(
            classify(closing),
            format!("x / {} close [connection: close]", closing.len())
        );
        let zero = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(classify(zero), format!("x / {}", zero.len()));
    }

    #[test]
    fn response_framing_follows_the_rfc() {
        let head = |raw: &str| response_head(raw.as_bytes()).unwrap().unwrap();
        let r = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
        assert_eq!((r.framing, r.reusable), (BodyFraming::Length(5), true));
        assert_eq!(r.head_len, 38);
        assert!(r.hop_by_hop_lines.is_empty(), "nothing to strip");
        let r = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(r.framing, BodyFraming::Chunked);
        let r = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((r.framing, r.reusable), (BodyFraming::UntilClose, false));
        let r = head("HTTP/1.1 304 Not Modified\r\ncontent-length: 7\r\n\r\n");
        assert_eq!((r.framing, r.reusable), (BodyFraming::None, true));
        let r = head("HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n");
        assert_eq!(r.framing, BodyFraming::None);
        let r = head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n");
        assert!(!r.reusable, "HTTP/1.0 closes unless it says keep-alive");
        assert!(
            response_head(b"HTTP/1.1 200 OK\r\ncontent-len")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            response_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n"),
            Err(ResponseError::ContentLength)
        );
        assert_eq!(
            response_head(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"),
            Err(ResponseError::ContentLength)
        );
        assert_eq!(
            response_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"),
            Err(ResponseError::TransferEncoding)
        );
    }

    #[test]
    fn hop_by_hop_response_headers_are_stripped_and_close_is_honoured() {
        let raw = "HTTP/1.1 200 OK\r\nConnection: close\r\nx-a: 1\r\nKeep-Alive: timeout=5\r\ncontent-length: 2\r\nupgrade: h2c\n\r\nhi";
        let r = response_head(raw.as_bytes()).unwrap().unwrap();
        assert!(!r.reusable);
        let mut buf = BytesMut::from(raw);
        let head_len = r.strip_hop_by_hop(&mut buf);
        assert_eq!(
            std::str::from_utf8(&buf).unwrap(),
            "HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 2\r\n\r\nhi",
            "the body moves up with the head"
        );
        assert_eq!(head_len, buf.len() - 2);
    }

    #[test]
    fn chunked_bodies_end_where_the_last_chunk_and_trailers_end() {
        let body = b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        // Whole, and split at every position: the scanner keeps its state across reads.
        assert_eq!(ChunkedScanner::default().scan(body), Ok(Some(end)));
        for split in 0..body.len() {
            let mut s = ChunkedScanner::default();
            let (a, b) = body.split_at(split);
            let found = match s.scan(a).unwrap() {
                Some(n) => n,
                None => split + s.scan(b).unwrap().expect("ends in the second part"),
            };
            assert_eq!(found, end, "split at {split}");
        }
        assert_eq!(ChunkedScanner::default().scan(b"0\r\n\r\n"), Ok(Some(5)));
        assert_eq!(ChunkedScanner::default().scan(b"A\r\n0123456789"), Ok(None));
        assert_eq!(ChunkedScanner::default().scan(b"zz\r\n"), Err(ChunkedError));
        assert_eq!(
            ChunkedScanner::default().scan(b"1\r\naX"),
            Err(ChunkedError),
            "chunk data must end with CRLF"
        );
        assert_eq!(
            ChunkedScanner::default().scan(b"ffffffffffffffffff\r\n"),
            Err(ChunkedError),
            "sizes that overflow are refused"
        );
    }
}
