//! Hardware encoder detection that tells the truth: which encoders this
//! ffmpeg was built with (`ffmpeg -encoders`), and which of them really
//! work, proven by a short real encode each (10 frames of `testsrc2` at
//! 640x480 to the null muxer; NVENC refuses smaller frames), one at a time
//! since consumer GPUs cap concurrent encode sessions. Verdicts are cached
//! under a [`Fingerprint`](super::hw_cache::Fingerprint) by [`Detector`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::ffmpeg::{self, MediaError, Tools};
use super::hw_cache::{self, BinaryId, CacheFile, Fingerprint, SCHEMA, now_s};

/// A lasting verdict (works, no driver, no device...) is trusted this long.
pub const LASTING_S: u64 = 7 * 24 * 3600;
/// A temporary one (busy, session limit, timeout) this long.
pub const TEMPORARY_S: u64 = 10 * 60;
/// One probe encode may take this long before its process group is killed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Video codecs prewarm can encode to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    H264,
    H265,
    Vp9,
    Av1,
}

impl Codec {
    pub const ALL: [Codec; 4] = [Codec::H264, Codec::H265, Codec::Vp9, Codec::Av1];

    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Vp9 => "vp9",
            Codec::Av1 => "av1",
        }
    }
}

/// Who does the encoding, in the default order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Nvenc,
    Qsv,
    Vaapi,
    Amf,
    Videotoolbox,
    Software,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Nvenc => "nvenc",
            Family::Qsv => "qsv",
            Family::Vaapi => "vaapi",
            Family::Amf => "amf",
            Family::Videotoolbox => "videotoolbox",
            Family::Software => "software",
        }
    }
}

/// Every encoder prewarm knows, in order of preference within a codec.
pub const ENCODERS: &[(&str, Codec, Family)] = &[
    ("h264_nvenc", Codec::H264, Family::Nvenc),
    ("hevc_nvenc", Codec::H265, Family::Nvenc),
    ("av1_nvenc", Codec::Av1, Family::Nvenc),
    ("h264_qsv", Codec::H264, Family::Qsv),
    ("hevc_qsv", Codec::H265, Family::Qsv),
    ("vp9_qsv", Codec::Vp9, Family::Qsv),
    ("av1_qsv", Codec::Av1, Family::Qsv),
    ("h264_vaapi", Codec::H264, Family::Vaapi),
    ("hevc_vaapi", Codec::H265, Family::Vaapi),
    ("vp9_vaapi", Codec::Vp9, Family::Vaapi),
    ("av1_vaapi", Codec::Av1, Family::Vaapi),
    ("h264_amf", Codec::H264, Family::Amf),
    ("hevc_amf", Codec::H265, Family::Amf),
    ("av1_amf", Codec::Av1, Family::Amf),
    ("h264_videotoolbox", Codec::H264, Family::Videotoolbox),
    ("hevc_videotoolbox", Codec::H265, Family::Videotoolbox),
    ("libx264", Codec::H264, Family::Software),
    ("libx265", Codec::H265, Family::Software),
    ("libvpx-vp9", Codec::Vp9, Family::Software),
    ("libsvtav1", Codec::Av1, Family::Software),
    ("libaom-av1", Codec::Av1, Family::Software),
];

/// Why an encoder is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// This ffmpeg was built without it.
    NotBuiltIn,
    /// The driver or runtime library is missing or too old.
    NoDriver,
    /// No device for it on this machine.
    NoDevice,
    /// The device cannot encode this codec (or these settings).
    CodecNotSupported,
    /// Temporary: the device is busy.
    Busy,
    /// Temporary: the device's concurrent session limit is reached.
    SessionLimit,
    /// Temporary: the probe did not finish in time.
    Timeout,
    /// The encode failed for a reason not recognised above.
    Failed,
}

impl Reason {
    /// Temporary verdicts expire after minutes, the rest after days.
    pub fn is_temporary(self) -> bool {
        matches!(self, Reason::Busy | Reason::SessionLimit | Reason::Timeout)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotBuiltIn => "not built in",
            Reason::NoDriver => "no driver",
            Reason::NoDevice => "no device",
            Reason::CodecNotSupported => "codec not supported",
            Reason::Busy => "busy",
            Reason::SessionLimit => "session limit",
            Reason::Timeout => "timeout",
            Reason::Failed => "failed",
        }
    }
}

