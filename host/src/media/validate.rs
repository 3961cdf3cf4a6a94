//! The judgement behind `prewarm validate`: what every video must pass
//! (readable, not empty, a container that is whole, a video stream, a
//! duration, frames that decode), what a source must pass besides (not
//! above the CDN's limit), and what a derivative must pass besides (inside
//! its box, as long as its source, a codec players play, the size the warm
//! recorded) and what a viewer gets ([`super::viewer`]: displayed size
//! inside the box, profile, colour labels, fast start, audio). One
//! [`ItemResult`] per item, with a verdict and the checks that failed.

use std::time::Duration;

use serde::Serialize;

use super::boxes::Order;
use super::facts::{self, Decoded, Facts, Input, Span, Unread};
use super::ffmpeg::Tools;

/// Codecs every mainstream player decodes.
pub const PLAYABLE_CODECS: &[&str] = &["h264", "hevc", "av1", "vp9"];

/// How far a derivative's duration may be from its source's.
pub const DURATION_TOLERANCE_S: f64 = 1.0;

/// The verdict on one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check passed.
    Ok,
    /// Read, and something is wrong with it.
    Bad,
    /// Could not be read at all (HTTP error, connection, timeout).
    Unreadable,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Ok, Verdict::Bad, Verdict::Unreadable];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Bad => "bad",
            Verdict::Unreadable => "unreadable",
        }
    }
}

/// One thing that can be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The object could not be fetched.
    Fetch,
    /// Zero bytes.
    Empty,
    /// Not a media file ffmpeg can open.
    NotMedia,
    /// A container that stops short of its end (or lacks its index).
    Truncated,
    /// No video stream (audio only, or only a cover picture).
    NoVideo,
    /// No duration, or (derivatives) not the source's duration.
    Duration,
    /// No dimensions, or (derivatives) larger than the derivative's box.
    Dimensions,
    /// Frames that do not decode.
    Decode,
    /// Above the CDN's largest source.
    TooLarge,
    /// A codec players may not play.
    Codec,
    /// Not the size the warm recorded.
    Size,
    /// A profile or pixel format browsers do not decode (High 10, 4:4:4...).
    Profile,
    /// 8-bit video labelled with an HDR transfer (PQ, HLG).
    Color,
    /// An MP4/MOV with its index (`moov`) after the media.
    FastStart,
    /// An audio codec browsers do not play.
    Audio,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Fetch => "fetch",
            Check::Empty => "empty",
            Check::NotMedia => "not_media",
            Check::Truncated => "truncated",
            Check::NoVideo => "no_video",
            Check::Duration => "duration",
            Check::Dimensions => "dimensions",
            Check::Decode => "decode",
            Check::TooLarge => "too_large",
            Check::Codec => "codec",
            Check::Size => "size",
            Check::Profile => "profile",
            Check::Color => "color",
            Check::FastStart => "fast_start",
            Check::Audio => "audio",
        }
    }

    /// What it usually means and what to do, in plain words.
    pub fn hint(self) -> &'static str {
        match self {
            Check::Fetch => {
                "Could not be read: check the path, the credentials and that the server or CDN is up, then run again."
            }
            Check::Empty => "The file has no bytes: an upload that never finished. Upload it again.",
            Check::NotMedia => {
                "Not a video (often a text or HTML error page saved under a video name). Replace it or exclude it."
            }
            Check::Truncated => {
                "The file stops short of its end: an interrupted upload, copy or transform. Upload it again (for a \
                 derivative: purge it on the CDN and warm again)."
            }
            Check::NoVideo => {
                "No video stream (audio only, or a still picture): a CDN cannot make video derivatives of it."
            }
            Check::Duration => {
                "The length is missing or differs from the source's: the file is damaged, or the CDN cut it. Check the \
                 derivative's time/duration options, purge and warm again."
            }
            Check::Dimensions => {
                "The picture is larger than the derivative asks for (or has no size): the CDN did not resize it. Check \
                 the derivative's width/height options and the plugin settings."
            }
            Check::Decode => "Frames fail to decode: the file is damaged. Re-encode it from the original.",
            Check::TooLarge => {
                "Larger than the CDN transforms: re-encode it smaller (prewarm optimize) or serve it untransformed."
            }
            Check::Codec => {
                "A codec browsers may not play: make the CDN output H.264, HEVC, AV1 or VP9 (its format option)."
            }
            Check::Size => {
                "Not the size the warm recorded: the CDN now serves another object (purged, re-made or replaced). \
                 Warm again and validate the new results."
            }
            Check::Profile => {
                "A profile or pixel format browsers do not decode (H.264 High 10 or 4:4:4, HEVC Main 10, VP9 profile \
                 2): make the CDN output 8-bit 4:2:0 (H.264 High, HEVC Main, VP9 profile 0, AV1 Main)."
            }
            Check::Color => {
                "8-bit video labelled HDR (PQ or HLG): players show it washed out. Tone-map it to BT.709 SDR, or keep \
                 10 bits where the codec carries HDR."
            }
            Check::FastStart => {
                "The MP4's index (moov) is at the end: a browser must fetch the whole file before playing. Write it \
                 with -movflags +faststart (the CDN's progressive-download option)."
            }
            Check::Audio => "An audio codec browsers do not play (PCM, AC-3, DTS...): make the CDN output AAC or Opus.",
        }
    }
}

