//! `prewarm demo` on this machine: a real warm through nginx, then hits,
//! and the reports written.

use prewarm_e2e::{prewarm, run};

#[test]
fn demo_warms_then_hits() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("demo");
    let out = run(prewarm(home.path()).arg("demo").arg("--dir").arg(&dir));
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.find("cache: miss 12").expect("first pass: 12 misses");
    let second = err.find("cache: hit 12").expect("second pass: 12 hits");
    assert!(first < second);
    assert!(err.contains("% smaller"), "{err}");
    for pass in ["first-pass", "second-pass"] {
        for file in ["results.jsonl", "summary.json", "report.md", "report.html"] {
            assert!(dir.join(pass).join(file).is_file(), "{pass}/{file} missing");
        }
    }
}
