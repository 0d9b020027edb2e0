//! The `notify` room: telling people and systems that a run ended or that a
//! heartbeat monitor changed. A job's `notif_on_success`, `notif_on_failed` and
//! `notif_on_recover` lists name `[notif]` sections; after each run that ends
//! `success` or `failed` (never `canceled`) the runner hands a [`RunRecord`] to the
//! [`Notifier`]. A monitor's `notif_on_down`, `notif_on_up` and `notif_on_late` are
//! chosen by the monitor room, and the scheduler hands each of its notices over as a
//! [`MonitorRecord`] ([`Notifier::submit_monitor`]). Either way the notifier spools
//! one notification per chosen notif (`var/lib/karajo/notify/`, so none is lost to a
//! restart) and delivers it in the background — a mail through SMTP (`email`), a
//! signed JSON `POST` (`webhook`) or a message through Pushover's API (`pushover`) —
//! retrying with backoff for 24 hours. It never blocks start-up, a run or a ping on
//! a server being reachable. It knows nothing of schedulers or job configs: any job
//! kind reports its runs through the same record.

mod email;
pub mod message;
pub mod notice;
mod pushover;
mod queue;
pub mod spool;
mod webhook;

#[cfg(test)]
mod tests;

pub use message::{Event, NotifyOn, RunRecord};
pub use notice::{MonitorLog, MonitorRecord, ServiceRecord};
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
    /// Pushover (or the server at `api_url`) answered with a status other than 2xx.
    #[error("POST {url}: Pushover answered {status}{detail}")]
    Pushover {
        /// The messages URL (user info redacted).
        url: String,
        /// The HTTP status.
        status: u16,
        /// `: ` and Pushover's `errors`, with the token and user key blanked out;
        /// empty when the answer had none.
        detail: String,
    },
    /// The HTTP client could not be built at start.
    #[error("no HTTP client: {0}")]
    NoClient(String),
}

impl SendError {
    /// Errors that retrying cannot fix: an unknown notif, a message that cannot be
    /// built, an SMTP 5xx answer, a webhook or Pushover 4xx answer other than 408
    /// and 429 (Pushover answers 4xx with `"status":0` when a request is invalid, for
    /// example a revoked token or an unknown user key).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::UnknownNotif(_) | Self::Message(_) => true,
            Self::Smtp { source, .. } => source.is_permanent(),
            Self::Status { status, .. } | Self::Pushover { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            Self::Http { .. } | Self::NoClient(_) => false,
        }
    }
}
