//! `optimize` and `validate` on the kinds of video people upload, with the
//! real ffmpeg, ffprobe and rclone: a turned phone video, anamorphic PAL,
//! HDR10, interlaced, variable frame rate, 5.1 PCM in MOV, audio longer
//! than the video, 3GP, a file with no extension, WebM, damaged, empty and
//! text sources; an encode that stalls, `--dest` naming the source, a
//! source replaced during the encode, a run killed with -9; and validate
//! flagging each derivative a browser does not show as the box promises.
//! Every source is generated: seconds long, low resolution.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prewarm_e2e::{prewarm, read_results, run};
use serde_json::Value;

fn ffmpeg(args: &[&str], out: &Path) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(args)
        .arg(out)
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg could not make {}", out.display());
}

fn pattern(size: &str, rate: u32, seconds: f64) -> String {
    format!("testsrc2=size={size}:rate={rate}:duration={seconds}")
}

const LOSSLESS: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"];

fn with<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(tail).copied().collect()
}

/// One source per kind, big enough (lossless) that any re-encode is smaller.
fn real_world_tree(src: &Path) {
    let flat = src.join("flat.tmp.mp4");
    ffmpeg(&with(&["-f", "lavfi", "-i", &pattern("320x180", 25, 2.0)], LOSSLESS), &flat);
    // A phone keeps the sensor's landscape frame and says "turn 90" (stream copy keeps the matrix).
    ffmpeg(&["-i", flat.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90"], &src.join("rot90.mp4"));
    std::fs::remove_file(&flat).unwrap();
    ffmpeg(
        &with(&["-f", "lavfi", "-i", &pattern("352x288", 25, 2.0), "-vf", "setsar=64/45"], LOSSLESS),
        &src.join("anamorphic.mp4"),
    );
    let x265 = "lossless=1:log-level=error:hdr10=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc";
    ffmpeg(
        &["-f", "lavfi", "-i", &pattern("320x180", 25, 2.0), "-c:v", "libx265", "-x265-params", x265, "-pix_fmt"]
            .into_iter()
            .chain(["yuv420p10le", "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"])
            .collect::<Vec<_>>(),
        &src.join("hdr10.mp4"),
    );
    ffmpeg(
        &with(
            &["-f", "lavfi", "-i", &pattern("320x240", 50, 2.0), "-vf", "tinterlace=mode=interleave_top,setfield=tff"],
            &with(LOSSLESS, &["-flags", "+ildct+ilme", "-x264-params", "interlaced=1:tff=1", "-field_order", "tt"]),
        ),
        &src.join("interlaced.mp4"),
    );
    let tone = |s: f64| format!("sine=frequency=440:sample_rate=48000:duration={s}");
    ffmpeg(
        &with(
            &["-f", "lavfi", "-i", &pattern("320x180", 25, 2.0), "-f", "lavfi", "-i", &tone(3.6)],
            &with(LOSSLESS, &["-c:a", "aac"]),
        ),
        &src.join("longaudio.mp4"),
    );
    // 60 frames at 30 fps with 20 of them dropped: a gap the output must keep.
    ffmpeg(
        &with(
            &[
                "-f",
                "lavfi",
                "-i",
                &pattern("320x180", 30, 2.0),
                "-vf",
                "select='not(between(n,10,29))'",
                "-vsync",
                "vfr",
            ],
            LOSSLESS,
        ),
        &src.join("vfr.mp4"),
    );
    ffmpeg(
        &with(
            &["-f", "lavfi", "-i", &pattern("320x180", 25, 2.0), "-f", "lavfi", "-i", &tone(2.0), "-ac", "6"],
            &with(LOSSLESS, &["-c:a", "pcm_s16le", "-shortest"]),
        ),
        &src.join("surround.mov"),
    );
    // A phone's jittery timestamps: frames closer than one tick of the
    // nominal rate.
    ffmpeg(
        &with(
            &["-f", "lavfi", "-i", &pattern("320x180", 30, 2.0), "-vf", "setpts='(N/30+0.012*sin(N))/TB'"],
            &with(&["-fps_mode", "passthrough"], LOSSLESS),
        ),
        &src.join("jittery.mp4"),
    );
    // A still picture as the first video track, not marked as cover art.
    let still = src.join("still.tmp.png");
    ffmpeg(&["-f", "lavfi", "-i", "color=red:size=64x64", "-frames:v", "1"], &still);
    ffmpeg(
        &with(
            &[
                "-i",
                still.to_str().unwrap(),
                "-f",
                "lavfi",
                "-i",
                &pattern("320x180", 25, 2.0),
                "-map",
                "0",
                "-map",
                "1",
            ],
            &["-c:v:0", "png", "-c:v:1", "libx264", "-qp", "0", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
        ),
        &src.join("still-first.mov"),
    );
    std::fs::remove_file(&still).unwrap();
    ffmpeg(&with(&["-f", "lavfi", "-i", &pattern("320x180", 25, 2.0)], LOSSLESS), &src.join("phone.3gp"));
    ffmpeg(
        &with(&["-f", "lavfi", "-i", &pattern("320x180", 25, 2.0), "-f", "mp4"], LOSSLESS),
        &src.join("noextension"),
    );
}

fn probe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-show_format", "-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stream<'a>(p: &'a Value, kind: &str) -> Option<&'a Value> {
    p["streams"].as_array().unwrap().iter().find(|s| s["codec_type"] == kind)
}

/// Width and height as shown: pixel aspect, then rotation.
fn displayed(path: &Path) -> (u32, u32) {
    let p = probe(path);
    let v = stream(&p, "video").unwrap_or_else(|| panic!("no video in {}", path.display()));
    let (w, h) = (v["width"].as_f64().unwrap(), v["height"].as_u64().unwrap() as u32);
    let sar = v["sample_aspect_ratio"].as_str().unwrap_or("1:1");
    let (n, d) = sar.split_once(':').map(|(n, d)| (n.parse::<f64>().unwrap(), d.parse::<f64>().unwrap())).unwrap();
    let w = if n > 0.0 && d > 0.0 { (w * n / d).round() as u32 } else { w as u32 };
    let turned = v["side_data_list"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["rotation"].as_f64().is_some_and(|r| r.abs() == 90.0));
    if turned { (h, w) } else { (w, h) }
}

/// `moov` before `mdat` (ISO/IEC 14496-12 top-level boxes).
fn fast_start(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        match &bytes[at + 4..at + 8] {
            b"moov" => return true,
            b"mdat" => return false,
            _ if size < 8 => return false,
            _ => at += size,
        }
    }
    false
}

