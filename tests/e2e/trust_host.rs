//! Trust at prewarm's own edges (issue 19): rclone children that die with
//! prewarm and keep credentials out of every argv; rclone secrets out of
//! every output; `--resume` that leaves a file it does not own alone; a
//! compiled-plugin cache that runs nothing it did not write; table and
//! memory limits counted over the whole instance; durations that cannot
//! overflow. The plugins that grow tables and memories are WAT, made a
//! component with wit-component.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prewarm_e2e::fault_server::FaultServer;
use prewarm_e2e::{prewarm, read_results, run, write_listing};

/// `(pid, ppid, state, argv joined by spaces)` of every process.
fn processes() -> Vec<(u32, u32, char, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let mut fields = after.split(' ');
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let argv = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        out.push((pid, ppid, state, argv));
    }
    out
}

/// Running (not zombie) processes, by pid.
fn alive(pid: u32) -> bool {
    processes().iter().any(|(p, _, state, _)| *p == pid && *state != 'Z')
}

/// Wait (20 s at most) for a child of `parent` whose argv holds `word`.
fn wait_for_child(parent: u32, word: &str) -> (u32, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some((pid, _, _, argv)) =
            processes().into_iter().find(|(_, ppid, s, argv)| *ppid == parent && *s != 'Z' && argv.contains(word))
        {
            return (pid, argv);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no child of {parent} running `{word}` within 20 s");
}

/// A TCP server that accepts and never answers: rclone's webdav backend
/// waits on it (5 minutes by default) while the test looks around.
fn silent_server() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Kill prewarm with SIGKILL (no destructor runs) and check `child` is gone
/// within 2 s.
fn kill_and_check(prewarm: &mut std::process::Child, child: u32, what: &str) {
    prewarm.kill().unwrap();
    prewarm.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(child) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(child), "{what} (pid {child}) still running 2 s after prewarm was killed");
}

