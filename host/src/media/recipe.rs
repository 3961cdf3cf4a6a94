//! What one re-encode does to a source, decided from its [`Facts`] before
//! ffmpeg runs: upright (ffmpeg's autorotate turns the frames; the size is
//! taken as displayed), square pixels, deinterlaced when the stream says
//! interlaced (or says nothing and `idet` finds it), HDR (PQ/HLG) tone-mapped to BT.709 SDR
//! for the 8-bit output, scaled into the `--resolution` box without
//! upscaling and with even sides; and the audio browsers play from the
//! output's container. Each step taken is named for the results line.

use serde::Serialize;

use super::container::Container;
use super::encode::{self, Audio, Fit, Resolution};
use super::hw::Family;
use super::probe::{Facts, Video};

/// The choices that are the user's.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub resolution: Option<Resolution>,
    pub fit: Fit,
    pub audio: Audio,
    /// Whether this ffmpeg has `zscale` and `tonemap` (HDR is refused without).
    pub can_tonemap: bool,
}

/// How the audio is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioPlan {
    /// No audio in the output (`--audio none`, or the source has none).
    None,
    /// The source's streams as they are.
    Copy,
    /// Re-encoded with `encoder` at `bit_rate`, downmixed to stereo.
    Encode { encoder: &'static str, bit_rate: &'static str },
}

/// Everything decided for one encode.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// The source's video stream (its index in the file).
    pub stream: u32,
    /// The source's frame as a viewer sees it.
    pub displayed: (u32, u32),
    /// Output width, height and whether `cover` crops.
    pub size: (u32, u32, bool),
    pub deinterlace: bool,
    /// The HDR transfer tone-mapped away (`smpte2084`, `arib-std-b67`).
    pub tonemap_from: Option<String>,
    pub audio: AudioPlan,
    /// What was done, in words, for the results line.
    pub steps: Vec<String>,
}

/// Decide the encode of a source with `facts` into `container`.
/// `interlace_found` is `idet`'s verdict on a stream flagged progressive.
pub fn plan(facts: &Facts, container: &Container, options: Options, interlace_found: bool) -> Result<Recipe, String> {
    let video = facts.video.as_ref().ok_or("not a video: no video stream")?;
    if video.width == 0 || video.height == 0 {
        return Err("not a video: the video stream has no frame size".into());
    }
    let displayed = video.displayed_size();
    let size = encode::output_size(displayed, options.resolution, options.fit);
    let mut steps = Vec::new();
    if video.rotation != 0 {
        steps.push(format!("turned upright (rotation {})", video.rotation));
    }
    if video.pixel_aspect.0 != video.pixel_aspect.1 {
        let (n, d) = video.pixel_aspect;
        steps.push(format!("square pixels (from {n}:{d}, displayed {}x{})", displayed.0, displayed.1));
    }
    let deinterlace = video.interlaced() || interlace_found;
    if deinterlace {
        let why = if video.interlaced() { video.field_order.clone().unwrap_or_default() } else { "idet".into() };
        steps.push(format!("deinterlaced (bwdif, {why})"));
    }
    let tonemap_from = video.hdr_transfer().map(str::to_string);
    if let Some(t) = &tonemap_from {
        if !options.can_tonemap {
            return Err(format!(
                "HDR source ({t}): this ffmpeg has no zscale/tonemap filter to make the 8-bit SDR output; install an \
                 ffmpeg built with libzimg"
            ));
        }
        steps.push(format!("tone-mapped {t} to BT.709 SDR"));
    }
    if (size.0, size.1) != displayed {
        steps.push(format!("scaled {}x{} to {}x{}", displayed.0, displayed.1, size.0, size.1));
    }
    let audio = audio_plan(facts, container, options.audio);
    if let AudioPlan::Encode { encoder, bit_rate } = &audio {
        let from = facts.audio.as_ref().map_or("?", |a| a.codec.as_str());
        steps.push(format!("audio {from} to {encoder} stereo {bit_rate}b/s"));
    }
    if video.variable_frame_rate {
        steps.push("variable frame rate kept".into());
    }
    Ok(Recipe { stream: video.stream, displayed, size, deinterlace, tonemap_from, audio, steps })
}

