//! `template`: URL and headers from a template string, for any CDN whose
//! derivative URLs are a pattern over the path and the derivative's size.
//!
//! Placeholders: `{base}` (the `--base-url`), `{path}` (full path, encoded
//! per segment), `{dir}` (directory part, encoded, no trailing slash),
//! `{name}` (base name, encoded), `{derivative}`, `{width}`, `{height}`,
//! `{size}` (source bytes). The warm tell is read from configurable cache
//! headers (`x-cache`, `cache-status`, ...).

use prewarm_plugin_sdk::*;

struct Template {
    url: Pattern,
    headers: Vec<(String, Pattern)>,
    cache_headers: Vec<String>,
    sizes: Vec<SizeMethod>,
    pending_status: Vec<u16>,
    /// What a redirect means: follow it, or "still transforming" (ImageKit
    /// redirects to the original while it works).
    redirects_pending: bool,
    /// Stop the warm request after the headers.
    headers_only: bool,
}

/// A template split into literal text and placeholders, checked once.
struct Pattern(Vec<Piece>);

enum Piece {
    Text(String),
    Var(Var),
}

#[derive(Clone, Copy)]
enum Var {
    Base,
    Path,
    Dir,
    Name,
    Derivative,
    Width,
    Height,
    Size,
}

impl Pattern {
    fn parse(template: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').ok_or_else(|| format!("unclosed `{{` in template `{template}`"))?;
            let var = match &rest[open + 1..open + close] {
                "base" => Var::Base,
                "path" => Var::Path,
                "dir" => Var::Dir,
                "name" => Var::Name,
                "derivative" => Var::Derivative,
                "width" => Var::Width,
                "height" => Var::Height,
                "size" => Var::Size,
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{other}}}` in template `{template}` \
                         (known: base, path, dir, name, derivative, width, height, size)"
                    ));
                }
            };
            pieces.push(Piece::Var(var));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Self(pieces))
    }

    fn render(&self, base: &str, object: &Object, d: &Derivative) -> Result<String, String> {
        let mut out = String::with_capacity(base.len() + object.path.len() + 32);
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(Var::Base) => out.push_str(base),
                Piece::Var(Var::Path) => out.push_str(&encode_path(&object.path)),
                Piece::Var(Var::Dir) => {
                    let dir = object.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    out.push_str(&encode_path(dir));
                }
                Piece::Var(Var::Name) => out.push_str(&encode_path(base_name(&object.path))),
                Piece::Var(Var::Derivative) => out.push_str(&encode_query_value(&d.name)),
                Piece::Var(Var::Width) => {
                    out.push_str(&d.width.ok_or_else(|| format!("derivative `{}` has no width", d.name))?.to_string())
                }
                Piece::Var(Var::Height) => {
                    out.push_str(&d.height.ok_or_else(|| format!("derivative `{}` has no height", d.name))?.to_string())
                }
                Piece::Var(Var::Size) => out.push_str(&object.size.to_string()),
            }
        }
        Ok(out)
    }
}

fn parse_size_method(name: &str) -> Result<SizeMethod, String> {
    match name.trim() {
        "warm-content-length" => Ok(SizeMethod::WarmContentLength),
        "head" => Ok(SizeMethod::Head),
        "range" => Ok(SizeMethod::Range),
        "full-body" => Ok(SizeMethod::FullBody),
        other => Err(format!(
            "setting `size-methods`: unknown method `{other}` (known: warm-content-length, head, range, full-body)"
        )),
    }
}

struct Configured {
    base: String,
    t: Template,
}

impl Strategy for Configured {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "template".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Any CDN: derivative URL and headers from a template string".into(),
            settings: vec![
                setting(
                    "url",
                    "URL template; placeholders {base} {path} {dir} {name} {derivative} {width} {height} {size}",
                    Some("{base}/{path}?width={width}&height={height}"),
                ),
                setting("headers", "Extra request headers, `Name: value` separated by `;` (templates allowed)", None),
                setting(
                    "cache-header",
                    "Comma-separated response headers to read the cache status from, first found wins",
                    Some("cache-status,cf-cache-status,x-cache-status,x-cache,x-cache-remote"),
                ),
                setting(
                    "size-methods",
                    "Comma-separated size methods in order: warm-content-length, head, range, full-body",
                    Some("warm-content-length,head,range,full-body"),
                ),
                setting(
                    "pending-status",
                    "Comma-separated statuses meaning `still transforming, ask again`",
                    Some("202"),
                ),
                setting(
                    "body",
                    "What the warm request reads: read-full (the whole body, what makes a CDN cache it) or \
                     headers-only",
                    Some("read-full"),
                ),
                setting(
                    "redirects",
                    "What a redirect means: follow (fetch the Location) or pending (still transforming, as ImageKit does)",
                    Some("follow"),
                ),
            ],
            default_derivatives: standard_derivatives(),
            limits: Limits { max_source_bytes: None },
        }
    }

    fn configure(base_url: &str, s: &Settings) -> Result<Self, String> {
        let url = Pattern::parse(s.get("url").unwrap_or_default())?;
        let mut headers = Vec::new();
        for h in s.get("headers").unwrap_or("").split(';').filter(|h| !h.trim().is_empty()) {
            let (name, value) =
                h.split_once(':').ok_or_else(|| format!("setting `headers`: `{h}` is not `Name: value`"))?;
            headers.push((name.trim().to_string(), Pattern::parse(value.trim())?));
        }
        let list = |key| -> Vec<String> {
            s.get(key).unwrap_or("").split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect()
        };
        let sizes = list("size-methods").iter().map(|m| parse_size_method(m)).collect::<Result<Vec<_>, _>>()?;
        let pending_status = list("pending-status")
            .iter()
            .map(|v| v.parse::<u16>().map_err(|_| format!("setting `pending-status`: `{v}` is not a status code")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            base: base_url.to_string(),
            t: Template {
                url,
                headers,
                cache_headers: list("cache-header"),
                sizes,
                pending_status,
                redirects_pending: s.choice("redirects", &["follow", "pending"])? == Some("pending"),
                headers_only: s.choice("body", &["read-full", "headers-only"])? == Some("headers-only"),
            },
        })
    }

    fn response_headers(&self) -> Vec<String> {
        let mut h = standard_headers();
        h.extend(self.t.cache_headers.iter().map(|c| c.to_ascii_lowercase()));
        h
    }

    fn warm_request(&self, object: &Object, d: &Derivative) -> Result<Request, String> {
        let mut request = get(self.t.url.render(&self.base, object, d)?);
        if self.t.headers_only {
            request.body = BodyPolicy::HeadersOnly;
        }
        for (name, value) in &self.t.headers {
            request.headers.push((name.clone(), value.render(&self.base, object, d)?));
        }
        Ok(request)
    }

    fn size_methods(&self, _d: &Derivative) -> Vec<SizeMethod> {
        self.t.sizes.clone()
    }

    fn classify(&self, object: &Object, _d: &Derivative, r: &ResponseMeta) -> Verdict {
        let redirect = matches!(r.status, 301 | 302 | 303 | 307 | 308);
        if self.t.pending_status.contains(&r.status) || (redirect && self.t.redirects_pending) {
            return pending(r.retry_after_ms().unwrap_or(1000));
        }
        let names: Vec<&str> = self.t.cache_headers.iter().map(String::as_str).collect();
        standard_verdict_with(object, r, &names)
    }
}

register_strategy!(Configured);
