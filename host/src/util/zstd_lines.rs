//! JSON-lines files, plain or zstd-compressed (a name ending in `.zst`).
//! Compressed files are a sequence of independent zstd frames (RFC 8878
//! §3.1: concatenated frames decode as one stream), each ending on a whole
//! line: the writer ends a frame at most a second after its first line, so
//! a crash loses at most the frame in progress, and [`scan`] reads back the
//! whole frames only, telling where they end so a resumed run cuts the torn
//! one and appends new frames after it. Readers (`validate --results`)
//! take either kind through [`open_lines`].

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// zstd level: the library's default, about 10x on results lines at a
/// fraction of the recorder's time (BENCHMARKS.md).
const LEVEL: i32 = 3;

/// Longest a compressed frame stays open.
pub const FRAME_EVERY: Duration = Duration::from_secs(1);

/// Whether `path` names a zstd file.
pub fn is_zstd(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zst"))
}

/// Where lines go: a buffered file, or zstd frames into one.
pub enum LinesOut {
    Plain(BufWriter<File>),
    Zstd(Frames),
}

/// The zstd side of [`LinesOut`]: the frame in progress, if any.
pub struct Frames {
    file: Option<BufWriter<File>>,
    frame: Option<zstd::stream::write::Encoder<'static, BufWriter<File>>>,
    opened: Instant,
}

impl LinesOut {
    /// Create (truncate) or append to `path`, compressed when it ends in `.zst`.
    pub fn open(path: &Path, append: bool) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).write(true).append(append).truncate(!append).open(path)?;
        let out = BufWriter::with_capacity(64 * 1024, file);
        Ok(if is_zstd(path) {
            LinesOut::Zstd(Frames { file: Some(out), frame: None, opened: Instant::now() })
        } else {
            LinesOut::Plain(out)
        })
    }

    /// Where to write the next whole line(s).
    pub fn writer(&mut self) -> std::io::Result<&mut dyn Write> {
        Ok(match self {
            LinesOut::Plain(w) => w,
            LinesOut::Zstd(z) => {
                if z.frame.is_none() {
                    let file = z.file.take().expect("a file between frames");
                    z.frame = Some(zstd::stream::write::Encoder::new(file, LEVEL)?);
                    z.opened = Instant::now();
                }
                z.frame.as_mut().expect("frame opened above")
            }
        })
    }

    /// Push what is written toward the file: plain lines at once; a zstd
    /// frame once it has been open [`FRAME_EVERY`] (a frame per flush would
    /// compress poorly).
    pub fn flush(&mut self) -> std::io::Result<()> {
        match self {
            LinesOut::Plain(w) => w.flush(),
            LinesOut::Zstd(z) if z.opened.elapsed() >= FRAME_EVERY => self.end_frame(),
            LinesOut::Zstd(_) => Ok(()),
        }
    }

    /// Everything written so far on disk, a zstd frame ended.
    pub fn end_frame(&mut self) -> std::io::Result<()> {
        match self {
            LinesOut::Plain(w) => w.flush(),
            LinesOut::Zstd(z) => {
                if let Some(frame) = z.frame.take() {
                    z.file = Some(frame.finish()?);
                }
                z.file.as_mut().expect("a file between frames").flush()
            }
        }
    }
}

/// Read `path` line by line, decompressing a `.zst` (for `report`,
/// `validate --results`); a torn last frame reads as an I/O error.
pub fn open_lines(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    let file = File::open(path)?;
    Ok(if is_zstd(path) {
        Box::new(BufReader::new(zstd::stream::read::Decoder::new(file)?))
    } else {
        Box::new(BufReader::with_capacity(64 * 1024, file))
    })
}

/// [`open_lines`] for async code: the lines are read (and decompressed) on
/// a blocking thread and come through a bounded channel; the thread stops
/// when the receiver is dropped.
pub fn lines_in_background(path: &Path) -> std::io::Result<tokio::sync::mpsc::Receiver<std::io::Result<String>>> {
    let lines = open_lines(path)?;
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    tokio::task::spawn_blocking(move || {
        for line in lines.lines() {
            let failed = line.is_err();
            if tx.blocking_send(line).is_err() || failed {
                return;
            }
        }
    });
    Ok(rx)
}

