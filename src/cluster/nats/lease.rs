//! Node leases (cluster spec 7.1.3–7.1.7): claiming this node's name in the nodes
//! bucket ([`Lease::join`]), the lease record ([`LeaseRecord`]), revision-checked
//! heartbeats ([`Lease::beat`]), leaving ([`Lease::leave`]), and the table of nodes as
//! one observer sees them ([`watch_nodes`], [`NodeTable`]). The bucket's `max_age`
//! (= `lease_ttl`) removes a silent node's key; before nats-server 2.11 no watcher hears
//! of that, so liveness is "a heartbeat seen within `lease_ttl` by the observer's own
//! clock". Who does what when a node dies (sweeping) is not decided here.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cluster::NodeName;
use crate::cluster::nats::error::{NatsError, bounded};
use crate::cluster::nats::state::{parse, server_time, watch_entries};

/// The lease record's format version.
pub const LEASE_RECORD_VERSION: u32 = 1;

/// What a node publishes about itself in its lease (spec 7.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The format version, 1.
    pub v: u32,
    /// The node's name (also the key).
    pub node: NodeName,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Its process id.
    #[serde(default)]
    pub pid: u32,
    /// Its host name.
    #[serde(default)]
    pub host: String,
    /// Its karajo version.
    #[serde(default)]
    pub version: String,
    /// When this process started (with `pid` and `host`, it tells this process from a
    /// later one of the same name).
    #[serde(default)]
    pub started_at: Timestamp,
    /// Its public URL or listen address.
    #[serde(default)]
    pub http: String,
    /// `sha256:<hex>` of its configuration.
    #[serde(default)]
    pub config_digest: String,
    /// `sha256:<hex>` of each job's definition, by `<kind>.<id>`.
    #[serde(default)]
    pub job_digests: BTreeMap<String, String>,
    /// Its `max_job_running`.
    #[serde(default)]
    pub max_job_running: u32,
    /// The runs executing on it, as `<kind>.<id>.<counter>`.
    #[serde(default)]
    pub running: Vec<String>,
    /// The version of the NATS server it is connected to.
    #[serde(default)]
    pub nats_server: String,
    /// Its heartbeat count.
    #[serde(default)]
    pub beat: u64,
}

impl LeaseRecord {
    /// The record of this process as node `node`, started at `started_at`: pid, host
    /// name and karajo version filled in, everything else empty.
    pub fn new(node: NodeName, started_at: Timestamp) -> Self {
        Self {
            v: LEASE_RECORD_VERSION,
            node,
            tags: Vec::new(),
            pid: std::process::id(),
            host: host_name(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at,
            http: String::new(),
            config_digest: String::new(),
            job_digests: BTreeMap::new(),
            max_job_running: 0,
            running: Vec::new(),
            nats_server: String::new(),
            beat: 0,
        }
    }

    /// Whether `other` was written by the same process as this record.
    pub fn same_process(&self, other: &Self) -> bool {
        self.node == other.node
            && self.pid == other.pid
            && self.host == other.host
            && self.started_at == other.started_at
    }
}

/// This machine's host name (empty when unknown).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}

/// What a heartbeat did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// The lease was renewed.
    Renewed,
    /// The lease had expired (e.g. this process was paused) and was claimed again: the
    /// cluster may have swept this node meanwhile.
    Rejoined,
}

/// This node's lease on its name: the key `<node>` in the nodes bucket, at a known
/// revision.
#[derive(Debug)]
pub struct Lease {
    store: kv::Store,
    record: LeaseRecord,
    revision: u64,
    lease_ttl: Duration,
    op_timeout: Duration,
}