/// The verdict on one encoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderStatus {
    /// ffmpeg's encoder name, e.g. `h264_nvenc`.
    pub name: String,
    pub codec: Codec,
    pub family: Family,
    /// Whether this ffmpeg was built with it.
    pub built_in: bool,
    /// Whether a real encode with it worked.
    pub usable: bool,
    /// Why not, when not usable.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<Reason>,
    /// ffmpeg's own error line, when not usable.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// When it was checked and until when the verdict holds (Unix seconds).
    pub checked_at_s: u64,
    pub expires_at_s: u64,
}

impl EncoderStatus {
    fn verdict(name: &str, codec: Codec, family: Family, result: Result<(), (Reason, String)>) -> Self {
        let now = now_s();
        let (usable, reason, error) = match result {
            Ok(()) => (true, None, None),
            Err((reason, line)) => (false, Some(reason), Some(line)),
        };
        let ttl = if reason.is_some_and(Reason::is_temporary) { TEMPORARY_S } else { LASTING_S };
        EncoderStatus {
            name: name.to_string(),
            codec,
            family,
            built_in: reason != Some(Reason::NotBuiltIn),
            usable,
            reason,
            error,
            checked_at_s: now,
            expires_at_s: now + ttl,
        }
    }

    fn expired(&self, now: u64) -> bool {
        now >= self.expires_at_s || self.checked_at_s > now
    }
}

/// What detection found.
#[derive(Debug, Clone, Serialize)]
pub struct HwReport {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    pub version: String,
    /// Every known encoder, in order of preference per codec.
    pub encoders: Vec<EncoderStatus>,
    /// The best usable encoder per codec.
    pub best: std::collections::BTreeMap<Codec, String>,
    /// Whether every verdict came from the cache (no ffmpeg was run).
    pub from_cache: bool,
    /// ffmpeg processes run for this detection (0 from cache).
    pub ffmpeg_runs: u32,
    pub cache_file: Option<PathBuf>,
    pub fingerprint: Fingerprint,
}

impl HwReport {
    pub fn status(&self, name: &str) -> Option<&EncoderStatus> {
        self.encoders.iter().find(|e| e.name == name)
    }

    fn pick_best(encoders: &[EncoderStatus]) -> std::collections::BTreeMap<Codec, String> {
        let mut best = std::collections::BTreeMap::new();
        for e in encoders.iter().filter(|e| e.usable) {
            best.entry(e.codec).or_insert_with(|| e.name.clone());
        }
        best
    }
}

/// The encoders this ffmpeg lists in `ffmpeg -encoders`.
pub fn parse_encoders(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("---"))
        .skip(1)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let flags = words.next()?;
            let name = words.next()?;
            (flags.len() == 6 && flags.starts_with('V')).then(|| name.to_string())
        })
        .collect()
}

/// The ffmpeg arguments of a probe encode with `encoder`.
pub fn probe_args(encoder: &str, family: Family, render_node: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"].map(String::from).into();
    let node = render_node.unwrap_or("/dev/dri/renderD128");
    let filter = match family {
        Family::Vaapi => {
            args.extend([
                "-init_hw_device".into(),
                format!("vaapi=va:{node}"),
                "-filter_hw_device".into(),
                "va".into(),
            ]);
            Some("format=nv12,hwupload")
        }
        Family::Qsv => {
            // The Intel/FFmpeg wiki's form: a QSV device, frames uploaded to it.
            let device =
                if cfg!(target_os = "linux") { format!("qsv=hw,child_device={node}") } else { "qsv=hw".into() };
            args.extend(["-init_hw_device".into(), device, "-filter_hw_device".into(), "hw".into()]);
            Some("format=nv12,hwupload=extra_hw_frames=64,format=qsv")
        }
        _ => None,
    };
    args.extend(["-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30"].map(String::from));
    if let Some(f) = filter {
        args.extend(["-vf".into(), f.into()]);
    }
    args.extend(["-frames:v", "10", "-c:v", encoder].map(String::from));
    args.extend(fast_settings(encoder).iter().map(|s| s.to_string()));
    args.extend(["-f", "null", "-"].map(String::from));
    args
}

