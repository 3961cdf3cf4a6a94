//! Settings from a config file, `PREWARM_*` variables and flags (issue 13):
//! flag > environment > file > default, shown by `config show` with where
//! each value came from and no secret in sight, used by a real warm
//! through the nginx cache; a bad file names its path and line; derivative
//! options reach the plugin.

use std::path::{Path, PathBuf};
use std::process::Output;

use prewarm::util::lab;
use prewarm_e2e::{prewarm, read_results, run, write_listing};
use serde_json::Value;

fn write(home: &Path, name: &str, text: &str) -> PathBuf {
    let path = home.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `prewarm config show --json ARGS` with `env`, parsed.
fn show(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let out = run(prewarm(home).args(["config", "show", "--json"]).args(args).envs(env.iter().copied()));
    assert_eq!(out.status.code(), Some(0), "config show failed");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

const FILE: &str = r#"concurrency = 7
allow-host = ["file.example"]
[settings]
url = "{base}/{path}?from=file&w={width}"
[derivatives.small]
width = 320
height = 240
"#;

#[test]
fn a_flag_beats_the_environment_which_beats_the_file() {
    let home = tempfile::tempdir().unwrap();
    let file = write(home.path(), "p.toml", FILE);
    let file_arg = ["--config", file.to_str().unwrap()];
    let at = |line: u64| (file.to_str().unwrap().to_string(), line);
    let from_file = show(home.path(), &[], &file_arg);
    let env = [
        ("PREWARM_CONCURRENCY", "9"),
        ("PREWARM_ALLOW_HOST", "env.example"),
        ("PREWARM_DERIVATIVES", "mobile=854x480,tablet=1280x720"),
        ("PREWARM_SETTING_URL", "{base}/{path}?from=env"),
    ];
    let from_env = show(home.path(), &env, &file_arg);
    let flags = [
        "--concurrency",
        "11",
        "--allow-host",
        "flag.example",
        "--derivatives",
        "desktop=1920x1080",
        "--set",
        "url={base}/{path}?from=flag",
    ];
    let from_flags = show(home.path(), &env, &[&file_arg[..], &flags[..]].concat());

    let option = |v: &Value, key: &str| v["options"][key].clone();
    let origin = |o: &Value| match o["source"].as_str().unwrap() {
        "file" => format!("file {}:{}", o["file"].as_str().unwrap(), o["line"]),
        "env" => format!("env {}", o["env"].as_str().unwrap()),
        s => s.to_string(),
    };
    let file_at = |line| format!("file {}:{}", at(line).0, at(line).1);
    // A number.
    assert_eq!(option(&from_file, "concurrency")["value"], 7);
    assert_eq!(origin(&option(&from_file, "concurrency")), file_at(1));
    assert_eq!(option(&from_env, "concurrency")["value"], 9);
    assert_eq!(origin(&option(&from_env, "concurrency")), "env PREWARM_CONCURRENCY");
    assert_eq!(option(&from_flags, "concurrency")["value"], 11);
    assert_eq!(origin(&option(&from_flags, "concurrency")), "flag");
    // Lists: the stronger layer's list replaces the weaker's whole.
    assert_eq!(option(&from_file, "allow-host")["value"], serde_json::json!(["file.example"]));
    assert_eq!(option(&from_env, "allow-host")["value"], serde_json::json!(["env.example"]));
    assert_eq!(option(&from_flags, "allow-host")["value"], serde_json::json!(["flag.example"]));
    assert_eq!(option(&from_file, "derivatives")["value"], serde_json::json!(["small=320x240"]));
    assert_eq!(origin(&option(&from_file, "derivatives")), file_at(5));
    assert_eq!(option(&from_env, "derivatives")["value"], serde_json::json!(["mobile=854x480,tablet=1280x720"]));
    assert_eq!(origin(&option(&from_env, "derivatives")), "env PREWARM_DERIVATIVES");
    assert_eq!(option(&from_flags, "derivatives")["value"], serde_json::json!(["desktop=1920x1080"]));
    // A plugin setting, key by key.
    let url = |v: &Value| (v["settings"]["url"]["value"].as_str().unwrap().to_string(), origin(&v["settings"]["url"]));
    assert_eq!(url(&from_file), ("{base}/{path}?from=file&w={width}".into(), file_at(4)));
    assert_eq!(url(&from_env), ("{base}/{path}?from=env".into(), "env PREWARM_SETTING_URL".into()));
    assert_eq!(url(&from_flags), ("{base}/{path}?from=flag".into(), "flag".into()));
    // What nothing set is the default.
    assert_eq!(option(&from_flags, "retries")["value"], 3);
    assert_eq!(origin(&option(&from_flags, "retries")), "default");
    // A typed flag drops what it conflicts with, from the environment as from the file.
    let both = show(home.path(), &[("PREWARM_SOURCE", "s3:env")], &["--listing", "saved.json"]);
    assert_eq!(origin(&option(&both, "listing")), "flag");
    assert!(both["options"].get("source").is_none(), "{both}");
    // PREWARM_CONFIG names the file when --config does not.
    let by_env = show(home.path(), &[("PREWARM_CONFIG", file.to_str().unwrap())], &[]);
    assert_eq!(option(&by_env, "concurrency")["value"], 7);
}

#[test]
fn a_real_warm_uses_what_the_file_says() {
    let home = tempfile::tempdir().unwrap();
    let media = home.path().join("media");
    lab::make_sample_video(&media.join("clips/a.mp4"), 1, "320x240").unwrap();
    lab::make_sample_video(&media.join("b.mp4"), 1, "320x240").unwrap();
    let rclone = lab::find_program("rclone").expect("rclone installed");
    let _origin = lab::start_origin(&rclone, &media).unwrap();
    let cache = lab::start_cache(&home.path().join("nginx"), &_origin.url).unwrap();
    let text = "plugin = \"template\"\nbase-url = \"CACHE\"\nsource = \"MEDIA\"\nextensions = [\"mp4\"]\n\
                concurrency = 7\n[settings]\nurl = \"{base}/{path}?from=file&w={width}\"\n\
                cache-header = \"x-cache-status\"\n[derivatives.small]\nwidth = 320\nheight = 240\n\
                [warm]\nprogress = \"never\"\n";
    let file = write(
        home.path(),
        "prewarm.toml",
        &text.replace("CACHE", &cache.url).replace("MEDIA", media.to_str().unwrap()),
    );
    let warm = |name: &str, env: &[(&str, &str)], flags: &[&str]| -> (Vec<Value>, Value) {
        let (results, report) = (home.path().join(format!("{name}.jsonl")), home.path().join(format!("{name}.json")));
        let out = run(prewarm(home.path())
            .args(["warm", "--config", file.to_str().unwrap(), "--results", results.to_str().unwrap()])
            .args(["--report", report.to_str().unwrap()])
            .args(flags)
            .envs(env.iter().copied()));
        assert_eq!(out.status.code(), Some(0), "warm {name} failed");
        (read_results(&results), serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap())
    };

    let (rows, summary) = warm("file", &[], &[]);
    assert_eq!(rows.len(), 2, "two objects, the file's one derivative: {rows:?}");
    for r in &rows {
        assert_eq!(r["derivative"], "small");
        assert_eq!(r["outcome"], "warm", "{r}");
        assert_eq!(r["cache"], "miss", "read from X-Cache-Status, as the file's setting says: {r}");
        assert!(r["url"].as_str().unwrap().ends_with("?from=file&w=320"), "{r}");
    }
    assert_eq!(summary["runs"][0]["concurrency"], 7);
    // The same URLs again: now cached, which proves they were the ones warmed.
    let (second, _) = warm("second", &[], &[]);
    assert!(second.iter().all(|r| r["cache"] == "hit"), "{second:?}");

    let (rows, summary) =
        warm("env", &[("PREWARM_SETTING_URL", "{base}/{path}?from=env"), ("PREWARM_CONCURRENCY", "2")], &[]);
    assert!(rows.iter().all(|r| r["url"].as_str().unwrap().ends_with("?from=env") && r["cache"] == "miss"), "{rows:?}");
    assert_eq!(summary["runs"][0]["concurrency"], 2);
    let (rows, _) =
        warm("flag", &[("PREWARM_SETTING_URL", "{base}/{path}?from=env")], &["--set", "url={base}/{path}?from=flag"]);
    assert!(rows.iter().all(|r| r["url"].as_str().unwrap().ends_with("?from=flag")), "{rows:?}");
}

#[test]
fn a_bad_file_names_its_path_and_line() {
    let home = tempfile::tempdir().unwrap();
    let cases = [
        ("concurrency = 4\n\nnope = 1\n", "line 3: unknown key `nope`"),
        ("[warm]\nconcurrency = 4\nthreshold = \"1MB\"\n", "line 3: unknown key `threshold` in [warm]"),
        ("concurrency = \"x\"\n", "line 1: `concurrency`: invalid value 'x'"),
        ("[warm]\n\nretries = -1\n", "line 3: `retries`: invalid value '-1'"),
        ("json = \"yes\"\n", "line 1: `json`: expected true or false, found a string"),
        ("include = { a = 1 }\n", "line 1: `include`: expected a list of strings or numbers, found a table"),
        ("[settings]\nurl = [\"a\"]\n", "line 2: setting `url`: expected a string or a number"),
        ("concurrency = 1\nconcurrency = 2\n", "line 2: duplicate key"),
    ];
    for (text, needle) in cases {
        let file = write(home.path(), "bad.toml", text);
        for args in [&["warm", "--plugin", "template", "--base-url", "http://127.0.0.1:9"][..], &["config", "show"]] {
            let out = run(prewarm(home.path()).args(args).arg("--config").arg(&file).args(["--listing", "-"]));
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
            assert!(err.starts_with(&format!("config error: {} line ", file.display())), "{text:?}: {err}");
            assert!(err.contains(needle), "{text:?}: expected {needle:?} in {err}");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
        }
    }
    let wrong = write(home.path(), "wrong.toml", "concurrency = \"x\"\n");
    let err = stderr(&run(prewarm(home.path()).args(["config", "show", "--config"]).arg(&wrong)));
    assert!(err.ends_with("(expected a whole number)"), "{err}");
    let out = run(prewarm(home.path()).args(["list", "--listing", "-"]).env("PREWARM_CONFIG", "/nonexistent/p.toml"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("config error: /nonexistent/p.toml: cannot read the config file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_show_never_shows_a_secret() {
    let home = tempfile::tempdir().unwrap();
    let hostile = Path::new(prewarm::plugin::GUEST_ARTIFACT_DIR).join("hostile.wasm");
    let secret_file = write(home.path(), "token.txt", "filetok-6620\n");
    let file = write(
        home.path(),
        "p.toml",
        &format!(
            "base-url = \"https://user:pwtok-4410@cdn.example.com\"\npushgateway = \"https://ops:pgtok-3381@push.example.com\"\n\
             [settings]\ntoken = \"sectok-1177\"\ntarget = \"file:{}\"\nmode = \"env:PREWARM_TEST_MODE\"\n",
            secret_file.display()
        ),
    );
    let secrets = [
        "pwtok-4410",
        "pgtok-3381",
        "sectok-1177",
        "filetok-6620",
        "envtok-9931",
        "hdrtok-5521",
        "vartok-7730",
        "rcltok-8812",
    ];
    for json in [true, false] {
        let mut cmd = prewarm(home.path());
        cmd.args(["config", "show", "--config"]).arg(&file).arg("--plugin").arg(&hostile);
        // Credential headers, a variant's credential and an rclone header flag.
        cmd.args([
            "--header",
            "X-Api-Key: hdrtok-5521",
            "--variant",
            "p=Authorization: Bearer vartok-7730; X-Device: phone",
        ]);
        cmd.arg("--rclone-flag=--header=Authorization: Bearer rcltok-8812");
        cmd.env("PREWARM_TEST_MODE", "envtok-9931").env("PREWARM_SETTING_TOKEN", "envtok-9931");
        if json {
            cmd.arg("--json");
        }
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(0));
        let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        for s in secrets {
            assert!(!shown.contains(s), "{s} shown: {shown}");
        }
        assert!(shown.contains("https://REDACTED@cdn.example.com"), "{shown}");
        assert!(shown.contains(&format!("file:{}", secret_file.display())), "a reference shows as written: {shown}");
        assert!(shown.contains("env:PREWARM_TEST_MODE"), "{shown}");
        assert!(shown.contains("X-Device: phone"), "a variant's other headers show: {shown}");
        if json {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            // The environment's token beats the file's, and is still hidden.
            assert_eq!(v["settings"]["token"]["value"], "REDACTED");
            assert_eq!(v["settings"]["token"]["env"], "PREWARM_SETTING_TOKEN");
        }
    }
}

#[test]
fn derivative_options_reach_the_plugin() {
    let home = tempfile::tempdir().unwrap();
    let listing = home.path().join("l.json");
    write_listing(&listing, &[("v/a.mp4", 1000)]);
    let file = write(
        home.path(),
        "p.toml",
        "plugin = \"cloudflare-media\"\nbase-url = \"https://www.example.com\"\n\
         [derivatives.desktop]\n[derivatives.poster]\nwidth = 1280\nheight = 720\nmode = \"frame\"\ntime = \"5s\"\n",
    );
    let planned = |args: &[&str]| -> Vec<(String, String)> {
        let out = run(prewarm(home.path())
            .args(["warm", "--dry-run", "--json", "--config", file.to_str().unwrap(), "--listing"])
            .arg(&listing)
            .args(args));
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| (v["derivative"].as_str().unwrap().to_string(), v["url"].as_str().unwrap().to_string()))
            .collect()
    };
    let media = |opts: &str| format!("https://www.example.com/cdn-cgi/media/{opts}/https://www.example.com/v/a.mp4");
    assert_eq!(
        planned(&["--derivatives", "thumb=640x360:mode=frame,time=2s"]),
        [("thumb".to_string(), media("width=640,height=360,fit=contain,mode=frame,time=2s"))]
    );
    assert_eq!(
        planned(&[]),
        [
            ("desktop".to_string(), media("width=1920,height=1080,fit=contain")),
            ("poster".to_string(), media("width=1280,height=720,fit=contain,mode=frame,time=5s")),
        ]
    );
    // A default's name with options keeps its size.
    assert_eq!(
        planned(&["--derivatives", "mobile,desktop:mode=frame,time=1s"]),
        [
            ("mobile".to_string(), media("width=854,height=640,fit=contain")),
            ("desktop".to_string(), media("width=1920,height=1080,fit=contain,mode=frame,time=1s")),
        ]
    );
}

#[test]
fn a_bad_variable_or_a_late_error_says_where_the_value_came_from() {
    let home = tempfile::tempdir().unwrap();
    let warm = ["warm", "--listing", "-", "--plugin", "template", "--base-url", "http://127.0.0.1:9"];
    let out = run(prewarm(home.path()).args(warm).env("PREWARM_CONCURRENCY", "many"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("config error: PREWARM_CONCURRENCY: invalid value 'many' for '--concurrency <N>'"),
        "{}",
        stderr(&out)
    );
    // Found after parsing, by the command itself: the error still says where.
    let file = write(home.path(), "late.toml", "[warm]\ntimeout = \"soon\"\n");
    let out = run(prewarm(home.path()).args(warm).arg("--config").arg(&file));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("error: --timeout `soon`: not a duration"), "{err}");
    assert!(err.ends_with(&format!("(--timeout from file {}:2)", file.display())), "{err}");
    let out = run(prewarm(home.path()).args(warm).env("PREWARM_CONCURRENCY", "0"));
    assert!(stderr(&out).ends_with("(--concurrency from env PREWARM_CONCURRENCY)"), "{}", stderr(&out));
    // Switches read yes/no and 1/0 too.
    let v = show(home.path(), &[("PREWARM_DRY_RUN", "yes"), ("PREWARM_VERIFY", "0")], &[]);
    assert_eq!(
        (&v["options"]["dry-run"]["value"], &v["options"]["verify"]["value"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
}

#[test]
fn the_man_page_lists_the_variables() {
    let home = tempfile::tempdir().unwrap();
    let out = run(prewarm(home.path()).args(["man", "--dir"]).arg(home.path().join("man")));
    assert_eq!(out.status.code(), Some(0));
    let page = std::fs::read_to_string(home.path().join("man/prewarm-warm.1")).unwrap();
    let environment = &page[page.find(".SH ENVIRONMENT").expect("an ENVIRONMENT section")..];
    for var in ["PREWARM_CONFIG", "PREWARM_SETTING_", "PREWARM_CONCURRENCY", "PREWARM_BASE_URL", "PREWARM_RCLONE"] {
        assert!(environment.contains(&format!("\\fB{var}")), "{var} missing: {environment}");
    }
    assert_eq!(environment.matches("\\fBPREWARM_RCLONE\\fR").count(), 1, "listed once");
}

#[test]
fn list_validate_and_optimize_read_the_file_too() {
    let home = tempfile::tempdir().unwrap();
    let listing = home.path().join("l.json");
    write_listing(&listing, &[("a/v1.mp4", 1000), ("a/v2.mov", 3_000_000), ("b/v3.mp4", 5000)]);
    let file = write(
        home.path(),
        "p.toml",
        &format!(
            "listing = \"{}\"\nextensions = [\"mp4\"]\n[list]\njson = true\nthreshold = \"4KiB\"\n\
             [validate]\nsample = 0.5\nderivatives = [\"mobile\"]\n[optimize]\nthreshold = \"1MB\"\ndest = \"/tmp/out\"\n",
            listing.display()
        ),
    );
    let list = |env: &[(&str, &str)], flags: &[&str]| -> Value {
        let out = run(prewarm(home.path()).args(["list", "--config"]).arg(&file).args(flags).envs(env.iter().copied()));
        assert_eq!(out.status.code(), Some(0));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let summary =
        |v: &Value| (v["summary"]["objects"].as_u64().unwrap(), v["summary"]["over_threshold_count"].as_u64().unwrap());
    assert_eq!(summary(&list(&[], &[])), (2, 1), "mp4 only, one at or over 4KiB");
    assert_eq!(summary(&list(&[("PREWARM_THRESHOLD", "10KiB")], &[])), (2, 0));
    assert_eq!(summary(&list(&[("PREWARM_THRESHOLD", "10KiB")], &["--extensions", "mov"])), (1, 1));

    let validate = show(home.path(), &[], &["--command", "validate", "--config", file.to_str().unwrap()]);
    assert_eq!(validate["options"]["sample"]["value"], "0.5");
    assert_eq!(validate["options"]["derivatives"]["value"], serde_json::json!(["mobile"]));
    let optimize = show(home.path(), &[], &["--command", "optimize", "--config", file.to_str().unwrap(), "--in-place"]);
    assert_eq!(optimize["options"]["threshold"]["value"], "1MB");
    assert!(optimize["options"].get("dest").is_none(), "--in-place drops the file's dest: {optimize}");
    assert_eq!(optimize["options"]["in-place"]["value"], true);
}
