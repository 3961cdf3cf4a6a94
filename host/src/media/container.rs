//! Which container an output is written in and what it can hold: the
//! muxer from the object's extension (from the source's own format when it
//! has none), the video codecs that muxer takes (a pair it cannot write is
//! refused before any encode: libsvtav1 into `.mov` does not fail, it
//! hangs), the audio a browser plays from it as is, and the audio encoder
//! used when it does not. Found with this project's ffmpeg 5.1 muxers; the
//! table is in docs/optimize.md.

use super::boxes::is_iso_bmff;
use super::hw::Codec;

/// One output container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// ffmpeg's muxer name, passed as `-f`.
    pub muxer: &'static str,
    /// How messages name it: `.mov`, or `mp4 (the source's format)`.
    pub shown: String,
    /// The video codecs the muxer writes.
    pub video: &'static [Codec],
    /// Audio codecs (ffmpeg names) browsers play from this container, copied as is.
    pub playable_audio: &'static [&'static str],
    /// The audio encoder and bit rate used when the source's is not playable.
    pub web_audio: (&'static str, &'static str),
}

impl Container {
    /// ISO-BMFF (MP4, MOV, 3GP): written with `+faststart`.
    pub fn iso_bmff(&self) -> bool {
        is_iso_bmff(self.muxer)
    }

    /// `Err` with the reason when the muxer cannot hold `codec`.
    pub fn check(&self, codec: Codec) -> Result<(), String> {
        if self.video.contains(&codec) {
            return Ok(());
        }
        let can: Vec<&str> = self.video.iter().map(|c| c.as_str()).collect();
        Err(format!(
            "{} cannot be written in {} (ffmpeg's {} muxer takes {}): pick --codec {}, or re-encode into another \
             container outside prewarm",
            codec.as_str(),
            self.shown,
            self.muxer,
            if can.is_empty() { "none of h264, h265, vp9, av1".into() } else { can.join(", ") },
            can.first().copied().unwrap_or("h264")
        ))
    }
}

const ALL: &[Codec] = &[Codec::H264, Codec::H265, Codec::Vp9, Codec::Av1];
const MP4_AUDIO: &[&str] = &["aac", "mp3", "opus", "flac"];
const MOV_AUDIO: &[&str] = &["aac", "mp3"];
const WEBM_AUDIO: &[&str] = &["opus", "vorbis"];
const AAC: (&str, &str) = ("aac", "160k");
const OPUS: (&str, &str) = ("libopus", "128k");

/// The table: what each muxer writes (`shown` is filled in by the caller).
fn by_muxer(muxer: &str) -> Option<Container> {
    let row = |muxer, video, playable_audio, web_audio| Container {
        muxer,
        shown: String::new(),
        video,
        playable_audio,
        web_audio,
    };
    Some(match muxer {
        "mp4" => row("mp4", ALL, MP4_AUDIO, AAC),
        "mov" => row("mov", &[Codec::H264, Codec::H265], MOV_AUDIO, AAC),
        "ipod" => row("ipod", &[Codec::H264], &["aac"], AAC),
        "3gp" => row("3gp", &[Codec::H264], &["aac"], AAC),
        "3g2" => row("3g2", &[Codec::H264], &["aac"], AAC),
        "matroska" => row("matroska", ALL, &["aac", "mp3", "opus", "vorbis", "flac"], AAC),
        "webm" => row("webm", &[Codec::Vp9, Codec::Av1], WEBM_AUDIO, OPUS),
        "avi" => row("avi", ALL, &["aac", "mp3"], AAC),
        "flv" => row("flv", &[Codec::H264], &["aac", "mp3"], AAC),
        "mpegts" => row("mpegts", &[Codec::H264, Codec::H265], &["aac", "mp3"], AAC),
        _ => return None,
    })
}

fn muxer_of_extension(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "mp4" => "mp4",
        "m4v" => "ipod",
        "mov" | "qt" => "mov",
        "3gp" => "3gp",
        "3g2" => "3g2",
        "mkv" => "matroska",
        "webm" => "webm",
        "avi" => "avi",
        "flv" => "flv",
        "ts" | "m2ts" | "mts" => "mpegts",
        _ => return None,
    })
}

/// The muxer that writes what ffprobe calls `format` (its first name).
fn muxer_of_format(format: &str) -> Option<&'static str> {
    Some(match format.split(',').next().unwrap_or_default() {
        "mov" => "mp4",
        "matroska" => "matroska",
        "avi" => "avi",
        "flv" => "flv",
        "mpegts" => "mpegts",
        _ => return None,
    })
}

/// The container for an output named like `path`: from its extension, or
/// (no extension) from the source's format as ffprobe named it.
pub fn for_output(path: &str, source_format: Option<&str>) -> Result<Container, String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|_| !name.starts_with('.') || name.matches('.').count() > 1);
    let (muxer, shown) = match &ext {
        Some(ext) => {
            let muxer = muxer_of_extension(ext).ok_or_else(|| {
                format!(
                    "prewarm does not write .{ext} files (it writes mp4, m4v, mov, 3gp, 3g2, mkv, webm, avi, flv, ts)"
                )
            })?;
            (muxer, format!(".{ext}"))
        }
        None => {
            let format = source_format.unwrap_or("unknown");
            let muxer = muxer_of_format(format).ok_or_else(|| {
                format!("no file extension, and the source's format ({format}) is not one prewarm writes")
            })?;
            (muxer, format!("{muxer} (no extension; the source's format)"))
        }
    };
    let container = by_muxer(muxer).expect("every muxer above is in the table");
    Ok(Container { shown, ..container })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_pairs_the_muxer_cannot_write() {
        let mov = for_output("a/clip.MOV", None).unwrap();
        assert_eq!((mov.muxer, mov.iso_bmff()), ("mov", true));
        let err = mov.check(Codec::Av1).unwrap_err();
        assert!(err.starts_with("av1 cannot be written in .mov (ffmpeg's mov muxer takes h264, h265)"), "{err}");
        let webm = for_output("v.webm", None).unwrap();
        assert!(webm.check(Codec::H264).is_err() && webm.check(Codec::Vp9).is_ok());
        assert_eq!(webm.web_audio.0, "libopus");
        assert!(for_output("clip.3gp", None).unwrap().iso_bmff());
        assert!(!for_output("clip.mkv", None).unwrap().iso_bmff());
        assert!(for_output("clip.ogv", None).unwrap_err().contains(".ogv"));
    }

    #[test]
    fn without_an_extension_the_source_format_decides() {
        let c = for_output("dir/noext", Some("mov,mp4,m4a,3gp,3g2,mj2")).unwrap();
        assert_eq!((c.muxer, c.iso_bmff()), ("mp4", true));
        assert!(for_output("dir/noext", Some("image2")).unwrap_err().contains("no file extension"));
        assert!(for_output(".hidden", Some("matroska,webm")).is_ok_and(|c| c.muxer == "matroska"));
    }
}
