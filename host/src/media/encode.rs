//! How one re-encode is asked of ffmpeg: the output size (`--resolution`,
//! `--fit`, never upscaling), the quality knob of each encoder
//! (`--quality`, the table in docs/optimize.md), the device arguments of
//! the hardware families, and the argument list around a [`Recipe`].

use std::path::Path;

use serde::Serialize;

use super::container::Container;
use super::hw::Family;
use super::recipe::{self, AudioPlan, Recipe};

/// `--quality`: from the largest, best-looking output to the smallest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Maximum,
    High,
    Balanced,
    Efficient,
    Minimum,
}

/// `--resolution`: the box the output must fit (landscape; turned for
/// portrait sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Resolution {
    #[value(name = "4k")]
    #[serde(rename = "4k")]
    K4,
    #[value(name = "1080p")]
    #[serde(rename = "1080p")]
    P1080,
    #[value(name = "720p")]
    #[serde(rename = "720p")]
    P720,
    #[value(name = "480p")]
    #[serde(rename = "480p")]
    P480,
    #[value(name = "360p")]
    #[serde(rename = "360p")]
    P360,
}

impl Resolution {
    /// Width and height of the box, in pixels.
    pub fn size(self) -> (u32, u32) {
        match self {
            Resolution::K4 => (3840, 2160),
            Resolution::P1080 => (1920, 1080),
            Resolution::P720 => (1280, 720),
            Resolution::P480 => (854, 480),
            Resolution::P360 => (640, 360),
        }
    }
}

/// `--fit`: inside the box whole (`contain`), or filling it and cropping
/// the overflow (`cover`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    Contain,
    Cover,
}

/// `--audio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Audio {
    Copy,
    Aac,
    None,
}

/// The output frame size: `(width, height, crop)`, even numbers, never
/// larger than the source. `crop` is set when `cover` cuts the overflow.
pub fn output_size(source: (u32, u32), resolution: Option<Resolution>, fit: Fit) -> (u32, u32, bool) {
    let (w, h) = source;
    // Nearest even size (4:2:0 needs even sides), never above `limit`.
    let even = |v: f64, limit: u32| (((v / 2.0).round() as u32) * 2).min(limit & !1).max(2);
    let Some(resolution) = resolution else { return (even(f64::from(w), w), even(f64::from(h), h), false) };
    let (mut bw, mut bh) = resolution.size();
    if h > w {
        std::mem::swap(&mut bw, &mut bh);
    }
    let (wf, hf) = (f64::from(w), f64::from(h));
    let (sx, sy) = (f64::from(bw) / wf, f64::from(bh) / hf);
    match fit {
        Fit::Contain => {
            let s = sx.min(sy).min(1.0);
            (even(wf * s, w.min(bw)), even(hf * s, h.min(bh)), false)
        }
        Fit::Cover => {
            let s = sx.max(sy).min(1.0);
            let (sw, sh) = (even(wf * s, w), even(hf * s, h));
            let (cw, ch) = (sw.min(bw & !1), sh.min(bh & !1));
            (cw, ch, (cw, ch) != (sw, sh))
        }
    }
}

/// Device set-up arguments, before the input.
pub fn device_args(family: Family, render_node: Option<&str>) -> Vec<String> {
    let node = render_node.unwrap_or("/dev/dri/renderD128");
    match family {
        Family::Vaapi => {
            vec!["-init_hw_device".into(), format!("vaapi=va:{node}"), "-filter_hw_device".into(), "va".into()]
        }
        Family::Qsv => {
            let device =
                if cfg!(target_os = "linux") { format!("qsv=hw,child_device={node}") } else { "qsv=hw".into() };
            vec!["-init_hw_device".into(), device, "-filter_hw_device".into(), "hw".into()]
        }
        _ => Vec::new(),
    }
}

/// The quality and speed arguments of `encoder` (see docs/optimize.md).
pub fn quality_args(encoder: &str, family: Family, quality: Quality) -> Vec<String> {
    let i = quality as usize;
    let pick = |values: [u32; 5]| values[i].to_string();
    let args: Vec<String> = match (family, encoder) {
        (Family::Software, "libx264") => {
            vec!["-crf".into(), pick([18, 21, 23, 26, 30]), "-preset".into(), "medium".into()]
        }
        (Family::Software, "libx265") => {
            vec!["-crf".into(), pick([20, 24, 26, 28, 32]), "-preset".into(), "medium".into()]
        }
        (Family::Software, "libvpx-vp9") => {
            let mut a = vec!["-crf".into(), pick([24, 30, 33, 37, 42]), "-b:v".into(), "0".into()];
            a.extend(["-deadline", "good", "-cpu-used", "2", "-row-mt", "1"].map(String::from));
            a
        }
        (Family::Software, "libsvtav1") => {
            vec!["-crf".into(), pick([24, 30, 35, 40, 48]), "-preset".into(), "8".into()]
        }
        (Family::Software, _) => {
            let mut a = vec!["-crf".into(), pick([24, 30, 34, 38, 45]), "-b:v".into(), "0".into()];
            a.extend(["-cpu-used", "6", "-row-mt", "1"].map(String::from));
            a
        }
        (Family::Nvenc, _) => vec![
            "-rc".into(),
            "vbr".into(),
            "-cq".into(),
            pick([19, 23, 26, 29, 33]),
            "-b:v".into(),
            "0".into(),
            "-preset".into(),
            format!("p{}", [7, 6, 5, 4, 3][i]),
        ],
        (Family::Qsv, _) => vec!["-global_quality".into(), pick([18, 22, 25, 28, 32])],
        (Family::Vaapi, _) => vec!["-rc_mode".into(), "CQP".into(), "-qp".into(), pick([18, 22, 25, 28, 32])],
        (Family::Amf, _) => {
            let qp = pick([18, 22, 25, 28, 32]);
            vec!["-rc".into(), "cqp".into(), "-qp_i".into(), qp.clone(), "-qp_p".into(), qp]
        }
        (Family::Videotoolbox, _) => vec!["-q:v".into(), pick([80, 65, 55, 45, 35])],
    };
    args
}