#[test]
fn rclone_lsjson_dies_with_prewarm_and_gets_secret_flags_by_environment() {
    let (_server, port) = silent_server();
    let home = tempfile::tempdir().unwrap();
    let mut child = prewarm(home.path())
        .args(["warm", "--plugin", "template", "--base-url", "http://127.0.0.1:9", "--progress", "never"])
        .arg(format!("--source=:webdav,url='http://127.0.0.1:{port}/',bearer_token=CONN-t19-lsjson:videos"))
        .arg("--rclone-flag=--s3-secret-access-key=FLAG-t19-lsjson")
        .arg("--results")
        .arg(home.path().join("r.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lsjson, argv) = wait_for_child(child.id(), "lsjson");
    assert!(!argv.contains("-t19-lsjson"), "a secret is in rclone's argv: {argv}");
    let environ = std::fs::read(format!("/proc/{lsjson}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("RCLONE_S3_SECRET_ACCESS_KEY=FLAG-t19-lsjson"), "the flag reached rclone");
    // The connection string became a remote defined by the environment.
    let name = argv.split(' ').find_map(|a| a.strip_suffix(":videos")).expect("the remote in argv");
    let var = format!("RCLONE_CONFIG_{}_BEARER_TOKEN=CONN-t19-lsjson", name.to_ascii_uppercase());
    assert!(environ.contains(&var), "{var} missing");
    kill_and_check(&mut child, lsjson, "rclone lsjson");
}

#[test]
fn rclone_rcd_dies_with_prewarm_mid_upload_and_keeps_its_password_out_of_argv() {
    let (_server, port) = silent_server();
    let cdn = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    write_listing(&home.path().join("l.json"), &[("a.mp4", 10)]);
    let mut child = prewarm(home.path())
        .args(["warm", "--plugin", "template", "--base-url", &format!("{}/ok", cdn.url), "--progress", "never"])
        .args(["--derivatives", "mobile", "--listing"])
        .arg(home.path().join("l.json"))
        .arg("--results")
        .arg(home.path().join("r.jsonl"))
        .arg(format!("--upload=:webdav,url='http://127.0.0.1:{port}/':runs"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (rcd, argv) = wait_for_child(child.id(), " rcd");
    // The upload is under way (rclone waits on the silent server): no
    // argument of any of prewarm's children holds the password.
    let environ = String::from_utf8_lossy(&std::fs::read(format!("/proc/{rcd}/environ")).unwrap()).into_owned();
    let pass = environ.split('\0').find_map(|v| v.strip_prefix("RCLONE_RC_PASS=")).expect("the password by env");
    assert!(pass.len() >= 16, "a random password");
    // Other programs on the machine may run their own rcd: look at
    // prewarm's children.
    for (pid, _, _, argv) in processes().into_iter().filter(|(_, ppid, _, _)| *ppid == child.id()) {
        assert!(!argv.contains("--rc-pass") && !argv.contains(pass), "pid {pid} shows the rc password: {argv}");
    }
    assert!(!argv.contains("--rc-user"), "{argv}");
    kill_and_check(&mut child, rcd, "rclone rcd");
}

#[test]
fn rclone_secrets_stay_out_of_errors_reports_and_config_show() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let source = ":s3,provider=Other,access_key_id=AKID-t19,secret_access_key=TOPSECRET-t19,endpoint=http://127.0.0.1:9:bucket/v";
    let out = run(prewarm(dir)
        .current_dir(dir)
        .args(["-vv", "warm", "--plugin", "template", "--base-url", "http://127.0.0.1:9", "--progress", "never"])
        .args(["--source", source, "--rclone-flag=--s3-session-token=SESSION-t19", "--rclone-flag=--retries=1"])
        .arg("--rclone-flag=--low-level-retries=1")
        .args(["--results", "r.jsonl", "--report", "r.json", "--markdown", "r.md", "--html", "r.html"]));
    assert_ne!(out.status.code(), Some(0), "the listing cannot succeed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("secret_access_key=REDACTED"), "the error names the source, redacted: {stderr}");
    let show = run(prewarm(dir).env("PREWARM_SOURCE", ":s3,secret_access_key=TOPSECRET-t19:bucket").args([
        "config",
        "show",
        "--rclone-flag=--s3-secret-access-key=FLAGSECRET-t19",
    ]));
    let show_json = run(prewarm(dir)
        .env("PREWARM_SOURCE", ":s3,secret_access_key=TOPSECRET-t19:bucket")
        .args(["config", "show", "--json", "--rclone-flag", "--s3-secret-access-key", "--rclone-flag"])
        .arg("FLAGSECRET-t19"));
    assert_eq!(show.status.code(), Some(0));
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains("REDACTED") && shown.contains(":s3,"), "{shown}");
    let mut texts = vec![stderr.into_owned(), String::from_utf8_lossy(&out.stdout).into_owned()];
    for o in [&show, &show_json] {
        texts.push(String::from_utf8_lossy(&o.stdout).into_owned());
        texts.push(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    for f in ["r.jsonl", "r.json", "r.md", "r.html"] {
        texts.push(std::fs::read_to_string(dir.join(f)).unwrap_or_default());
    }
    for text in &texts {
        for secret in ["AKID-t19", "TOPSECRET-t19", "SESSION-t19", "FLAGSECRET-t19"] {
            assert!(!text.contains(secret), "{secret} shown:\n{text}");
        }
    }
    let summary = std::fs::read_to_string(dir.join("r.json")).unwrap();
    assert!(summary.contains("secret_access_key=REDACTED"), "the summary names the source: {summary}");
}

#[test]
fn resume_refuses_a_file_that_is_not_a_results_file_and_leaves_it_alone() {
    let cdn = FaultServer::start();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    write_listing(&dir.join("l.json"), &[("a.mp4", 10)]);
    let warm = |results: &str, extra: &[&str]| {
        run(prewarm(dir)
            .current_dir(dir)
            .args(["warm", "--plugin", "template", "--base-url", &format!("{}/ok", cdn.url), "--progress", "never"])
            .args(["--derivatives", "mobile", "--listing", "l.json", "--results", results])
            .args(extra))
    };
    // A pretty-printed summary of a real run, and a notes file.
    assert_eq!(warm("r.jsonl", &["--report", "summary.json"]).status.code(), Some(0));
    std::fs::write(dir.join("notes.txt"), "first line\nimportant data without a trailing newline").unwrap();
    for file in ["notes.txt", "summary.json"] {
        let before = std::fs::read(dir.join(file)).unwrap();
        let out = warm(file, &["--resume"]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(file) && stderr.contains("not a prewarm results file"), "{stderr}");
        assert_eq!(std::fs::read(dir.join(file)).unwrap(), before, "{file} changed");
    }
    // A real results file, and an empty one, resume.
    std::fs::write(dir.join("empty.jsonl"), "").unwrap();
    assert_eq!(warm("empty.jsonl", &["--resume"]).status.code(), Some(0));
    assert_eq!(warm("r.jsonl", &["--resume"]).status.code(), Some(0));
    assert_eq!(read_results(&dir.join("r.jsonl")).len(), 1, "the warm pair was skipped");
}

#[test]
fn a_swapped_compiled_plugin_is_recompiled_not_run() {
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache/components");
    let inspect = |name: &str| run(prewarm(home.path()).args(["plugins", "inspect", name]));
    let entries = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect();
        v.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        v
    };
    assert!(inspect("template").status.success());
    let template = entries().pop().unwrap();
    assert!(inspect("akamai-ivm").status.success());
    let akamai = entries().into_iter().find(|p| *p != template).unwrap();
    std::fs::copy(&akamai, &template).unwrap();
    let out = inspect("template");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("template "), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match its plugin"));
    // Replaced by a good entry: the next run is quiet.
    assert!(inspect("template").stderr.is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache), 0o700);
        assert_eq!(mode(&cache.join("cache.key")), 0o600);
        // A cache others may write is not used, and the user is told once.
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(&template, b"planted").unwrap();
        let out = inspect("template");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("template "));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.matches("not using the compiled-plugin cache").count(), 1, "{stderr}");
        assert_eq!(std::fs::read(&template).unwrap(), b"planted", "nothing written there either");
    }
}

#[test]
fn a_duration_past_30_days_is_a_usage_error_not_a_panic() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    write_listing(&dir.join("l.json"), &[("a.mp4", 10)]);
    std::fs::write(dir.join("p.toml"), "[warm]\nheader-timeout = \"31days\"\n").unwrap();
    let huge = "18446744073709551615s";
    /// Flags, environment, and the flag the error names.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (&["--timeout", huge], &[], "--timeout"),
        (&["--header-timeout", "31d"], &[], "--header-timeout"),
        (&[], &[("PREWARM_TIMEOUT", "9999999h")], "--timeout"),
        (&["--config", "p.toml"], &[], "--header-timeout"),
    ];
    for (flags, env, named) in cases {
        let mut cmd = prewarm(dir);
        cmd.current_dir(dir)
            .args(["warm", "--plugin", "template", "--base-url", "http://127.0.0.1:9", "--listing", "l.json"])
            .args(["--progress", "never"])
            .args(flags)
            .envs(env.iter().copied());
        let out = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(named) && stderr.contains("30 days"), "{stderr}");
    }
    let out = run(prewarm(dir).args(["optimize", "--listing", "l.json", "--root", "/x", "--in-place"]).args([
        "--threshold",
        "1",
        "--encode-timeout",
        huge,
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--encode-timeout"));
}

/// The WIT of prewarm's plugins.
fn strategy_wit() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/strategy.wit")
}

/// A strategy component from a core module in WAT whose `warm-request`
/// runs `attack`; every other function answers harmlessly from static
/// data. wit-component wraps it in the component model, as
/// `wasm32-wasip2` builds do.
fn wat_plugin(name: &str, attack: &str) -> Vec<u8> {
    // Static answers (little-endian): the plugin-info record at 1024, its
    // strings at 2048; zeros elsewhere read as an ok result, an empty
    // list, the first enum case.
    let mut info = Vec::new();
    let strings = [(2048u32, name), (2112, "0.0.1"), (2176, "grows a table or memory past its limit")];
    for (ptr, s) in strings {
        info.extend(ptr.to_le_bytes());
        info.extend((s.len() as u32).to_le_bytes());
    }
    let data: String = info.iter().map(|b| format!("\\{b:02x}")).collect();
    let strings: String =
        strings.iter().map(|(ptr, s)| format!("(data (i32.const {ptr}) \"{s}\")\n")).collect::<Vec<_>>().join("");
    let wat = format!(
        r#"(module
  (memory (export "memory") 2)
  (memory $second 1)
  (table $t 1 funcref)
  (global $heap (mut i32) (i32.const 8192))
  (data (i32.const 1024) "{data}")
  {strings}
  ;; size-methods: a list of one `warm-content-length` at 1232.
  (data (i32.const 1232) "\e0\04\00\00\01\00\00\00")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 1)))))
    (local.get $p))
  (func (export "prewarm:strategy/strategy@0.2.0#info") (result i32) (i32.const 1024))
  (func (export "prewarm:strategy/strategy@0.2.0#configure") (param i32 i32 i32 i32) (result i32) (i32.const 1200))
  (func (export "prewarm:strategy/strategy@0.2.0#response-headers") (result i32) (i32.const 1216))
  (func (export "prewarm:strategy/strategy@0.2.0#warm-request")
    (param i32 i32 i64 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    {attack}
    (i32.const 1300))
  (func (export "prewarm:strategy/strategy@0.2.0#size-methods") (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    (i32.const 1232))
  (func (export "prewarm:strategy/strategy@0.2.0#classify") (param i32) (result i32) (i32.const 1400))
)"#
    );
    let mut module = wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"));
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_file(strategy_wit()).unwrap();
    let world = resolve.select_world(&[package], Some("plugin")).unwrap();
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    wit_component::ComponentEncoder::default().validate(true).module(&module).unwrap().encode().unwrap()
}