/// One failed check and what was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub check: Check,
    pub detail: String,
}

/// How much to decode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Depth {
    /// The first seconds, and the last second of a longer file.
    Seconds(f64),
    /// The whole file.
    Deep,
}

/// Reads objects and runs the checks every video must pass.
pub struct Inspector {
    pub tools: Tools,
    pub client: reqwest::Client,
    /// Limit for each ffprobe or ffmpeg run.
    pub timeout: Duration,
    pub depth: Depth,
}

/// What reading one object gave.
#[derive(Debug, Clone, Default)]
pub struct Examined {
    pub facts: Option<Facts>,
    pub problems: Vec<Problem>,
    /// ISO-BMFF box order, when it was read.
    pub order: Option<Order>,
}

impl Examined {
    fn fail(&mut self, check: Check, detail: impl Into<String>) {
        self.problems.push(Problem { check, detail: detail.into() });
    }

    fn failed(check: Check, detail: impl Into<String>) -> Self {
        let mut e = Examined::default();
        e.fail(check, detail);
        e
    }

    /// The verdict from the problems found.
    pub fn verdict(&self) -> Verdict {
        if self.problems.iter().any(|p| p.check == Check::Fetch) {
            Verdict::Unreadable
        } else if self.problems.is_empty() {
            Verdict::Ok
        } else {
            Verdict::Bad
        }
    }
}

impl Inspector {
    /// Read `input` (`listed_size` when a listing says it) and run the
    /// checks every video must pass.
    pub async fn examine(&self, input: &Input<'_>, listed_size: Option<u64>) -> Examined {
        if listed_size == Some(0) {
            return Examined::failed(Check::Empty, "0 bytes");
        }
        let facts = match facts::facts(&self.tools, input, self.timeout).await {
            Ok(f) => f,
            Err(Unread::Fetch(why)) => return Examined::failed(Check::Fetch, why),
            Err(Unread::Media(why)) => return self.unopenable(input, why).await,
        };
        let mut found = Examined { facts: Some(facts.clone()), problems: Vec::new(), order: None };
        let Some(video) = &facts.video else {
            let what = if facts.cover_only {
                "only a still picture, no video stream"
            } else if facts.audio_streams > 0 {
                "audio only, no video stream"
            } else {
                "no video stream"
            };
            found.fail(Check::NoVideo, what);
            return found;
        };
        // The video's own length: audio that runs on has no frames to decode.
        let duration = facts.video_duration_s().filter(|d| *d > 0.0);
        if duration.is_none() {
            found.fail(Check::Duration, "no duration");
        }
        if video.width == 0 || video.height == 0 {
            found.fail(Check::Dimensions, "no picture size");
        }
        for span in spans(self.depth, duration) {
            match facts::decode(&self.tools, input, video.stream, span, self.timeout).await {
                Ok(Decoded::Clean { .. }) => {}
                Ok(Decoded::Truncated(why)) => {
                    found.fail(Check::Truncated, why);
                    break;
                }
                Ok(Decoded::Broken(why)) => {
                    found.fail(Check::Decode, format!("{}: {why}", describe(span)));
                    break;
                }
                Err(Unread::Fetch(why) | Unread::Media(why)) => {
                    found.fail(Check::Fetch, why);
                    break;
                }
            }
        }
        found
    }

