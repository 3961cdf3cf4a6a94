//! Each first-party plugin through the real runtime: the URLs it builds for
//! plain, nested, unicode, space- and symbol-containing paths, and its
//! verdicts for representative CDN answers.

use prewarm::plugin::{
    CacheState, Derivative, FailureKind, Method, ObjectRef, PluginInstance, PluginRuntime, ResponseMeta,
    RuntimeOptions, Verdict,
};

fn instance(name: &str, base: &str, settings: &[(&str, &str)]) -> Result<PluginInstance, prewarm::plugin::PluginError> {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let plugin = runtime.load(name).unwrap();
    let mut i = plugin.instantiate().unwrap();
    let settings: Vec<(String, String)> = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    i.configure(base, &settings)?;
    Ok(i)
}

fn mobile() -> Derivative {
    Derivative { name: "mobile".into(), width: Some(854), height: Some(640), options: vec![] }
}

fn url(i: &mut PluginInstance, path: &str) -> String {
    i.warm_request(ObjectRef { path, size: 1_000_000 }, &mobile()).unwrap().url
}

fn answer(status: u16, headers: &[(&str, &str)]) -> ResponseMeta {
    ResponseMeta {
        url: "https://cdn.example.com/x".into(),
        status,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body_bytes: 0,
        body_complete: true,
        attempt: 1,
    }
}

fn classify(i: &mut PluginInstance, size: u64, status: u16, headers: &[(&str, &str)]) -> Verdict {
    i.classify(ObjectRef { path: "v.mp4", size }, &mobile(), &answer(status, headers)).unwrap()
}

#[test]
fn cloudflare_media_urls() {
    let mut i = instance("cloudflare-media", "https://zone.example.com/", &[]).unwrap();
    // The source is a full URL on the zone (valid under every version of
    // Cloudflare's docs), behind /cdn-cgi/media/ at the zone's root.
    let prefix = "https://zone.example.com/cdn-cgi/media/width=854,height=640,fit=contain/https://zone.example.com";
    assert_eq!(url(&mut i, "video.mp4"), format!("{prefix}/video.mp4"));
    assert_eq!(url(&mut i, "a/b/c.mp4"), format!("{prefix}/a/b/c.mp4"));
    assert_eq!(url(&mut i, "vidéos/été.mp4"), format!("{prefix}/vid%C3%A9os/%C3%A9t%C3%A9.mp4"));
    assert_eq!(url(&mut i, "my dir/my video.mp4"), format!("{prefix}/my%20dir/my%20video.mp4"));
    assert_eq!(url(&mut i, "odd/a#b?c%d.mp4"), format!("{prefix}/odd/a%23b%3Fc%25d.mp4"));

    let mut o = instance(
        "cloudflare-media",
        "https://zone.example.com",
        &[("origin", "https://origin.example.com/media/"), ("fit", "cover")],
    )
    .unwrap();
    assert_eq!(
        url(&mut o, "a b/c.mp4"),
        "https://zone.example.com/cdn-cgi/media/width=854,height=640,fit=cover/https://origin.example.com/media/a%20b/c.mp4"
    );
    let mut p = instance(
        "cloudflare-media",
        "https://zone.example.com",
        &[("source-prefix", "/videos/"), ("options", "audio=false")],
    )
    .unwrap();
    assert_eq!(
        url(&mut p, "c.mp4"),
        "https://zone.example.com/cdn-cgi/media/width=854,height=640,fit=contain,audio=false/https://zone.example.com/videos/c.mp4"
    );
    let req = p.warm_request(ObjectRef { path: "c.mp4", size: 1 }, &mobile()).unwrap();
    assert_eq!(req.method, Method::Get);
    assert!(req.read_body);
}

