//! Shell completions and man pages from the real binary: the bash script
//! loads in bash and registers for `prewarm`, every man page renders with
//! groff without a warning, and every subcommand's `--help` ends with
//! examples.

use std::process::Command;

use prewarm_e2e::{prewarm, run};

#[test]
fn bash_completion_loads_and_registers() {
    let home = tempfile::tempdir().unwrap();
    let out = run(prewarm(home.path()).args(["completions", "bash"]));
    assert!(out.status.success());
    let script = home.path().join("prewarm.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!("source '{}' && complete -p prewarm", script.display()))
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{}", String::from_utf8_lossy(&loaded.stderr));
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("prewarm"));
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = run(prewarm(home.path()).args(["completions", shell]));
        assert!(out.status.success() && out.stdout.len() > 200, "{shell}");
    }
    let out = run(prewarm(home.path()).args(["completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages_render_without_warnings() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("man");
    let out = run(prewarm(home.path()).args(["man", "--dir"]).arg(&dir));
    assert!(out.status.success());
    let mut pages: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    pages.sort();
    for want in ["prewarm.1", "prewarm-warm.1", "prewarm-list.1", "prewarm-report-merge.1", "prewarm-man.1"] {
        assert!(pages.iter().any(|p| p == want), "{want} missing from {pages:?}");
    }
    for page in &pages {
        let path = dir.join(page);
        let out = Command::new("groff").args(["-man", "-Tutf8", "-ww", "-P-cbou"]).arg(&path).output().expect("groff");
        assert!(out.status.success(), "{page}");
        assert!(out.stderr.is_empty(), "{page}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("ENVIRONMENT") && text.contains("PREWARM_CACHE_DIR"), "{page}");
    }
    let warm = String::from_utf8_lossy(
        &Command::new("groff")
            .args(["-man", "-Tascii", "-P-cbou"])
            .arg(dir.join("prewarm-warm.1"))
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(warm.contains("--overwrite") && warm.contains("Examples:") && warm.contains("listing.json"), "{warm}");

    let out = run(prewarm(home.path()).arg("man"));
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains(".TH prewarm"));
}

#[test]
fn every_help_ends_with_examples() {
    let home = tempfile::tempdir().unwrap();
    for sub in ["warm", "list", "plugins", "probe", "report", "demo", "completions", "man"] {
        let out = run(prewarm(home.path()).args([sub, "--help"]));
        assert!(out.status.success(), "{sub}");
        let help = String::from_utf8_lossy(&out.stdout);
        let (_, examples) = help.split_once("Examples:").unwrap_or_else(|| panic!("{sub}: no examples in {help}"));
        let lines: Vec<&str> = examples.lines().filter(|l| l.trim_start().starts_with("prewarm ")).collect();
        assert!(lines.len() >= 2, "{sub}: {examples}");
        assert!(lines.iter().all(|l| l.contains(&format!("prewarm {sub}"))), "{sub}: {examples}");
    }
}
