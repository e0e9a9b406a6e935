//! RequestMirror: a copy of the request head goes to the mirror backend on its own task.
//! It never delays or fails the main request: errors are logged and dropped, and a slow
//! mirror is cut off after a few seconds.

use pingora_http::RequestHeader;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIRROR_TIMEOUT: Duration = Duration::from_secs(5);

/// The body is not mirrored: mirrors see the method, path and headers of the request.
pub fn send(target: SocketAddr, req: &RequestHeader) {
    let head = encode_head(req);
    tokio::spawn(async move {
        let outcome = tokio::time::timeout(MIRROR_TIMEOUT, async {
            let mut conn = tokio::net::TcpStream::connect(target).await?;
            conn.write_all(&head).await?;
            let mut sink = [0u8; 4096];
            while conn.read(&mut sink).await? > 0 {}
            std::io::Result::Ok(())
        })
        .await;
        if let Ok(Err(e)) | Err(e) = outcome.map_err(std::io::Error::other) {
            tracing::debug!(%target, error = %e, "request mirror failed");
        }
    });
}

fn encode_head(req: &RequestHeader) -> Vec<u8> {
    let framing = |name: &str| {
        matches!(
            name,
            "content-length" | "transfer-encoding" | "connection" | "upgrade" | "keep-alive"
        )
    };
    crate::tunnel::encode_head(req, framing, b"content-length: 0\r\nconnection: close\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_drops_framing_headers() {
        let mut req = RequestHeader::build("POST", b"/a?b=1", None).unwrap();
        req.insert_header("host", "x.example").unwrap();
        req.insert_header("content-length", "10").unwrap();
        let head = String::from_utf8(encode_head(&req)).unwrap();
        assert!(head.starts_with("POST /a?b=1 HTTP/1.1\r\n"));
        assert!(head.contains("host: x.example\r\n"));
        assert!(!head.contains("content-length: 10"));
        assert!(head.ends_with("content-length: 0\r\nconnection: close\r\n\r\n"));
    }
}