/// The index of the longest video stream (not a still picture beside it).
fn moving_stream(path: &Path) -> u64 {
    let p = probe(path);
    let videos = p["streams"].as_array().unwrap().iter().filter(|s| s["codec_type"] == "video");
    let seconds = |s: &Value| s["duration"].as_str().and_then(|d| d.parse::<f64>().ok()).unwrap_or(0.0);
    videos.max_by(|a, b| seconds(a).total_cmp(&seconds(b))).unwrap()["index"].as_u64().unwrap()
}

/// The first frame as shown, 32x32 gray.
fn frame(path: &Path, extra_filter: &str) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", &format!("0:{}", moving_stream(path))])
        .args(["-frames:v", "1", "-vf", &format!("{extra_filter}scale=32:32,format=gray"), "-f", "rawvideo", "-"])
        .output()
        .unwrap();
    assert_eq!(out.stdout.len(), 32 * 32, "no frame from {}", path.display());
    out.stdout
}

fn difference(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x.abs_diff(*y))).sum::<f64>() / a.len() as f64
}

fn rclone_config(home: &Path) -> PathBuf {
    let conf = home.join("rclone.conf");
    std::fs::write(&conf, "[loc]\ntype = local\n").unwrap();
    conf
}

fn optimize(home: &Path, src: &Path, dest: Option<&Path>) -> Command {
    let mut cmd = prewarm(home);
    cmd.args(["optimize", "--rclone-config"]).arg(rclone_config(home)).arg("--source").arg(src);
    match dest {
        Some(d) => cmd.arg("--dest").arg(d),
        None => cmd.arg("--in-place"),
    };
    cmd.args(["--threshold", "0", "--hw", "none"]).arg("--work-dir").arg(home.join("work"));
    cmd.arg("--results").arg(home.join("results.jsonl"));
    cmd
}