    /// The ISO-BMFF box order of an MP4/MOV `input` (no read for other containers).
    pub async fn box_order(&self, input: &Input<'_>, found: &Examined) -> Option<Order> {
        let format = found.facts.as_ref()?.format.as_deref()?;
        if !super::boxes::is_iso_bmff(format) {
            return None;
        }
        super::boxes::url_order(&self.client, input).await.ok()
    }

    /// ffprobe could not open it: empty, cut short, or no media at all?
    /// The first bytes tell.
    async fn unopenable(&self, input: &Input<'_>, why: String) -> Examined {
        match facts::sniff(&self.client, input).await {
            Err(Unread::Fetch(e) | Unread::Media(e)) => Examined::failed(Check::Fetch, e),
            Ok(s) if s.total == Some(0) || s.head.is_empty() => Examined::failed(Check::Empty, "0 bytes"),
            Ok(s) if facts::looks_like_container(&s.head) => {
                Examined::failed(Check::Truncated, format!("the container starts but cannot be opened: {why}"))
            }
            Ok(_) => Examined::failed(Check::NotMedia, why),
        }
    }
}

/// The spans to decode: the first seconds, then the last second when the
/// first seconds did not reach it (a cut-short file often opens and plays
/// its start).
fn spans(depth: Depth, duration: Option<f64>) -> Vec<Span> {
    match (depth, duration) {
        (Depth::Deep, _) => vec![Span::Whole],
        (Depth::Seconds(s), Some(d)) if d > s + 1.0 => vec![Span::Head(s), Span::From(d - 1.0)],
        (Depth::Seconds(s), _) => vec![Span::Head(s)],
    }
}

fn describe(span: Span) -> String {
    match span {
        Span::Head(s) => format!("the first {s}s"),
        Span::From(s) => format!("from {s:.1}s to the end"),
        Span::Whole => "the whole file".into(),
    }
}

/// A source's own check: not above the CDN's limit.
pub fn check_source_limit(found: &mut Examined, size: u64, max_source_bytes: Option<u64>) {
    if let Some(max) = max_source_bytes.filter(|m| size > *m) {
        found.fail(
            Check::TooLarge,
            format!("{} is above the CDN's limit of {}", crate::util::size::human(size), crate::util::size::human(max)),
        );
    }
}

/// What a derivative should be.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expected {
    /// The derivative's box; a side it does not set is not checked.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The size the warm recorded.
    pub size: Option<u64>,
    /// The source's duration, when the source was read.
    pub source_duration_s: Option<f64>,
}

