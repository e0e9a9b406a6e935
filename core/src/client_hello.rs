//! Reads the server name (SNI) and ALPN protocols from a TLS ClientHello without
//! terminating TLS, for passthrough routing.
//!
//! Input comes straight from the network, so every length is checked against what is left,
//! nothing allocates more than the input, and a truncated hello says how it is incomplete
//! instead of guessing. The hello may span several TLS records; the caller feeds the bytes
//! read so far and reads more on `Incomplete`, up to `MAX_HELLO`.

/// A ClientHello larger than this is refused (real ones are a few hundred bytes; post-quantum
/// key shares bring them to a few KiB).
pub const MAX_HELLO: usize = 16 << 10;

const RECORD_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const NAME_TYPE_HOST: u8 = 0;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// Lowercased host name, if the client sent one.
    pub server_name: Option<String>,
    pub alpn: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("incomplete ClientHello: need more bytes")]
    Incomplete,
    #[error("not a TLS handshake record")]
    NotTls,
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
    #[error("ClientHello larger than {MAX_HELLO} bytes")]
    TooLarge,
}

/// A cursor that refuses to read past its end.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        if n > self.buf.len() {
            return Err(HelloError::Malformed(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, HelloError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, HelloError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self, what: &'static str) -> Result<usize, HelloError> {
        let b = self.take(3, what)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    /// A vector with a `len_bytes`-byte length prefix.
    fn vec(&mut self, len_bytes: usize, what: &'static str) -> Result<Reader<'a>, HelloError> {
        let len = match len_bytes {
            1 => usize::from(self.u8(what)?),
            2 => usize::from(self.u16(what)?),
            _ => self.u24(what)?,
        };
        Ok(Reader {
            buf: self.take(len, what)?,
        })
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Joins the handshake bytes of consecutive handshake records.
fn handshake_bytes(input: &[u8]) -> Result<Vec<u8>, HelloError> {
    let mut out = Vec::new();
    let mut rest = input;
    loop {
        if rest.len() < 5 {
            return Err(HelloError::Incomplete);
        }
        if rest[0] != RECORD_HANDSHAKE || rest[1] != 3 {
            return Err(HelloError::NotTls);
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len == 0 {
            return Err(HelloError::Malformed("empty handshake record"));
        }
        let Some(body) = rest.get(5..5 + len) else {
            return Err(HelloError::Incomplete);
        };
        out.extend_from_slice(body);
        rest = &rest[5 + len..];
        if out.len() >= 4 {
            let hello_len =
                usize::from(out[1]) << 16 | usize::from(out[2]) << 8 | usize::from(out[3]);
            if hello_len + 4 > MAX_HELLO {
                return Err(HelloError::TooLarge);
            }
            if out.len() >= hello_len + 4 {
                return Ok(out);
            }
        }
    }
}

/// Parses the ClientHello at the start of `input` (the first bytes of a connection).
pub fn parse(input: &[u8]) -> Result<ClientHello, HelloError> {
    let handshake = handshake_bytes(input)?;
    let mut r = Reader { buf: &handshake };
    if r.u8("handshake type")? != HANDSHAKE_CLIENT_HELLO {
        return Err(HelloError::Malformed(
            "first handshake message is not a ClientHello",
        ));
    }
    let hello_len = r.u24("hello length")?;
    let mut hello = Reader {
        buf: r.take(hello_len, "hello body")?,
    };
    hello.take(2, "legacy version")?;
    hello.take(32, "random")?;
    hello.vec(1, "session id")?;
    hello.vec(2, "cipher suites")?;
    hello.vec(1, "compression methods")?;
    let mut out = ClientHello::default();
    if hello.is_empty() {
        return Ok(out); // No extensions at all: no SNI.
    }
    let mut extensions = hello.vec(2, "extensions")?;
    while !extensions.is_empty() {
        let kind = extensions.u16("extension type")?;
        let mut body = extensions.vec(2, "extension body")?;
        match kind {
            EXT_SERVER_NAME => out.server_name = server_name(&mut body)?,
            EXT_ALPN => {
                let mut list = body.vec(2, "ALPN list")?;
                while !list.is_empty() {
                    out.alpn.push(list.vec(1, "ALPN protocol")?.buf.to_vec());
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn server_name(body: &mut Reader<'_>) -> Result<Option<String>, HelloError> {
    let mut list = body.vec(2, "server name list")?;
    while !list.is_empty() {
        let name_type = list.u8("server name type")?;
        let name = list.vec(2, "server name")?.buf;
        if name_type == NAME_TYPE_HOST {
            // Trailing dots go before the emptiness check: "." alone names no host.
            let name = std::str::from_utf8(name)
                .ok()
                .map(|n| n.trim_end_matches('.'))
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or(HelloError::Malformed(
                    "server name is not an ASCII host name",
                ))?;
            return Ok(Some(name.to_ascii_lowercase()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a ClientHello record the way a client would, from its parts.
    fn hello(sni: Option<&str>, alpn: &[&[u8]], extra_ext: &[u8]) -> Vec<u8> {
        let mut exts = Vec::new();
        if let Some(name) = sni {
            let mut entry = vec![NAME_TYPE_HOST];
            entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
            entry.extend_from_slice(name.as_bytes());
            let mut list = (entry.len() as u16).to_be_bytes().to_vec();
            list.extend_from_slice(&entry);
            exts.extend_from_slice(&EXT_SERVER_NAME.to_be_bytes());
            exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
            exts.extend_from_slice(&list);
        }
        if !alpn.is_empty() {
            let mut protos = Vec::new();
            for p in alpn {
                protos.push(p.len() as u8);
                protos.extend_from_slice(p);
            }
            let mut body = (protos.len() as u16).to_be_bytes().to_vec();
            body.extend_from_slice(&protos);
            exts.extend_from_slice(&EXT_ALPN.to_be_bytes());
            exts.extend_from_slice(&(body.len() as u16).to_be_bytes());
            exts.extend_from_slice(&body);
        }
        exts.extend_from_slice(extra_ext);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut handshake = vec![HANDSHAKE_CLIENT_HELLO];
        handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        handshake.extend_from_slice(&body);
        record(&handshake)
    }

    fn record(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![RECORD_HANDSHAKE, 3, 1];
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn reads_sni_and_alpn() {
        let got = parse(&hello(
            Some("Shop.Example.COM."),
            &[b"h2", b"http/1.1"],
            &[],
        ))
        .unwrap();
        assert_eq!(got.server_name.as_deref(), Some("shop.example.com"));
        assert_eq!(got.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_name_of_only_dots_is_refused() {
        // Found by the fuzz target: "." used to come out as an empty server name.
        for name in [".", "..", ""] {
            assert!(
                matches!(
                    parse(&hello(Some(name), &[], &[])),
                    Err(HelloError::Malformed(_))
                ),
                "{name:?}"
            );
        }
    }

    #[test]
    fn no_sni_is_not_an_error() {
        let got = parse(&hello(None, &[], &[0xff, 0x01, 0, 0])).unwrap();
        assert_eq!(got, ClientHello::default());
    }

    #[test]
    fn every_truncation_is_incomplete_never_a_panic() {
        let full = hello(Some("a.example.com"), &[b"h2"], &[]);
        for cut in 0..full.len() {
            assert_eq!(
                parse(&full[..cut]),
                Err(HelloError::Incomplete),
                "cut at {cut}"
            );
        }
        assert!(parse(&full).is_ok());
    }

    #[test]
    fn hello_split_across_records() {
        let full = hello(Some("split.example.com"), &[], &[]);
        let handshake = &full[5..];
        let (a, b) = handshake.split_at(20);
        let mut two = record(a);
        two.extend_from_slice(&record(b));
        assert_eq!(
            parse(&two).unwrap().server_name.as_deref(),
            Some("split.example.com")
        );
    }

    #[test]
    fn rejects_what_is_not_a_client_hello() {
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(HelloError::NotTls)
        );
        let mut bad_len = hello(Some("a.example.com"), &[], &[]);
        // Claim a server-name length longer than the extension.
        let pos = bad_len.len() - "a.example.com".len() - 2;
        bad_len[pos] = 0xff;
        assert!(matches!(parse(&bad_len), Err(HelloError::Malformed(_))));
        let mut huge = vec![
            RECORD_HANDSHAKE,
            3,
            1,
            0,
            4,
            HANDSHAKE_CLIENT_HELLO,
            0xff,
            0xff,
            0xff,
        ];
        huge.extend_from_slice(&[0; 16]);
        assert_eq!(parse(&huge), Err(HelloError::TooLarge));
        let not_hello = record(&[2, 0, 0, 0]);
        assert!(matches!(parse(&not_hello), Err(HelloError::Malformed(_))));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep; the fuzz target explores further.
        let seed = hello(Some("fuzz.example.com"), &[b"h2"], &[]);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut input = seed.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state as usize) % input.len();
                input[i] = (state >> 32) as u8;
            }
            let _ = parse(&input);
        }
    }
}
