//! The connection to NATS (cluster spec 7.1.1): the client options built from
//! `[cluster]` (every kind of authentication, TLS, the node's inbox prefix and name, a
//! 5 s ping so a frozen server is noticed), and the node's view of the link: a
//! [`Health`] watch fed by the client's events, which every protocol checks before it
//! writes (writes issued while disconnected are buffered and land later: spec 13 trap
//! 4). It owns no bucket or stream; provisioning and the protocols take a [`Link`].

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream;
use async_nats::{ConnectOptions, Event, ServerAddr};
use jiff::Timestamp;
use tokio::sync::watch;

use crate::cluster::nats::error::NatsError;
use crate::cluster::nats::layout::Names;
use crate::cluster::{ClusterSettings, NatsAuth, NodeName};

/// The bound on one TCP and TLS connection attempt (spec 7.1.1).
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

pub use crate::cluster::coordinator::Health;

/// What the client reported, handed to the caller's callback (for the event stream and
/// metrics). Texts are the client's; they carry no credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnEvent {
    /// Connected or reconnected.
    Connected,
    /// The link went down; the client keeps reconnecting.
    Disconnected,
    /// The client was closed (drained); it will not reconnect.
    Closed,
    /// The server announced it is shutting down (lame duck mode).
    LameDuck,
    /// A subscription could not keep up (its id).
    SlowConsumer(u64),
    /// The server reported an error, e.g. a permission violation (which otherwise
    /// looks like a timeout: spec 13 trap 6).
    ServerError(String),
    /// The client reported an error (e.g. authentication failed while reconnecting).
    ClientError(String),
}

/// This node's link to NATS: the client, its JetStream context and its [`Health`].
/// Cheap to clone; every clone shares the one connection.
#[derive(Debug, Clone)]
pub struct Link {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    health: watch::Receiver<Health>,
}

impl Link {
    /// The client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The current health, as the client's events reported it.
    pub fn health(&self) -> Health {
        *self.health.borrow()
    }

    /// A receiver of every change of health.
    pub fn health_watch(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }

    /// Whether the client is connected right now. Checked before any write whose
    /// delivery matters (claims): a write issued while disconnected is buffered and
    /// lands later, so it is not issued at all.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected && self.health().is_connected()
    }

    /// Waits until the link is up, at most `within`; whether it is.
    pub async fn wait_connected(&self, within: Duration) -> bool {
        let mut health = self.health.clone();
        let up = tokio::time::timeout(within, health.wait_for(Health::is_connected)).await;
        matches!(up, Ok(Ok(_)))
    }

    /// The version of the server this client last connected to (`2.9.10`), or `None`
    /// before the first connection. Recorded in the lease (spec 5.2).
    pub fn server_version(&self) -> Option<String> {
        self.client.try_server_info().map(|info| info.version)
    }
}

/// Connects as node `settings.node` (cluster spec 7.1.1). Returns at once, also when no
/// server answers yet: the client keeps trying in the background for ever, and
/// [`Link::health`] says when it is up. `events` hears every client event, after it is
/// logged. Fails only on settings the client refuses (a URL, an unreadable file).
pub async fn connect(
    settings: &ClusterSettings,
    events: impl Fn(ConnEvent) + Send + Sync + 'static,
) -> Result<Link, NatsError> {
    let urls = server_addrs(&settings.nats_urls)?;
    let (health_tx, health_rx) = watch::channel(Health::Disconnected {
        since: Timestamp::now(),
    });
    let health_tx = Arc::new(health_tx);
    let events = Arc::new(events);
    let node = settings.node.clone();
    let options = options(settings).await?.event_callback(move |event| {
        on_event(&node, &health_tx, event, events.as_ref());
        std::future::ready(())
    });
    let client = options
        .connect(urls)
        .await
        .map_err(|err| NatsError::Connect {
            urls: settings.nats_urls.join(", "),
            source: err.into(),
        })?;
    let jetstream = jetstream::new(client.clone());
    Ok(Link {
        client,
        jetstream,
        health: health_rx,
    })
}