#[test]
fn cloudflare_media_verdicts() {
    let mut i = instance("cloudflare-media", "https://zone.example.com", &[]).unwrap();
    match classify(&mut i, 1_000_000, 200, &[("cf-cache-status", "HIT"), ("content-length", "1234")]) {
        Verdict::Warm(w) => {
            assert_eq!(w.cache, CacheState::Hit);
            assert_eq!(w.size, Some(1234));
            assert_eq!(w.cache_status.as_deref(), Some("HIT"));
        }
        v => panic!("expected warm, got {v:?}"),
    }
    match classify(&mut i, 1_000_000, 200, &[("cf-cache-status", "MISS"), ("content-length", "1000000")]) {
        Verdict::Passthrough(w) => assert_eq!(w.cache, CacheState::Miss),
        v => panic!("expected passthrough, got {v:?}"),
    }
    match classify(&mut i, 1_000_000, 415, &[("cf-resized", "err=9402")]) {
        Verdict::Failed { kind, message } => {
            assert_eq!(kind, FailureKind::TransformError);
            assert!(message.contains("9402"), "{message}");
        }
        v => panic!("expected failure, got {v:?}"),
    }
    assert!(matches!(classify(&mut i, 1, 404, &[]), Verdict::Failed { kind: FailureKind::NotFound, .. }));
    assert!(matches!(classify(&mut i, 1, 403, &[]), Verdict::Failed { kind: FailureKind::Forbidden, .. }));
    assert!(matches!(classify(&mut i, 1, 503, &[]), Verdict::Retryable { .. }));
    assert!(matches!(
        classify(&mut i, 1, 429, &[("retry-after", "5")]),
        Verdict::Retryable { after_ms: Some(5000), .. }
    ));
    assert!(matches!(
        classify(&mut i, 1, 200, &[("cf-cache-status", "DYNAMIC")]),
        Verdict::Warm(prewarm::plugin::WarmInfo { cache: CacheState::Bypass, .. })
    ));
}

#[test]
fn cloudflare_media_refuses_bad_settings() {
    let err = instance("cloudflare-media", "https://zone.example.com", &[("fit", "stretch")]).err().expect("refused");
    assert!(err.to_string().contains("fit"), "{err}");
    let err = instance("cloudflare-media", "https://zone.example.com", &[("colour", "red")]).err().expect("refused");
    assert!(err.to_string().contains("unknown setting `colour`"), "{err}");
    let err =
        instance("cloudflare-media", "https://zone.example.com", &[("origin", "ftp://x")]).err().expect("refused");
    assert!(err.to_string().contains("origin"), "{err}");
}

#[test]
fn video_resizer_urls_and_verdicts() {
    let mut i = instance("video-resizer", "https://videos.example.com", &[]).unwrap();
    assert_eq!(url(&mut i, "a/b c/é.mp4"), "https://videos.example.com/a/b%20c/%C3%A9.mp4?derivative=mobile");
    let mut w = instance("video-resizer", "https://videos.example.com", &[("url-format", "imwidth")]).unwrap();
    assert_eq!(url(&mut w, "x.mp4"), "https://videos.example.com/x.mp4?imwidth=854");

    // The first wait of a pending transform is 10 s, above a shorter Retry-After.
    assert_eq!(
        classify(&mut i, 10, 202, &[("x-transform-pending", "true"), ("retry-after", "3")]),
        Verdict::Pending { after_ms: 10_000, job: None }
    );
    assert_eq!(classify(&mut i, 10, 202, &[("retry-after", "30")]), Verdict::Pending { after_ms: 30_000, job: None });
    // nginx's (and v1's) X-Cache-Status is read like Cloudflare's own header.
    assert!(matches!(
        classify(&mut i, 10_000, 200, &[("x-cache-status", "HIT"), ("content-length", "10")]),
        Verdict::Warm(prewarm::plugin::WarmInfo { cache: CacheState::Hit, .. })
    ));
    assert!(matches!(
        classify(&mut i, 10_000, 200, &[("x-transform-source", "passthrough"), ("content-length", "10")]),
        Verdict::Passthrough(_)
    ));
    match classify(
        &mut i,
        10_000,
        200,
        &[("x-transform-source", "container"), ("cf-cache-status", "HIT"), ("content-length", "10")],
    ) {
        Verdict::Warm(w) => {
            assert_eq!(w.cache, CacheState::Hit);
            assert!(w.cache_status.unwrap().contains("container"));
        }
        v => panic!("expected warm, got {v:?}"),
    }
    let err = instance("video-resizer", "https://v.example.com", &[("url-format", "path")]).err().expect("refused");
    assert!(err.to_string().contains("url-format"), "{err}");
}

