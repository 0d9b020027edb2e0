//! `dir_public` served at `/`: GET and HEAD of files below it, `index.html` for
//! directories, never anything outside it. A path is percent-decoded, refused when a
//! segment is `..`, starts with `.` (hidden files) or holds a NUL or backslash, then
//! joined to the directory and canonicalised (symbolic links resolved) and refused
//! unless the result is still inside the canonical directory (a relative `dir_public`
//! is relative to the directory karajo started in, as in the original). Paths under `/karajo`
//! are never served from here. Without `dir_public`, `/` goes to the web UI.
//!
//! The files share the web UI's origin, so every one is served with
//! `Content-Security-Policy: sandbox` (a page runs no script and gets an origin of its
//! own, so it cannot act as a logged-in user) and `X-Content-Type-Options: nosniff`.
//! The redirect that adds a directory's `/` always stays on this origin: its
//! `Location` is a path starting with exactly one `/`, repeated slashes collapsed
//! (`//evil.example` leads to `/evil.example/`, never to another host).

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::percent::decode_path;
use crate::web::AppState;

/// The Content-Security-Policy of every file from `dir_public`.
pub(super) const PUBLIC_CSP: &str = "sandbox";

/// Why a path is not served.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum PublicPathError {
    /// A bad percent escape or a decoded byte that is not allowed.
    #[error("malformed path")]
    Malformed,
    /// A `..` segment, or a hidden file.
    #[error("path segment not allowed")]
    Forbidden,
}

/// The fallback: files of `dir_public`, or `404`.
pub(super) async fn serve(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    let under_karajo = path
        .as_bytes()
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"/karajo"))
        && matches!(path.as_bytes().get(7), None | Some(b'/'));
    if under_karajo || (method != Method::GET && method != Method::HEAD) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(root) = state.config().dir_public.clone() else {
        return if path == "/" {
            Redirect::to("/karajo/").into_response()
        } else {
            StatusCode::NOT_FOUND.into_response()
        };
    };
    let Ok(relative) = relative_path(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let wants_dir = path.ends_with('/');
    let found = tokio::task::spawn_blocking(move || resolve(&root, &relative)).await;
    let Ok(Some(found)) = found else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let file = match found {
        Found::Dir(_) if !wants_dir => {
            return Redirect::to(&directory_location(path)).into_response();
        }
        Found::Dir(index) => match index {
            Some(index) => index,
            None => return StatusCode::NOT_FOUND.into_response(),
        },
        Found::File(file) => file,
    };
    send_file(&file, &headers).await
}

/// A resolved path: a file, or a directory with its `index.html` if it has one.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    File(PathBuf),
    Dir(Option<PathBuf>),
}

/// The decoded, checked segments of a URL path, joined as a relative path.
fn relative_path(url_path: &str) -> Result<PathBuf, PublicPathError> {
    let decoded = decode_path(url_path).ok_or(PublicPathError::Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| PublicPathError::Malformed)?;
    if text.contains(['\0', '\\']) {
        return Err(PublicPathError::Malformed);
    }
    let mut relative = PathBuf::new();
    for segment in text.split('/').filter(|s| !s.is_empty()) {
        if segment == "." {
            continue;
        }
        if segment.starts_with('.') && segment != ".well-known" {
            return Err(PublicPathError::Forbidden);
        }
        relative.push(segment);
    }
    Ok(relative)
}

/// Where a directory asked for without its trailing `/` redirects to: the path with
/// runs of `/` collapsed to one, exactly one leading `/`, a trailing `/`, and `\\`,
/// spaces, control and non-ASCII bytes percent-encoded, so a browser can only read it
/// as a path on this origin (`//host`, `/\\host` or `/<tab>/host` would name another
/// host).
fn directory_location(path: &str) -> String {
    let mut location = String::from("/");
    for byte in path.bytes() {
        match byte {
            b'/' if location.ends_with('/') => {}
            b'\\' => location.push_str("%5C"),
            b if b.is_ascii_graphic() => location.push(char::from(b)),
            b => location.push_str(&format!("%{b:02X}")),
        }
    }
    if !location.ends_with('/') {
        location.push('/');
    }
    location
}

/// Canonicalises `root/relative` and keeps it only when it stays inside `root`.
fn resolve(root: &Path, relative: &Path) -> Option<Found> {
    let root = root.canonicalize().ok()?;
    let inside = |p: &Path| -> Option<PathBuf> {
        let real = p.canonicalize().ok()?;
        real.starts_with(&root).then_some(real)
    };
    let target = inside(&root.join(relative))?;
    let meta = std::fs::metadata(&target).ok()?;
    if meta.is_dir() {
        let index = inside(&target.join("index.html")).filter(|p| p.is_file());
        Some(Found::Dir(index))
    } else if meta.is_file() {
        Some(Found::File(target))
    } else {
        None
    }
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("txt" | "md" | "log") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("pdf") => "application/pdf",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

async fn send_file(path: &Path, headers: &HeaderMap) -> Response {
    let Ok(file) = tokio::fs::File::open(path).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(meta) = file.metadata().await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{:x}-{:x}\"", meta.len(), mtime);
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let common = [
        (header::ETAG, etag_value),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PUBLIC_CSP),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    (
        common,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(meta.len())),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_hidden_segments_are_refused() {
        assert_eq!(relative_path("/a/b.txt").unwrap(), PathBuf::from("a/b.txt"));
        assert_eq!(relative_path("/./a//b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(relative_path("/").unwrap(), PathBuf::new());
        assert_eq!(
            relative_path("/.well-known/x").unwrap(),
            PathBuf::from(".well-known/x")
        );
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/%2E%2E/x",
            "/.git/config",
            "/a/..%2f..%2fx",
        ] {
            assert_eq!(relative_path(bad), Err(PublicPathError::Forbidden), "{bad}");
        }
        for bad in ["/a%5c..", "/%00", "/%zz", "/%ff"] {
            assert_eq!(relative_path(bad), Err(PublicPathError::Malformed), "{bad}");
        }
    }

    #[test]
    fn directory_redirects_stay_on_this_origin() {
        for (path, want) in [
            ("/docs", "/docs/"),
            ("//evil.example", "/evil.example/"),
            ("///evil.example", "/evil.example/"),
            ("//evil.example//sub", "/evil.example/sub/"),
            ("/a//b", "/a/b/"),
            ("/\\evil.example", "/%5Cevil.example/"),
            ("/%2F%2Fevil.example", "/%2F%2Fevil.example/"),
            ("/\t/evil.example", "/%09/evil.example/"),
            ("/caf\u{e9}", "/caf%C3%A9/"),
            ("evil.example", "/evil.example/"),
            ("", "/"),
        ] {
            let got = directory_location(path);
            assert_eq!(got, want, "{path:?}");
            assert!(got.starts_with('/') && !got.starts_with("//"), "{path:?}");
        }
    }

    #[test]
    fn symbolic_links_out_of_the_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("public");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/index.html"), "hi").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/index.html"), root.join("ok.html")).unwrap();
        assert!(resolve(&root, Path::new("leak.txt")).is_none());
        assert!(resolve(&root, Path::new("up/secret.txt")).is_none());
        assert!(matches!(
            resolve(&root, Path::new("ok.html")),
            Some(Found::File(_))
        ));
        assert!(matches!(
            resolve(&root, Path::new("sub")),
            Some(Found::Dir(Some(_)))
        ));
        assert!(resolve(&root, Path::new("missing")).is_none());
    }
}
