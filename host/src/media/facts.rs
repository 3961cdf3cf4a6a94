//! Reading one media object by URL (or local path) without downloading it
//! whole: ffprobe's facts ([`super::probe`], the one parser), an
//! ffmpeg decode of a span (the first seconds, the last second, or all of
//! it), and a 16-byte Range read that tells a cut-short container from a
//! file that is no media at all; `idet` on the first frames. Every ffprobe
//! and ffmpeg run on an object gets its URL and headers from
//! [`input_args`] and nowhere else. ffmpeg's HTTP reader seeks with Range
//! requests, so only the parts these steps need cross the network.

use std::time::Duration;

use super::ffmpeg::{MediaError, Output, Tools, run};
pub use super::probe::{Facts, parse_facts};

/// How long ffmpeg waits on a stalled read before it gives up, so a stuck
/// server fails one probe with a clear message rather than at the timeout.
const READ_STALL: Duration = Duration::from_secs(30);

/// Words in ffmpeg's stderr that say the object could not be fetched (as
/// opposed to fetched and found broken).
const FETCH_TELLS: &[&str] = &[
    "server returned",
    "connection refused",
    "connection reset",
    "connection timed out",
    "operation timed out",
    "network is unreachable",
    "failed to resolve",
    "name or service not known",
    "end of file while reading headers",
    "http error",
];

/// Words that say the data ends before the container says it should.
const TRUNCATION_TELLS: &[&str] = &["partial file", "ended prematurely", "truncat", "unexpected end of file"];

/// One object to read: its URL and how to name it in messages. No request
/// headers: a URL that needs any is read through validate's loopback relay
/// ([`super::relay`]), so none is ever in a child's arguments.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub url: &'a str,
    /// What to show instead of the URL (a path, or the redacted URL).
    pub shown: &'a str,
}

/// Why an object could not be read as media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    /// Not fetched: an HTTP error, a connection failure or a timeout.
    Fetch(String),
    /// Fetched, and ffmpeg could not make sense of it.
    Media(String),
}

impl Unread {
    fn from_run(error: MediaError) -> Unread {
        Unread::Fetch(error.to_string())
    }
}

/// The part of a file to decode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Span {
    /// The first seconds.
    Head(f64),
    /// From this second to the end.
    From(f64),
    /// Everything.
    Whole,
}

/// What a decode found.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Frames decoded without an error.
    Clean { frames: u64 },
    /// The data stops short.
    Truncated(String),
    /// A decode error, or no frame at all.
    Broken(String),
}

/// What every ffprobe/ffmpeg read of an input is run with.
fn input_args(cmd: &mut tokio::process::Command) {
    // The input is the loopback relay: no proxy may stand in between (ffmpeg
    // reads `http_proxy`), and what the relay answers is final.
    for proxy in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(proxy);
    }
    cmd.arg("-rw_timeout").arg(READ_STALL.as_micros().to_string());
}

/// ffprobe's facts about `input`.
pub async fn facts(tools: &Tools, input: &Input<'_>, timeout: Duration) -> Result<Facts, Unread> {
    let mut cmd = tokio::process::Command::new(&tools.ffprobe);
    cmd.args(["-hide_banner", "-v", "error"]);
    input_args(&mut cmd);
    cmd.args(["-print_format", "json", "-show_format", "-show_streams"]).arg(input.url);
    let out = run(cmd, timeout).await.map_err(Unread::from_run)?;
    if !out.status.success() {
        return Err(classify_failure(&out, input));
    }
    parse_facts(&out.stdout).map_err(|e| Unread::Media(format!("ffprobe's answer is not readable: {e}")))
}