fn by_path(results: &[Value]) -> std::collections::HashMap<String, Value> {
    results.iter().map(|r| (r["path"].as_str().unwrap().to_string(), r.clone())).collect()
}

/// What every output must be, whatever its source.
fn check_output(out: &Path, source: &Path, want: (u32, u32)) {
    let name = out.display();
    assert_eq!(displayed(out), want, "{name}: displayed size");
    let p = probe(out);
    let v = stream(&p, "video").unwrap();
    assert_eq!(v["pix_fmt"], "yuv420p", "{name}");
    assert!(
        ["High", "Main", "Constrained Baseline"].contains(&v["profile"].as_str().unwrap()),
        "{name}: {}",
        v["profile"]
    );
    assert_eq!(v["sample_aspect_ratio"].as_str().unwrap_or("1:1"), "1:1", "{name}: square pixels");
    assert!(v["side_data_list"].is_null(), "{name}: rotation left: {}", v["side_data_list"]);
    assert!(
        !["smpte2084", "arib-std-b67"].contains(&v["color_transfer"].as_str().unwrap_or("")),
        "{name}: 8-bit labelled HDR"
    );
    assert_eq!(v["field_order"].as_str().unwrap_or("progressive"), "progressive", "{name}");
    if !name.to_string().ends_with(".mkv") {
        assert!(fast_start(out), "{name}: moov after mdat");
    }
    // The longest video stream's: a still picture beside the moving one lasts a frame.
    let video_s = |p: &Value| {
        let videos = p["streams"].as_array().unwrap().iter().filter(|s| s["codec_type"] == "video");
        videos.map(|s| s["duration"].as_str().unwrap().parse::<f64>().unwrap()).fold(0.0, f64::max)
    };
    assert!((video_s(&p) - video_s(&probe(source))).abs() < 0.2, "{name}: video duration");
    // Upright: the first frame as shown matches the source's as shown, and not turned over.
    let want_frame = frame(source, "");
    let (same, flipped) =
        (difference(&frame(out, ""), &want_frame), difference(&frame(out, "hflip,vflip,"), &want_frame));
    assert!(same < 20.0 && same * 2.0 < flipped, "{name}: not the source's picture ({same:.1} vs {flipped:.1} turned)");
}

