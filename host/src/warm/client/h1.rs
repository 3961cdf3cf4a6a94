//! The plain-HTTP/1.1 exchange, built for many idle sockets: a connection is
//! a bare `TcpStream` (no buffers of its own); reads wait for readiness and
//! then land in the thread's one scratch buffer, where the head is parsed
//! (httparse) and the body counted ([`super::body`]). Only a head split
//! across reads is copied, into a Vec that lives as long as that read.

use std::cell::RefCell;
use std::io;

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::net::TcpStream;

use super::body::{Chunked, Framing};

/// Most response header fields accepted: hyper's default, so both
/// transports refuse the same heads.
const MAX_HEADERS: usize = 100;
/// Longest response head accepted (status line and fields; hyper is given
/// the same limit).
pub const MAX_HEAD: usize = 64 * 1024;

/// A parsed response head and how its body is framed.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: HeaderMap,
    pub content_length: Option<u64>,
    pub framing: Framing,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// Why a read failed.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// The server closed the connection before sending a byte of the head:
    /// on a reused connection, a stale one.
    ClosedBeforeHead,
    /// The server closed the connection in the middle of the head.
    ClosedInHead,
    /// The read failed (a reset, say) before a byte of the head came.
    FailedBeforeHead(io::Error),
    Malformed(&'static str),
}

/// Wait until `stream` is readable, read once into `scratch` and hand the
/// bytes (empty at end of stream) to `f`. The scratch buffer is borrowed only
/// between the read and `f`'s return, never across an await.
pub async fn read_with<R>(
    stream: &TcpStream,
    scratch: &RefCell<Box<[u8]>>,
    mut f: impl FnMut(&[u8]) -> R,
) -> io::Result<R> {
    loop {
        stream.readable().await?;
        let mut buf = scratch.borrow_mut();
        match stream.try_read(&mut buf) {
            Ok(n) => return Ok(f(&buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Write `request` whole: straight from the caller's buffer when the socket
/// takes it at once (the usual case for a request head), else from a copy.
pub async fn write_request(stream: &TcpStream, request: &RefCell<Vec<u8>>) -> io::Result<()> {
    let rest = {
        let buf = request.borrow();
        let written = match stream.try_write(&buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        if written == buf.len() {
            return Ok(());
        }
        buf[written..].to_vec()
    };
    let mut rest = &rest[..];
    while !rest.is_empty() {
        stream.writable().await?;
        match stream.try_write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What parsing a buffer gave.
enum Parsed {
    /// A final head, ending at this offset.
    Head(Head, usize),
    /// An informational (1xx) head to skip, ending at this offset.
    Informational(usize),
    Partial,
}

fn parse(buf: &[u8], is_head_request: bool) -> Result<Parsed, ReadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    // A user agent replaces each obs-fold with a space and reads on
    // (RFC 9112 §5.2), as hyper does for https with the same setting.
    let mut config = httparse::ParserConfig::default();
    config.allow_obsolete_multiline_headers_in_responses(true);
    let end = match config.parse_response(&mut response, buf) {
        Ok(httparse::Status::Complete(end)) if end > MAX_HEAD => {
            return Err(ReadError::Malformed("response head too long"));
        }
        Ok(httparse::Status::Complete(end)) => end,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(ReadError::Malformed("response head too long"));
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(ReadError::Malformed("too many response headers")),
        Err(_) => return Err(ReadError::Malformed("malformed response head")),
    };
    let status = response.code.unwrap_or(0);
    if (100..200).contains(&status) && status != 101 {
        return Ok(Parsed::Informational(end));
    }
    let http10 = response.version == Some(0);
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    let (mut chunked, mut coded, mut close) = (false, false, http10);
    for field in response.headers.iter() {
        let value = if field.value.contains(&b'\n') { unfold(field.value) } else { field.value.to_vec() };
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(field.name.as_bytes()), HeaderValue::from_bytes(&value))
        else {
            return Err(ReadError::Malformed("malformed response header"));
        };
        if name == http::header::TRANSFER_ENCODING {
            coded = true;
            // Chunked must be the last coding (RFC 9112 §6.3); anything else
            // is read to the end of the connection.
            chunked = value
                .as_bytes()
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == http::header::CONNECTION {
            for token in value.as_bytes().split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    close = false;
                }
            }
        }
        headers.append(name, value);
    }
    let no_body = is_head_request || status == 204 || status == 304 || status == 101;
    // HTTP/1.0 has no transfer codings: a Transfer-Encoding there means the
    // framing is faulty (RFC 9112 §6.1); hyper refuses it the same way.
    if coded && http10 && !no_body {
        return Err(ReadError::Malformed("Transfer-Encoding in an HTTP/1.0 response"));
    }
    let content_length = match super::body::content_length(
        headers.get_all(http::header::CONTENT_LENGTH).iter().map(HeaderValue::as_bytes),
        coded,
    ) {
        Ok(n) => n,
        // A HEAD answer or one without a body is framed whatever its
        // length says; its value is then no size either.
        Err(_) if no_body => None,
        Err(_) => return Err(ReadError::Malformed("invalid Content-Length")),
    };
    let framing = if no_body {
        Framing::Empty
    } else if coded {
        if chunked { Framing::Chunked(Chunked::default()) } else { Framing::Eof }
    } else {
        match content_length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::Eof,
        }
    };
    close |= status == 101 || framing == Framing::Eof;
    Ok(Parsed::Head(Head { status, headers, content_length, framing, close }, end))
}

/// A folded field value with each obs-fold (a line break and the
/// whitespace around it) replaced by one space, as hyper does.
fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for (i, line) in value.split(|&b| b == b'\n').enumerate() {
        let line = if i == 0 { line.trim_ascii_end() } else { line.trim_ascii() };
        if i > 0 && !line.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(line);
    }
    out
}

/// Read the response head. `on_body` gets the head and the first body bytes
/// that came with it (possibly none), while the scratch buffer holds them.
pub async fn read_head<R>(
    stream: &TcpStream,
    scratch: &RefCell<Box<[u8]>>,
    is_head_request: bool,
    mut on_body: impl FnMut(&mut Head, &[u8]) -> R,
) -> Result<(Head, R), ReadError> {
    // Bytes of a head split across reads; empty (no allocation) otherwise.
    let mut partial: Vec<u8> = Vec::new();
    let mut seen_any = false;
    loop {
        let step = read_with(stream, scratch, |bytes| {
            if bytes.is_empty() {
                return Err(if seen_any { ReadError::ClosedInHead } else { ReadError::ClosedBeforeHead });
            }
            seen_any = true;
            let buf: &[u8] = if partial.is_empty() {
                bytes
            } else {
                partial.extend_from_slice(bytes);
                &partial
            };
            let mut start = 0;
            loop {
                match parse(&buf[start..], is_head_request)? {
                    Parsed::Head(mut head, end) => {
                        let r = on_body(&mut head, &buf[start + end..]);
                        return Ok(Some((head, r)));
                    }
                    Parsed::Informational(end) => start += end,
                    Parsed::Partial => {
                        let keep = buf[start..].to_vec();
                        partial = keep;
                        return Ok(None);
                    }
                }
                if start == buf.len() {
                    partial.clear();
                    return Ok(None);
                }
            }
        })
        .await
        .map_err(|e| if seen_any { ReadError::Io(e) } else { ReadError::FailedBeforeHead(e) })??;
        if let Some(done) = step {
            return Ok(done);
        }
    }
}
