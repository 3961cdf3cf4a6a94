//! Reading one media object by URL without downloading it whole: ffprobe's
//! facts (container, first video stream, duration, bit rate, size), an
//! ffmpeg decode of a span (the first seconds, the last second, or all of
//! it), and a 16-byte Range read that tells a cut-short container from a
//! file that is no media at all. ffmpeg's HTTP reader seeks with Range
//! requests, so only the parts these steps need cross the network.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ffmpeg::{MediaError, Output, Tools, run};

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

/// One object to read: its URL, the request headers it needs (credentials
/// included, so never shown) and how to name it in messages.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    /// What to show instead of the URL (a path, or the redacted URL).
    pub shown: &'a str,
}

/// What ffprobe read, with units in the names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facts {
    /// Container as ffprobe names it, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format: Option<String>,
    /// Codec of the first video stream (cover pictures are not video).
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The container's duration, else the video stream's.
    pub duration_s: Option<f64>,
    /// The container's bit rate, else the video stream's.
    pub bit_rate_bps: Option<u64>,
    /// Bytes, as the server reported it.
    pub size: Option<u64>,
    /// Audio streams seen (for the message when there is no video).
    pub audio_streams: u32,
    /// Whether a cover picture was the only picture.
    pub cover_only: bool,
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

fn input_args(cmd: &mut tokio::process::Command, input: &Input<'_>) {
    // The input is the loopback relay: no proxy may stand in between (ffmpeg
    // reads `http_proxy`), and what the relay answers is final.
    for proxy in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(proxy);
    }
    cmd.arg("-rw_timeout").arg(READ_STALL.as_micros().to_string());
    if !input.headers.is_empty() {
        let headers: String = input.headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        cmd.arg("-headers").arg(headers);
    }
}

/// ffprobe's facts about `input`.
pub async fn facts(tools: &Tools, input: &Input<'_>, timeout: Duration) -> Result<Facts, Unread> {
    let mut cmd = tokio::process::Command::new(&tools.ffprobe);
    cmd.args(["-hide_banner", "-v", "error"]);
    input_args(&mut cmd, input);
    cmd.args(["-print_format", "json", "-show_format", "-show_streams"]).arg(input.url);
    let out = run(cmd, timeout).await.map_err(Unread::from_run)?;
    if !out.status.success() {
        return Err(classify_failure(&out, input));
    }
    parse_facts(&out.stdout).map_err(|e| Unread::Media(format!("ffprobe's answer is not readable: {e}")))
}

/// Decode `span` of the first video stream of `input`.
pub async fn decode(tools: &Tools, input: &Input<'_>, span: Span, timeout: Duration) -> Result<Decoded, Unread> {
    let mut cmd = tokio::process::Command::new(&tools.ffmpeg);
    // No `-xerror`: decoding on past the first error lets the demuxer say
    // "partial file" when the data ends early, which tells a cut-short file
    // from a damaged one. The span bounds the time.
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"]);
    input_args(&mut cmd, input);
    match span {
        Span::Head(seconds) => cmd.arg("-t").arg(format!("{seconds:.3}")),
        Span::From(second) => cmd.arg("-ss").arg(format!("{second:.3}")),
        Span::Whole => &mut cmd,
    };
    cmd.arg("-i").arg(input.url);
    cmd.args(["-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-nostats", "-"]);
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

/// The first bytes of an object and its total size, by one Range request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub total: Option<u64>,
    pub head: Vec<u8>,
}

/// Read the first 16 bytes of `input` (a server that ignores Range sends
/// the whole body; only 16 bytes of it are read).
pub async fn sniff(client: &reqwest::Client, input: &Input<'_>) -> Result<Sniffed, Unread> {
    let mut request = client.get(input.url).header("range", "bytes=0-15");
    for (k, v) in input.headers {
        request = request.header(k.as_str(), v.as_str());
    }
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

#[derive(Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<StreamJson>,
    format: Option<FormatJson>,
}

#[derive(Deserialize)]
struct StreamJson {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    duration: Option<String>,
    bit_rate: Option<String>,
    #[serde(default)]
    disposition: Disposition,
}

#[derive(Deserialize, Default)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct FormatJson {
    format_name: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
    size: Option<String>,
}

/// Parse `ffprobe -print_format json -show_format -show_streams`.
pub fn parse_facts(json: &[u8]) -> Result<Facts, serde_json::Error> {
    let probe: ProbeJson = serde_json::from_slice(json)?;
    let number = |v: &Option<String>| v.as_deref().and_then(|s| s.trim().parse::<f64>().ok()).filter(|n| n.is_finite());
    let whole = |v: &Option<String>| number(v).filter(|n| *n >= 0.0).map(|n| n as u64);
    let is_video = |s: &&StreamJson| s.codec_type.as_deref() == Some("video");
    let video = probe.streams.iter().filter(is_video).find(|s| s.disposition.attached_pic == 0);
    let format = probe.format.as_ref();
    Ok(Facts {
        format: format.and_then(|f| f.format_name.clone()),
        codec: video.and_then(|v| v.codec_name.clone()),
        width: video.and_then(|v| v.width),
        height: video.and_then(|v| v.height),
        duration_s: format.and_then(|f| number(&f.duration)).or_else(|| video.and_then(|v| number(&v.duration))),
        bit_rate_bps: format.and_then(|f| whole(&f.bit_rate)).or_else(|| video.and_then(|v| whole(&v.bit_rate))),
        size: format.and_then(|f| whole(&f.size)),
        audio_streams: probe.streams.iter().filter(|s| s.codec_type.as_deref() == Some("audio")).count() as u32,
        cover_only: video.is_none() && probe.streams.iter().any(|s| is_video(&s)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ffprobe_json() {
        let json = br#"{"streams":[
            {"codec_type":"video","codec_name":"mjpeg","width":300,"height":300,"disposition":{"attached_pic":1}},
            {"codec_type":"audio","codec_name":"aac"},
            {"codec_type":"video","codec_name":"h264","width":640,"height":360,"duration":"3.960000","bit_rate":"700000","disposition":{"attached_pic":0}}],
            "format":{"format_name":"mov,mp4","duration":"4.000000","bit_rate":"743914","size":"371957"}}"#;
        let f = parse_facts(json).unwrap();
        assert_eq!((f.codec.as_deref(), f.width, f.height), (Some("h264"), Some(640), Some(360)));
        assert_eq!((f.duration_s, f.bit_rate_bps, f.size), (Some(4.0), Some(743_914), Some(371_957)));
        assert_eq!((f.audio_streams, f.cover_only), (1, false));

        let audio = parse_facts(
            br#"{"streams":[{"codec_type":"audio","codec_name":"mp3"},
            {"codec_type":"video","codec_name":"png","disposition":{"attached_pic":1}}],"format":{"duration":"N/A"}}"#,
        )
        .unwrap();
        assert_eq!((audio.codec, audio.duration_s, audio.cover_only), (None, None, true));
        assert_eq!(parse_facts(b"{}").unwrap(), Facts::default());
    }

    #[test]
    fn tells_containers_from_text() {
        assert!(looks_like_container(b"\0\0\0\x20ftypisom\0\0\x02\0"));
        assert!(looks_like_container(&[0x1a, 0x45, 0xdf, 0xa3, 1, 0, 0, 0]));
        assert!(!looks_like_container(b"this is not a video\n"));
        assert!(!looks_like_container(b""));
    }

    #[test]
    fn error_lines_lose_addresses_and_names() {
        let input = Input { url: "http://h/a.mp4", headers: &[], shown: "a.mp4" };
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
