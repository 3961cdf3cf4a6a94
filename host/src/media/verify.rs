//! The checks an encoded output must pass before it is uploaded, on the
//! same [`Facts`] validate reads: a video stream, displayed exactly at the
//! size asked with square pixels and no rotation left, progressive, the
//! video as long as the source's video (within a second), what a viewer
//! gets ([`super::viewer`]: profile, colour labels, fast start, audio), and
//! its first seconds decoding without error.

use std::path::Path;
use std::time::Duration;

use super::boxes;
use super::facts::{self, Input, Unread};
use super::ffmpeg::{self, Tools};
use super::probe::Facts;

/// How long ffprobe or the decode check may take on one output.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// The decode check reads this many seconds of the output.
const DECODE_SECONDS: u32 = 5;
/// The output's video may last this much more or less than the source's.
pub const DURATION_TOLERANCE_S: f64 = 1.0;

/// Check the output at `output` against the `source` facts and the asked
/// `size`; `Err` says what is wrong.
pub async fn verify(tools: &Tools, output: &Path, source: &Facts, size: (u32, u32)) -> Result<(), String> {
    let path = output.display().to_string();
    let input = Input { url: &path, shown: "the output" };
    let facts = facts::facts(tools, &input, CHECK_TIMEOUT).await.map_err(|e| match e {
        Unread::Fetch(why) | Unread::Media(why) => format!("the output is unreadable: {why}"),
    })?;
    check(&facts, source, size, boxes::file_order(output))?;
    let mut cmd = tokio::process::Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-t", &DECODE_SECONDS.to_string(), "-i"])
        .arg(output)
        .args(["-map", "0:v:0"])
        .args(facts::NULL_OUTPUT)
        .arg("-");
    let out = ffmpeg::run(cmd, CHECK_TIMEOUT).await.map_err(|e| format!("output decode check: {e}"))?;
    if !out.status.success() || !out.stderr_tail.trim().is_empty() {
        return Err(format!("the output does not decode cleanly: {}", out.error_line().replace(&path, "the output")));
    }
    Ok(())
}

/// The checks on the facts and the box order alone.
pub fn check(output: &Facts, source: &Facts, size: (u32, u32), order: boxes::Order) -> Result<(), String> {
    let Some(video) = &output.video else { return Err("the output has no video stream".into()) };
    let shown = video.displayed_size();
    if (video.width, video.height) != size || shown != size {
        return Err(format!(
            "the output is stored {}x{} and displayed {}x{}, asked {}x{}",
            video.width, video.height, shown.0, shown.1, size.0, size.1
        ));
    }
    if video.interlaced() {
        return Err(format!(
            "the output is still interlaced (field order {})",
            video.field_order.as_deref().unwrap_or("?")
        ));
    }
    if let Some(want) = source.video_duration_s() {
        let Some(have) = output.video_duration_s() else { return Err("the output has no duration".into()) };
        if (have - want).abs() > DURATION_TOLERANCE_S {
            return Err(format!("the output's video lasts {have:.2} s, the source's {want:.2} s"));
        }
    }
    // An output not in ISO-BMFF has no box order: Unknown passes.
    if let Some(problem) = super::viewer::problems(output, order).first() {
        return Err(format!("the output fails the {} check: {}", problem.check.as_str(), problem.detail));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::probe::parse_facts;

    fn facts(video: &str, duration: f64) -> Facts {
        let json = format!(
            r#"{{"streams":[{{"codec_type":"video","codec_name":"h264","profile":"High","pix_fmt":"yuv420p",{video}}}],
               "format":{{"format_name":"mov,mp4","duration":"{duration}"}}}}"#
        );
        parse_facts(json.as_bytes()).unwrap()
    }

    #[test]
    fn checks_size_duration_and_what_viewers_get() {
        let source = facts(r#""width":1280,"height":720,"duration":"10.0""#, 12.0);
        let ok = facts(r#""width":854,"height":480,"duration":"10.4""#, 10.4);
        let fast = boxes::Order::FastStart;
        assert_eq!(check(&ok, &source, (854, 480), fast), Ok(()));
        assert!(check(&ok, &source, (640, 360), fast).unwrap_err().contains("asked 640x360"));
        assert!(check(&ok, &source, (854, 480), boxes::Order::MoovLast).unwrap_err().contains("fast_start"));
        let short = facts(r#""width":854,"height":480,"duration":"8.0""#, 8.0);
        assert!(check(&short, &source, (854, 480), fast).unwrap_err().contains("lasts 8.00 s"));
        let wide = facts(r#""width":854,"height":480,"sample_aspect_ratio":"4:3""#, 10.0);
        assert!(check(&wide, &source, (854, 480), fast).unwrap_err().contains("displayed 1139x480"));
        let combed = facts(r#""width":854,"height":480,"field_order":"tt""#, 10.0);
        assert!(check(&combed, &source, (854, 480), fast).unwrap_err().contains("interlaced"));
        assert!(check(&Facts::default(), &source, (854, 480), fast).is_err());
    }
}
