//! HTTP jobs: one request per run, built as the original builds it (spec 7.1) but
//! correctly: `_karajo_epoch` is the real Unix time in every request type, a URL that
//! already has a query gets `&`, and the URL is not rewritten. The request and the
//! response (body capped) go into the run log; any 2xx is a success.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::{Outcome, SharedLog, log_line};
use crate::config::{HttpMethod, HttpRequestType};

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
            let query = format!("_karajo_epoch={epoch}");
            let joiner = if job.url.contains('?') { '&' } else { '?' };
            Payload {
                url: format!("{}{joiner}{query}", job.url),
                body: None,
                signed: query,
            }
        }
        HttpRequestType::Form => {
            let body = format!("_karajo_epoch={epoch}");
            Payload {
                url: job.url.clone(),
                body: Some((body.clone(), "application/x-www-form-urlencoded")),
                signed: body,
            }
        }
        HttpRequestType::Json => {
            let body = format!("{{\"_karajo_epoch\":{epoch}}}");
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
        Err(why) => return Outcome::Failed(why),
    };
    let (client, request) = request;
    log_line(log, "--- HTTP request:");
    log_request(log, &request);
    let mut response = match client.execute(request).await {
        Ok(response) => response,
        Err(err) => return Outcome::Failed(format!("execute: {}", error_chain(&err))),
    };
    log_line(log, "--- HTTP response:");
    log_line(
        log,
        &format!("{:?} {}", response.version(), response.status()),
    );
    for (name, value) in response.headers() {
        log_line(
            log,
            &format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())),
        );
    }
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

/// The client (per run: timeout and TLS checks are per job) and the request.
fn build(job: &HttpJob, epoch: i64) -> Result<(reqwest::Client, reqwest::Request), String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(crate::USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .tls_danger_accept_invalid_certs(job.insecure);
    if let Some(timeout) = job.timeout {
        builder = builder.timeout(timeout);
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
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
    let mut request = request
        .build()
        .map_err(|e| format!("invalid request to {}: {e}", payload.url))?;
    for (name, value) in &job.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value of header {name}"))?;
        request.headers_mut().insert(name, value);
    }
    Ok((client, request))
}

/// Writes the request as it goes on the wire (without the headers the HTTP stack adds
/// itself, except Host).
fn log_request(log: &SharedLog, request: &reqwest::Request) {
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
    for (name, value) in request.headers() {
        log_line(
            log,
            &format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())),
        );
    }
    log_line(log, "");
    if let Some(body) = request.body().and_then(|b| b.as_bytes()) {
        output(log, body);
        log_line(log, "");
    }
}

fn output(log: &SharedLog, bytes: &[u8]) {
    let mut sink = log.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(err) = sink.output(bytes) {
        tracing::warn!(%err, "cannot write to run log");
    }
}

/// An error with its causes, as one line (reqwest's top error alone says little).
fn error_chain(err: &dyn std::error::Error) -> String {
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
            timeout: None,
            insecure: false,
            sent: None,
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
