//! What a browser shows, from the shared [`Facts`]: the checks a
//! derivative (validate) and an optimized output (optimize) both pass. A
//! profile and pixel format browsers decode (H.264 8-bit 4:2:0 Baseline,
//! Main or High; HEVC Main; VP9 profile 0; AV1 Main), colour labels that
//! fit the bit depth (no 8-bit video labelled PQ or HLG), `moov` before
//! `mdat` in ISO-BMFF files, and an audio codec browsers play.

use super::boxes::{Order, is_iso_bmff};
use super::probe::Facts;
use super::validate::{Check, Problem};

/// Audio codecs (ffmpeg names) the mainstream browsers play.
pub const PLAYABLE_AUDIO: &[&str] = &["aac", "mp3", "opus", "vorbis", "flac"];

/// The profile check: `None` when browsers decode it.
pub fn profile_problem(facts: &Facts) -> Option<String> {
    let v = facts.video.as_ref()?;
    let profile = v.profile.as_deref().unwrap_or("unknown profile");
    let (depth, chroma) = (v.bit_depth(), v.chroma());
    let pix_fmt = v.pix_fmt.as_deref().unwrap_or("unknown pixel format");
    let fine = match v.codec.as_str() {
        "h264" => {
            depth == 8
                && chroma == Some("420")
                && (v.profile.is_none()
                    || matches!(profile, "Baseline" | "Constrained Baseline" | "Main" | "High" | "Extended"))
        }
        "hevc" => depth == 8 && chroma == Some("420") && v.profile.as_deref().is_none_or(|p| p == "Main"),
        "vp9" => depth == 8 && chroma == Some("420") && v.profile.as_deref().is_none_or(|p| p == "Profile 0"),
        "av1" => depth <= 10 && chroma == Some("420") && v.profile.as_deref().is_none_or(|p| p == "Main"),
        // The codec check names other codecs.
        _ => true,
    };
    (!fine).then(|| {
        format!(
            "{} {profile} ({pix_fmt}, {depth}-bit): browsers decode H.264 8-bit 4:2:0 Baseline/Main/High, HEVC Main, \
             VP9 profile 0, AV1 Main",
            v.codec
        )
    })
}

/// The colour check: an 8-bit picture labelled with an HDR transfer.
pub fn color_problem(facts: &Facts) -> Option<String> {
    let v = facts.video.as_ref()?;
    let transfer = v.hdr_transfer()?;
    (v.bit_depth() < 10)
        .then(|| format!("{}-bit video labelled {transfer} (HDR): players show it washed out", v.bit_depth()))
}

/// The fast-start check, for ISO-BMFF containers.
pub fn fast_start_problem(facts: &Facts, order: Order) -> Option<String> {
    let iso = facts.format.as_deref().is_some_and(is_iso_bmff);
    (iso && order == Order::MoovLast)
        .then(|| "moov after mdat: playback waits for the whole file (write it with -movflags +faststart)".into())
}

/// The audio check.
pub fn audio_problem(facts: &Facts) -> Option<String> {
    let a = facts.audio.as_ref()?;
    (!PLAYABLE_AUDIO.contains(&a.codec.as_str()))
        .then(|| format!("audio {} is not one of {}", a.codec, PLAYABLE_AUDIO.join(", ")))
}

/// Every viewer-facing problem of `facts`, box `order` read where it could be.
pub fn problems(facts: &Facts, order: Order) -> Vec<Problem> {
    [
        (Check::Profile, profile_problem(facts)),
        (Check::Color, color_problem(facts)),
        (Check::FastStart, fast_start_problem(facts, order)),
        (Check::Audio, audio_problem(facts)),
    ]
    .into_iter()
    .filter_map(|(check, detail)| detail.map(|detail| Problem { check, detail }))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::probe::parse_facts;

    fn facts(video: &str, audio: &str) -> Facts {
        let json = format!(
            r#"{{"streams":[{{"codec_type":"video",{video}}}{audio}],"format":{{"format_name":"mov,mp4,m4a,3gp,3g2,mj2"}}}}"#
        );
        parse_facts(json.as_bytes()).unwrap()
    }

    fn checks(f: &Facts, order: Order) -> Vec<Check> {
        problems(f, order).iter().map(|p| p.check).collect()
    }

    #[test]
    fn flags_what_browsers_do_not_show() {
        let good = facts(r#""codec_name":"h264","profile":"High","pix_fmt":"yuv420p""#, "");
        assert!(checks(&good, Order::FastStart).is_empty());
        assert_eq!(checks(&good, Order::MoovLast), [Check::FastStart]);
        assert_eq!(checks(&good, Order::Unknown), Vec::<Check>::new());
        let high10 = facts(r#""codec_name":"h264","profile":"High 10","pix_fmt":"yuv420p10le""#, "");
        assert_eq!(checks(&high10, Order::FastStart), [Check::Profile]);
        let high444 = facts(r#""codec_name":"h264","profile":"High 4:4:4 Predictive","pix_fmt":"yuv444p""#, "");
        assert!(profile_problem(&high444).unwrap().contains("High 4:4:4 Predictive (yuv444p, 8-bit)"));
        let pq8 = facts(r#""codec_name":"h264","profile":"High","pix_fmt":"yuv420p","color_transfer":"smpte2084""#, "");
        assert_eq!(checks(&pq8, Order::FastStart), [Check::Color]);
        let hdr10 =
            facts(r#""codec_name":"av1","profile":"Main","pix_fmt":"yuv420p10le","color_transfer":"smpte2084""#, "");
        assert!(checks(&hdr10, Order::FastStart).is_empty());
        let pcm = facts(
            r#""codec_name":"hevc","profile":"Main","pix_fmt":"yuv420p""#,
            r#",{"codec_type":"audio","codec_name":"pcm_s16le"}"#,
        );
        assert_eq!(checks(&pcm, Order::FastStart), [Check::Audio]);
        let vp9 = facts(r#""codec_name":"vp9","profile":"Profile 2","pix_fmt":"yuv420p10le""#, "");
        assert_eq!(checks(&vp9, Order::FastStart), [Check::Profile]);
    }
}
