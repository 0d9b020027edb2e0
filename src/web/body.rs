//! Request bodies read in bounded memory. Handlers that need a body read it here, after
//! they checked what costs nothing (the job, the path, the presence of a signature
//! header), so an unsigned upload is refused before a byte of it is read. Every body
//! read holds its size from one budget shared by all requests ([`BodyBudget`]); when
//! the budget is spent the request is answered 503 at once instead of waiting, so
//! concurrent uploads cannot grow the daemon's memory past it. A request refused before
//! its body was read is answered through [`refuse`].

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::api::ApiError;

/// The budget is counted in blocks of this many bytes (semaphore permits are `u32`).
const BLOCK: usize = 1024;

/// The smallest budget: room for a few ordinary web hook bodies at once.
pub const MIN_BODY_BUDGET: usize = 32 * 1024 * 1024;

/// The largest body of a request that is not a web hook (a signed form, a login).
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// The bytes that request bodies being read may hold together.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    blocks: Arc<Semaphore>,
}

impl BodyBudget {
    /// A budget of `bytes`, rounded up to whole blocks; at least one largest body of
    /// `max_body_size` fits.
    pub fn new(bytes: usize) -> Self {
        let blocks = bytes.div_ceil(BLOCK).min(Semaphore::MAX_PERMITS);
        Self {
            blocks: Arc::new(Semaphore::new(blocks)),
        }
    }

    /// The budget for a daemon whose largest body is `max_body_size`.
    pub fn for_max_body(max_body_size: usize) -> Self {
        Self::new(MIN_BODY_BUDGET.max(max_body_size))
    }

    /// Takes room for `bytes` more, or `None` when the budget is spent.
    fn take(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let blocks = u32::try_from(bytes.div_ceil(BLOCK)).ok()?;
        self.blocks.clone().try_acquire_many_owned(blocks).ok()
    }
}

/// A body read whole, holding its share of the budget until dropped.
#[derive(Debug)]
pub struct ReadBody {
    /// The bytes as sent.
    pub bytes: Bytes,
    _room: Option<OwnedSemaphorePermit>,
}

/// Reads `body` whole, refusing it past `limit` bytes (413, from its Content-Length
/// before reading when it declares one) or when the shared budget has no room (503).
pub async fn read(
    budget: &BodyBudget,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<ReadBody, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::body_too_large(limit));
    }
    let mut room = match declared {
        Some(0) => None,
        Some(n) => Some(budget.take(n).ok_or_else(ApiError::bodies_busy)?),
        None => None,
    };
    let mut reserved = declared.unwrap_or(0);
    let mut bytes = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| ApiError::body_unreadable(&err))?;
        let len = bytes.len() + chunk.len();
        if len > limit {
            return Err(ApiError::body_too_large(limit));
        }
        if len > reserved {
            // No or a wrong Content-Length: take room as the bytes arrive.
            let more = budget
                .take(len - reserved)
                .ok_or_else(ApiError::bodies_busy)?;
            match room.as_mut() {
                Some(held) => held.merge(more),
                None => room = Some(more),
            }
            reserved = len.div_ceil(BLOCK) * BLOCK;
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(ReadBody {
        bytes: bytes.freeze(),
        _room: room,
    })
}

/// Answers `refusal` to a request whose body was not read: a small declared body is
/// read and dropped first, so the connection stays usable; a large or undeclared one
/// is left unread and the answer says `Connection: close`, so no client sends its next
/// request on a connection the server is about to close.
pub async fn refuse(
    budget: &BodyBudget,
    headers: &HeaderMap,
    body: Body,
    refusal: impl IntoResponse,
) -> Response {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let drained = match declared {
        Some(0) => true,
        Some(n) if n <= SMALL_BODY_LIMIT => read(budget, headers, body, n).await.is_ok(),
        _ => false,
    };
    let mut response = refusal.into_response();
    if !drained {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length(n: usize) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, n.into());
        h
    }

    #[tokio::test]
    async fn bodies_share_one_budget() {
        let budget = BodyBudget::new(10 * BLOCK);
        let first = read(
            &budget,
            &length(6 * BLOCK),
            Body::from(vec![1; 6 * BLOCK]),
            1 << 20,
        )
        .await
        .unwrap();
        assert_eq!(first.bytes.len(), 6 * BLOCK);
        // While the first is held, a second that does not fit is refused at once.
        let err = read(
            &budget,
            &length(6 * BLOCK),
            Body::from(vec![1; 6 * BLOCK]),
            1 << 20,
        )
        .await
        .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        // ... also when it declares no length.
        let err = read(
            &budget,
            &HeaderMap::new(),
            Body::from(vec![1; 6 * BLOCK]),
            1 << 20,
        )
        .await
        .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        drop(first);
        read(
            &budget,
            &HeaderMap::new(),
            Body::from(vec![1; 6 * BLOCK]),
            1 << 20,
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn the_limit_holds_with_or_without_a_declared_length() {
        let budget = BodyBudget::new(1 << 20);
        let err = read(&budget, &length(101), Body::from(vec![1; 101]), 100)
            .await
            .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        let err = read(&budget, &HeaderMap::new(), Body::from(vec![1; 101]), 100)
            .await
            .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        let ok = read(&budget, &length(0), Body::empty(), 100).await.unwrap();
        assert!(ok.bytes.is_empty());
    }
}