#[test]
fn akamai_ivm_urls_and_verdicts() {
    let mut i = instance("akamai-ivm", "https://images.example.com", &[]).unwrap();
    let req = i.warm_request(ObjectRef { path: "dir/ä b.mp4", size: 5 }, &mobile()).unwrap();
    assert_eq!(req.url, "https://images.example.com/dir/%C3%A4%20b.mp4?imwidth=854");
    assert!(req.headers.iter().any(|(k, v)| k == "Pragma" && v.contains("akamai-x-cache-on")));
    let mut p =
        instance("akamai-ivm", "https://images.example.com", &[("url-format", "impolicy"), ("debug-pragma", "false")])
            .unwrap();
    let req = p.warm_request(ObjectRef { path: "x.mp4", size: 5 }, &mobile()).unwrap();
    assert_eq!(req.url, "https://images.example.com/x.mp4?impolicy=mobile");
    assert!(req.headers.is_empty());

    // The pristine source back: IVM is transforming offline.
    assert_eq!(
        classify(&mut i, 5000, 200, &[("content-length", "5000")]),
        Verdict::Pending { after_ms: 5000, job: None }
    );
    // Over IVM's limit the pristine file is all there will be.
    assert!(matches!(classify(&mut i, 300_000_000, 200, &[("content-length", "300000000")]), Verdict::Passthrough(_)));
    assert!(matches!(
        classify(
            &mut i,
            5000,
            200,
            &[("content-length", "700"), ("x-cache", "TCP_HIT from a1.deploy.akamaitechnologies.com")]
        ),
        Verdict::Warm(prewarm::plugin::WarmInfo { cache: CacheState::Hit, size: Some(700), .. })
    ));
}

#[test]
fn template_urls_headers_and_cache_headers() {
    let mut i = instance(
        "template",
        "https://cdn.example.com",
        &[
            ("url", "{base}/v/{dir}/{name}?w={width}&h={height}&d={derivative}&s={size}"),
            ("headers", "X-Derivative: {derivative}; X-Width: {width}"),
            ("cache-header", "cache-status"),
        ],
    )
    .unwrap();
    let req = i.warm_request(ObjectRef { path: "a b/ñ/c#1.mp4", size: 42 }, &mobile()).unwrap();
    assert_eq!(req.url, "https://cdn.example.com/v/a%20b/%C3%B1/c%231.mp4?w=854&h=640&d=mobile&s=42");
    assert_eq!(
        req.headers,
        vec![("X-Derivative".to_string(), "mobile".to_string()), ("X-Width".to_string(), "854".to_string())]
    );
    let mut plain = instance("template", "https://cdn.example.com", &[]).unwrap();
    assert_eq!(url(&mut plain, "top.mp4"), "https://cdn.example.com/top.mp4?width=854&height=640");

    assert!(matches!(
        classify(&mut i, 1, 200, &[("cache-status", "ExampleCache; hit")]),
        Verdict::Warm(prewarm::plugin::WarmInfo { cache: CacheState::Hit, .. })
    ));
    assert!(matches!(
        classify(&mut i, 1, 200, &[("cache-status", "ExampleCache; fwd=miss; stored")]),
        Verdict::Warm(prewarm::plugin::WarmInfo { cache: CacheState::Miss, .. })
    ));
    assert_eq!(classify(&mut i, 1, 202, &[]), Verdict::Pending { after_ms: 1000, job: None });
    let mut fastly = instance("template", "https://cdn.example.com", &[("cache-header", "x-cache")]).unwrap();
    assert!(matches!(
        classify(&mut fastly, 1, 200, &[("x-cache", "MISS, HIT")]),
        Verdict::Warm(prewarm::plugin::WarmInfo { cache: CacheState::Hit, .. })
    ));
    assert!(matches!(
        classify(&mut fastly, 1, 200, &[("x-cache", "MISS, MISS")]),
        Verdict::Warm(prewarm::plugin::WarmInfo { cache: CacheState::Miss, .. })
    ));

    let err = instance("template", "https://cdn.example.com", &[("url", "{base}/{nope}")]).err().expect("refused");
    assert!(err.to_string().contains("unknown placeholder `{nope}`"), "{err}");
    let no_width = Derivative { name: "poster".into(), width: None, height: None, options: vec![] };
    let err = plain.warm_request(ObjectRef { path: "x.mp4", size: 1 }, &no_width).unwrap_err();
    assert!(err.to_string().contains("has no width"), "{err}");
    assert_eq!(err.kind(), "plan");
}

