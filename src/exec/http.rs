//! HTTP jobs: one request per run, built as the original builds it (spec 7.1) but
//! correctly: `_karajo_epoch` is the real Unix time in every request type, a URL that
//! already has a query gets `&`, and the URL is not rewritten. The request and the
//! response (body capped) go into the run log, with the values of secret headers
//! replaced by `<redacted>` ([`crate::redact`]); any 2xx is a success.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::{Outcome, SharedLog, log_line};
use crate::auth::replay::EPOCH_FIELD;
use crate::config::{HttpMethod, HttpRequestType};
use crate::redact::{self, SecretHeaders};
use crate::store::framing;

/// The most of a response body that goes into the run log.
pub const RESPONSE_BODY_CAP: usize = 1024 * 1024;

/// Everything needed to send an HTTP job's request.
#[derive(Debug, Clone)]
pub struct HttpJob {
    /// The request method.
    pub method: HttpMethod,
    /// The absolute URL.
    pub url: String,
    /// Where `_karajo_epoch` goes: query string, form body or JSON body.
    pub request_type: HttpRequestType,
    /// Extra request headers, in order.
    pub headers: Vec<(String, String)>,
    /// Signs the payload into `header_sign` when not empty.
    pub secret: String,
    /// The header that receives the signature.
    pub header_sign: String,
    /// The headers whose values the run log does not show: the fixed rule plus the
    /// job's `header_sign` and `http_header_secret`.
    pub secret_headers: SecretHeaders,
    /// The whole request's time limit; `None` for none.
    pub timeout: Option<Duration>,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// Where the signature is recorded as spent before the request goes out.
    pub sent: Option<SentSignatures>,
}

/// Where an HTTP job records the signatures it sends, so that the server it calls
/// cannot replay them to karajo.
#[derive(Debug, Clone)]
pub struct SentSignatures {
    /// karajo's replay guard.
    pub guard: std::sync::Arc<crate::auth::ReplayGuard>,
    /// The stamp rules in force (for how long a signature stays valid).
    pub rules: crate::auth::StampRules,
}

/// The payload and where it goes, for a request sent at `epoch` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The URL with the query appended, for query requests.
    pub url: String,
    /// The body, for form and JSON requests.
    pub body: Option<(String, &'static str)>,
    /// The bytes the signature covers.
    pub signed: String,
}

/// Builds the payload of a request sent at `epoch`.
pub fn payload(job: &HttpJob, epoch: i64) -> Payload {
    match job.request_type {
        HttpRequestType::Query => {
            let query = format!("{EPOCH_FIELD}={epoch}");
            let joiner = if job.url.contains('?') { '&' } else { '?' };
            Payload {
                url: format!("{}{joiner}{query}", job.url),
                body: None,
                signed: query,
            }
        }
        HttpRequestType::Form => {
            let body = format!("{EPOCH_FIELD}={epoch}");
            Payload {
                url: job.url.clone(),
                body: Some((body.clone(), "application/x-www-form-urlencoded")),
                signed: body,
            }
        }
        HttpRequestType::Json => {
            let body = format!("{{\"{EPOCH_FIELD}\":{epoch}}}");
            Payload {
                url: job.url.clone(),
                body: Some((body.clone(), "application/json")),
                signed: body,
            }
        }
    }
}

/// Sends the job's request at `epoch`, logging the request and the response, until it
/// completes, times out or `cancel` fires.
pub async fn run_http(
    job: &HttpJob,
    epoch: i64,
    log: SharedLog,
    cancel: CancellationToken,
) -> Outcome {
    tokio::select! {
        outcome = send(job, epoch, &log) => outcome,
        () = cancel.cancelled() => Outcome::Canceled,
    }
}