/// A derivative's own checks, on top of [`Inspector::examine`]'s: the
/// displayed size inside the box, the video's length, the codec, the
/// recorded size, and what a viewer gets ([`super::viewer`]).
pub fn check_derivative(found: &mut Examined, expected: &Expected) {
    let Some(facts) = found.facts.clone() else { return };
    let Some(video) = &facts.video else { return };
    let (w, h) = video.displayed_size();
    let too_wide = expected.width.is_some_and(|max| w > max);
    let too_tall = expected.height.is_some_and(|max| h > max);
    if too_wide || too_tall {
        let side = |v: Option<u32>| v.map_or("any".to_string(), |v| v.to_string());
        let stored = if (w, h) == (video.width, video.height) {
            String::new()
        } else {
            format!(
                " (stored {}x{}, rotation {}, pixel aspect {}:{})",
                video.width, video.height, video.rotation, video.pixel_aspect.0, video.pixel_aspect.1
            )
        };
        found.fail(
            Check::Dimensions,
            format!(
                "displayed {w}x{h}{stored} is larger than the box {}x{}",
                side(expected.width),
                side(expected.height)
            ),
        );
    }
    if let (Some(got), Some(want)) = (facts.video_duration_s(), expected.source_duration_s)
        && (got - want).abs() > DURATION_TOLERANCE_S
        && !found.problems.iter().any(|p| p.check == Check::Duration)
    {
        found.fail(Check::Duration, format!("the video lasts {got:.2}s, the source's {want:.2}s"));
    }
    if !PLAYABLE_CODECS.contains(&video.codec.as_str()) {
        found.fail(Check::Codec, format!("{} is not one of {}", video.codec, PLAYABLE_CODECS.join(", ")));
    }
    if let (Some(got), Some(want)) = (facts.size, expected.size)
        && got != want
    {
        found.fail(Check::Size, format!("{got} bytes, the warm recorded {want}"));
    }
    let order = found.order.unwrap_or(Order::Unknown);
    found.problems.extend(super::viewer::problems(&facts, order));
}

/// One line of `--results-out`.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    /// Object path, as listed (for a derivative: its source's path).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derivative: Option<String>,
    /// The derivative URL probed, credentials redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub verdict: Verdict,
    /// The checks that failed.
    pub failed: Vec<Check>,
    /// One line per failed check, in the same order.
    pub problems: Vec<String>,
    pub codec: Option<String>,
    /// Stored frame size, pixels.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The size a viewer sees: pixel aspect and rotation applied.
    pub displayed_width: Option<u32>,
    pub displayed_height: Option<u32>,
    /// Clockwise degrees a player turns the picture.
    pub rotation: Option<u32>,
    /// ffprobe's profile name and pixel format.
    pub profile: Option<String>,
    pub pix_fmt: Option<String>,
    /// `progressive`, `tt`, `bb`... as ffprobe says.
    pub field_order: Option<String>,
    /// Transfer characteristic label (`bt709`, `smpte2084`, `arib-std-b67`).
    pub color_transfer: Option<String>,
    /// ISO-BMFF only: whether `moov` comes before `mdat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast_start: Option<bool>,
    pub audio_codec: Option<String>,
    /// The container's duration, seconds.
    pub duration_s: Option<f64>,
    /// The video stream's own duration, seconds.
    pub video_duration_s: Option<f64>,
    pub bit_rate_bps: Option<u64>,
    /// Bytes, as the server reported them while probing.
    pub size: Option<u64>,
    /// Container, as ffprobe names it.
    pub format: Option<String>,
    /// Derivatives: the size the warm recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_size: Option<u64>,
    /// Derivatives: the source's duration, when the source was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_duration_s: Option<f64>,
}