/// Copy what the container's browsers play; otherwise (or `--audio aac`)
/// the container's web audio, stereo.
fn audio_plan(facts: &Facts, container: &Container, asked: Audio) -> AudioPlan {
    let Some(source) = &facts.audio else { return AudioPlan::None };
    let (encoder, bit_rate) = container.web_audio;
    match asked {
        Audio::None => AudioPlan::None,
        Audio::Copy if container.playable_audio.contains(&source.codec.as_str()) => AudioPlan::Copy,
        Audio::Copy | Audio::Aac => AudioPlan::Encode { encoder, bit_rate },
    }
}

/// HDR to SDR, as the FFmpeg wiki and zimg do it: to linear light, to
/// BT.709 primaries, the Hable curve, then BT.709 transfer and matrix.
const TONEMAP: &str =
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv";

/// The `-vf` chain (after ffmpeg's own autorotate): deinterlace, tone-map,
/// scale (and crop) to square pixels, then the pixel format the encoder
/// takes, uploaded to the device for VAAPI and QSV.
pub fn video_filter(recipe: &Recipe, family: Family) -> String {
    let mut chain = Vec::new();
    if recipe.deinterlace {
        chain.push("bwdif=mode=send_frame:parity=auto:deint=all".to_string());
    }
    if recipe.tonemap_from.is_some() {
        chain.push(TONEMAP.into());
    }
    let (w, h, crop) = recipe.size;
    let source = recipe.displayed;
    if crop {
        // Scale to cover, then cut the centre.
        let s = (f64::from(w) / f64::from(source.0)).max(f64::from(h) / f64::from(source.1));
        let even = |v: f64| ((v / 2.0).ceil() as u32) * 2;
        chain.push(format!("scale={}:{}", even(f64::from(source.0) * s).max(w), even(f64::from(source.1) * s).max(h)));
        chain.push(format!("crop={w}:{h}"));
    } else {
        // Always: a stored size that differs from the displayed one (pixel
        // aspect) is scaled even when the displayed size is kept.
        chain.push(format!("scale={w}:{h}"));
    }
    chain.push("setsar=1".into());
    chain.push(match family {
        Family::Vaapi => "format=nv12,hwupload".into(),
        Family::Qsv => "format=nv12,hwupload=extra_hw_frames=64,format=qsv".into(),
        _ => "format=yuv420p".into(),
    });
    chain.join(",")
}

/// Colour labels for the output: BT.709 when tone-mapped (the source's
/// PQ/HLG labels must not reach an 8-bit output), else the source's pass.
pub fn color_args(recipe: &Recipe) -> Vec<String> {
    if recipe.tonemap_from.is_none() {
        return Vec::new();
    }
    ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"].map(String::from).into()
}