/// One `table.grow` of 40 million elements: wasmtime 48 charges a unit of
/// fuel per element, which this fits in, and without a limit the host
/// would allocate and zero some 320 MiB for it.
const TABLE_BOMB: &str = "(drop (table.grow $t (ref.null func) (i32.const 40000000)))";
/// 20 MiB in each of two memories: each is under the 32 MiB cap, together
/// they are not.
const TWO_MEMORIES: &str = "(drop (memory.grow (i32.const 320))) (drop (memory.grow $second (i32.const 320)))
    (if (i32.eq (memory.size $second) (i32.const 1)) (then unreachable))";

#[test]
fn table_and_memory_growth_past_the_limits_fails_the_pair_as_a_plugin_error() {
    use prewarm::plugin::{Derivative, ObjectRef, PluginError, PluginRuntime, RuntimeOptions, TrapKind};
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let d = Derivative { name: "mobile".into(), width: Some(854), height: None, options: vec![] };
    for (name, attack, kind) in
        [("table-bomb", TABLE_BOMB, TrapKind::TableLimit), ("two-memories", TWO_MEMORIES, TrapKind::MemoryLimit)]
    {
        let plugin = runtime.load_bytes(name, &wat_plugin(name, attack)).unwrap();
        assert_eq!(plugin.info().name, name);
        let mut i = plugin.instantiate().unwrap();
        i.configure("http://127.0.0.1", &[]).unwrap();
        match i.warm_request(ObjectRef { path: "a.mp4", size: 1 }, &d) {
            Err(PluginError::Trap { kind: k, .. }) => assert_eq!(k, kind, "{name}"),
            other => panic!("{name}: expected a trap, got {other:?}"),
        }
        // The harmless calls still work on a rebuilt instance.
        assert!(i.size_methods(&d).is_ok());
    }

    // Through the binary: each pair fails with kind `plugin`, and the
    // host's memory stays small.
    let home = tempfile::tempdir().unwrap();
    let wasm = home.path().join("table-bomb.wasm");
    std::fs::File::create(&wasm).unwrap().write_all(&wat_plugin("table-bomb", TABLE_BOMB)).unwrap();
    write_listing(&home.path().join("l.json"), &[("a.mp4", 10), ("b.mp4", 20)]);
    let out = run(Command::new(prewarm_e2e::prewarm_bin())
        .env("PREWARM_CACHE_DIR", home.path().join("cache"))
        .current_dir(home.path())
        .args(["warm", "--plugin", "table-bomb.wasm", "--base-url", "http://127.0.0.1:9", "--listing", "l.json"])
        .args(["--derivatives", "d=10x10", "--progress", "never", "--results", "r.jsonl", "--report", "s.json"]));
    assert_eq!(out.status.code(), Some(3));
    let rows = read_results(&home.path().join("r.jsonl"));
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["error_kind"], "plugin", "{r}");
        assert!(r["error"].as_str().unwrap().contains("table limit"), "{r}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.path().join("s.json")).unwrap()).unwrap();
    let peak = summary["runs"][0]["peak_rss_bytes"].as_u64().unwrap();
    assert!(peak < 128 << 20, "peak RSS {peak} bytes");
}