impl Lease {
    /// Claims the name `record.node` (spec 7.1.3): `create` of the key. When another
    /// process holds it and its last heartbeat is younger than `lease_ttl`, fails with
    /// [`NatsError::NameHeld`]. An older entry is waiting for its `max_age` removal:
    /// then it retries until the key is gone, for at most `lease_ttl`, and fails the
    /// same way if it never goes or is renewed meanwhile.
    pub async fn join(
        store: &kv::Store,
        record: LeaseRecord,
        lease_ttl: Duration,
        op_timeout: Duration,
    ) -> Result<Self, NatsError> {
        let key = record.node.to_string();
        let body = serde_json::to_vec(&record).unwrap_or_default();
        let deadline = Instant::now() + lease_ttl;
        let poll = (lease_ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut seen: Option<u64> = None;
        loop {
            let created =
                tokio::time::timeout(op_timeout, store.create(&key, body.clone().into())).await;
            let held = match created {
                Ok(Ok(revision)) => {
                    return Ok(Self::new(store, record, revision, lease_ttl, op_timeout));
                }
                Ok(Err(err)) if err.kind() == CreateErrorKind::AlreadyExists => None,
                Ok(Err(err)) => {
                    return Err(NatsError::nats(
                        format!("claim node name {key} in bucket {}", store.name),
                        err,
                    ));
                }
                Err(_) => Some(()),
            };
            let entry = bounded(
                op_timeout,
                || format!("read lease {key} in bucket {}", store.name),
                store.entry(&key),
            )
            .await?;
            let Some(entry) = entry.filter(|e| e.operation == Operation::Put) else {
                if held.is_some() {
                    return Err(NatsError::TimedOut {
                        what: format!("claim node name {key} in bucket {}", store.name),
                        after: op_timeout,
                    });
                }
                continue; // gone in between: claim again
            };
            let holder = parse::<LeaseRecord>(&store.name, &key, &entry.value).ok();
            if holder.as_ref().is_some_and(|h| h.same_process(&record)) {
                // Our own earlier write landed (its reply was lost): the name is ours.
                return Ok(Self::new(
                    store,
                    record,
                    entry.revision,
                    lease_ttl,
                    op_timeout,
                ));
            }
            if held.is_some() {
                return Err(NatsError::TimedOut {
                    what: format!("claim node name {key} in bucket {}", store.name),
                    after: op_timeout,
                });
            }
            let age = Timestamp::now()
                .duration_since(server_time(&entry))
                .max(SignedDuration::ZERO);
            let renewed = seen.is_some_and(|revision| revision != entry.revision);
            let young = age.unsigned_abs() < lease_ttl;
            if young || renewed || Instant::now() >= deadline {
                return Err(NatsError::NameHeld {
                    node: key,
                    pid: holder.as_ref().map_or(0, |h| h.pid),
                    host: holder.map_or_else(|| "?".into(), |h| h.host),
                    age_secs: if renewed {
                        0
                    } else {
                        age.as_secs().unsigned_abs()
                    },
                });
            }
            seen = Some(entry.revision);
            tokio::time::sleep(poll).await;
        }
    }

    fn new(
        store: &kv::Store,
        record: LeaseRecord,
        revision: u64,
        lease_ttl: Duration,
        op_timeout: Duration,
    ) -> Self {
        Self {
            store: store.clone(),
            record,
            revision,
            lease_ttl,
            op_timeout,
        }
    }

    /// The record as last written.
    pub fn record(&self) -> &LeaseRecord {
        &self.record
    }

    /// The key's revision after the last write.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// How often to beat: a third of `lease_ttl`.
    pub fn beat_every(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// One heartbeat (spec 7.1.5): counts it, lets `change` update the record (the
    /// running runs, …), and writes it on top of the last revision.
    /// * Someone else wrote the key since: [`NatsError::LeaseLost`] (logged as an
    ///   error). Stop taking orders, and [`Lease::join`] again.
    /// * The key is gone (the lease expired while this process was paused): it is
    ///   claimed again, [`Beat::Rejoined`].
    /// * No answer: [`NatsError::TimedOut`]. The write may land; the next beat finds
    ///   out (a landed write of this process is recognised as its own).
    pub async fn beat(&mut self, change: impl FnOnce(&mut LeaseRecord)) -> Result<Beat, NatsError> {
        let mut record = self.record.clone();
        record.beat += 1;
        change(&mut record);
        let key = record.node.to_string();
        let body = serde_json::to_vec(&record).unwrap_or_default();
        let what = || format!("heartbeat of node {key} in bucket {}", self.store.name);
        let written = tokio::time::timeout(
            self.op_timeout,
            self.store.update(&key, body.clone().into(), self.revision),
        )
        .await;
        match written {
            Ok(Ok(revision)) => {
                self.revision = revision;
                self.record = record;
                return Ok(Beat::Renewed);
            }
            Ok(Err(err)) if err.kind() == UpdateErrorKind::WrongLastRevision => {}
            Ok(Err(err)) => return Err(NatsError::nats(what(), err)),
            Err(_) => {
                return Err(NatsError::TimedOut {
                    what: what(),
                    after: self.op_timeout,
                });
            }
        }
        // The revision moved: our lost write, an expiry, or another process.
        let entry = bounded(
            self.op_timeout,
            || format!("read lease {key} in bucket {}", self.store.name),
            self.store.entry(&key),
        )
        .await?;
        let (beat, expected) = match &entry {
            None => (Beat::Rejoined, 0),
            Some(e) if e.operation != Operation::Put => (Beat::Rejoined, e.revision),
            Some(e) => match parse::<LeaseRecord>(&self.store.name, &key, &e.value) {
                Ok(holder) if holder.same_process(&self.record) => (Beat::Renewed, e.revision),
                holder => {
                    let why = match holder {
                        Ok(h) => format!(
                            "the key now holds pid {} on host {} (started {})",
                            h.pid, h.host, h.started_at
                        ),
                        Err(_) => "the key now holds an unreadable record".to_string(),
                    };
                    tracing::error!(node = %key, %why, "cluster: lease lost; this node stops taking orders");
                    return Err(NatsError::LeaseLost { node: key, why });
                }
            },
        };
        let written = tokio::time::timeout(
            self.op_timeout,
            self.store.update(&key, body.into(), expected),
        )
        .await;
        let written = match written {
            Ok(Ok(revision)) => revision,
            Ok(Err(err)) if err.kind() == UpdateErrorKind::WrongLastRevision => {
                let why = "another process wrote the key while this one re-claimed it".to_string();
                tracing::error!(node = %key, %why, "cluster: lease lost; this node stops taking orders");
                return Err(NatsError::LeaseLost { node: key, why });
            }
            Ok(Err(err)) => return Err(NatsError::nats(what(), err)),
            Err(_) => {
                return Err(NatsError::TimedOut {
                    what: what(),
                    after: self.op_timeout,
                });
            }
        };
        if beat == Beat::Rejoined {
            tracing::warn!(node = %key, "cluster: the lease had expired; claimed the name again");
        }
        self.revision = written;
        self.record = record;
        Ok(beat)
    }

    /// Leaves (spec 7.1.7): deletes the key, which watchers see at once as a
    /// `Delete`. Only this lease's own revision is deleted: a key another process took
    /// over is left alone.
    pub async fn leave(self) -> Result<(), NatsError> {
        let key = self.record.node.to_string();
        let deleted = tokio::time::timeout(
            self.op_timeout,
            self.store.delete_expect_revision(&key, Some(self.revision)),
        )
        .await;
        match deleted {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) if err.kind() == UpdateErrorKind::WrongLastRevision => {
                tracing::warn!(node = %key, "cluster: on leaving, the lease was no longer this process's; left it");
                Ok(())
            }
            Ok(Err(err)) => Err(NatsError::nats(
                format!("delete lease {key} in bucket {}", self.store.name),
                err,
            )),
            Err(_) => Err(NatsError::TimedOut {
                what: format!("delete lease {key} in bucket {}", self.store.name),
                after: self.op_timeout,
            }),
        }
    }
}

/// How an observer sees one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// A heartbeat was seen within `lease_ttl`.
    Alive,
    /// No heartbeat seen for `lease_ttl` (its key may still be there): dead.
    Silent,
    /// It left: its key was deleted.
    Left,
    /// Its key expired (a `Purge` marker, servers 2.11+): dead.
    Expired,
}