async fn send(job: &HttpJob, epoch: i64, log: &SharedLog) -> Outcome {
    let request = match build(job, epoch) {
        Ok(parts) => parts,
        Err(why) => return Outcome::Failed(why.to_string()),
    };
    let (client, request) = request;
    log_line(log, framing::http_request());
    log_request(log, &request, &job.secret_headers);
    let mut response = match client.execute(request).await {
        Ok(response) => response,
        Err(err) => return Outcome::Failed(format!("execute: {}", error_chain(&err))),
    };
    log_line(log, framing::http_response());
    log_line(
        log,
        &format!("{:?} {}", response.version(), response.status()),
    );
    log_headers(log, response.headers(), &job.secret_headers);
    log_line(log, "");
    let mut kept = 0usize;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_BODY_CAP - kept;
                let take = chunk.len().min(room);
                output(log, &chunk[..take]);
                kept += take;
                if take < chunk.len() {
                    log_line(
                        log,
                        &format!("... response body cut at {RESPONSE_BODY_CAP} bytes"),
                    );
                    break;
                }
            }
            Ok(None) => break,
            Err(err) => {
                log_line(log, "");
                return Outcome::Failed(format!(
                    "execute: reading the response: {}",
                    error_chain(&err)
                ));
            }
        }
    }
    if kept > 0 {
        log_line(log, "");
    }
    let status = response.status();
    if status.is_success() {
        Outcome::Success
    } else {
        Outcome::Failed(format!("execute: {status}"))
    }
}

/// Why an HTTP job's request could not be built; the run fails with this text.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// reqwest could not make a client (TLS back end, for example).
    #[error("cannot create the HTTP client: {0}")]
    Client(reqwest::Error),
    /// The URL or body was refused; the URL is redacted.
    #[error("invalid request to {url}: {source}")]
    Request {
        /// The URL, with its password redacted.
        url: String,
        /// reqwest's reason.
        source: reqwest::Error,
    },
    /// An `http_header` name that is not a valid header name.
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    /// An `http_header` value that cannot go in a header.
    #[error("invalid value of header {0}")]
    HeaderValue(HeaderName),
}

/// The client (per run: timeout and TLS checks are per job) and the request.
fn build(job: &HttpJob, epoch: i64) -> Result<(reqwest::Client, reqwest::Request), BuildError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(crate::USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .tls_danger_accept_invalid_certs(job.insecure);
    if let Some(timeout) = job.timeout {
        builder = builder.timeout(timeout);
    }
    let client = builder.build().map_err(BuildError::Client)?;
    let payload = payload(job, epoch);
    let method = match job.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Delete => reqwest::Method::DELETE,
    };
    let mut request = client.request(method, &payload.url);
    if let Some((body, content_type)) = payload.body {
        request = request.header("Content-Type", content_type).body(body);
    }
    if !job.secret.is_empty() {
        let sign = crate::auth::sign_hmac_sha256(job.secret.as_bytes(), payload.signed.as_bytes());
        if let (Some(sent), Some(id)) = (&job.sent, crate::auth::SignatureId::of_hex(&sign)) {
            let epoch_ns = i128::from(epoch) * 1_000_000_000;
            let now = jiff::Timestamp::from_second(epoch).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            sent.guard.spend_sent(id, epoch_ns, &sent.rules, now);
        }
        request = request.header(job.header_sign.as_str(), sign);
    }
    let mut request = request.build().map_err(|source| BuildError::Request {
        url: redact::url(&payload.url).into_owned(),
        source,
    })?;
    for (name, value) in &job.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| BuildError::HeaderName(name.clone()))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| BuildError::HeaderValue(name.clone()))?;
        request.headers_mut().insert(name, value);
    }
    Ok((client, request))
}

/// Writes the request as it goes on the wire (without the headers the HTTP stack adds
/// itself, except Host), secret header values redacted. The user info of the URL is
/// not in the request line; reqwest has turned it into an `Authorization` header.
fn log_request(log: &SharedLog, request: &reqwest::Request, secret: &SecretHeaders) {
    let url = request.url();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    log_line(log, &format!("{} {target} HTTP/1.1", request.method()));
    if let Some(host) = url.host_str() {
        match url.port() {
            Some(port) => log_line(log, &format!("Host: {host}:{port}")),
            None => log_line(log, &format!("Host: {host}")),
        }
    }
    log_headers(log, request.headers(), secret);
    log_line(log, "");
    if let Some(body) = request.body().and_then(|b| b.as_bytes()) {
        output(log, body);
        log_line(log, "");
    }
}

