//! HTTP/1.1 Upgrade (WebSocket) tunnels.
//!
//! Pingora 0.9.1 tears an upgraded connection down when the backend's `101` is read before
//! the upgrade request's own empty body has been forwarded (cloudflare/pingora#946, open), so
//! under load a share of WebSockets die right after the handshake. Upgrades are therefore
//! proxied here: the request head goes to the backend on a fresh connection, the backend's
//! response head comes back through the Pingora session (so the session knows it is
//! upgraded), and from then on bytes are copied both ways until either side closes.

use bytes::Bytes;
use pingora_error::{Error, ErrorType, OrErr, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 64 << 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Serialises an HTTP/1.1 request head, leaving out the headers `skip` names and ending
/// with `extra` (already formatted header lines).
pub fn encode_head(req: &RequestHeader, skip: impl Fn(&str) -> bool, extra: &[u8]) -> Vec<u8> {
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = format!("{} {target} HTTP/1.1\r\n", req.method).into_bytes();
    for (name, value) in req.headers.iter().filter(|(n, _)| !skip(n.as_str())) {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(extra);
    out.extend_from_slice(b"\r\n");
    out
}

/// The request head exactly as it goes to the backend.
pub fn encode_request(req: &RequestHeader) -> Vec<u8> {
    encode_head(req, |_| false, b"")
}

/// Parses a response head; returns it and how many bytes it took, or None if incomplete.
pub fn parse_response(buf: &[u8]) -> Result<Option<(ResponseHeader, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Error::e_explain(ErrorType::InvalidHTTPHeader, e.to_string()),
    };
    let mut header = ResponseHeader::build(resp.code.unwrap_or(502), Some(resp.headers.len()))?;
    for h in resp.headers.iter() {
        header.append_header(h.name.to_string(), h.value)?;
    }
    Ok(Some((header, len)))
}

/// Runs the whole exchange for one upgrade request. `edit_response` applies the route's
/// response filters to the backend's response head.
pub async fn run(
    session: &mut Session,
    target: SocketAddr,
    request: &RequestHeader,
    edit_response: impl FnOnce(&mut ResponseHeader),
) -> Result<()> {
    let mut upstream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target))
        .await
        .or_err(ErrorType::ConnectTimedout, "connecting for upgrade")?
        .or_err(ErrorType::ConnectError, "connecting for upgrade")?;
    let _ = upstream.set_nodelay(true);
    upstream
        .write_all(&encode_request(request))
        .await
        .or_err(ErrorType::WriteError, "sending upgrade request")?;

    let mut buf = Vec::with_capacity(4096);
    let (mut head, used) = tokio::time::timeout(HEAD_TIMEOUT, async {
        loop {
            if let Some(parsed) = parse_response(&buf)? {
                return Ok(parsed);
            }
            if buf.len() > MAX_HEAD {
                return Error::e_explain(ErrorType::InvalidHTTPHeader, "response head too large");
            }
            let mut chunk = [0u8; 4096];
            let n = upstream
                .read(&mut chunk)
                .await
                .or_err(ErrorType::ReadError, "reading upgrade response")?;
            if n == 0 {
                return Error::e_explain(
                    ErrorType::ConnectionClosed,
                    "backend closed before answering",
                );
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .or_err(ErrorType::ReadTimedout, "waiting for upgrade response")??;

    let switched = head.status.as_u16() == 101;
    edit_response(&mut head);
    if !switched {
        // The backend refused the upgrade: pass its answer on and close.
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(head), false).await?;
    let rest = Bytes::copy_from_slice(&buf[used..]);
    if !rest.is_empty() {
        session.write_response_body(Some(rest), false).await?;
    }
    copy_both_ways(session, upstream).await
}

async fn copy_both_ways(session: &mut Session, upstream: TcpStream) -> Result<()> {
    let (mut up_read, mut up_write) = upstream.into_split();
    let mut downstream_open = true;
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        tokio::select! {
            read = session.read_request_body(), if downstream_open => match read? {
                Some(data) => up_write
                    .write_all(&data)
                    .await
                    .or_err(ErrorType::WriteError, "writing to backend")?,
                None => {
                    downstream_open = false;
                    let _ = up_write.shutdown().await;
                }
            },
            n = up_read.read(&mut chunk) => {
                let n = n.or_err(ErrorType::ReadError, "reading from backend")?;
                if n == 0 {
                    session.write_response_body(None, true).await?;
                    return Ok(());
                }
                session
                    .write_response_body(Some(Bytes::copy_from_slice(&chunk[..n])), false)
                    .await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_head_parses_in_pieces() {
        let full = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nextra";
        assert!(parse_response(&full[..20]).unwrap().is_none());
        let (head, used) = parse_response(full).unwrap().unwrap();
        assert_eq!(head.status.as_u16(), 101);
        assert_eq!(head.headers.get("upgrade").unwrap(), "websocket");
        assert_eq!(&full[used..], b"extra");
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn request_head_keeps_upgrade_headers() {
        let mut req = RequestHeader::build("GET", b"/chat?x=1", None).unwrap();
        req.insert_header("host", "ws.test").unwrap();
        req.insert_header("upgrade", "websocket").unwrap();
        req.insert_header("connection", "Upgrade").unwrap();
        let head = String::from_utf8(encode_request(&req)).unwrap();
        assert!(head.starts_with("GET /chat?x=1 HTTP/1.1\r\n"));
        assert!(head.contains("upgrade: websocket\r\n"));
        assert!(head.contains("connection: Upgrade\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
    }
}
