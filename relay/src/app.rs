//! The web app: served from a directory (`--static-dir`), or from inside the binary.
//!
//! `cargo xtask dist` builds the relay with the `embed` feature after building the app: every file
//! of `dist/` (and the gzip copy `cargo xtask build-web` writes beside each large one) is compiled
//! into the binary with `rust-embed`, so one file is the whole deployment. Those files are served
//! when no `--static-dir` is given: the gzip copy to a client that accepts it
//! (`Content-Encoding: gzip`, `Vary: Accept-Encoding`), names with a content hash
//! (`web-0123456789abcdef.js`) as immutable for a year, everything else (`index.html`, the worker's
//! fixed names) revalidated on every load. Unknown paths get `index.html`, as from a directory.

use std::borrow::Cow;
use std::path::PathBuf;
use warp::http::header::{self, HeaderValue};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

/// Where the app's files come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppSource {
    Dir(PathBuf),
    Embedded,
}

impl AppSource {
    /// `--static-dir` when given; otherwise the app inside the binary when there is one, or `dist`.
    pub fn choose(static_dir: Option<&PathBuf>) -> AppSource {
        match static_dir {
            Some(dir) => AppSource::Dir(dir.clone()),
            None if embedded::has_app() => AppSource::Embedded,
            None => AppSource::Dir(PathBuf::from(crate::config::DEFAULT_STATIC_DIR)),
        }
    }

    /// Whether there is an app to serve (an `index.html`).
    pub fn has_app(&self) -> bool {
        match self {
            AppSource::Dir(dir) => dir.join("index.html").is_file(),
            AppSource::Embedded => embedded::has_app(),
        }
    }
}

impl AppSource {
    /// What a visitor may be told of where the app should be: a folder's own name, never the
    /// server's absolute path (the relay's log has that).
    pub fn public_name(&self) -> String {
        match self {
            AppSource::Dir(dir) => dir
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| "the static directory".to_owned()),
            AppSource::Embedded => self.to_string(),
        }
    }
}

impl std::fmt::Display for AppSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppSource::Dir(dir) => write!(f, "{}", dir.display()),
            AppSource::Embedded => f.write_str("the app built into this binary"),
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Whether a file name carries a content hash (`<name>-<16 hex digits>[_bg].<ext>`, as
/// `cargo xtask build-web` names them): such a file never changes under its name.
fn is_content_addressed(path: &str) -> bool {
    let stem = path.rsplit('/').next().unwrap_or(path);
    let stem = stem.split('.').next().unwrap_or(stem);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|value| {
        value.split(',').any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

/// The answer for `path` (without its leading `/`) from a set of files looked up by `get`.
/// `None` when there is no such file and no `index.html` either.
pub(crate) fn respond(
    get: impl Fn(&str) -> Option<Cow<'static, [u8]>>,
    path: &str,
    accept_encoding: Option<&str>,
) -> Option<Response> {
    let path = if path.is_empty() || path.ends_with('/') || path.ends_with(".gz") {
        "index.html"
    } else {
        path
    };
    let (path, plain) = match get(path) {
        Some(bytes) => (path, bytes),
        None => ("index.html", get("index.html")?),
    };
    let gzip = if accepts_gzip(accept_encoding) {
        get(&format!("{path}.gz"))
    } else {
        None
    };
    let gzipped = gzip.is_some();
    let body = gzip.unwrap_or(plain);
    let mut response = Response::new(body.into_owned().into());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if is_content_addressed(path) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Some(response.into_response())
}

#[cfg(feature = "embed")]
mod embedded {
    /// `dist/` at the time the relay was compiled (`cargo xtask dist` builds it first).
    #[derive(rust_embed::Embed)]
    #[folder = "../dist"]
    #[allow_missing = true]
    struct App;

    pub fn get(path: &str) -> Option<std::borrow::Cow<'static, [u8]>> {
        App::get(path).map(|file| file.data)
    }

    pub fn has_app() -> bool {
        App::get("index.html").is_some()
    }
}

#[cfg(not(feature = "embed"))]
mod embedded {
    pub fn get(_path: &str) -> Option<std::borrow::Cow<'static, [u8]>> {
        None
    }

    pub fn has_app() -> bool {
        false
    }
}

/// The embedded app's answer for `path`.
pub(crate) fn embedded_response(path: &str, accept_encoding: Option<&str>) -> Option<Response> {
    respond(embedded::get, path, accept_encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(path: &str) -> Option<Cow<'static, [u8]>> {
        match path {
            "index.html" => Some(Cow::Borrowed(b"<html>")),
            "index.html.gz" => Some(Cow::Borrowed(b"gz-html")),
            "web-0123456789abcdef_bg.wasm" => Some(Cow::Borrowed(b"wasm")),
            "web-0123456789abcdef_bg.wasm.gz" => Some(Cow::Borrowed(b"gz-wasm")),
            "worker.js" => Some(Cow::Borrowed(b"worker")),
            _ => None,
        }
    }

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn gzip_only_to_a_client_that_accepts_it() {
        let plain = respond(files, "web-0123456789abcdef_bg.wasm", None).unwrap();
        assert_eq!(header(&plain, "content-encoding"), None);
        assert_eq!(header(&plain, "content-type"), Some("application/wasm"));
        let gzip = respond(
            files,
            "web-0123456789abcdef_bg.wasm",
            Some("gzip, deflate, br"),
        )
        .unwrap();
        assert_eq!(header(&gzip, "content-encoding"), Some("gzip"));
        assert_eq!(header(&gzip, "vary"), Some("accept-encoding"));
        let refused = respond(files, "index.html", Some("gzip;q=0, br")).unwrap();
        assert_eq!(header(&refused, "content-encoding"), None);
        // A file with no gzip copy goes out plain.
        let worker = respond(files, "worker.js", Some("gzip")).unwrap();
        assert_eq!(header(&worker, "content-encoding"), None);
    }

    #[test]
    fn hashed_names_are_immutable_the_rest_revalidated() {
        let wasm = respond(files, "web-0123456789abcdef_bg.wasm", None).unwrap();
        assert_eq!(
            header(&wasm, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        for path in ["", "index.html", "worker.js", "some/route"] {
            let response = respond(files, path, None).unwrap();
            assert_eq!(
                header(&response, "cache-control"),
                Some("no-cache"),
                "{path}"
            );
        }
        assert!(!is_content_addressed("miner_bg.wasm"));
        assert!(!is_content_addressed("style-0123.css"));
        assert!(is_content_addressed("style-5bb1384cd3f08cf5.css"));
    }

    #[test]
    fn unknown_paths_get_the_page_and_no_page_gets_nothing() {
        let route = respond(files, "room/class-3", Some("gzip")).unwrap();
        assert_eq!(
            header(&route, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header(&route, "content-encoding"), Some("gzip"));
        // A request for a .gz name itself is not a way to read the compressed copies as such.
        let gz = respond(files, "index.html.gz", None).unwrap();
        assert_eq!(
            header(&gz, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(respond(|_| None, "index.html", None).is_none());
    }
}