/// One `name: value` line per header, secret values redacted.
fn log_headers(log: &SharedLog, headers: &reqwest::header::HeaderMap, secret: &SecretHeaders) {
    for (name, value) in headers {
        let line = secret.header(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
        log_line(log, &line);
    }
}

fn output(log: &SharedLog, bytes: &[u8]) {
    let mut sink = log.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(err) = sink.output(bytes) {
        tracing::warn!(%err, "cannot write to run log");
    }
}

/// An error with its causes, as one line (reqwest's top error alone says little).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(url: &str, request_type: HttpRequestType) -> HttpJob {
        HttpJob {
            method: HttpMethod::Post,
            url: url.to_string(),
            request_type,
            headers: Vec::new(),
            secret: "s3cret".into(),
            header_sign: "X-Karajo-Sign".into(),
            secret_headers: SecretHeaders::new("X-Karajo-Sign", &[]),
            timeout: None,
            insecure: false,
            sent: None,
        }
    }

    #[test]
    fn the_log_shows_secret_headers_as_redacted_but_the_request_keeps_them() {
        let mut job = job("http://u:pw@127.0.0.1:1/x", HttpRequestType::Json);
        job.headers = vec![
            ("Authorization".into(), "Bearer xyz".into()),
            ("X-Api-Key".into(), "abc".into()),
            ("X-Tenant".into(), "t-1".into()),
            ("X-Test".into(), "visible".into()),
        ];
        job.secret_headers = SecretHeaders::new("X-Karajo-Sign", &["X-Tenant".into()]);
        let (_, request) = build(&job, 7).unwrap();
        let sign = crate::auth::sign_hmac_sha256(b"s3cret", br#"{"_karajo_epoch":7}"#);
        assert_eq!(request.headers()["x-karajo-sign"], sign.as_str());
        assert_eq!(request.headers()["authorization"], "Bearer xyz");
        assert_eq!(request.headers()["x-api-key"], "abc");
        let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink: SharedLog = bytes.clone();
        log_request(&sink, &request, &job.secret_headers);
        let mut response = reqwest::header::HeaderMap::new();
        response.insert("set-cookie", "sid=cookie-value".parse().unwrap());
        response.insert("x-request-id", "r-1".parse().unwrap());
        log_headers(&sink, &response, &job.secret_headers);
        let text = String::from_utf8(bytes.lock().unwrap().clone()).unwrap();
        for line in [
            "POST /x HTTP/1.1\n",
            "Host: 127.0.0.1:1\n",
            "x-karajo-sign: <redacted>\n",
            "authorization: <redacted>\n",
            "x-api-key: <redacted>\n",
            "x-tenant: <redacted>\n",
            "x-test: visible\n",
            "set-cookie: <redacted>\n",
            "x-request-id: r-1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in {text}");
        }
        for secret in [
            sign.as_str(),
            "xyz",
            "abc",
            "t-1",
            "pw",
            "cookie-value",
            "dTpwdw",
        ] {
            assert!(!text.contains(secret), "{secret:?} in {text}");
        }
    }

    #[test]
    fn the_epoch_is_a_real_number_in_every_request_type() {
        let p = payload(&job("http://h/run/", HttpRequestType::Query), 1795374689);
        assert_eq!(p.url, "http://h/run/?_karajo_epoch=1795374689");
        assert_eq!(p.signed, "_karajo_epoch=1795374689");
        let p = payload(&job("http://h/env?foo=bar", HttpRequestType::Query), 1);
        assert_eq!(p.url, "http://h/env?foo=bar&_karajo_epoch=1");
        let p = payload(&job("http://h/x", HttpRequestType::Form), 7);
        assert_eq!(p.body.unwrap().0, "_karajo_epoch=7");
        let p = payload(
            &job("http://[::1]:8080/x/", HttpRequestType::Json),
            1795374689,
        );
        assert_eq!(p.url, "http://[::1]:8080/x/");
        assert_eq!(p.signed, r#"{"_karajo_epoch":1795374689}"#);
        // Spec 5.2 vector 2: what a JSON HTTP job signs.
        assert_eq!(
            crate::auth::sign_hmac_sha256(b"s3cret", p.signed.as_bytes()),
            "9895d2929f408d599da408c02925cc027f8e7f5eb52a5e3f165efd0e2b00ddec"
        );
    }
}
