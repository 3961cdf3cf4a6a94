//! What ffprobe says about a file (duration, first video stream's size,
//! audio present), and the checks an encoded output must pass before it is
//! uploaded: a video stream, the duration within a second of the source's,
//! the asked frame size, and its first seconds decoding without error.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::ffmpeg::{self, MediaError, Tools};

/// How long ffprobe may take on one file.
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);
/// The decode check reads this many seconds of the output.
const DECODE_SECONDS: u32 = 5;
/// The output's duration may differ from the source's by this much.
pub const DURATION_TOLERANCE_S: f64 = 1.0;

/// The facts about one media file that optimize uses.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    /// Seconds; `None` when the container does not say.
    pub duration_s: Option<f64>,
    /// Width and height of the first video stream.
    pub video: Option<(u32, u32)>,
    pub has_audio: bool,
}

#[derive(Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_type: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

/// Parse ffprobe's `-of json` answer.
pub fn parse_probe(json: &[u8]) -> Result<MediaInfo, String> {
    let p: ProbeJson = serde_json::from_slice(json).map_err(|e| format!("unreadable ffprobe answer ({e})"))?;
    let video = p
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.width.is_some_and(|w| w > 0))
        .and_then(|s| Some((s.width?, s.height?)));
    Ok(MediaInfo {
        duration_s: p.format.and_then(|f| f.duration).and_then(|d| d.parse().ok()).filter(|d: &f64| d.is_finite()),
        video,
        has_audio: p.streams.iter().any(|s| s.codec_type.as_deref() == Some("audio")),
    })
}

/// Run ffprobe on `file`; a file ffprobe cannot read is an error carrying
/// its line.
pub async fn probe(tools: &Tools, file: &Path) -> Result<MediaInfo, MediaError> {
    let mut cmd = tokio::process::Command::new(&tools.ffprobe);
    cmd.args(["-v", "error", "-show_entries", "format=duration:stream=codec_type,width,height", "-of", "json"])
        .arg(file);
    let out = ffmpeg::run(cmd, PROBE_TIMEOUT).await?;
    if !out.status.success() {
        return Err(MediaError::Failed { program: "ffprobe".into(), message: out.error_line() });
    }
    parse_probe(&out.stdout).map_err(|message| MediaError::Failed { program: "ffprobe".into(), message })
}

/// Check an encoded output against its source and the asked size; `Err`
/// says what is wrong.
pub async fn verify(tools: &Tools, output: &Path, source: &MediaInfo, size: (u32, u32)) -> Result<(), String> {
    let info = probe(tools, output).await.map_err(|e| format!("output unreadable: {e}"))?;
    check(&info, source, size)?;
    let mut cmd = tokio::process::Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-t", &DECODE_SECONDS.to_string(), "-i"])
        .arg(output)
        .args(["-map", "0:v:0", "-f", "null", "-"]);
    let out = ffmpeg::run(cmd, PROBE_TIMEOUT).await.map_err(|e| format!("output decode check: {e}"))?;
    if !out.status.success() || !out.stderr_tail.trim().is_empty() {
        return Err(format!("output does not decode cleanly: {}", out.error_line()));
    }
    Ok(())
}

/// The checks on ffprobe's facts alone.
pub fn check(output: &MediaInfo, source: &MediaInfo, size: (u32, u32)) -> Result<(), String> {
    let Some(got) = output.video else { return Err("output has no video stream".into()) };
    if got != size {
        return Err(format!("output is {}x{}, asked {}x{}", got.0, got.1, size.0, size.1));
    }
    if let Some(want) = source.duration_s {
        let Some(have) = output.duration_s else { return Err("output has no duration".into()) };
        if (have - want).abs() > DURATION_TOLERANCE_S {
            return Err(format!("output lasts {have:.2} s, the source {want:.2} s"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ffprobe_json() {
        let json = br#"{"programs":[],"streams":[{"codec_type":"video","width":1280,"height":720},
            {"codec_type":"audio"}],"format":{"duration":"3.000000"}}"#;
        let info = parse_probe(json).unwrap();
        assert_eq!(info, MediaInfo { duration_s: Some(3.0), video: Some((1280, 720)), has_audio: true });
        assert!(parse_probe(b"{}").unwrap().video.is_none());
        assert!(parse_probe(b"nope").is_err());
    }

    #[test]
    fn checks_size_and_duration() {
        let source = MediaInfo { duration_s: Some(10.0), video: Some((1280, 720)), has_audio: false };
        let ok = MediaInfo { duration_s: Some(10.4), video: Some((854, 480)), has_audio: false };
        assert!(check(&ok, &source, (854, 480)).is_ok());
        assert!(check(&ok, &source, (640, 360)).unwrap_err().contains("asked 640x360"));
        let short = MediaInfo { duration_s: Some(8.0), ..ok.clone() };
        assert!(check(&short, &source, (854, 480)).unwrap_err().contains("lasts 8.00 s"));
        let audio_only = MediaInfo { video: None, ..ok };
        assert!(check(&audio_only, &source, (854, 480)).is_err());
    }
}