/// The client options of spec 7.1.1 for `settings`, without the event callback:
/// reconnect for ever (also on the first connection), ping every `ping_interval`, 2 s
/// per connection attempt, replies under `_INBOX_<node>` (the permission template
/// allows only that), named `karajo/<node>`, with the configured credentials and TLS.
/// Reads the credentials, seed and certificate files, and says which one it cannot.
pub async fn options(settings: &ClusterSettings) -> Result<ConnectOptions, NatsError> {
    let node = &settings.node;
    let mut options = ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .ping_interval(settings.ping_interval)
        .connection_timeout(CONNECTION_TIMEOUT)
        .custom_inbox_prefix(Names::inbox_prefix(node))
        .name(client_name(node));
    options = match &settings.auth {
        NatsAuth::None => options,
        NatsAuth::Creds(path) => {
            options
                .credentials_file(path)
                .await
                .map_err(|source| NatsError::File {
                    key: "nats_creds",
                    path: path.clone(),
                    source,
                })?
        }
        NatsAuth::NkeySeed(path) => {
            let seed = tokio::fs::read_to_string(path)
                .await
                .map_err(|source| NatsError::File {
                    key: "nats_nkey_seed",
                    path: path.clone(),
                    source,
                })?;
            let seed = seed.trim();
            if !seed.starts_with("SU") {
                return Err(NatsError::Config(format!(
                    "nats_nkey_seed file {} does not hold an nkey user seed (SU…)",
                    path.display()
                )));
            }
            options.nkey(seed.to_string())
        }
        NatsAuth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        NatsAuth::Token(token) => options.token(token.clone()),
    };
    if let Some(ca) = &settings.tls_ca {
        readable("nats_tls_ca", ca)?;
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &settings.tls_client {
        readable("nats_tls_cert", cert)?;
        readable("nats_tls_key", key)?;
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    if settings.tls_first {
        options = options.tls_first();
    }
    Ok(options)
}

/// The client's name on the server: `karajo/<node>`.
pub fn client_name(node: &NodeName) -> String {
    format!("karajo/{node}")
}

/// The seed URLs, parsed; names the one the client refuses.
fn server_addrs(urls: &[String]) -> Result<Vec<ServerAddr>, NatsError> {
    if urls.is_empty() {
        return Err(NatsError::Config("no nats_url".into()));
    }
    urls.iter()
        .map(|url| {
            url.parse::<ServerAddr>().map_err(|err| {
                NatsError::Config(format!("nats_url = {url:?} is not a NATS URL: {err}"))
            })
        })
        .collect()
}

/// Checks that a TLS file can be opened, so a typo is named at start-up rather than
/// hidden in reconnection attempts.
fn readable(key: &'static str, path: &std::path::Path) -> Result<(), NatsError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|source| NatsError::File {
            key,
            path: path.to_path_buf(),
            source,
        })
}

/// Logs one client event, updates the health watch, and tells the caller.
fn on_event(
    node: &NodeName,
    health: &watch::Sender<Health>,
    event: Event,
    events: &(dyn Fn(ConnEvent) + Send + Sync),
) {
    let now = Timestamp::now();
    let event = match event {
        Event::Connected => {
            tracing::info!(%node, "cluster: connected to NATS");
            health.send_replace(Health::Connected { since: now });
            ConnEvent::Connected
        }
        Event::Disconnected => {
            tracing::warn!(%node, "cluster: disconnected from NATS; cluster jobs pause on this node until it reconnects");
            health.send_replace(Health::Disconnected { since: now });
            ConnEvent::Disconnected
        }
        Event::Closed => {
            tracing::info!(%node, "cluster: NATS connection closed");
            health.send_replace(Health::Disconnected { since: now });
            ConnEvent::Closed
        }
        Event::LameDuckMode => {
            tracing::warn!(%node, "cluster: the NATS server is shutting down (lame duck mode)");
            ConnEvent::LameDuck
        }
        Event::Draining => {
            tracing::info!(%node, "cluster: draining the NATS connection");
            return;
        }
        Event::SlowConsumer(sid) => {
            tracing::warn!(%node, sid, "cluster: a NATS subscription cannot keep up (slow consumer)");
            ConnEvent::SlowConsumer(sid)
        }
        Event::ServerError(err) => {
            tracing::warn!(%node, error = %err, "cluster: the NATS server reported an error (a permission error makes operations time out)");
            ConnEvent::ServerError(err.to_string())
        }
        Event::ClientError(err) => {
            tracing::warn!(%node, error = %err, "cluster: NATS client error");
            ConnEvent::ClientError(err.to_string())
        }
    };
    events(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClusterSettings {
        ClusterSettings::defaults(NodeName::parse("n1").unwrap())
    }

    #[test]
    fn a_bad_url_is_named() {
        let err = server_addrs(&["nats://[::1".into()]).unwrap_err();
        assert!(err.to_string().contains("nats://[::1"), "{err}");
        assert!(server_addrs(&[]).is_err());
        assert_eq!(client_name(&settings().node), "karajo/n1");
    }

    #[tokio::test]
    async fn unreadable_credential_files_are_named_by_their_key() {
        let mut s = settings();
        s.auth = NatsAuth::NkeySeed("/nonexistent/seed".into());
        let err = options(&s).await.unwrap_err();
        assert!(err.to_string().contains("nats_nkey_seed"), "{err}");
        assert!(err.to_string().contains("/nonexistent/seed"), "{err}");

        s.auth = NatsAuth::Creds("/nonexistent/n1.creds".into());
        let err = options(&s).await.unwrap_err();
        assert!(err.to_string().contains("nats_creds"), "{err}");

        s.auth = NatsAuth::None;
        s.tls_ca = Some("/nonexistent/ca.pem".into());
        let err = options(&s).await.unwrap_err();
        assert!(err.to_string().contains("nats_tls_ca"), "{err}");
    }

    #[tokio::test]
    async fn a_seed_file_without_a_user_seed_is_refused_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        std::fs::write(&path, "not-a-seed-secret\n").unwrap();
        let mut s = settings();
        s.auth = NatsAuth::NkeySeed(path);
        let err = options(&s).await.unwrap_err().to_string();
        assert!(err.contains("nkey user seed"), "{err}");
        assert!(!err.contains("not-a-seed-secret"), "{err}");
    }

    #[test]
    fn health_says_since_when() {
        let at = Timestamp::UNIX_EPOCH;
        assert!(Health::Connected { since: at }.is_connected());
        assert!(!Health::Disconnected { since: at }.is_connected());
        assert_eq!(Health::Disconnected { since: at }.since(), at);
    }
}