/// The quickest settings of the software encoders, so a probe takes well
/// under a second.
fn fast_settings(encoder: &str) -> &'static [&'static str] {
    match encoder {
        "libx264" | "libx265" => &["-preset", "ultrafast"],
        "libvpx-vp9" => &["-deadline", "realtime", "-cpu-used", "8"],
        "libsvtav1" => &["-preset", "12"],
        "libaom-av1" => &["-cpu-used", "8", "-row-mt", "1"],
        _ => &[],
    }
}

/// The reason class of a failed encode, from ffmpeg's stderr.
pub fn classify(family: Family, stderr: &str, device_present: bool) -> Reason {
    let s = stderr.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    if has(&["device or resource busy", "resource temporarily unavailable", "ebusy"]) {
        return Reason::Busy;
    }
    // NVENC answers "out of memory" to one session too many on consumer cards.
    if has(&[
        "openencodesessionex failed: out of memory",
        "incompatible client key",
        "session limit",
        "too many sessions",
    ]) {
        return Reason::SessionLimit;
    }
    let hardware = family != Family::Software;
    if hardware && !device_present {
        return Reason::NoDevice;
    }
    if has(&[
        "no nvenc capable devices found",
        "no capable devices found",
        "cuda_error_no_device",
        "no device available",
        "no va display found",
    ]) {
        return Reason::NoDevice;
    }
    if has(&[
        "cannot load libcuda",
        "cannot load libnvidia-encode",
        "driver does not support the required nvenc api",
        "minimum required nvidia driver",
        "va_opendriver() returns -1",
        "vainitialize failed",
        "failed to initialise vaapi connection",
        "libamfrt",
        "amfrt64",
        "error creating a mfx session",
        "failed to load the mfx",
        "unsupported api version",
        "cuinit(0) failed",
        "device creation failed",
    ]) {
        return Reason::NoDriver;
    }
    if has(&[
        "no usable encoding entrypoint",
        "not supported",
        "unsupported",
        "doesn't support",
        "does not support",
        "no capable",
        "invalid profile",
        "encoding entrypoint",
    ]) {
        return Reason::CodecNotSupported;
    }
    Reason::Failed
}

/// Whether this machine has a device node the family could use. AMF and
/// VideoToolbox have none to look at: always `true`.
pub fn device_present(family: Family, fingerprint: &Fingerprint) -> bool {
    match family {
        Family::Nvenc if cfg!(target_os = "linux") => !fingerprint.nvidia_nodes.is_empty(),
        Family::Vaapi | Family::Qsv if cfg!(target_os = "linux") => !fingerprint.render_nodes.is_empty(),
        _ => true,
    }
}

/// Runs detection at most once per process, only when asked, through the
/// cache.
pub struct Detector {
    explicit: Option<PathBuf>,
    cache_path: Option<PathBuf>,
    refresh: bool,
    report: OnceCell<HwReport>,
    /// Encoders that failed a real encode in this run.
    marked: std::sync::Mutex<Vec<String>>,
}

impl Detector {
    pub fn new(explicit: Option<PathBuf>, cache_path: Option<PathBuf>, refresh: bool) -> Self {
        Detector { explicit, cache_path, refresh, report: OnceCell::new(), marked: Default::default() }
    }

    /// The detection, run on first call.
    pub async fn report(&self) -> Result<&HwReport, MediaError> {
        self.report.get_or_try_init(|| detect(self.explicit.as_deref(), self.cache_path.as_deref(), self.refresh)).await
    }

    /// Whether `encoder` failed a real encode in this run.
    pub fn is_marked(&self, encoder: &str) -> bool {
        self.marked.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|m| m == encoder)
    }

    /// Record that `encoder` failed a real encode, so later runs stop
    /// choosing it (until the verdict expires).
    pub fn mark_failed(&self, encoder: &str, reason: Reason, line: &str) {
        self.marked.lock().unwrap_or_else(|p| p.into_inner()).push(encoder.to_string());
        let (Some(report), Some(path)) = (self.report.get(), &self.cache_path) else { return };
        // Start from the file: another mark may have been written since.
        let mut encoders = hw_cache::load(path)
            .filter(|c| c.fingerprint == report.fingerprint)
            .map_or_else(|| report.encoders.clone(), |c| c.encoders);
        if let Some(e) = encoders.iter_mut().find(|e| e.name == encoder) {
            *e = EncoderStatus::verdict(encoder, e.codec, e.family, Err((reason, line.to_string())));
        }
        hw_cache::store(path, &CacheFile { schema: SCHEMA, fingerprint: report.fingerprint.clone(), encoders });
    }
}