/// Everything one encode needs.
pub struct EncodeJob<'a> {
    pub input: &'a Path,
    pub output: &'a Path,
    pub encoder: &'a str,
    pub family: Family,
    pub quality: Quality,
    pub recipe: &'a Recipe,
    pub container: &'a Container,
    pub render_node: Option<&'a str>,
    /// ffmpeg's `-version` line: `-fps_mode` came in 5.1.
    pub version: &'a str,
}

/// The full ffmpeg argument list; progress goes to stdout (`-progress pipe:1`).
pub fn ffmpeg_args(job: &EncodeJob<'_>) -> Vec<String> {
    let mut a: Vec<String> =
        ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"].map(String::from).into();
    a.extend(device_args(job.family, job.render_node));
    a.push("-i".into());
    a.push(job.input.display().to_string());
    a.extend(["-map".into(), format!("0:{}", job.recipe.stream), "-map_metadata".into(), "0".into()]);
    a.extend(["-vf".into(), recipe::video_filter(job.recipe, job.family)]);
    // Every frame at its own time: a variable frame rate stays variable.
    let passthrough = if super::ffmpeg::at_least(job.version, 5, 1) { "-fps_mode" } else { "-vsync" };
    a.extend([passthrough, "passthrough"].map(String::from));
    a.extend(["-c:v".into(), job.encoder.to_string()]);
    a.extend(quality_args(job.encoder, job.family, job.quality));
    a.extend(recipe::color_args(job.recipe));
    if (job.encoder.starts_with("hevc") || job.encoder == "libx265") && job.container.iso_bmff() {
        // Apple players want the hvc1 tag for HEVC in MP4.
        a.extend(["-tag:v", "hvc1"].map(String::from));
    }
    match &job.recipe.audio {
        AudioPlan::Copy => a.extend(["-map", "0:a?", "-c:a", "copy"].map(String::from)),
        AudioPlan::Encode { encoder, bit_rate } => {
            a.extend(["-map", "0:a?", "-c:a", encoder, "-b:a", bit_rate, "-ac", "2"].map(String::from))
        }
        AudioPlan::None => a.push("-an".into()),
    }
    if job.container.iso_bmff() {
        a.extend(["-movflags", "+faststart"].map(String::from));
    }
    a.extend(["-progress", "pipe:1", "-f", job.container.muxer].map(String::from));
    a.push(job.output.display().to_string());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_upscales_and_keeps_even_sizes() {
        assert_eq!(output_size((1280, 720), Some(Resolution::P480), Fit::Contain), (854, 480, false));
        assert_eq!(output_size((640, 360), Some(Resolution::P1080), Fit::Contain), (640, 360, false));
        assert_eq!(output_size((720, 1280), Some(Resolution::P480), Fit::Contain), (480, 854, false));
        assert_eq!(output_size((1920, 800), Some(Resolution::P720), Fit::Contain), (1280, 534, false));
        assert_eq!(output_size((1920, 800), Some(Resolution::P720), Fit::Cover), (1280, 720, true));
        assert_eq!(output_size((1280, 720), Some(Resolution::P720), Fit::Cover), (1280, 720, false));
        assert_eq!(output_size((1280, 720), None, Fit::Contain), (1280, 720, false));
    }

    #[test]
    fn quality_maps_per_family() {
        assert_eq!(quality_args("libx264", Family::Software, Quality::Balanced)[..2], ["-crf", "23"]);
        let nv = quality_args("h264_nvenc", Family::Nvenc, Quality::Maximum).join(" ");
        assert_eq!(nv, "-rc vbr -cq 19 -b:v 0 -preset p7");
        assert_eq!(quality_args("h264_qsv", Family::Qsv, Quality::Minimum), ["-global_quality", "32"]);
        assert_eq!(quality_args("h264_vaapi", Family::Vaapi, Quality::High)[2..], ["-qp", "22"]);
    }
}
