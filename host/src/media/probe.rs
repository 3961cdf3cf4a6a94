//! The one reading of ffprobe's answer (`-print_format json -show_format
//! -show_streams`) that optimize, its output check and validate share: the
//! container, the first video stream as a viewer gets it (displayed size
//! with rotation and pixel aspect applied, field order, bit depth, colour
//! labels, profile, its own duration) and the first audio stream.

use serde::{Deserialize, Serialize};

/// What ffprobe says about one media file, units in the names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facts {
    /// Container as ffprobe names it, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format: Option<String>,
    /// The container's duration.
    pub duration_s: Option<f64>,
    /// The container's bit rate, else the video stream's.
    pub bit_rate_bps: Option<u64>,
    /// Bytes, as ffprobe read them (the server's length for a URL).
    pub size: Option<u64>,
    /// The first video stream (cover pictures are not video).
    pub video: Option<Video>,
    /// The first audio stream.
    pub audio: Option<Audio>,
    /// Audio streams seen.
    pub audio_streams: u32,
    /// Whether a cover picture was the only picture.
    pub cover_only: bool,
}

/// The first video stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Video {
    /// ffmpeg's codec name: `h264`, `hevc`, `vp9`, `av1`...
    pub codec: String,
    /// ffprobe's profile name: `High`, `High 10`, `Main 10`, `Profile 0`...
    pub profile: Option<String>,
    /// Stored frame size, pixels.
    pub width: u32,
    pub height: u32,
    /// Pixel (sample) aspect ratio, `(1, 1)` for square pixels.
    pub pixel_aspect: (u32, u32),
    /// Clockwise degrees a player turns the picture: 0, 90, 180 or 270.
    pub rotation: u32,
    /// ffmpeg's pixel format, e.g. `yuv420p`, `yuv420p10le`.
    pub pix_fmt: Option<String>,
    /// `progressive`, `tt`, `bb`, `tb`, `bt` (ffprobe's words), when known.
    pub field_order: Option<String>,
    /// `smpte2084` (PQ), `arib-std-b67` (HLG), `bt709`...
    pub color_transfer: Option<String>,
    pub color_primaries: Option<String>,
    pub color_space: Option<String>,
    /// The stream's own duration, when the container says it.
    pub duration_s: Option<f64>,
    /// `r_frame_rate` and `avg_frame_rate` differ: frames are not evenly spaced.
    pub variable_frame_rate: bool,
    /// The stream's index in the file, for ffmpeg's `-map 0:N`.
    pub stream: u32,
}

/// The first audio stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Audio {
    pub codec: String,
    pub channels: Option<u32>,
    pub duration_s: Option<f64>,
}

impl Facts {
    /// The video stream's length: its own, else the container's.
    pub fn video_duration_s(&self) -> Option<f64> {
        self.video.as_ref().and_then(|v| v.duration_s).or(self.duration_s)
    }
}

impl Video {
    /// The size a viewer sees: pixel aspect applied to the width (rounded
    /// to whole pixels), then turned by the rotation.
    pub fn displayed_size(&self) -> (u32, u32) {
        let (n, d) = self.pixel_aspect;
        let width = (f64::from(self.width) * f64::from(n) / f64::from(d.max(1))).round().max(1.0) as u32;
        if self.rotation % 180 == 90 { (self.height, width) } else { (width, self.height) }
    }

    /// Bits per sample, from the pixel format (8 when it does not say).
    pub fn bit_depth(&self) -> u32 {
        let fmt = self.pix_fmt.as_deref().unwrap_or_default();
        ["16", "14", "12", "10", "9"].iter().find(|b| fmt.contains(*b)).map_or(8, |b| b.parse().unwrap_or(8))
    }

    /// Chroma subsampling from the pixel format: `420`, `422`, `444`, or
    /// `None` for formats outside the YUV family (RGB, gray).
    pub fn chroma(&self) -> Option<&'static str> {
        let fmt = self.pix_fmt.as_deref().unwrap_or_default();
        ["420", "422", "444", "440", "411", "410"].into_iter().find(|c| fmt.contains(c)).or(
            // nv12/p010 are 4:2:0 too.
            (fmt.starts_with("nv12") || fmt.starts_with("p010") || fmt.starts_with("nv21")).then_some("420"),
        )
    }

    /// Whether the stream says its frames are interlaced (`tt`, `bb`, `tb`, `bt`).
    pub fn interlaced(&self) -> bool {
        matches!(self.field_order.as_deref(), Some("tt" | "bb" | "tb" | "bt"))
    }

    /// The HDR transfer it is labelled with: `smpte2084` (PQ) or `arib-std-b67` (HLG).
    pub fn hdr_transfer(&self) -> Option<&str> {
        self.color_transfer.as_deref().filter(|t| matches!(*t, "smpte2084" | "arib-std-b67"))
    }
}

