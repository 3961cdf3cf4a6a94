//! What operators deploy: the manifests in deploy/kubernetes validate against
//! the Kubernetes 1.33 schemas (kubernetes-validate --strict, offline), and
//! say what a schema cannot check: an Indexed Job with `Never`, the exit
//! codes of `podFailurePolicy` equal prewarm's, one shard count everywhere,
//! files named by the index, checkpoints a retried index resumes from, a
//! metrics port the PodMonitor and the scrape annotations name, a nightly
//! CronJob of what is new. The Dockerfile is read with a real parser
//! (dockerfile-parse). Both checkers come from PyPI, installed by
//! scripts/setup in .tools/venv.

use std::path::{Path, PathBuf};
use std::process::Command;

use prewarm::Exit;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

fn tool(name: &str) -> PathBuf {
    let path = root().join(".tools/venv/bin").join(name);
    assert!(path.is_file(), "{} missing: run scripts/setup", path.display());
    path
}

/// Custom resources: their schemas come with an operator, not Kubernetes.
const CUSTOM: [&str; 1] = ["podmonitor.yaml"];

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("kustomization.yaml"))
        .filter(|p| !CUSTOM.iter().any(|c| p.ends_with(c)))
        .collect();
    files.sort();
    files
}

/// Every YAML document of `files`, as JSON, read by PyYAML.
fn load_yaml(files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(tool("python"))
        .args([
            "-c",
            "import json, sys, yaml\nprint(json.dumps([d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]))",
        ])
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn manifests_validate_for_kubernetes_1_33() {
    let files = manifests();
    assert!(files.len() >= 2, "{files:?}");
    let out = Command::new(tool("kubernetes-validate")).args(["--strict", "-k", "1.33"]).args(&files).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("passed").count(), files.len(), "{text}");

    // The check can fail: an unknown field is refused.
    let home = tempfile::tempdir().unwrap();
    let bad = home.path().join("bad.yaml");
    let job = std::fs::read_to_string(root().join("deploy/kubernetes/job.yaml")).unwrap();
    std::fs::write(&bad, job.replace("completionMode: Indexed", "completionMode: Indexed\n  completionz: 4")).unwrap();
    let out = Command::new(tool("kubernetes-validate")).args(["--strict", "-k", "1.33"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn the_indexed_job_matches_prewarm() {
    let docs = load_yaml(&manifests());
    let jobs: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Job").collect();
    let indexed: Vec<&&Value> = jobs.iter().filter(|j| j["spec"]["completionMode"] == "Indexed").collect();
    assert_eq!(indexed.len(), 1, "one Indexed Job");
    let spec = &indexed[0]["spec"];
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert!(spec["backoffLimitPerIndex"].as_u64().is_some(), "crashes are retried per index");

    // podFailurePolicy: usage fails the Job, "finished with pairs not warm" fails the index, a crash is retried.
    let rules = spec["podFailurePolicy"]["rules"].as_array().unwrap();
    let action_for = |code: i64| -> Option<&str> {
        rules
            .iter()
            .find(|r| r["onExitCodes"]["values"].as_array().is_some_and(|v| v.iter().any(|c| c.as_i64() == Some(code))))
            .map(|r| r["action"].as_str().unwrap())
    };
    assert_eq!(action_for(Exit::Usage as i64), Some("FailJob"));
    assert_eq!(action_for(Exit::SomeFailed as i64), Some("FailIndex"));
    assert_eq!(action_for(Exit::Other as i64), None, "a crash counts against backoffLimitPerIndex");
    assert!(rules.iter().all(|r| r["onExitCodes"].is_null() || r["onExitCodes"]["operator"] == "In"));

    // One shard count: completions, PREWARM_SHARDS, and the limits that depend on it.
    let n = spec["completions"].as_u64().unwrap();
    let container = &pod["containers"][0];
    let env = |name: &str| {
        container["env"].as_array().unwrap().iter().find(|e| e["name"] == name).map(|e| e["value"].clone())
    };
    assert_eq!(env("PREWARM_SHARDS"), Some(Value::String(n.to_string())), "N differs between completions and env");
    assert!(spec["parallelism"].as_u64().unwrap() <= n && spec["maxFailedIndexes"].as_u64().unwrap() <= n);
    let script = container["args"][0].as_str().unwrap();
    assert!(script.contains("--shard auto") && !script.contains("--shard auto/"), "{script}");
    // What may hold credentials is read from PREWARM_* by prewarm itself,
    // never expanded into its argv.
    for flag in ["--base-url", "--source", "--set"] {
        assert!(!script.contains(flag), "{flag} in argv: {script}");
    }
    for var in ["PREWARM_BASE_URL", "PREWARM_SOURCE", "PREWARM_PLUGIN"] {
        assert!(env(var).is_some(), "{var} missing from the env");
    }
    // Files named by the index, continued by a rerun of that index from its checkpoint.
    assert!(script.contains("--resume") && script.contains("--checkpoint-every"), "{script}");
    for flag in [
        "--results \"/tmp/shard-$JOB_COMPLETION_INDEX.jsonl.zst\"",
        "--report \"/tmp/shard-$JOB_COMPLETION_INDEX.json\"",
        "--upload \"$PREWARM_UPLOAD\"",
    ] {
        assert!(script.contains(flag), "{flag} missing from {script}");
    }
    // Edges from an optional ConfigMap that exists as an example.
    assert!(script.contains("--edges /etc/prewarm/edges/edges.txt"), "{script}");
    let edges = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "edges").unwrap();
    let map = edges["configMap"]["name"].as_str().unwrap();
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == map && d["data"]["edges.txt"].is_string())
    );

    // rclone's remote from a Secret, as RCLONE_CONFIG_* variables.
    let secret = container["envFrom"][0]["secretRef"]["name"].as_str().unwrap();
    let secrets: Vec<&Value> =
        docs.iter().filter(|d| d["kind"] == "Secret" && d["metadata"]["name"] == secret).collect();
    assert_eq!(secrets.len(), 1);
    assert!(secrets[0]["stringData"].as_object().unwrap().keys().all(|k| k.starts_with("RCLONE_CONFIG_")));

    // The merge Job reads what the shards uploaded, with the same image and remote.
    let merge = jobs.iter().find(|j| j["spec"]["completionMode"].is_null()).expect("a merge Job");
    let merge_container = &merge["spec"]["template"]["spec"]["containers"][0];
    let merge_script = merge_container["args"][0].as_str().unwrap();
    assert!(merge_script.contains("rclone copy \"$PREWARM_UPLOAD\" /tmp/in"), "{merge_script}");
    assert!(merge_script.contains("prewarm report merge /tmp/in/shard-*.json"), "{merge_script}");
    assert_eq!(merge_container["image"], container["image"]);
    let merge_upload = merge_container["env"].as_array().unwrap().iter().find(|e| e["name"] == "PREWARM_UPLOAD");
    assert_eq!(merge_upload.map(|e| e["value"].clone()), env("PREWARM_UPLOAD"));

    // Live metrics: the port --metrics-listen serves is the one the container, the
    // annotations and the PodMonitor name, on the pods the PodMonitor selects.
    let port = container["ports"][0]["containerPort"].as_u64().unwrap();
    assert!(script.contains(&format!("--metrics-listen 0.0.0.0:{port}")), "{script}");
    let annotations = &spec["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"], port.to_string());
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    let monitors = load_yaml(&[root().join("deploy/kubernetes/podmonitor.yaml")]);
    assert_eq!(monitors[0]["kind"], "PodMonitor");
    assert_eq!(monitors[0]["spec"]["podMetricsEndpoints"][0]["port"], container["ports"][0]["name"]);
    assert_eq!(monitors[0]["spec"]["podMetricsEndpoints"][0]["path"], annotations["prometheus.io/path"]);
    let labels = spec["template"]["metadata"]["labels"].as_object().unwrap();
    for (k, v) in monitors[0]["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(labels.get(k), Some(v), "the PodMonitor selects the Job's pods");
    }

    // The nightly CronJob warms what is new, with the image and flags of the Job.
    let cron = docs.iter().find(|d| d["kind"] == "CronJob").expect("a nightly CronJob");
    let cron_container = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let cron_script = cron_container["args"][0].as_str().unwrap();
    assert!(cron_script.contains("--newer-than") && cron_script.contains("--resume"), "{cron_script}");
    assert_eq!(cron_container["image"], container["image"]);

    // The kustomization names files that exist.
    let kustomization = load_yaml(&[root().join("deploy/kubernetes/kustomization.yaml")]);
    for r in kustomization[0]["resources"].as_array().unwrap() {
        assert!(root().join("deploy/kubernetes").join(r.as_str().unwrap()).is_file(), "{r}");
    }
}

