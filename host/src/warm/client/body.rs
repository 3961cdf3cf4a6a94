//! Counting a response body as its bytes arrive, never keeping them: by
//! Content-Length, by the chunked coding (RFC 9112 §7.1: sizes and
//! extensions and trailers may be split anywhere across reads), or up to the
//! end of the connection when the response has neither (RFC 9112 §6.3).

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (HEAD, 1xx, 204, 304, or Content-Length 0).
    Empty,
    /// Exactly this many bytes remain.
    Length(u64),
    Chunked(Chunked),
    /// Until the server closes; the connection cannot be reused.
    Eof,
}

/// What one slice of input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Body payload bytes in it (chunk framing excluded).
    pub data: u64,
    /// Input bytes consumed; less than given only when the body ended.
    pub consumed: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct Malformed;

impl Framing {
    pub fn done(&self) -> bool {
        match self {
            Framing::Empty => true,
            Framing::Length(n) => *n == 0,
            Framing::Chunked(c) => c.state == State::Done,
            Framing::Eof => false,
        }
    }

    pub fn feed(&mut self, buf: &[u8]) -> Result<Fed, Malformed> {
        match self {
            Framing::Empty => Ok(Fed { data: 0, consumed: 0 }),
            Framing::Length(left) => {
                let take = (*left).min(buf.len() as u64);
                *left -= take;
                Ok(Fed { data: take, consumed: take as usize })
            }
            Framing::Chunked(c) => c.feed(buf),
            Framing::Eof => Ok(Fed { data: buf.len() as u64, consumed: buf.len() }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size; `digits` read so far.
    Size {
        digits: u8,
    },
    /// After the size: whitespace, extensions, up to LF.
    SizeLine,
    Data,
    /// The CRLF after a chunk's data.
    DataEnd {
        seen_cr: bool,
    },
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field line, up to LF.
    TrailerLine,
    /// Seen CR of the final empty line.
    FinalLf,
    Done,
}

/// The chunked decoder's whole state: a few bytes, whatever the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunked {
    state: State,
    /// Size being read, then data bytes left in the chunk.
    size: u64,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked { state: State::Size { digits: 0 }, size: 0 }
    }
}

impl Chunked {
    fn feed(&mut self, buf: &[u8]) -> Result<Fed, Malformed> {
        let mut data = 0u64;
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match self.state {
                State::Done => break,
                State::Data => {
                    let take = self.size.min((buf.len() - i) as u64);
                    self.size -= take;
                    data += take;
                    i += take as usize;
                    if self.size == 0 {
                        self.state = State::DataEnd { seen_cr: false };
                    }
                    continue;
                }
                State::Size { digits } => match (b as char).to_digit(16) {
                    // 16 hex digits overflow no u64; more is an attack or junk.
                    Some(d) if digits < 16 => {
                        self.size = self.size << 4 | u64::from(d);
                        self.state = State::Size { digits: digits + 1 };
                    }
                    _ if digits == 0 => return Err(Malformed),
                    Some(_) => return Err(Malformed),
                    None => {
                        self.state = State::SizeLine;
                        continue;
                    }
                },
                State::SizeLine => match b {
                    b'\n' => {
                        self.state = if self.size == 0 { State::TrailerStart } else { State::Data };
                    }
                    // Whitespace, CR, and `;name=value` extensions are skipped.
                    b'\r' | b' ' | b'\t' | b';' | b'=' | b'"' | b'!'..=b'~' => {}
                    _ => return Err(Malformed),
                },
                State::DataEnd { seen_cr } => match b {
                    b'\r' if !seen_cr => self.state = State::DataEnd { seen_cr: true },
                    b'\n' => {
                        self.state = State::Size { digits: 0 };
                        self.size = 0;
                    }
                    _ => return Err(Malformed),
                },
                State::TrailerStart => match b {
                    b'\r' => self.state = State::FinalLf,
                    b'\n' => self.state = State::Done,
                    _ => self.state = State::TrailerLine,
                },
                State::TrailerLine => {
                    if b == b'\n' {
                        self.state = State::TrailerStart;
                    }
                }
                State::FinalLf => match b {
                    b'\n' => self.state = State::Done,
                    _ => return Err(Malformed),
                },
            }
            i += 1;
        }
        Ok(Fed { data, consumed: i })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `wire` in pieces of `step` bytes; (payload bytes, done, consumed).
    fn decode(wire: &[u8], step: usize) -> Result<(u64, bool, usize), Malformed> {
        let mut f = Framing::Chunked(Chunked::default());
        let (mut data, mut consumed) = (0, 0);
        for piece in wire.chunks(step) {
            let fed = f.feed(piece)?;
            data += fed.data;
            consumed += fed.consumed;
            if f.done() {
                break;
            }
        }
        Ok((data, f.done(), consumed))
    }

    #[test]
    fn chunked_split_anywhere() {
        let wire = b"5;name=\"v\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n";
        for step in 1..=wire.len() {
            assert_eq!(decode(wire, step), Ok((31, true, wire.len())), "step {step}");
        }
        // Bare LF line ends, and bytes after the end are left unconsumed.
        let wire = b"3\nabc\n0\n\nNEXT";
        assert_eq!(decode(wire, wire.len()), Ok((3, true, wire.len() - 4)));
        // Cut short: not done.
        assert_eq!(decode(b"a\r\n12345", 3), Ok((5, false, 8)));
    }

    #[test]
    fn chunked_rejects_junk() {
        for wire in [&b"zz\r\n"[..], b"\r\n", b"11111111111111111\r\n", b"2\r\nabX\r\n", b"0\r\n\rX"] {
            assert_eq!(decode(wire, 1), Err(Malformed), "{:?}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn length_and_eof() {
        let mut f = Framing::Length(5);
        assert_eq!(f.feed(b"abc"), Ok(Fed { data: 3, consumed: 3 }));
        assert_eq!(f.feed(b"defg"), Ok(Fed { data: 2, consumed: 2 }));
        assert!(f.done());
        let mut f = Framing::Eof;
        assert_eq!(f.feed(b"abc"), Ok(Fed { data: 3, consumed: 3 }));
        assert!(!f.done());
    }
}
