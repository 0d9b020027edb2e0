//! Claims (cluster spec 7.2): the one-winner `create` of a key in the claims bucket,
//! which makes each timer slot fire once in the cluster, and each clean-up (sweeping a
//! dead node, expiring or burying an order) happen once. A claim's value carries the
//! claimer's node and a nonce, so a claim whose reply was lost but which landed is
//! recognised as ours ([`Claim::Won`] on `AlreadyExists`, spec 13 trap 5), and a claim
//! that got no answer is kept as [`Claim::Uncertain`] until [`Claims::resolve`] reads
//! the truth. Nothing is written while the link is down (trap 4). Stale claims age out
//! through the bucket's `max_age`; this module never deletes one.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cluster::NodeName;
use crate::cluster::nats::connect::Link;
use crate::cluster::nats::error::{NatsError, bounded};
use crate::cluster::nats::state::parse;

/// The value of a claim key: `{"node","nonce","at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimValue {
    /// The node that claimed.
    pub node: NodeName,
    /// The claimer's nonce for this claim.
    pub nonce: String,
    /// When it claimed, by its own clock.
    pub at: Timestamp,
}

pub use crate::cluster::coordinator::{Claim, Resolved};

/// The claims of one node in one bucket, bounded by `op_timeout`.
#[derive(Debug, Clone)]
pub struct Claims {
    store: kv::Store,
    link: Link,
    node: NodeName,
    op_timeout: Duration,
}

impl Claims {
    /// Claims in `store` as `node`, over `link` (whose health is checked before every
    /// claim).
    pub fn new(store: kv::Store, link: Link, node: NodeName, op_timeout: Duration) -> Self {
        Self {
            store,
            link,
            node,
            op_timeout,
        }
    }

    /// Claims `key` with `nonce` (spec 7.2 steps 1–2). Checks the link first: while it
    /// is down nothing is written ([`Claim::Unavailable`]). Then `create`s the key:
    /// success is [`Claim::Won`]; `AlreadyExists` reads the owner back ([`Claim::Won`]
    /// when it is this node with this nonce, else [`Claim::Lost`]); a timeout or any
    /// other error is [`Claim::Uncertain`].
    pub async fn claim(&self, key: &str, nonce: &str) -> Claim {
        if !self.link.is_connected() {
            return Claim::Unavailable;
        }
        let uncertain = || Claim::Uncertain {
            key: key.to_string(),
            nonce: nonce.to_string(),
        };
        let value = ClaimValue {
            node: self.node.clone(),
            nonce: nonce.to_string(),
            at: Timestamp::now(),
        };
        let Ok(body) = serde_json::to_vec(&value) else {
            return uncertain();
        };
        match tokio::time::timeout(self.op_timeout, self.store.create(key, body.into())).await {
            Ok(Ok(_)) => Claim::Won,
            Ok(Err(err)) if err.kind() == CreateErrorKind::AlreadyExists => {
                match self.resolve(key, nonce).await {
                    Ok(Resolved::Ours) => Claim::Won,
                    Ok(Resolved::Theirs { by }) => Claim::Lost { by },
                    // Gone again already (aged out): still not proven ours.
                    Ok(Resolved::Absent) | Err(_) => uncertain(),
                }
            }
            Ok(Err(err)) => {
                tracing::warn!(key, bucket = %self.store.name, error = %err, "cluster: claim failed; it may still have landed");
                uncertain()
            }
            Err(_) => uncertain(),
        }
    }

    /// Reads `key` to settle an uncertain claim made with `nonce` (spec 7.2 step 4).
    /// Fails (still uncertain) when the read gets no answer.
    pub async fn resolve(&self, key: &str, nonce: &str) -> Result<Resolved, NatsError> {
        let entry = bounded(
            self.op_timeout,
            || format!("read claim {key} in bucket {}", self.store.name),
            self.store.entry(key),
        )
        .await?;
        let Some(entry) = entry.filter(|e| e.operation == Operation::Put) else {
            return Ok(Resolved::Absent);
        };
        match parse::<ClaimValue>(&self.store.name, key, &entry.value) {
            Ok(value) if value.node == self.node && value.nonce == nonce => Ok(Resolved::Ours),
            Ok(value) => Ok(Resolved::Theirs {
                by: Some(value.node),
            }),
            Err(err) => {
                tracing::warn!(error = %err, "cluster: a claim holds no readable owner");
                Ok(Resolved::Theirs { by: None })
            }
        }
    }

    /// The node these claims are made as.
    pub fn node(&self) -> &NodeName {
        &self.node
    }
}

/// A fresh nonce for one claim: 128 random bits in hex.
pub fn new_nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The one-off key for sweeping dead node `node`'s lease revision `revision` (spec 7.8).
pub fn sweep_key(node: &NodeName, revision: u64) -> String {
    format!("sweep.{node}.{revision}")
}

/// The one-off key for expiring order `run` (spec 7.5).
pub fn expire_key(run: &str) -> String {
    format!("expire.{run}")
}

/// The one-off key for burying the dead order at stream sequence `seq` (spec 7.5).
pub fn dead_key(seq: u64) -> String {
    format!("dead.{seq}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_off_keys_follow_the_spec() {
        let n2 = NodeName::parse("n2").unwrap();
        assert_eq!(sweep_key(&n2, 17), "sweep.n2.17");
        assert_eq!(expire_key("0193f0c2-0000"), "expire.0193f0c2-0000");
        assert_eq!(dead_key(1288), "dead.1288");
    }

    #[test]
    fn nonces_are_distinct_and_key_safe() {
        let (a, b) = (new_nonce(), new_nonce());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn a_claim_value_is_the_spec_json() {
        let value = ClaimValue {
            node: NodeName::parse("web-2").unwrap(),
            nonce: "abc".into(),
            at: Timestamp::UNIX_EPOCH,
        };
        let json = serde_json::to_value(&value).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"node":"web-2","nonce":"abc","at":"1970-01-01T00:00:00Z"})
        );
    }
}