/// One node as seen by an observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSeen {
    /// Its last lease record (`None` if it was unreadable).
    pub record: Option<LeaseRecord>,
    /// The revision of the last change seen.
    pub revision: u64,
    /// The server's time stamp of the last change seen.
    pub created: Timestamp,
    /// The observer's wall clock when it saw that change.
    pub seen_at: Timestamp,
    /// The observer's monotonic clock of the last heartbeat (liveness uses this).
    pub last_seen: Instant,
    /// Alive, silent, left or expired.
    pub liveness: Liveness,
}

impl NodeSeen {
    /// Whether it counts as alive.
    pub fn is_alive(&self) -> bool {
        self.liveness == Liveness::Alive
    }

    /// The observer's clock minus the server's, from the last change seen (spec 7.1.8:
    /// warn beyond 2 s when a node sees its own heartbeat).
    pub fn clock_skew(&self) -> SignedDuration {
        self.seen_at.duration_since(self.created)
    }
}

/// Every node an observer has seen, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeTable {
    /// The nodes.
    pub nodes: BTreeMap<NodeName, NodeSeen>,
}

impl NodeTable {
    /// Whether `node` counts as alive.
    pub fn is_alive(&self, node: &NodeName) -> bool {
        self.nodes.get(node).is_some_and(NodeSeen::is_alive)
    }

    /// The nodes that count as alive.
    pub fn alive(&self) -> impl Iterator<Item = (&NodeName, &NodeSeen)> {
        self.nodes.iter().filter(|(_, seen)| seen.is_alive())
    }