/// What [`scan`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Whole lines handed over.
    pub lines: u64,
    /// Byte length of the file up to the end of its last whole line (plain)
    /// or frame (zstd): what a resumed run keeps.
    pub good_end: u64,
    /// A torn last line or frame was found after `good_end`.
    pub torn: bool,
}

/// Hand every whole line of `path` (newline included) to `each`; lines of
/// a zstd frame only once the whole frame has been read.
pub fn scan(path: &Path, each: impl FnMut(&[u8])) -> std::io::Result<Scan> {
    let file = File::open(path)?;
    if is_zstd(path) { scan_frames(file, each) } else { scan_plain(file, each) }
}

fn scan_plain(file: File, mut each: impl FnMut(&[u8])) -> std::io::Result<Scan> {
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let (mut scan, mut line) = (Scan::default(), Vec::new());
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(scan);
        }
        if line.last() != Some(&b'\n') {
            scan.torn = true;
            return Ok(scan);
        }
        scan.good_end += n as u64;
        scan.lines += 1;
        each(&line);
    }
}

/// Counts the bytes the decoder takes from the file.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn scan_frames(file: File, mut each: impl FnMut(&[u8])) -> std::io::Result<Scan> {
    let mut reader = BufReader::with_capacity(64 * 1024, Counted { inner: file, read: 0 });
    let (mut scan, mut frame) = (Scan::default(), Vec::new());
    loop {
        if reader.fill_buf()?.is_empty() {
            return Ok(scan);
        }
        frame.clear();
        // One frame: the decoder stops at its end and leaves the rest of
        // the buffered input unread.
        let mut decoder = zstd::stream::read::Decoder::with_buffer(reader)?.single_frame();
        let whole = decoder.read_to_end(&mut frame).is_ok();
        reader = decoder.finish();
        if !whole || frame.last().is_some_and(|b| *b != b'\n') {
            scan.torn = true;
            return Ok(scan);
        }
        scan.good_end = reader.get_ref().read - reader.buffer().len() as u64;
        for line in frame.split_inclusive(|b| *b == b'\n') {
            scan.lines += 1;
            each(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_lines(out: &mut LinesOut, from: u32, to: u32) {
        for i in from..to {
            writeln!(out.writer().unwrap(), "{{\"n\":{i}}}").unwrap();
        }
    }

    /// Frames ended on demand read back as one stream; a torn last frame is
    /// cut, and lines appended after the cut read back with the rest.
    #[test]
    fn frames_survive_a_torn_end_and_an_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl.zst");
        let mut out = LinesOut::open(&path, false).unwrap();
        write_lines(&mut out, 0, 100);
        out.end_frame().unwrap();
        write_lines(&mut out, 100, 150);
        out.end_frame().unwrap();
        drop(out);
        let whole = std::fs::metadata(&path).unwrap().len();
        assert_eq!(&std::fs::read(&path).unwrap()[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        // A crash in the middle of the third frame.
        let mut out = LinesOut::open(&path, true).unwrap();
        write_lines(&mut out, 150, 5000);
        out.end_frame().unwrap();
        drop(out);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(whole + 40).unwrap();

        let mut seen = Vec::new();
        let scan = scan(&path, |l| seen.push(String::from_utf8(l.to_vec()).unwrap())).unwrap();
        assert_eq!(scan, Scan { lines: 150, good_end: whole, torn: true });
        assert_eq!(seen[149], "{\"n\":149}\n");
        f.set_len(scan.good_end).unwrap();
        let mut out = LinesOut::open(&path, true).unwrap();
        write_lines(&mut out, 150, 160);
        out.end_frame().unwrap();
        let text: Vec<String> = open_lines(&path).unwrap().lines().map(Result::unwrap).collect();
        assert_eq!(text.len(), 160);
        assert_eq!(text[159], "{\"n\":159}");
    }

    #[test]
    fn plain_lines_stop_at_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, "a\nb\nc").unwrap();
        let mut n = 0;
        assert_eq!(scan(&path, |_| n += 1).unwrap(), Scan { lines: 2, good_end: 4, torn: true });
        assert_eq!(n, 2);
    }
}