#[test]
fn real_world_sources_come_out_right_to_a_dest_and_in_place() {
    let home = tempfile::tempdir().unwrap();
    let (src, dst) = (home.path().join("src"), home.path().join("dst"));
    real_world_tree(&src);
    let keep = home.path().join("originals");
    let copied = Command::new("cp").arg("-a").arg(&src).arg(&keep).status().unwrap();
    assert!(copied.success());
    let out = run(&mut optimize(home.path(), &src, Some(&dst)));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let results = by_path(&read_results(&home.path().join("results.jsonl")));
    let expect: &[(&str, (u32, u32), &str)] = &[
        ("rot90.mp4", (180, 320), "turned upright"),
        ("anamorphic.mp4", (500, 288), "square pixels (from 64:45"),
        ("hdr10.mp4", (320, 180), "tone-mapped smpte2084"),
        ("interlaced.mp4", (320, 240), "deinterlaced (bwdif, tt)"),
        ("longaudio.mp4", (320, 180), ""),
        ("vfr.mp4", (320, 180), "variable frame rate kept"),
        ("surround.mov", (320, 180), "audio pcm_s16le to aac stereo"),
        ("jittery.mp4", (320, 180), ""),
        ("still-first.mov", (320, 180), ""),
        ("phone.3gp", (320, 180), ""),
        ("noextension", (320, 180), ""),
    ];
    for (name, size, step) in expect {
        let r = &results[*name];
        assert_eq!(r["outcome"], "optimized", "{r}");
        let steps = r["steps"].to_string();
        assert!(steps.contains(step), "{name}: {steps}");
        assert_eq!(steps.contains("deinterlaced"), *name == "interlaced.mp4", "{name}: {steps}");
        check_output(&dst.join(name), &keep.join(name), *size);
    }
    let hdr = probe(&dst.join("hdr10.mp4"));
    assert_eq!(stream(&hdr, "video").unwrap()["color_transfer"], "bt709");
    let frames = |p: &Path| stream(&probe(p), "video").unwrap()["nb_frames"].as_str().unwrap().to_string();
    assert_eq!(frames(&dst.join("vfr.mp4")), frames(&keep.join("vfr.mp4")), "a variable frame rate was made constant");
    let audio = probe(&dst.join("surround.mov"));
    let a = stream(&audio, "audio").unwrap();
    assert_eq!((a["codec_name"].as_str(), a["channels"].as_u64()), (Some("aac"), Some(2)));
    assert!(stream(&probe(&dst.join("longaudio.mp4")), "audio").is_some(), "the audio was dropped");

    // In place: the same outputs replace the originals.
    let out = run(&mut optimize(home.path(), &src, None));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for (name, size, _) in expect {
        check_output(&src.join(name), &keep.join(name), *size);
    }
    let left: Vec<_> = std::fs::read_dir(&src).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left.len(), expect.len(), "temporary objects left: {left:?}");

    // And validate reads every output as a good source (its results as zstd).
    let checked = home.path().join("v.jsonl.zst");
    let out = run(prewarm(home.path()).args(["validate", "--source"]).arg(&src).arg("--results-out").arg(&checked));
    assert_eq!(out.status.code(), Some(0), "{:?}", read_results(&checked));
    assert_eq!(&std::fs::read(&checked).unwrap()[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
    assert_eq!(read_results(&checked).len(), expect.len());
}

#[test]
fn sources_that_cannot_be_done_are_refused_in_words_naming_them() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("zero.mp4"), b"").unwrap();
    std::fs::write(src.join("notes.mp4"), "this is not a video\n").unwrap();
    ffmpeg(&["-f", "lavfi", "-i", &pattern("160x90", 25, 1.0), "-c:v", "libvpx-vp9"], &src.join("clip.webm"));
    ffmpeg(&with(&["-f", "lavfi", "-i", &pattern("160x90", 25, 1.0)], LOSSLESS), &src.join("clip.mov"));
    let out = run(&mut optimize(home.path(), &src, Some(&home.path().join("dst"))));
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("prewarm-optimize-") && !stderr.contains("source.mp4"), "{stderr}");
    let results = by_path(&read_results(&home.path().join("results.jsonl")));
    let failed = |name: &str, kind: &str, words: &str| {
        let r = &results[name];
        assert_eq!((r["outcome"].as_str(), r["kind"].as_str()), (Some("failed"), Some(kind)), "{r}");
        assert!(r["error"].as_str().unwrap().contains(words), "{r}");
        assert!(stderr.lines().any(|l| l.contains(name) && l.contains(words)), "{name}: {stderr}");
    };
    failed("zero.mp4", "empty", "empty (0 bytes)");
    failed("notes.mp4", "not_video", "not a video (Invalid data found when processing input)");
    failed("clip.webm", "unsupported", "h264 cannot be written in .webm (ffmpeg's webm muxer takes vp9, av1)");
    // The default MOV with AV1: refused before the encode (libsvtav1 would hang in the mov muxer).
    let started = Instant::now();
    let out = run(optimize(home.path(), &src, Some(&home.path().join("dst"))).args([
        "--codec",
        "av1",
        "--include",
        "clip.mov",
    ]));
    assert_eq!(out.status.code(), Some(3));
    assert!(started.elapsed() < Duration::from_secs(30));
    let r = &read_results(&home.path().join("results.jsonl"))[0];
    assert!(r["error"].as_str().unwrap().starts_with("av1 cannot be written in .mov"), "{r}");
}

