//! The errors of the NATS control plane ([`NatsError`]) and the one helper that bounds
//! every call to the server by `op_timeout` (`bounded`). Each message says what was
//! being done and names the bucket, stream or key, so an operator can act on it without
//! reading code. Credentials never appear in a message. This module does no I/O itself.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong in the NATS control plane (connect, provision, lease, claims, state).
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// A file named in `[cluster]` (credentials, seed, certificate) cannot be read.
    #[error("cluster: cannot read {key} file {path}: {source}")]
    File {
        /// The `[cluster]` key that names the file (`nats_creds`, `nats_tls_ca`, …).
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `[cluster]` value the client refuses (a URL it cannot parse, a bad seed).
    #[error("cluster: {0}")]
    Config(String),
    /// The client could not be set up (it retries unreachable servers by itself).
    #[error("cluster: cannot connect to NATS at {urls}: {source}")]
    Connect {
        /// The seed URLs.
        urls: String,
        /// Why.
        source: async_nats::Error,
    },
    /// No answer within `op_timeout`. For a write, it **may** still have happened
    /// (cluster spec 9.4): writes issued while disconnected land after reconnection.
    #[error("cluster: {what}: no answer within {after:?} (a write may still land)")]
    TimedOut {
        /// What was being done, naming the bucket, stream or key.
        what: String,
        /// The bound.
        after: Duration,
    },
    /// The server or the client refused or failed an operation.
    #[error("cluster: {what}: {source}")]
    Nats {
        /// What was being done, naming the bucket, stream or key.
        what: String,
        /// The client's error.
        source: async_nats::Error,
    },
    /// A bucket, stream or consumer does not exist and this node may not create it.
    #[error(
        "cluster: {what} does not exist; create it with `karajo cluster init` or set [cluster] provision = true"
    )]
    Missing {
        /// The object, e.g. `bucket karajo_claims (stream KV_karajo_claims)`.
        what: String,
    },
    /// Another live process holds this node's name (cluster spec 7.1.3).
    #[error(
        "cluster: node name {node} is held by a live node (pid {pid} on host {host}, last heartbeat {age_secs}s ago)"
    )]
    NameHeld {
        /// The name.
        node: String,
        /// The holder's pid, from its lease record.
        pid: u32,
        /// The holder's host, from its lease record.
        host: String,
        /// Seconds since the holder's last heartbeat, by the server's time stamp.
        age_secs: u64,
    },
    /// Someone else wrote this node's lease: a duplicate name, or the lease expired and
    /// another process took it (cluster spec 7.1.5). Stop taking orders and re-join.
    #[error("cluster: lease of node {node} lost: {why}")]
    LeaseLost {
        /// This node's name.
        node: String,
        /// Who holds it now, as far as the record says.
        why: String,
    },
    /// A stored value is not what karajo writes there.
    #[error("cluster: key {key} in bucket {bucket} does not hold a valid record: {source}")]
    Corrupt {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The parse error.
        source: serde_json::Error,
    },
}

impl NatsError {
    /// The error of a failed call: `what` was being done and the client said `source`.
    pub fn nats(what: impl Into<String>, source: impl Into<async_nats::Error>) -> Self {
        Self::Nats {
            what: what.into(),
            source: source.into(),
        }
    }

    /// Whether this is a timeout (the operation may still have happened, if a write).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::TimedOut { .. })
    }
}

/// Runs `call`, bounded by `op_timeout`. `what` names the operation and its object (it
/// is only formatted on failure). A timeout becomes [`NatsError::TimedOut`], any
/// other failure [`NatsError::Nats`].
pub(crate) async fn bounded<T, E>(
    op_timeout: Duration,
    what: impl FnOnce() -> String,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, NatsError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(op_timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(NatsError::nats(what(), err)),
        Err(_) => Err(NatsError::TimedOut {
            what: what(),
            after: op_timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_object_and_the_holder() {
        let held = NatsError::NameHeld {
            node: "web-2".into(),
            pid: 1234,
            host: "x".into(),
            age_secs: 3,
        };
        assert_eq!(
            held.to_string(),
            "cluster: node name web-2 is held by a live node (pid 1234 on host x, last heartbeat 3s ago)"
        );
        let missing = NatsError::Missing {
            what: "bucket karajo_claims (stream KV_karajo_claims)".into(),
        };
        assert!(missing.to_string().contains("karajo_claims"));
        assert!(missing.to_string().contains("karajo cluster init"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_bound_is_a_timeout_naming_what() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<(), std::io::Error>(())
        };
        let err = bounded(Duration::from_secs(1), || "create key k".into(), slow)
            .await
            .unwrap_err();
        assert!(err.is_timeout());
        assert!(err.to_string().contains("create key k"), "{err}");
    }
}