#[test]
fn the_dockerfile_parses_and_builds_what_the_manifests_run() {
    let out = Command::new(tool("python"))
        .args([
            "-c",
            "import json, sys\nfrom dockerfile_parse import DockerfileParser\np = DockerfileParser(path=sys.argv[1])\nprint(json.dumps({'base': p.baseimage, 'structure': p.structure}))",
        ])
        .arg(root().join("Dockerfile"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(parsed["base"].as_str().unwrap().starts_with("debian:"), "{parsed}");
    let steps: Vec<(String, String)> = parsed["structure"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["instruction"].as_str().unwrap().to_string(), s["value"].as_str().unwrap().to_string()))
        .collect();
    let find = |i: &str| steps.iter().filter(|(k, _)| k == i).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    let run = find("RUN").join(" ");
    assert!(run.contains("apt-get install") && run.contains("rclone") && run.contains("ffmpeg"), "{run}");
    assert_eq!(find("COPY"), ["target/dist/prewarm /usr/local/bin/prewarm"]);
    assert_eq!(find("ENTRYPOINT"), ["[\"prewarm\"]"]);
    // The manifests run as the image's user.
    assert_eq!(find("USER"), ["65532:65532"]);
    let job = std::fs::read_to_string(root().join("deploy/kubernetes/job.yaml")).unwrap();
    assert!(job.contains("runAsUser: 65532") && job.contains("image: prewarm:0.1.0"));
}

/// The Indexed Job played locally: N processes with JOB_COMPLETION_INDEX
/// 0..N-1 (as the Job's pods, sharing nothing) warm through a real nginx
/// cache and `--upload` to a local rclone remote; the merge of what they
/// uploaded equals one unsharded run, and a missing or doubled shard is refused.
#[test]
fn an_indexed_job_played_locally_merges_to_the_unsharded_run() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let media = h.join("media");
    for i in 0..12 {
        let path = media.join(format!("set {}/v{i}.mp4", i % 3));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![b'v'; 2000 + i * 7]).unwrap();
    }
    let rclone = prewarm::util::lab::find_program("rclone").expect("rclone installed");
    let origin = prewarm::util::lab::start_origin(&rclone, &media).unwrap();
    let cache = prewarm::util::lab::start_cache(&h.join("nginx"), &origin.url).unwrap();
    let uploaded = h.join("bucket/run-1");
    let warm = |pod: &Path, shard: Option<u32>| {
        std::fs::create_dir_all(pod).unwrap();
        let mut cmd = prewarm_e2e::prewarm(pod);
        cmd.current_dir(pod)
            .args(["warm", "--plugin", "template", "--base-url", &cache.url, "--progress", "never"])
            .args(["--set", "url={base}/{path}?w={width}", "--set", "cache-header=x-cache-status", "--source"])
            .arg(&media);
        if let Some(i) = shard {
            cmd.env("JOB_COMPLETION_INDEX", i.to_string())
                .env("PREWARM_SHARDS", "3")
                .env("RCLONE_CONFIG_BUCKET_TYPE", "local")
                .args([
                    "--shard",
                    "auto",
                    "--results",
                    &format!("shard-{i}.jsonl"),
                    "--report",
                    &format!("shard-{i}.json"),
                ])
                .arg("--upload")
                .arg(format!("bucket:{}", uploaded.display()));
        } else {
            cmd.args(["--results", "all.jsonl", "--report", "all.json"]);
        }
        let out = prewarm_e2e::run(&mut cmd);
        assert_eq!(out.status.code(), Some(0), "shard {shard:?}");
    };
    for i in 0..3 {
        warm(&h.join(format!("pod-{i}")), Some(i));
    }
    warm(&h.join("single"), None);

    let mut names: Vec<String> =
        std::fs::read_dir(&uploaded).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        ["shard-0.json", "shard-0.jsonl", "shard-1.json", "shard-1.jsonl", "shard-2.json", "shard-2.jsonl"]
    );
    assert_eq!(
        std::fs::read(uploaded.join("shard-1.jsonl")).unwrap(),
        std::fs::read(h.join("pod-1/shard-1.jsonl")).unwrap(),
        "uploaded as written"
    );

    let s = |name: &str| uploaded.join(name).to_str().unwrap().to_string();
    let merge = |inputs: &[&str]| {
        let mut cmd = prewarm_e2e::prewarm(h);
        cmd.args(["report", "merge"]).args(inputs.iter().map(|n| s(n))).arg("-o").arg(h.join("merged.json"));
        prewarm_e2e::run(&mut cmd).status.code()
    };
    assert_eq!(merge(&["shard-0.json", "shard-1.json", "shard-2.json"]), Some(0));
    let read = |p: PathBuf| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let (merged, single) = (read(h.join("merged.json")), read(h.join("single/all.json")));
    assert_eq!(merged["stats"]["pairs"], 36);
    assert_eq!(merged["stats"]["pairs"], single["stats"]["pairs"]);
    assert_eq!(merged["stats"]["outcomes"], single["stats"]["outcomes"]);
    let shards: Vec<&str> = merged["runs"].as_array().unwrap().iter().map(|r| r["shard"].as_str().unwrap()).collect();
    assert_eq!(shards, ["0/3", "1/3", "2/3"], "each run records the shard it resolved to");

    assert_eq!(merge(&["shard-0.json", "shard-2.json"]), Some(2), "a missing shard is refused");
    assert_eq!(merge(&["shard-0.json", "shard-1.json", "shard-1.json", "shard-2.json"]), Some(2), "a doubled shard");

    // An upload that fails is an error (exit 1: retried like a crash), and the files stay where they were written.
    let pod = h.join("pod-bad");
    std::fs::create_dir_all(&pod).unwrap();
    prewarm_e2e::write_listing(&pod.join("l.json"), &[("set 0/v0.mp4", 2000)]);
    let warm_in_pod = |outputs: &[&str]| {
        prewarm_e2e::run(
            prewarm_e2e::prewarm(&pod)
                .current_dir(&pod)
                .args(["warm", "--plugin", "template", "--base-url", &cache.url, "--progress", "never"])
                .args(["--set", "url={base}/{path}?w={width}", "--listing"])
                .arg(pod.join("l.json"))
                .args(outputs),
        )
    };
    let out = warm_in_pod(&["--results", "r.jsonl", "--upload", "no-such-remote:out"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--upload no-such-remote:out: cannot copy r.jsonl"), "{err}");
    assert!(pod.join("r.jsonl").is_file());

    // Two outputs with one file name would land on one object: refused before the run.
    let out = warm_in_pod(&["--results", "a/run.json", "--report", "b/run.json", "--upload", "bucket:out"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("a/run.json and b/run.json would both be uploaded as `run.json`"), "{err}");
    assert!(!pod.join("a/run.json").exists());
}

/// The Job's retry played locally: three shards with the Job's flags
/// (`--shard auto --resume --checkpoint-every`, `--upload`), shard 1 killed
/// -9 mid-run and run again in a fresh pod (its emptyDir gone): it fetches
/// its checkpoint, asks only for the pairs the checkpoint did not hold, and
/// the merge of the three summaries counts every pair once.
#[test]
fn an_indexed_job_with_a_killed_shard_resumes_from_its_checkpoint() {
    use std::collections::HashSet;
    use std::time::{Duration, Instant};

    let docs = load_yaml(&manifests());
    let job = docs.iter().find(|d| d["kind"] == "Job" && d["spec"]["completionMode"] == "Indexed").unwrap();
    let script = job["spec"]["template"]["spec"]["containers"][0]["args"][0].as_str().unwrap();
    for flag in ["--resume", "--checkpoint-every", "--metrics-listen"] {
        assert!(script.contains(flag), "{flag} missing from {script}");
    }
    assert!(!script.contains("--overwrite"), "a retried index continues its checkpoint: {script}");

    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let server = prewarm_e2e::slow_nginx::SlowNginx::start(&h.join("nginx"), Duration::from_millis(300)).unwrap();
    let objects: Vec<(String, u64)> = (0..300).map(|i| (format!("set {}/v{i}.mp4", i % 3), 1000)).collect();
    let borrowed: Vec<(&str, u64)> = objects.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    prewarm_e2e::write_listing(&h.join("listing.json"), &borrowed);
    let uploaded = h.join("bucket/run-1");
    let pod = |name: &str, index: u32| {
        let dir = h.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = prewarm_e2e::prewarm(&dir);
        cmd.current_dir(&dir)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("PREWARM_SHARDS", "3")
            .env("RCLONE_CONFIG_BUCKET_TYPE", "local")
            .args(["warm", "--shard", "auto", "--plugin", "template", "--progress", "never"])
            .args(["--base-url", &format!("{}/{name}", server.slow_url), "--set", "url={base}/{path}?w={width}"])
            .arg("--listing")
            .arg(h.join("listing.json"))
            .args(["--concurrency", "10", "--resume", "--checkpoint-every", "1s"])
            .args(["--results", &format!("shard-{index}.jsonl"), "--report", &format!("shard-{index}.json")])
            .arg("--upload")
            .arg(format!("bucket:{}", uploaded.display()));
        cmd
    };
    let lines = |p: &std::path::Path| std::fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0);

    let mut killed = pod("pod-1a", 1).stdout(std::process::Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&uploaded.join("shard-1.jsonl")) < 30 {
        assert!(Instant::now() < deadline && killed.try_wait().unwrap().is_none(), "no checkpoint before the end");
        std::thread::sleep(Duration::from_millis(50));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    let checkpointed = lines(&uploaded.join("shard-1.jsonl"));
    for (name, index) in [("pod-0", 0), ("pod-1b", 1), ("pod-2", 2)] {
        let out = prewarm_e2e::run(&mut pod(name, index));
        assert_eq!(out.status.code(), Some(0), "shard {index}");
    }
    let retried = server.requests().iter().filter(|u| u.starts_with("/pod-1b/")).count();
    let shard_1 = lines(&uploaded.join("shard-1.jsonl"));
    assert_eq!(retried + checkpointed, shard_1, "the retry asked only for what the checkpoint did not hold");

    let mut cmd = prewarm_e2e::prewarm(h);
    cmd.args(["report", "merge"])
        .args((0..3).map(|i| uploaded.join(format!("shard-{i}.json"))))
        .arg("-o")
        .arg(h.join("merged.json"));
    assert_eq!(prewarm_e2e::run(&mut cmd).status.code(), Some(0));
    let merged: Value = serde_json::from_slice(&std::fs::read(h.join("merged.json")).unwrap()).unwrap();
    assert_eq!(merged["stats"]["pairs"], 900, "300 objects x 3 derivatives, each once");
    assert_eq!(merged["stats"]["outcomes"]["warm"], 900);
    let recorded: HashSet<String> = (0..3)
        .flat_map(|i| prewarm_e2e::read_results(&uploaded.join(format!("shard-{i}.jsonl"))))
        .map(|r| format!("{} {}", r["path"], r["derivative"]))
        .collect();
    assert_eq!(recorded.len(), 900);
}