/// An ffmpeg that runs the real one, except that an encode (the call with
/// `-progress`) first writes its pid to `$MARK` and runs `$ENCODE_CMD`.
fn wrapper(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("ffmpeg");
    let script = "#!/bin/sh\ncase \"$*\" in *-progress*) echo $$ > \"$MARK.tmp\"; mv \"$MARK.tmp\" \"$MARK\"; eval \"$ENCODE_CMD\";; esac\nexec /usr/bin/ffmpeg \"$@\"\n";
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let _ = std::os::unix::fs::symlink("/usr/bin/ffprobe", dir.join("ffprobe"));
    path
}

fn wait_for(path: &Path, child: &mut std::process::Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.trim().to_string();
        }
        assert!(child.try_wait().unwrap().is_none(), "optimize ended before the encode started");
        assert!(Instant::now() < deadline, "the encode never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gone(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

#[test]
fn a_stalled_encode_is_killed_and_recorded_stalled() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    ffmpeg(&with(&["-f", "lavfi", "-i", &pattern("160x90", 25, 1.0)], LOSSLESS), &src.join("a.mp4"));
    let fake = wrapper(&home.path().join("bin"));
    let mark = home.path().join("encode.pid");
    let started = Instant::now();
    let out = run(optimize(home.path(), &src, Some(&home.path().join("dst")))
        .args(["--stall-timeout", "2s", "--ffmpeg"])
        .arg(&fake)
        .env("MARK", &mark)
        .env("ENCODE_CMD", "exec sleep 300"));
    assert_eq!(out.status.code(), Some(3));
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    let r = &read_results(&home.path().join("results.jsonl"))[0];
    assert_eq!((r["outcome"].as_str(), r["kind"].as_str()), (Some("failed"), Some("stalled")), "{r}");
    assert!(r["error"].as_str().unwrap().contains("made no progress for 2s"), "{r}");
    let pid = std::fs::read_to_string(&mark).unwrap();
    assert!(gone(pid.trim()), "the stalled encode {pid} still runs");
}

#[test]
fn dest_naming_the_source_is_refused_in_every_spelling() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    ffmpeg(&with(&["-f", "lavfi", "-i", &pattern("160x90", 25, 1.0)], LOSSLESS), &src.join("a.mp4"));
    let before = std::fs::read(src.join("a.mp4")).unwrap();
    std::os::unix::fs::symlink(&src, home.path().join("link")).unwrap();
    let s = src.display().to_string();
    let spellings = [
        format!("{s}/."),
        format!("{s}//"),
        format!("{s}/"),
        format!(":local:{s}"),
        format!("loc:{s}"),
        format!("{s}/../src"),
        // Through a folder that does not exist yet: rclone reads `..` by the text.
        format!("{s}/new/../../src"),
        home.path().join("link").display().to_string(),
        "src".into(),
    ];
    for dest in spellings {
        let mut cmd = optimize(home.path(), &src, Some(Path::new(&dest)));
        let out = run(cmd.current_dir(home.path()));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--dest {dest}: {err}");
        assert!(err.contains("is the source's own place") && err.trim().lines().count() == 1, "{err}");
        assert_eq!(std::fs::read(src.join("a.mp4")).unwrap(), before, "--dest {dest} touched the source");
        assert_eq!(std::fs::read_dir(&src).unwrap().count(), 1);
    }
}