#[derive(Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<StreamJson>,
    format: Option<FormatJson>,
}

#[derive(Deserialize)]
struct StreamJson {
    #[serde(default)]
    index: u32,
    codec_type: Option<String>,
    codec_name: Option<String>,
    profile: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    sample_aspect_ratio: Option<String>,
    pix_fmt: Option<String>,
    field_order: Option<String>,
    color_transfer: Option<String>,
    color_primaries: Option<String>,
    color_space: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
    channels: Option<u32>,
    r_frame_rate: Option<String>,
    avg_frame_rate: Option<String>,
    #[serde(default)]
    disposition: Disposition,
    #[serde(default)]
    tags: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
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

fn number(v: &Option<String>) -> Option<f64> {
    v.as_deref().and_then(|s| s.trim().parse::<f64>().ok()).filter(|n| n.is_finite())
}

fn whole(v: &Option<String>) -> Option<u64> {
    number(v).filter(|n| *n >= 0.0).map(|n| n as u64)
}

/// `64:45` → `(64, 45)`; `0:1`, `N/A` and nonsense are square pixels.
fn ratio(text: Option<&str>) -> (u32, u32) {
    let parsed = text.and_then(|t| t.split_once(':')).and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)));
    match parsed {
        Some((n, d)) if n > 0 && d > 0 => (n, d),
        _ => (1, 1),
    }
}

/// Clockwise degrees: the display matrix's `rotation` (counter-clockwise,
/// ffmpeg 5+) or the `rotate` tag (clockwise, ffmpeg 4), in 0..360.
fn rotation(s: &StreamJson) -> u32 {
    let from_matrix = s.side_data_list.iter().find_map(|sd| sd.get("rotation")).and_then(|r| r.as_f64()).map(|r| -r);
    let from_tag = s.tags.get("rotate").and_then(|r| r.as_str()).and_then(|r| r.trim().parse::<f64>().ok());
    let degrees = from_matrix.or(from_tag).unwrap_or(0.0).round() as i64;
    // Only quarter turns change the displayed shape; others are taken as the nearest.
    ((((degrees + 45).div_euclid(90)) * 90).rem_euclid(360)) as u32
}

fn rate(text: &Option<String>) -> Option<f64> {
    let (n, d) = text.as_deref()?.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d > 0.0 && n > 0.0).then(|| n / d)
}

fn video(s: &StreamJson) -> Option<Video> {
    let label = |v: &Option<String>| v.clone().filter(|t| !t.is_empty() && t != "unknown");
    let (r, avg) = (rate(&s.r_frame_rate), rate(&s.avg_frame_rate));
    Some(Video {
        codec: s.codec_name.clone()?,
        profile: s.profile.clone(),
        width: s.width.unwrap_or(0),
        height: s.height.unwrap_or(0),
        pixel_aspect: ratio(s.sample_aspect_ratio.as_deref()),
        rotation: rotation(s),
        pix_fmt: s.pix_fmt.clone(),
        field_order: label(&s.field_order),
        color_transfer: label(&s.color_transfer),
        color_primaries: label(&s.color_primaries),
        color_space: label(&s.color_space),
        duration_s: number(&s.duration),
        variable_frame_rate: matches!((r, avg), (Some(r), Some(a)) if (r - a).abs() / r > 0.01),
        stream: s.index,
    })
}

/// Codecs of still pictures: a video stream of one of these beside a moving
/// one is cover art that a container (Matroska) could not mark
/// `attached_pic`.
const STILL_CODECS: &[&str] = &["png", "mjpeg", "bmp", "tiff", "webp", "jpegls", "jpeg2000", "qoi"];

/// The video stream a viewer sees: not an attached picture, a moving
/// stream before a still one, then the largest frame (as ffmpeg's own
/// choice), then the first.
fn main_picture(streams: &[StreamJson]) -> Option<&StreamJson> {
    let rank = |s: &StreamJson| {
        let still = s.codec_name.as_deref().is_some_and(|c| STILL_CODECS.contains(&c));
        let area = u64::from(s.width.unwrap_or(0)) * u64::from(s.height.unwrap_or(0));
        (!still, area, std::cmp::Reverse(s.index))
    };
    streams
        .iter()
        .filter(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0)
        .max_by_key(|s| rank(s))
}