#[test]
fn builtins_describe_themselves() {
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let names: Vec<&str> = PluginRuntime::builtin_names().collect();
    assert_eq!(names, ["cloudflare-media", "video-resizer", "akamai-ivm", "template"]);
    for name in names {
        let p = runtime.load(name).unwrap();
        assert_eq!(p.info().name, name);
        assert_eq!(p.info().wit_version, prewarm::plugin::WIT_VERSION);
        let expected = if name == "video-resizer" { 4 } else { 3 };
        assert_eq!(p.info().default_derivatives.len(), expected, "{name}");
        assert!(!p.info().settings.is_empty());
    }
    let cf = runtime.load("cloudflare-media").unwrap();
    // Inputs must be under 100 MB: the largest accepted is one byte less.
    assert_eq!(cf.info().max_source_bytes, Some(99_999_999));
}

#[test]
fn the_authoring_guide_example_loads_by_path() {
    let wasm = std::path::Path::new(prewarm::plugin::GUEST_ARTIFACT_DIR).join("minimal.wasm");
    let runtime = PluginRuntime::new(RuntimeOptions::default()).unwrap();
    let plugin = runtime.load(wasm.to_str().unwrap()).unwrap();
    assert_eq!(plugin.info().name, "minimal");
    let mut i = plugin.instantiate().unwrap();
    i.configure("https://cdn.example.com/", &[]).unwrap();
    assert_eq!(url(&mut i, "a b/c.mp4"), "https://cdn.example.com/854/a%20b/c.mp4");

    let home = tempfile::tempdir().unwrap();
    let out = prewarm_e2e::run(prewarm_e2e::prewarm(home.path()).args(["plugins", "inspect"]).arg(&wasm));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("minimal 0.1.0") && text.contains("mobile") && text.contains("854x640"), "{text}");
}

#[test]
fn plugins_list_and_inspect_through_the_binary() {
    let home = tempfile::tempdir().unwrap();
    let out = prewarm_e2e::run(prewarm_e2e::prewarm(home.path()).args(["plugins", "list"]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["cloudflare-media", "video-resizer", "akamai-ivm", "template"] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
    let out = prewarm_e2e::run(prewarm_e2e::prewarm(home.path()).args(["plugins", "inspect", "cloudflare-media"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("source-prefix") && text.contains("origin") && text.contains("[default: contain]"), "{text}");
    assert!(
        text.contains("max source size") && text.contains("warm-content-length > head > range > full-body"),
        "{text}"
    );
}

#[test]
fn redirects_are_followed_or_read_as_pending() {
    let mut i = instance("template", "https://cdn.example.com", &[]).unwrap();
    let mut redirect = answer(301, &[("location", "/v2/x.mp4?w=854")]);
    redirect.url = "https://cdn.example.com/v1/x.mp4?w=854".into();
    let follow = |i: &mut PluginInstance, r: &ResponseMeta| match i
        .classify(ObjectRef { path: "x.mp4", size: 1 }, &mobile(), r)
        .unwrap()
    {
        Verdict::FollowUp(req) => req.url,
        v => panic!("expected a follow-up, got {v:?}"),
    };
    assert_eq!(follow(&mut i, &redirect), "https://cdn.example.com/v2/x.mp4?w=854");
    redirect.headers = vec![("location".into(), "y.mp4".into())];
    assert_eq!(follow(&mut i, &redirect), "https://cdn.example.com/v1/y.mp4");
    redirect.headers = vec![("location".into(), "https://other.example.com/z.mp4".into())];
    assert_eq!(follow(&mut i, &redirect), "https://other.example.com/z.mp4");

    let mut imagekit = instance("template", "https://ik.example.com", &[("redirects", "pending")]).unwrap();
    assert_eq!(
        classify(&mut imagekit, 1, 302, &[("location", "https://origin.example.com/x.mp4")]),
        Verdict::Pending { after_ms: 1000, job: None }
    );
}
