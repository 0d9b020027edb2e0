//! Sending one notification as a JSON `POST` to the notif's `url` with reqwest,
//! signed like karajo's own web hooks: `X-Karajo-Sign` holds the lower-case hex
//! HMAC-SHA256 of the exact body with the notif's `secret`. Any 2xx answer is a
//! delivery.

use jiff::Timestamp;

use super::SendError;
use super::message::{Pending, webhook_payload};
use crate::auth::{HEADER_KARAJO_SIGN, sign_hmac_sha256};
use crate::config::WebhookNotif;

/// Posts the document of `pending` to the notif's URL.
pub(crate) async fn send(
    client: &reqwest::Client,
    cfg: &WebhookNotif,
    pending: &Pending,
) -> Result<(), SendError> {
    let payload = webhook_payload(pending, Timestamp::now());
    let body = serde_json::to_vec(&payload).map_err(|e| SendError::Message(e.to_string()))?;
    let mut request = client
        .post(&cfg.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, crate::USER_AGENT);
    if let Some(secret) = &cfg.secret {
        request = request.header(
            HEADER_KARAJO_SIGN,
            sign_hmac_sha256(secret.as_bytes(), &body),
        );
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|source| SendError::Http {
            url: cfg.url.clone(),
            source,
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(SendError::Status {
            url: cfg.url.clone(),
            status: status.as_u16(),
        })
    }
}