/// Parse `ffprobe -print_format json -show_format -show_streams`.
pub fn parse_facts(json: &[u8]) -> Result<Facts, serde_json::Error> {
    let probe: ProbeJson = serde_json::from_slice(json)?;
    let is = |kind: &str, s: &StreamJson| s.codec_type.as_deref() == Some(kind);
    let picture = main_picture(&probe.streams);
    let sound = probe.streams.iter().find(|s| is("audio", s));
    let format = probe.format.as_ref();
    Ok(Facts {
        format: format.and_then(|f| f.format_name.clone()),
        duration_s: format.and_then(|f| number(&f.duration)).or_else(|| picture.and_then(|v| number(&v.duration))),
        bit_rate_bps: format.and_then(|f| whole(&f.bit_rate)).or_else(|| picture.and_then(|v| whole(&v.bit_rate))),
        size: format.and_then(|f| whole(&f.size)),
        video: picture.and_then(video),
        audio: sound.and_then(|a| {
            Some(Audio { codec: a.codec_name.clone()?, channels: a.channels, duration_s: number(&a.duration) })
        }),
        audio_streams: probe.streams.iter().filter(|s| is("audio", s)).count() as u32,
        cover_only: picture.is_none() && probe.streams.iter().any(|s| is("video", s)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ffprobe_json() {
        let json = br#"{"streams":[
            {"codec_type":"video","codec_name":"mjpeg","width":300,"height":300,"disposition":{"attached_pic":1}},
            {"codec_type":"audio","codec_name":"aac","channels":6,"duration":"3.6"},
            {"codec_type":"video","codec_name":"h264","profile":"High","width":640,"height":360,"duration":"2.0",
             "bit_rate":"700000","pix_fmt":"yuv420p","field_order":"tt","color_transfer":"unknown",
             "r_frame_rate":"30/1","avg_frame_rate":"1200/41","disposition":{"attached_pic":0}}],
            "format":{"format_name":"mov,mp4","duration":"3.600000","bit_rate":"743914","size":"371957"}}"#;
        let f = parse_facts(json).unwrap();
        let v = f.video.clone().unwrap();
        assert_eq!((v.codec.as_str(), v.width, v.height, v.displayed_size()), ("h264", 640, 360, (640, 360)));
        assert_eq!(
            (f.duration_s, f.video_duration_s(), f.bit_rate_bps, f.size),
            (Some(3.6), Some(2.0), Some(743_914), Some(371_957))
        );
        assert!(v.interlaced() && v.variable_frame_rate && v.color_transfer.is_none());
        assert_eq!((v.bit_depth(), v.chroma()), (8, Some("420")));
        assert_eq!(f.audio, Some(Audio { codec: "aac".into(), channels: Some(6), duration_s: Some(3.6) }));
        assert_eq!((f.audio_streams, f.cover_only), (1, false));

        let audio = parse_facts(
            br#"{"streams":[{"codec_type":"audio","codec_name":"mp3"},
            {"codec_type":"video","codec_name":"png","disposition":{"attached_pic":1}}],"format":{"duration":"N/A"}}"#,
        )
        .unwrap();
        assert_eq!((audio.video, audio.duration_s, audio.cover_only), (None, None, true));
        assert_eq!(parse_facts(b"{}").unwrap(), Facts::default());
    }

    #[test]
    fn displayed_size_applies_pixel_aspect_then_rotation() {
        let json = |extra: &str| {
            let text = format!(
                r#"{{"streams":[{{"codec_type":"video","codec_name":"h264","width":720,"height":576{extra}}}]}}"#
            );
            parse_facts(text.as_bytes()).unwrap().video.unwrap()
        };
        assert_eq!(json(r#","sample_aspect_ratio":"64:45""#).displayed_size(), (1024, 576));
        assert_eq!(json(r#","sample_aspect_ratio":"0:1""#).displayed_size(), (720, 576));
        let turned = json(r#","side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]"#);
        assert_eq!((turned.rotation, turned.displayed_size()), (90, (576, 720)));
        assert_eq!(json(r#","side_data_list":[{"rotation":90}]"#).rotation, 270);
        assert_eq!(json(r#","tags":{"rotate":"180"}"#).rotation, 180);
        let hdr = json(r#","pix_fmt":"yuv420p10le","color_transfer":"smpte2084""#);
        assert_eq!((hdr.bit_depth(), hdr.hdr_transfer()), (10, Some("smpte2084")));
        assert_eq!(json(r#","pix_fmt":"yuv444p""#).chroma(), Some("444"));
    }
}