impl ItemResult {
    pub fn new(path: String, derivative: Option<String>, url: Option<String>, found: Examined) -> Self {
        let facts = found.facts.clone().unwrap_or_default();
        let v = facts.video.clone();
        let displayed = v.as_ref().map(|v| v.displayed_size());
        ItemResult {
            path,
            derivative,
            url,
            verdict: found.verdict(),
            failed: found.problems.iter().map(|p| p.check).collect(),
            problems: found.problems.iter().map(|p| format!("{}: {}", p.check.as_str(), p.detail)).collect(),
            codec: v.as_ref().map(|v| v.codec.clone()),
            width: v.as_ref().map(|v| v.width),
            height: v.as_ref().map(|v| v.height),
            displayed_width: displayed.map(|d| d.0),
            displayed_height: displayed.map(|d| d.1),
            rotation: v.as_ref().map(|v| v.rotation),
            profile: v.as_ref().and_then(|v| v.profile.clone()),
            pix_fmt: v.as_ref().and_then(|v| v.pix_fmt.clone()),
            field_order: v.as_ref().and_then(|v| v.field_order.clone()),
            color_transfer: v.as_ref().and_then(|v| v.color_transfer.clone()),
            fast_start: match found.order {
                Some(Order::FastStart) => Some(true),
                Some(Order::MoovLast) => Some(false),
                _ => None,
            },
            audio_codec: facts.audio.as_ref().map(|a| a.codec.clone()),
            video_duration_s: facts.video_duration_s(),
            duration_s: facts.duration_s,
            bit_rate_bps: facts.bit_rate_bps,
            size: facts.size,
            format: facts.format,
            expected_size: None,
            source_duration_s: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(w: u32, h: u32, duration: f64, codec: &str) -> Examined {
        Examined {
            facts: Some(Facts {
                video: Some(crate::media::probe::Video {
                    codec: codec.into(),
                    width: w,
                    height: h,
                    pixel_aspect: (1, 1),
                    pix_fmt: Some("yuv420p".into()),
                    ..Default::default()
                }),
                duration_s: Some(duration),
                size: Some(1000),
                format: Some("mov,mp4,m4a,3gp,3g2,mj2".into()),
                ..Facts::default()
            }),
            problems: Vec::new(),
            order: Some(Order::FastStart),
        }
    }

    fn checks(found: &Examined) -> Vec<Check> {
        found.problems.iter().map(|p| p.check).collect()
    }

    #[test]
    fn derivative_inside_its_box_passes() {
        let want = Expected { width: Some(854), height: Some(640), size: Some(1000), source_duration_s: Some(4.0) };
        let mut ok = video(854, 480, 4.04, "h264");
        check_derivative(&mut ok, &want);
        assert_eq!(ok.verdict(), Verdict::Ok, "{:?}", ok.problems);

        let mut wrong = video(1280, 720, 2.0, "mpeg4");
        check_derivative(&mut wrong, &Expected { size: Some(999), ..want.clone() });
        assert_eq!(checks(&wrong), [Check::Dimensions, Check::Duration, Check::Codec, Check::Size]);
        assert_eq!(wrong.verdict(), Verdict::Bad);

        // Only the width asked: any height passes.
        let mut tall = video(640, 2000, 4.0, "vp9");
        check_derivative(&mut tall, &Expected { width: Some(640), ..Expected::default() });
        assert!(tall.problems.is_empty());

        // What a viewer sees counts: a quarter turn, or wide pixels.
        let box480 = Expected { width: Some(854), height: Some(480), ..Expected::default() };
        let mut turned = video(854, 480, 4.0, "h264");
        turned.facts.as_mut().unwrap().video.as_mut().unwrap().rotation = 90;
        check_derivative(&mut turned, &box480);
        assert_eq!(checks(&turned), [Check::Dimensions]);
        assert!(
            turned.problems[0].detail.starts_with("displayed 480x854 (stored 854x480, rotation 90"),
            "{:?}",
            turned.problems
        );
        let mut wide = video(854, 480, 4.0, "h264");
        wide.facts.as_mut().unwrap().video.as_mut().unwrap().pixel_aspect = (4, 3);
        check_derivative(&mut wide, &box480);
        assert_eq!(checks(&wide), [Check::Dimensions]);
        let mut moov_last = video(854, 480, 4.0, "h264");
        moov_last.order = Some(Order::MoovLast);
        check_derivative(&mut moov_last, &box480);
        assert_eq!(checks(&moov_last), [Check::FastStart]);
    }

    #[test]
    fn sources_over_the_limit_are_flagged() {
        let mut found = video(640, 360, 4.0, "h264");
        check_source_limit(&mut found, 200, Some(100));
        check_source_limit(&mut found, 100, Some(100));
        assert_eq!(checks(&found), [Check::TooLarge]);
        found.fail(Check::Fetch, "HTTP 404");
        assert_eq!(found.verdict(), Verdict::Unreadable);
    }

    #[test]
    fn decodes_the_end_of_long_files_too() {
        assert_eq!(spans(Depth::Seconds(2.0), Some(10.0)), [Span::Head(2.0), Span::From(9.0)]);
        assert_eq!(spans(Depth::Seconds(2.0), Some(2.5)), [Span::Head(2.0)]);
        assert_eq!(spans(Depth::Deep, Some(10.0)), [Span::Whole]);
    }
}