async fn detect(explicit: Option<&Path>, cache_path: Option<&Path>, refresh: bool) -> Result<HwReport, MediaError> {
    let (ffmpeg_path, ffprobe) = ffmpeg::find_binaries(explicit)?;
    let binary = BinaryId::of(&ffmpeg_path)
        .map_err(|source| MediaError::Io { program: ffmpeg_path.display().to_string(), source })?;
    let cached = cache_path.and_then(hw_cache::load);
    let mut runs = 0;
    // The version line comes from the cache when the binary is unchanged:
    // a fully cached answer runs no ffmpeg at all.
    let version = match cached.as_ref().filter(|c| c.fingerprint.ffmpeg == binary) {
        Some(c) => c.fingerprint.ffmpeg_version.clone(),
        None => {
            runs += 1;
            let path = ffmpeg_path.clone();
            tokio::task::spawn_blocking(move || ffmpeg::version_line(&path))
                .await
                .map_err(|e| MediaError::Failed { program: "ffmpeg -version".into(), message: e.to_string() })??
        }
    };
    ffmpeg::check_version(&ffmpeg_path, &version)?;
    let tools = Tools { ffmpeg: ffmpeg_path, ffprobe, version };
    let fingerprint = Fingerprint::current(binary, tools.version.clone());
    let now = now_s();
    let fresh: Vec<EncoderStatus> = match cached {
        Some(c) if c.fingerprint == fingerprint && !refresh => {
            c.encoders.into_iter().filter(|e| !e.expired(now)).collect()
        }
        _ => Vec::new(),
    };
    let encoders = if ENCODERS.iter().all(|(name, ..)| fresh.iter().any(|e| e.name == *name)) {
        ENCODERS.iter().filter_map(|(name, ..)| fresh.iter().find(|e| e.name == *name).cloned()).collect()
    } else {
        let probed = probe_stale(&tools, &fingerprint, &fresh, &mut runs).await?;
        if let Some(path) = cache_path {
            let file = CacheFile { schema: SCHEMA, fingerprint: fingerprint.clone(), encoders: probed.clone() };
            hw_cache::store(path, &file);
        }
        probed
    };
    Ok(HwReport {
        ffmpeg: tools.ffmpeg,
        ffprobe: tools.ffprobe,
        version: tools.version,
        best: HwReport::pick_best(&encoders),
        encoders,
        from_cache: runs == 0,
        ffmpeg_runs: runs,
        cache_file: cache_path.map(Path::to_path_buf),
        fingerprint,
    })
}

/// Every known encoder: a `fresh` verdict where there is one, else a probe
/// (or `not_built_in`). Counts the ffmpeg processes in `runs`.
async fn probe_stale(
    tools: &Tools,
    fingerprint: &Fingerprint,
    fresh: &[EncoderStatus],
    runs: &mut u32,
) -> Result<Vec<EncoderStatus>, MediaError> {
    *runs += 1;
    let built = list_encoders(tools).await?;
    let mut out = Vec::with_capacity(ENCODERS.len());
    for &(name, codec, family) in ENCODERS {
        let is_built = built.iter().any(|b| b == name);
        if let Some(status) = fresh.iter().find(|e| e.name == name && e.built_in == is_built) {
            out.push(status.clone());
            continue;
        }
        let result = if is_built {
            *runs += 1;
            probe(tools, name, family, fingerprint).await
        } else {
            Err((Reason::NotBuiltIn, format!("this ffmpeg was built without {name}")))
        };
        out.push(EncoderStatus::verdict(name, codec, family, result));
    }
    Ok(out)
}

pub async fn list_encoders(tools: &Tools) -> Result<Vec<String>, MediaError> {
    let mut cmd = tokio::process::Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-encoders"]);
    let out = ffmpeg::run(cmd, PROBE_TIMEOUT).await?;
    if !out.status.success() {
        return Err(MediaError::Failed { program: "ffmpeg -encoders".into(), message: out.error_line() });
    }
    Ok(parse_encoders(&String::from_utf8_lossy(&out.stdout)))
}