/// Decode `span` of `input`'s video stream number `stream`.
pub async fn decode(
    tools: &Tools,
    input: &Input<'_>,
    stream: u32,
    span: Span,
    timeout: Duration,
) -> Result<Decoded, Unread> {
    let mut cmd = tokio::process::Command::new(&tools.ffmpeg);
    // No `-xerror`: decoding on past the first error lets the demuxer say
    // "partial file" when the data ends early, which tells a cut-short file
    // from a damaged one. The span bounds the time.
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"]);
    input_args(&mut cmd);
    match span {
        Span::Head(seconds) => cmd.arg("-t").arg(format!("{seconds:.3}")),
        Span::From(second) => cmd.arg("-ss").arg(format!("{second:.3}")),
        Span::Whole => &mut cmd,
    };
    cmd.arg("-i").arg(input.url);
    cmd.arg("-map").arg(format!("0:{stream}")).args(NULL_OUTPUT).args(["-progress", "pipe:1", "-nostats", "-"]);
    let out = run(cmd, timeout).await.map_err(Unread::from_run)?;
    let stderr = shown_stderr(&out.stderr_tail, input);
    let frames = last_frame_count(&String::from_utf8_lossy(&out.stdout));
    if has_tell(&stderr, FETCH_TELLS) {
        return Err(Unread::Fetch(error_line(&stderr, input)));
    }
    if has_tell(&stderr, TRUNCATION_TELLS) {
        let told = stderr.lines().rev().find(|l| has_tell(l, TRUNCATION_TELLS)).unwrap_or_default();
        return Ok(Decoded::Truncated(error_line(told, input)));
    }
    if !out.status.success() || !stderr.trim().is_empty() {
        return Ok(Decoded::Broken(error_line(&stderr, input)));
    }
    match frames {
        Some(frames) if frames > 0 => Ok(Decoded::Clean { frames }),
        _ => Ok(Decoded::Broken("no video frame decoded".into())),
    }
}

/// ffmpeg's null output with the input's own time base: frames of a
/// variable frame rate that fall in one tick of the nominal rate would
/// otherwise be "non monotonically increasing dts" errors of the null
/// muxer, not of the file.
pub const NULL_OUTPUT: [&str; 4] = ["-enc_time_base", "-1", "-f", "null"];

/// Run `idet` over the first `frames` frames of `input`'s video stream
/// number `stream`: whether most of them look interlaced (for a stream
/// that does not say so).
pub async fn looks_interlaced(tools: &Tools, input: &Input<'_>, stream: u32, frames: u32, timeout: Duration) -> bool {
    let mut cmd = tokio::process::Command::new(&tools.ffmpeg);
    // idet reports at info level, at the end.
    cmd.args(["-hide_banner", "-nostdin", "-nostats", "-v", "info"]);
    input_args(&mut cmd);
    cmd.arg("-i").arg(input.url);
    cmd.arg("-map").arg(format!("0:{stream}"));
    cmd.args(["-frames:v", &frames.to_string(), "-vf", "idet", "-an"]).args(NULL_OUTPUT).arg("-");
    match run(cmd, timeout).await {
        Ok(out) => super::recipe::idet_says_interlaced(&out.stderr_tail),
        Err(_) => false,
    }
}

/// The first bytes of an object and its total size, by one Range request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub total: Option<u64>,
    pub head: Vec<u8>,
}

/// Read the first 16 bytes of `input` (a server that ignores Range sends
/// the whole body; only 16 bytes of it are read).
pub async fn sniff(client: &reqwest::Client, input: &Input<'_>) -> Result<Sniffed, Unread> {
    let request = client.get(input.url).header("range", "bytes=0-15");
    let fetch = |e: reqwest::Error| Unread::Fetch(format!("{}: {}", input.shown, e.without_url()));
    let mut response = request.send().await.map_err(fetch)?;
    let status = response.status();
    if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        return Ok(Sniffed { total: Some(0), head: Vec::new() });
    }
    if !status.is_success() {
        return Err(Unread::Fetch(format!("{}: HTTP {status}", input.shown)));
    }
    let total = response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit('/').next())
        .and_then(|t| t.trim().parse().ok())
        .or(if status == reqwest::StatusCode::OK { response.content_length() } else { None });
    let mut head = Vec::with_capacity(16);
    while head.len() < 16 {
        match response.chunk().await.map_err(fetch)? {
            Some(chunk) => head.extend_from_slice(&chunk[..chunk.len().min(16 - head.len())]),
            None => break,
        }
    }
    Ok(Sniffed { total, head })
}

