//! Sending one notification as a mail through the notif's SMTP server with lettre:
//! a new connection per mail (implicit TLS, STARTTLS or plain, per the
//! `smtp_server` scheme), AUTH only when both credentials are set, and the message
//! of spec 8 (From, To, Subject, Date, Message-ID, a quoted-printable UTF-8 body),
//! for a run or a monitor's transition alike.

use std::str::FromStr as _;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use super::SendError;
use super::message::Pending;
use crate::config::{EmailNotif, SmtpSecurity};

/// Builds the mail of `pending`.
pub(crate) fn build_message(cfg: &EmailNotif, pending: &Pending) -> Result<Message, SendError> {
    let bad = |what: String| SendError::Message(what);
    let from =
        Mailbox::from_str(&cfg.from).map_err(|e| bad(format!("from {:?}: {e}", cfg.from)))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(pending.subject())
        .date(happened_at(pending))
        .message_id(Some(pending.message_id.clone()));
    for to in &cfg.to {
        let to = Mailbox::from_str(to).map_err(|e| bad(format!("to {to:?}: {e}")))?;
        builder = builder.to(to);
    }
    let body = Body::new_with_encoding(
        pending.mail_body(),
        ContentTransferEncoding::QuotedPrintable,
    )
    .map_err(|_| bad("the body cannot be quoted-printable".into()))?;
    let part = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(body);
    builder.singlepart(part).map_err(|e| bad(e.to_string()))
}

/// When the run ended or the monitor changed, for the `Date` header.
fn happened_at(pending: &Pending) -> SystemTime {
    pending
        .happened_at()
        .parse::<Timestamp>()
        .map(SystemTime::from)
        .unwrap_or_else(|_| SystemTime::now())
}

/// Sends `pending` through the notif's server.
pub(crate) async fn send(
    cfg: &EmailNotif,
    pending: &Pending,
    timeout: Duration,
) -> Result<(), SendError> {
    let message = build_message(cfg, pending)?;
    let server = &cfg.server;
    let smtp_error = |source| SendError::Smtp {
        server: server.to_string(),
        source,
    };
    let tls = if server.security == SmtpSecurity::Plain {
        Tls::None
    } else {
        let params = TlsParameters::builder(server.host.clone())
            .dangerous_accept_invalid_certs(cfg.insecure)
            .dangerous_accept_invalid_hostnames(cfg.insecure)
            .build_rustls()
            .map_err(smtp_error)?;
        match server.security {
            SmtpSecurity::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.as_str())
        .port(server.port)
        .tls(tls)
        .timeout(Some(timeout));
    if cfg.has_credentials() {
        builder = builder.credentials(Credentials::new(cfg.user.clone(), cfg.password.clone()));
    }
    let transport: AsyncSmtpTransport<Tokio1Executor> = builder.build();
    transport.send(message).await.map_err(smtp_error)?;
    Ok(())
}