#[test]
fn a_source_replaced_during_the_encode_survives() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    ffmpeg(&with(&["-f", "lavfi", "-i", &pattern("320x180", 25, 2.0)], LOSSLESS), &src.join("v.mp4"));
    let newer = home.path().join("newer.mp4");
    ffmpeg(&["-f", "lavfi", "-i", &pattern("160x90", 25, 1.0), "-c:v", "libx264"], &newer);
    let fake = wrapper(&home.path().join("bin"));
    let mark = home.path().join("encode.pid");
    let mut child = optimize(home.path(), &src, None)
        .arg("--ffmpeg")
        .arg(&fake)
        .env("MARK", &mark)
        .env("ENCODE_CMD", "sleep 2")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&mark, &mut child);
    // The user uploads a new version while the old one encodes.
    std::fs::copy(&newer, src.join(".v.mp4.upload")).unwrap();
    std::fs::rename(src.join(".v.mp4.upload"), src.join("v.mp4")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read(src.join("v.mp4")).unwrap(),
        std::fs::read(&newer).unwrap(),
        "the new upload was overwritten"
    );
    let r = &read_results(&home.path().join("results.jsonl"))[0];
    assert_eq!(r["outcome"], "changed", "{r}");
    assert!(r["error"].as_str().unwrap().contains("the new version was kept"), "{r}");
    assert_eq!(std::fs::read_dir(&src).unwrap().count(), 1, "a temporary object was left");
}

#[test]
fn a_run_killed_with_9_is_swept_by_the_next() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    ffmpeg(&with(&["-f", "lavfi", "-i", &pattern("320x180", 25, 2.0)], LOSSLESS), &src.join("v.mp4"));
    let original = std::fs::read(src.join("v.mp4")).unwrap();
    let fake = wrapper(&home.path().join("bin"));
    let mark = home.path().join("encode.pid");
    let mut child = optimize(home.path(), &src, None)
        .arg("--ffmpeg")
        .arg(&fake)
        .env("MARK", &mark)
        .env("ENCODE_CMD", "exec sleep 300")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let encoder = wait_for(&mark, &mut child);
    let scratch: Vec<PathBuf> =
        std::fs::read_dir(home.path().join("work")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(scratch.len(), 1, "one scratch directory per run: {scratch:?}");
    let tag = scratch[0].file_name().unwrap().to_string_lossy().strip_prefix("prewarm-optimize-").unwrap().to_string();
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(&encoder) {
        assert!(Instant::now() < deadline, "the encode {encoder} outlived its killed prewarm");
        std::thread::sleep(Duration::from_millis(20));
    }
    // What an upload cut by the kill leaves beside the original.
    let temp = src.join(format!(".v.mp4.prewarm-{tag}.tmp"));
    std::fs::write(&temp, &original[..original.len() / 2]).unwrap();
    assert!(scratch[0].exists(), "the killed run's scratch directory is there to sweep");

    let out = run(optimize(home.path(), &src, None).arg("--json"));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (summary["scratch_dirs_swept"].as_u64(), summary["temporary_objects_swept"].as_u64()),
        (Some(1), Some(1)),
        "{summary}"
    );
    let results = read_results(&home.path().join("results.jsonl"));
    assert_eq!(results.len(), 1, "the temporary object was taken as a source: {results:?}");
    assert_eq!(results[0]["outcome"], "optimized");
    assert!(!temp.exists() && !scratch[0].exists());
    assert_eq!(std::fs::read_dir(&src).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(home.path().join("work")).unwrap().count(), 0);
}

