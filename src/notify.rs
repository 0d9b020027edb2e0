//! The `notify` room: telling people and systems that a run ended. A job's
//! `notif_on_success`, `notif_on_failed` and `notif_on_recover` lists name `[notif]`
//! sections; after each run that ends `success` or `failed` (never `canceled`) the
//! runner hands a [`RunRecord`] to the [`Notifier`], which spools one notification per
//! chosen notif (`var/lib/karajo/notify/`, so none is lost to a restart) and delivers
//! it in the background — a mail through SMTP (`email`) or a signed JSON `POST`
//! (`webhook`) — retrying with backoff for 24 hours. It never blocks start-up or a
//! run on a server being reachable. It knows nothing of schedulers or job configs:
//! any job kind reports its runs through the same record.

mod email;
pub mod message;
mod queue;
pub mod spool;
mod webhook;

#[cfg(test)]
mod tests;

pub use message::{Event, NotifyOn, RunRecord};
pub use queue::{Notifier, NotifierOptions, NotifyStats, RetryPolicy, StatsSnapshot};

/// Why one delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The notif was removed from the configuration after the notification was
    /// queued.
    #[error("no [notif {0:?}] in the configuration (removed by a reload?)")]
    UnknownNotif(String),
    /// The mail or document could not be built (a bad address, for example).
    #[error("cannot build the notification: {0}")]
    Message(String),
    /// The SMTP conversation failed.
    #[error("SMTP server {server}: {source}")]
    Smtp {
        /// `smtp_server`, normalised.
        server: String,
        /// lettre's error.
        source: lettre::transport::smtp::Error,
    },
    /// The webhook request failed (connection, TLS, timeout).
    #[error("POST {url}: {source}")]
    Http {
        /// The notif's URL.
        url: String,
        /// reqwest's error.
        source: reqwest::Error,
    },
    /// The webhook answered with a status other than 2xx.
    #[error("POST {url}: the server answered {status}")]
    Status {
        /// The notif's URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The HTTP client could not be built at start.
    #[error("no HTTP client: {0}")]
    NoClient(String),
}

impl SendError {
    /// Errors that retrying cannot fix: an unknown notif, a message that cannot be
    /// built, an SMTP 5xx answer, a webhook 4xx answer other than 408 and 429.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::UnknownNotif(_) | Self::Message(_) => true,
            Self::Smtp { source, .. } => source.is_permanent(),
            Self::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            Self::Http { .. } | Self::NoClient(_) => false,
        }
    }
}