/// Whether `idet`'s "Multi frame detection" line says interlaced: most
/// frames with a field order and at least a handful of them.
pub fn idet_says_interlaced(stderr: &str) -> bool {
    let Some(line) = stderr.lines().rev().find(|l| l.contains("Multi frame detection")) else { return false };
    let count = |key: &str| -> u64 {
        line.split(key).nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    let fields = count("TFF:") + count("BFF:");
    fields >= 10 && fields > 2 * count("Progressive:")
}

/// A video stream's frames are worth an `idet` look only when the stream
/// says nothing of its field order: one that says `progressive` is
/// trusted (sharp moving lines fool `idet`, and deinterlacing a
/// progressive picture softens it).
pub fn worth_detecting(video: &Video) -> bool {
    video.field_order.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::container::for_output;
    use crate::media::probe::parse_facts;

    fn facts(video: &str, audio: &str) -> Facts {
        let json = format!(
            r#"{{"streams":[{{"codec_type":"video","codec_name":"h264",{video}}}{audio}],"format":{{"duration":"2"}}}}"#
        );
        parse_facts(json.as_bytes()).unwrap()
    }

    fn options(resolution: Option<Resolution>) -> Options {
        Options { resolution, fit: Fit::Contain, audio: Audio::Copy, can_tonemap: true }
    }

    #[test]
    fn a_turned_phone_video_stays_portrait() {
        let f = facts(r#""width":1280,"height":720,"side_data_list":[{"rotation":-90}]"#, "");
        let mp4 = for_output("a.mp4", None).unwrap();
        let r = plan(&f, &mp4, options(Some(Resolution::P480)), false).unwrap();
        assert_eq!((r.displayed, r.size), ((720, 1280), (480, 854, false)));
        assert_eq!(video_filter(&r, Family::Software), "scale=480:854,setsar=1,format=yuv420p");
        assert!(r.steps[0].starts_with("turned upright"), "{:?}", r.steps);
    }

    #[test]
    fn anamorphic_pal_gets_square_pixels() {
        let f = facts(r#""width":720,"height":576,"sample_aspect_ratio":"64:45""#, "");
        let mp4 = for_output("a.mp4", None).unwrap();
        let r = plan(&f, &mp4, options(None), false).unwrap();
        assert_eq!(r.size, (1024, 576, false));
        let r = plan(&f, &mp4, options(Some(Resolution::P480)), false).unwrap();
        assert_eq!(r.size, (854, 480, false));
    }

    #[test]
    fn hdr_is_tone_mapped_and_relabelled_and_interlace_removed() {
        let f = facts(
            r#""width":640,"height":360,"pix_fmt":"yuv420p10le","color_transfer":"smpte2084","field_order":"tt""#,
            "",
        );
        let mp4 = for_output("a.mp4", None).unwrap();
        let r = plan(&f, &mp4, options(None), false).unwrap();
        let chain = video_filter(&r, Family::Software);
        assert!(
            chain.starts_with("bwdif=") && chain.contains("tonemap=tonemap=hable") && chain.ends_with("format=yuv420p")
        );
        assert_eq!(color_args(&r)[..2], ["-color_primaries", "bt709"]);
        let refused = plan(&f, &mp4, Options { can_tonemap: false, ..options(None) }, false).unwrap_err();
        assert!(refused.contains("zscale"), "{refused}");
    }

    #[test]
    fn audio_browsers_cannot_play_is_reencoded() {
        let pcm =
            facts(r#""width":64,"height":64"#, r#",{"codec_type":"audio","codec_name":"pcm_s16le","channels":2}"#);
        let mov = for_output("a.mov", None).unwrap();
        let r = plan(&pcm, &mov, options(None), false).unwrap();
        assert_eq!(r.audio, AudioPlan::Encode { encoder: "aac", bit_rate: "160k" });
        let aac = facts(r#""width":64,"height":64"#, r#",{"codec_type":"audio","codec_name":"aac","channels":6}"#);
        assert_eq!(plan(&aac, &mov, options(None), false).unwrap().audio, AudioPlan::Copy);
        let asked = Options { audio: Audio::Aac, ..options(None) };
        assert_eq!(
            plan(&aac, &mov, asked, false).unwrap().audio,
            AudioPlan::Encode { encoder: "aac", bit_rate: "160k" }
        );
        let webm = for_output("a.webm", None).unwrap();
        assert!(matches!(
            plan(&aac, &webm, options(None), false).unwrap().audio,
            AudioPlan::Encode { encoder: "libopus", .. }
        ));
    }

    #[test]
    fn reads_idet() {
        let line = "[Parsed_idet_0 @ 0x1] Multi frame detection: TFF:    47 BFF:     0 Progressive:     2 Undetermined:     1\n";
        assert!(idet_says_interlaced(line));
        assert!(!idet_says_interlaced(&line.replace("TFF:    47", "TFF:     3")));
        assert!(!idet_says_interlaced("nothing"));
    }
}