/// One proof encode; `Err` carries the reason class and ffmpeg's line.
async fn probe(tools: &Tools, name: &str, family: Family, fp: &Fingerprint) -> Result<(), (Reason, String)> {
    let node = fp.render_nodes.first().map(|n| n.path.as_str());
    let mut cmd = tokio::process::Command::new(&tools.ffmpeg);
    cmd.args(probe_args(name, family, node));
    match ffmpeg::run(cmd, PROBE_TIMEOUT).await {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err((classify(family, &out.stderr_tail, device_present(family, fp)), out.error_line())),
        Err(e @ MediaError::Timeout { .. }) => Err((Reason::Timeout, e.to_string())),
        Err(e) => Err((Reason::Failed, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_encoder_list() {
        let text = "Encoders:\n V..... = Video\n A..... = Audio\n ------\n V....D libx264   libx264 H.264\n \
                    V..... h264_qsv  H.264 (QSV)\n A....D aac   AAC\n";
        assert_eq!(parse_encoders(text), vec!["libx264", "h264_qsv"]);
    }

    #[test]
    fn classifies_failures() {
        let nvenc = "[h264_nvenc @ 0x1] Cannot load libcuda.so.1\nError initializing output stream";
        assert_eq!(classify(Family::Nvenc, nvenc, true), Reason::NoDriver);
        assert_eq!(classify(Family::Nvenc, nvenc, false), Reason::NoDevice);
        let limit = "[h264_nvenc @ 0x1] OpenEncodeSessionEx failed: out of memory (10): (no details)";
        assert_eq!(classify(Family::Nvenc, limit, true), Reason::SessionLimit);
        let entry = "[hevc_vaapi @ 0x1] No usable encoding entrypoint found for profile VAProfileHEVCMain (17).";
        assert_eq!(classify(Family::Vaapi, entry, true), Reason::CodecNotSupported);
        assert_eq!(classify(Family::Vaapi, "Device or resource busy", true), Reason::Busy);
        assert_eq!(classify(Family::Software, "something odd", true), Reason::Failed);
        assert!(Reason::Timeout.is_temporary() && !Reason::NoDriver.is_temporary());
    }

    #[test]
    fn hardware_probes_upload_frames() {
        let args = probe_args("h264_vaapi", Family::Vaapi, Some("/dev/dri/renderD129")).join(" ");
        assert!(args.contains("-init_hw_device vaapi=va:/dev/dri/renderD129 -filter_hw_device va"), "{args}");
        assert!(args.contains("-vf format=nv12,hwupload"), "{args}");
        assert!(args.contains("testsrc2=size=640x480") && args.contains("-frames:v 10"), "{args}");
        assert!(args.ends_with("-f null -"), "{args}");
    }

    #[test]
    fn temporary_verdicts_expire_in_minutes() {
        let busy = EncoderStatus::verdict("h264_nvenc", Codec::H264, Family::Nvenc, Err((Reason::Busy, "b".into())));
        let gone =
            EncoderStatus::verdict("h264_nvenc", Codec::H264, Family::Nvenc, Err((Reason::NoDriver, "d".into())));
        let works = EncoderStatus::verdict("libx264", Codec::H264, Family::Software, Ok(()));
        assert_eq!(busy.expires_at_s - busy.checked_at_s, TEMPORARY_S);
        assert_eq!(gone.expires_at_s - gone.checked_at_s, LASTING_S);
        assert!(works.usable && works.built_in && works.reason.is_none());
        let now = busy.checked_at_s;
        assert!(!busy.expired(now) && busy.expired(now + TEMPORARY_S) && !gone.expired(now + TEMPORARY_S));
        assert!(gone.expired(now.saturating_sub(10)), "a clock set back does not keep a verdict forever");
    }

    #[test]
    fn best_follows_the_preference_order() {
        let mut list: Vec<EncoderStatus> = ENCODERS
            .iter()
            .map(|&(n, c, f)| EncoderStatus::verdict(n, c, f, Err((Reason::NoDevice, String::new()))))
            .collect();
        for e in list.iter_mut().filter(|e| ["libx264", "h264_vaapi", "libsvtav1", "libaom-av1"].contains(&&*e.name)) {
            e.usable = true;
        }
        let best = HwReport::pick_best(&list);
        assert_eq!(best.get(&Codec::H264).map(String::as_str), Some("h264_vaapi"));
        assert_eq!(best.get(&Codec::Av1).map(String::as_str), Some("libsvtav1"));
        assert_eq!(best.get(&Codec::H265), None);
    }
}