    /// Applies one change of the nodes bucket seen at `now`. A replayed value (the
    /// watcher catching up) counts as seen when the server wrote it, at most `lease_ttl`
    /// ago; a live one as seen now.
    fn apply(&mut self, entry: &kv::Entry, now: Instant, lease_ttl: Duration) -> bool {
        let Ok(node) = NodeName::parse(&entry.key) else {
            return false;
        };
        let created = server_time(entry);
        let seen_at = Timestamp::now();
        match entry.operation {
            Operation::Put => {
                let record = match parse::<LeaseRecord>(&entry.bucket, &entry.key, &entry.value) {
                    Ok(record) => Some(record),
                    Err(err) => {
                        tracing::warn!(error = %err, "cluster: a lease record is unreadable");
                        None
                    }
                };
                let last_seen = if entry.seen_current {
                    now
                } else {
                    let age = seen_at
                        .duration_since(created)
                        .clamp(
                            SignedDuration::ZERO,
                            SignedDuration::try_from(lease_ttl).unwrap_or(SignedDuration::MAX),
                        )
                        .unsigned_abs();
                    now.checked_sub(age).unwrap_or(now)
                };
                let liveness = if now.duration_since(last_seen) < lease_ttl {
                    Liveness::Alive
                } else {
                    Liveness::Silent
                };
                self.nodes.insert(
                    node,
                    NodeSeen {
                        record,
                        revision: entry.revision,
                        created,
                        seen_at,
                        last_seen,
                        liveness,
                    },
                );
            }
            Operation::Delete | Operation::Purge => {
                let liveness = if entry.operation == Operation::Delete {
                    Liveness::Left
                } else {
                    Liveness::Expired
                };
                let seen = self.nodes.entry(node).or_insert_with(|| NodeSeen {
                    record: None,
                    revision: entry.revision,
                    created,
                    seen_at,
                    last_seen: now.checked_sub(lease_ttl).unwrap_or(now),
                    liveness,
                });
                seen.revision = entry.revision;
                seen.created = created;
                seen.seen_at = seen_at;
                seen.liveness = liveness;
            }
        }
        true
    }

    /// Marks alive nodes whose last heartbeat is `lease_ttl` old as silent; whether any
    /// changed.
    fn age(&mut self, now: Instant, lease_ttl: Duration) -> bool {
        let mut changed = false;
        for seen in self.nodes.values_mut() {
            if seen.liveness == Liveness::Alive && now.duration_since(seen.last_seen) >= lease_ttl {
                seen.liveness = Liveness::Silent;
                changed = true;
            }
        }
        changed
    }
}

/// Watches the nodes bucket (spec 7.1.6) and keeps a [`NodeTable`]: every lease seen,
/// alive while a heartbeat was seen within `lease_ttl` by this observer's clock, `Left`
/// on a delete, `Expired` on a purge marker. It survives disconnections (resuming after
/// the last revision seen) and stops when every receiver is dropped. Drop a
/// `borrow()` (or the guard `wait_for` returns) before the next `.await`: the watcher
/// cannot update the table while one is held.
pub fn watch_nodes(
    store: kv::Store,
    lease_ttl: Duration,
    op_timeout: Duration,
) -> watch::Receiver<NodeTable> {
    let (tx, rx) = watch::channel(NodeTable::default());
    let mut entries = watch_entries(store, op_timeout);
    let tick = (lease_ttl / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = tx.closed() => return,
                entry = entries.recv() => {
                    let Some(entry) = entry else { return };
                    let now = Instant::now();
                    tx.send_if_modified(|table| table.apply(&entry, now, lease_ttl));
                }
                _ = ticker.tick() => {
                    let now = Instant::now();
                    tx.send_if_modified(|table| table.age(now, lease_ttl));
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_the_spec_json_and_reads_old_fields_leniently() {
        let n1 = NodeName::parse("n1").unwrap();
        let record = LeaseRecord::new(n1.clone(), Timestamp::UNIX_EPOCH);
        let json = serde_json::to_value(&record).unwrap();
        for field in [
            "v",
            "node",
            "tags",
            "pid",
            "host",
            "version",
            "started_at",
            "http",
            "config_digest",
            "job_digests",
            "max_job_running",
            "running",
            "nats_server",
            "beat",
        ] {
            assert!(json.get(field).is_some(), "{field} missing in {json}");
        }
        let minimal: LeaseRecord = serde_json::from_str(r#"{"v":1,"node":"n1"}"#).unwrap();
        assert_eq!(minimal.node, n1);
        assert!(record.same_process(&record.clone()));
        let mut other = record.clone();
        other.pid += 1;
        assert!(!record.same_process(&other));
    }
}
