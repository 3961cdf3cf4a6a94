//! Counting a response body as its bytes arrive, never keeping them: by
//! Content-Length, by the chunked coding (RFC 9112 §7.1: sizes and
//! extensions and trailers may be split anywhere across reads), or up to the
//! end of the connection when the response has neither (RFC 9112 §6.3).
//! Also the one reading of a Content-Length field both transports share
//! ([`content_length`]).

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
    /// After the size: only whitespace, then `;` (an extension), CR or LF.
    SizeEnd,
    /// Inside chunk extensions, up to LF.
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
                        self.state = State::SizeEnd;
                        continue;
                    }
                },
                // `3g` is no chunk size (RFC 9112 §7.1: chunk-size is
                // 1*HEXDIG, then BWS before any `;` extension).
                State::SizeEnd => match b {
                    b' ' | b'\t' | b'\r' => {}
                    b';' => self.state = State::SizeLine,
                    b'\n' => self.state = if self.size == 0 { State::TrailerStart } else { State::Data },
                    _ => return Err(Malformed),
                },
                State::SizeLine => match b {
                    b'\n' => {
                        self.state = if self.size == 0 { State::TrailerStart } else { State::Data };
                    }
                    // `;name=value` extensions, quoted strings included, are skipped.
                    b'\r' | b' ' | b'\t' | b'!'..=b'~' | 0x80..=0xff => {}
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

/// A response's Content-Length (RFC 9112 §6.3): none when Transfer-Encoding
/// frames the body (it overrides the length); the value of every
/// Content-Length line, each a comma-separated list of one repeated number
/// (`1000, 1000` is 1000). `Err` for an invalid or conflicting length
/// (`+1000`, `1 000`, two different numbers): unrecoverable framing, the
/// client must close the connection.
pub fn content_length<'a>(
    mut values: impl Iterator<Item = &'a [u8]>,
    transfer_coded: bool,
) -> Result<Option<u64>, InvalidLength> {
    if transfer_coded {
        return Ok(None);
    }
    values.try_fold(None, |found: Option<u64>, value| {
        value.split(|&b| b == b',').try_fold(found, |found, item| {
            let item = item.trim_ascii();
            let n = (!item.is_empty() && item.len() <= 19 && item.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(item).ok()?.parse::<u64>().ok())
                .flatten()
                .ok_or(InvalidLength)?;
            match found {
                Some(f) if f != n => Err(InvalidLength),
                _ => Ok(Some(n)),
            }
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid Content-Length")]
pub struct InvalidLength;

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
        for wire in [&b"zz\r\n"[..], b"\r\n", b"11111111111111111\r\n", b"2\r\nabX\r\n", b"0\r\n\rX", b"3g\r\nabc\r\n"]
        {
            assert_eq!(decode(wire, 1), Err(Malformed), "{:?}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn content_length_lists_and_junk() {
        let cl = |values: &[&str], coded| content_length(values.iter().map(|v| v.as_bytes()), coded);
        assert_eq!(cl(&["1000"], false), Ok(Some(1000)));
        assert_eq!(cl(&["1000, 1000"], false), Ok(Some(1000)));
        assert_eq!(cl(&["1000", " 1000 "], false), Ok(Some(1000)));
        assert_eq!(cl(&[], false), Ok(None));
        for bad in ["+1000", "1 000", "-1", "", "0x10", "18446744073709551616", "1000, 999"] {
            assert_eq!(cl(&[bad], false), Err(InvalidLength), "{bad:?}");
        }
        assert_eq!(cl(&["1000", "999"], false), Err(InvalidLength));
        // Transfer-Encoding overrides any Content-Length, valid or not.
        assert_eq!(cl(&["+5"], true), Ok(None));
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
