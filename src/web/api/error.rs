//! The one error type of the HTTP layer. It renders the original's error object
//! `{"message":..,"name":..,"code":..}` (spec 4.2), with the HTTP status equal to `code`
//! except where the original answers 200 for a missing log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::json;

/// An API failure: what the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status of the response.
    pub status: StatusCode,
    /// The `code` field; equal to the status except for the original's quirks.
    pub code: u16,
    /// The `name` field (`ERR_JOB_PAUSED`, ...); omitted when empty.
    pub name: &'static str,
    /// The `message` field.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, name: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: status.as_u16(),
            name,
            message: message.into(),
        }
    }

    /// An error of this room's newer endpoints (monitors spec 1.3's table).
    pub(super) fn with(status: StatusCode, name: &'static str, message: impl Into<String>) -> Self {
        Self::new(status, name, message)
    }

    /// 401, a missing or wrong `X-Karajo-Sign` on an API call.
    pub fn bad_signature() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "", "empty or invalid signature")
    }

    /// 401 for an API call whose `_karajo_epoch` is too far from now.
    pub fn stale_request(why: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "", why)
    }

    /// 403, a web hook whose signature does not verify.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "ERR_JOB_FORBIDDEN", "forbidden")
    }

    /// 403, a web hook refused by the replay rules (epoch outside the window).
    pub fn forbidden_because(why: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "ERR_JOB_FORBIDDEN", why)
    }

    /// 409, a signature (or a GitHub delivery) accepted before.
    pub fn replayed(why: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ERR_REPLAYED", why)
    }

    /// The answer to a request signed with the global secret that was refused: 401 for
    /// a missing or wrong signature or stamp, 409 for a signature used before.
    pub fn refused_signature(refusal: &crate::web::access::SignRefusal) -> Self {
        use crate::web::access::SignRefusal;
        match refusal {
            SignRefusal::Signature(_) => Self::bad_signature(),
            SignRefusal::Stamp(err) if err.is_reuse() => Self::replayed(err.to_string()),
            SignRefusal::Stamp(err) => Self::stale_request(err.to_string()),
        }
    }

    /// 413, a body past `max_body_size` (or the small limit of the route).
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ERR_BODY_TOO_LARGE",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// 503, the bytes of bodies being read are at their bound.
    pub fn bodies_busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ERR_BUSY",
            "too many request bodies are being read; retry shortly",
        )
    }

    /// 400, the client stopped sending or sent a broken body.
    pub fn body_unreadable(err: &dyn std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ERR_BAD_BODY",
            format!("cannot read the request body: {err}"),
        )
    }

    /// 412, the job is paused.
    pub fn paused() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "ERR_JOB_PAUSED",
            "job is paused",
        )
    }

    /// 429, a run is in progress and another is queued.
    pub fn busy() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ERR_JOB_ALREADY_RUN",
            "job already run",
        )
    }

    /// 404 `ERR_JOB_NOT_FOUND` (command job endpoints); `message` says which id and
    /// the closest existing one.
    pub fn job_not_found(message: String) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ERR_JOB_NOT_FOUND", message)
    }

    /// 400 `ERR_INVALID_JOB_ID` (HTTP job endpoints, as the original answers).
    pub fn invalid_job_id(message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ERR_INVALID_JOB_ID", message)
    }

    /// 404 without a name (the log endpoint of command jobs, as the original).
    pub fn log_job_not_found(message: String) -> Self {
        Self::new(StatusCode::NOT_FOUND, "", message)
    }

    /// `log #<counter> not found`: HTTP 404 when the counter is not a number, HTTP 200
    /// with `code` 404 when it is a number without a log (as the original).
    pub fn log_not_found(counter: &str, numeric: bool) -> Self {
        let mut err = Self::new(
            StatusCode::NOT_FOUND,
            "",
            format!("log #{counter} not found"),
        );
        if numeric {
            err.status = StatusCode::OK;
        }
        err
    }

    /// 503 for a cluster job while this node cannot reach the cluster (cluster spec
    /// 7.3); answered with `Retry-After: 5`.
    pub fn cluster_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ERR_CLUSTER_UNAVAILABLE",
            message,
        )
    }

    /// 503 while the daemon stops.
    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ERR_SHUTTING_DOWN",
            "karajo is shutting down",
        )
    }

    /// 404 `ERR_SERVICE_NOT_FOUND`.
    pub fn service_not_found(id: &str) -> Self {
        Self::with(
            StatusCode::NOT_FOUND,
            "ERR_SERVICE_NOT_FOUND",
            format!("service not found: {id}"),
        )
    }

    /// This error with the object it concerns beside it,
    /// `{"message":..,"name":..,"data":..,"code":..}`: a 409 CAS mismatch carries the
    /// current object, so a client can retry without reading it again (monitors spec
    /// 1.3).
    pub fn with_data<T: serde::Serialize>(self, data: &T) -> Response {
        #[derive(serde::Serialize)]
        struct ErrorWithData<'a, T> {
            message: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            name: &'a str,
            data: &'a T,
            code: u16,
        }
        let body = json::to_string(&ErrorWithData {
            message: &self.message,
            name: self.name,
            data,
            code: self.code,
        });
        json::response(self.status, body)
    }

    /// 500 `internal server error`; the detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_INTERNAL",
            "internal server error",
        )
    }
}

impl From<ApiError> for Response {
    fn from(err: ApiError) -> Self {
        err.into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json::error_object(&self.message, self.name, self.code);
        let mut response = json::response(self.status, body);
        if self.name == "ERR_CLUSTER_UNAVAILABLE" {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        response
    }
}
