//! The web UI's static files (`wui/static/`), embedded in the binary and served under
//! `/karajo/static/` with a strong ETag (a hash of the content), `304` answers to
//! `If-None-Match`, and `Cache-Control: public, max-age=86400`. Pages link them with
//! `?v=<fingerprint>` so a new karajo version is fetched at once.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "karajo.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../../wui/static/karajo.css"),
    },
    Asset {
        name: "karajo.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../wui/static/karajo.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../../wui/static/favicon.svg"),
    },
];

/// How long browsers and proxies may keep an asset without asking again.
const CACHE_CONTROL: &str = "public, max-age=86400";

/// The ETags of the assets, in `ASSETS` order, and the fingerprint of them all.
fn etags() -> &'static (Vec<String>, String) {
    static TAGS: OnceLock<(Vec<String>, String)> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut all = Sha256::new();
        let tags = ASSETS
            .iter()
            .map(|a| {
                all.update(a.body);
                let digest = Sha256::digest(a.body);
                format!("\"{}\"", hex::encode(&digest[..12]))
            })
            .collect();
        (tags, hex::encode(&all.finalize()[..6]))
    })
}

/// A short hash of all assets, for `?v=` in links.
pub(super) fn fingerprint() -> &'static str {
    &etags().1
}

/// `GET /karajo/static/{file}`.
pub(super) async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let asset = &ASSETS[i];
    let etag = &etags().0[i];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_value = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let common = [
        (header::ETAG, etag_value),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}