/// Whether `head` starts like a video container ffmpeg reads: then a file
/// ffprobe cannot open is one cut short, not one that never was media.
pub fn looks_like_container(head: &[u8]) -> bool {
    let mp4_box = head.len() >= 8
        && matches!(&head[4..8], b"ftyp" | b"moov" | b"mdat" | b"free" | b"wide" | b"skip" | b"pnot" | b"styp");
    mp4_box
        || head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3])
        || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"AVI "))
        || head.starts_with(b"FLV")
        || head.starts_with(b"OggS")
        || head.starts_with(&[0, 0, 1, 0xba])
}

fn classify_failure(out: &Output, input: &Input<'_>) -> Unread {
    let stderr = shown_stderr(&out.stderr_tail, input);
    let line = error_line(&stderr, input);
    if has_tell(&stderr, FETCH_TELLS) { Unread::Fetch(line) } else { Unread::Media(line) }
}

/// ffmpeg names its input by URL in messages: show the object's name
/// instead (the URL may carry a query secret; redaction is done already).
fn shown_stderr(stderr: &str, input: &Input<'_>) -> String {
    let redacted = crate::util::redact::redact_url(input.url);
    stderr.replace(input.url, input.shown).replace(&redacted, input.shown)
}

/// ffmpeg's error line without what the item's own line already says: the
/// `[demuxer @ 0x...]` prefix and the object's name.
fn error_line(stderr: &str, input: &Input<'_>) -> String {
    let line = super::ffmpeg::error_line(stderr);
    let mut rest = line.as_str();
    // `[mov,mp4 @ 0x55...] ` or `[h264] `: the component, not the problem.
    if rest.starts_with('[')
        && let Some(end) = rest.find("] ")
    {
        rest = &rest[end + 2..];
    }
    rest.strip_prefix(input.shown).and_then(|r| r.strip_prefix(": ")).unwrap_or(rest).to_string()
}

fn has_tell(text: &str, tells: &[&str]) -> bool {
    let lower = text.to_ascii_lowercase();
    tells.iter().any(|t| lower.contains(t))
}

fn last_frame_count(progress: &str) -> Option<u64> {
    progress.lines().rev().filter_map(|l| l.strip_prefix("frame=")).find_map(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_containers_from_text() {
        assert!(looks_like_container(b"\0\0\0\x20ftypisom\0\0\x02\0"));
        assert!(looks_like_container(&[0x1a, 0x45, 0xdf, 0xa3, 1, 0, 0, 0]));
        assert!(!looks_like_container(b"this is not a video\n"));
        assert!(!looks_like_container(b""));
    }

    #[test]
    fn error_lines_lose_addresses_and_names() {
        let input = Input { url: "http://h/a.mp4", shown: "a.mp4" };
        assert_eq!(
            error_line("[NULL @ 0x55ac59a3f4c0] Invalid NAL unit size (5210 > 717).\n", &input),
            "Invalid NAL unit size (5210 > 717)."
        );
        assert_eq!(
            error_line("a.mp4: Invalid data found when processing input", &input),
            "Invalid data found when processing input"
        );
        assert_eq!(
            shown_stderr("http://h/a.mp4: Server returned 404 Not Found", &input),
            "a.mp4: Server returned 404 Not Found"
        );
    }

    #[test]
    fn reads_progress() {
        assert_eq!(last_frame_count("frame=10\nfps=0\nprogress=continue\nframe=50\nprogress=end\n"), Some(50));
        assert_eq!(last_frame_count("progress=end\n"), None);
    }
}