#[test]
fn damaged_sources_are_not_replaced_in_place() {
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    let path = src.join("damaged.mp4");
    ffmpeg(
        &with(&["-f", "lavfi", "-i", &pattern("320x180", 25, 2.0), "-g", "10", "-movflags", "+faststart"], LOSSLESS),
        &path,
    );
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at..at + 4000].iter_mut().for_each(|b| *b = 0);
    std::fs::write(&path, &bytes).unwrap();
    let out = run(&mut optimize(home.path(), &src, None));
    assert_eq!(out.status.code(), Some(3));
    let r = &read_results(&home.path().join("results.jsonl"))[0];
    assert_eq!(r["outcome"], "damaged", "{r}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "a damaged original was replaced");
    // Asked for: replaced.
    let out = run(optimize(home.path(), &src, None).arg("--replace-damaged"));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn validate_flags_derivatives_a_browser_does_not_show_as_promised() {
    let home = tempfile::tempdir().unwrap();
    let (cdn, sources) = (home.path().join("cdn"), home.path().join("sources"));
    let d = cdn.join("m");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> =
            ["-f", "lavfi", "-i", &pattern("320x180", 25, 2.0), "-c:v", "libx264"].map(String::from).into();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let make = |name: &str, extra: &[&str]| {
        let args = base(extra);
        ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>(), &d.join(name));
        ffmpeg(&with(&["-f", "lavfi", "-i", &pattern("640x360", 25, 2.0)], LOSSLESS), &sources.join(name));
    };
    let fast = ["-movflags", "+faststart"];
    make("good.mp4", &with(&["-pix_fmt", "yuv420p"], &fast));
    make("flat.mp4", &with(&["-pix_fmt", "yuv420p"], &fast));
    ffmpeg(
        &[
            "-i",
            d.join("flat.mp4").to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            "-movflags",
            "+faststart",
        ],
        &d.join("rotated.mp4"),
    );
    std::fs::rename(sources.join("flat.mp4"), sources.join("rotated.mp4")).unwrap();
    std::fs::remove_file(d.join("flat.mp4")).unwrap();
    make("high10.mp4", &with(&["-pix_fmt", "yuv420p10le"], &fast));
    make("high444.mp4", &with(&["-pix_fmt", "yuv444p"], &fast));
    make("wide-pixels.mp4", &with(&["-pix_fmt", "yuv420p", "-vf", "setsar=4/3"], &fast));
    make("moov-last.mp4", &["-pix_fmt", "yuv420p"]);
    make(
        "pq8.mp4",
        &with(
            &[
                "-pix_fmt",
                "yuv420p",
                "-color_primaries",
                "bt2020",
                "-color_trc",
                "smpte2084",
                "-colorspace",
                "bt2020nc",
            ],
            &fast,
        ),
    );
    let rclone = prewarm::util::lab::find_program("rclone").expect("rclone installed");
    let origin = prewarm::util::lab::start_origin(&rclone, &cdn).unwrap();
    let common = [
        "--plugin",
        "template",
        "--base-url",
        &origin.url,
        "--set",
        "url={base}/{derivative}/{path}",
        "--derivatives",
        "m=320x240",
    ];
    let warm = home.path().join("w.jsonl");
    let out = run(prewarm(home.path())
        .args(["warm", "--source"])
        .arg(&sources)
        .args(common)
        .args(["--progress", "never", "--results"])
        .arg(&warm));
    assert_eq!(out.status.code(), Some(0));
    let checked = home.path().join("v.jsonl");
    let out = run(prewarm(home.path())
        .args(["validate", "--results"])
        .arg(&warm)
        .arg("--source")
        .arg(&sources)
        .args(common)
        .arg("--results-out")
        .arg(&checked));
    assert_eq!(out.status.code(), Some(3));
    let results = by_path(&read_results(&checked));
    let failed = |name: &str| -> Vec<String> {
        results[name]["failed"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(results["good.mp4"]["verdict"], "ok", "{}", results["good.mp4"]);
    assert_eq!(results["good.mp4"]["fast_start"], true);
    for (name, check, words) in [
        ("rotated.mp4", "dimensions", "displayed 180x320 (stored 320x180, rotation"),
        ("high10.mp4", "profile", "h264 High 10 (yuv420p10le, 10-bit)"),
        ("high444.mp4", "profile", "High 4:4:4 Predictive (yuv444p"),
        ("wide-pixels.mp4", "dimensions", "displayed 427x180"),
        ("moov-last.mp4", "fast_start", "moov after mdat"),
        ("pq8.mp4", "color", "8-bit video labelled smpte2084"),
    ] {
        assert_eq!(failed(name), [check], "{}", results[name]);
        assert!(results[name]["problems"][0].as_str().unwrap().contains(words), "{}", results[name]);
    }
}
