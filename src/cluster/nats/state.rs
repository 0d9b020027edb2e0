//! Revision-checked JSON records in a KV bucket (cluster spec 7.4): the compare-and-set
//! loop every job-state transition goes through ([`transition`]), plain reads
//! ([`read`]), and a watcher of every record that survives disconnections
//! ([`watch_all`]). It is generic over the record type and the decision function, so it
//! knows nothing of the job-state machine (`cluster::decide` owns that): it only
//! guarantees that a decision is written on top of exactly the revision it was made
//! from. A write that got no answer is reported as "maybe written"
//! ([`TransitionError::Uncertain`]), never as "not written" (spec 9.4).

use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation, UpdateErrorKind};
use futures_util::StreamExt as _;
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::cluster::nats::error::{NatsError, bounded};

/// How many times [`transition`] tries before it gives up on a contended record.
pub const MAX_ATTEMPTS: u32 = 16;

/// The longest pause between two attempts of a contended [`transition`].
pub const MAX_JITTER: Duration = Duration::from_millis(5);

/// A transition that was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transitioned<R, T> {
    /// The record as written.
    pub record: R,
    /// What the decision function returned besides the record (e.g. the actions).
    pub out: T,
    /// The record's new revision.
    pub revision: u64,
    /// How many attempts it took (1 without contention).
    pub attempts: u32,
}

/// Why a transition was not (or maybe not) written.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError<E> {
    /// The decision function refused; nothing was written.
    #[error("refused: {0}")]
    Refused(E),
    /// The record could not be read (timeout or error); nothing was written.
    #[error("cluster: cannot read key {key} in bucket {bucket}; nothing was written: {why}")]
    Unavailable {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// Why.
        why: NatsError,
    },
    /// The write got no answer, or failed in a way that does not prove it did not
    /// happen: the record **may** hold the new value. Re-read before retrying.
    #[error(
        "cluster: write of key {key} in bucket {bucket} is uncertain (it may have happened): {why}"
    )]
    Uncertain {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// Why.
        why: NatsError,
    },
    /// Every attempt met a newer revision (more than [`MAX_ATTEMPTS`] concurrent
    /// writers); nothing was written.
    #[error(
        "cluster: key {key} in bucket {bucket} changed under {attempts} attempts; nothing was written"
    )]
    Contended {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The stored value is not a record of this type; nothing was written.
    #[error(transparent)]
    Corrupt(NatsError),
}

/// Reads record `key`, applies `decide` to it (`None` when absent or deleted), and
/// writes the result only if the record has not changed since it was read: `update`
/// with the read revision (revision 0, i.e. create, when there was none). On a newer
/// revision it sleeps 0–5 ms and starts again, at most [`MAX_ATTEMPTS`] times; `decide`
/// therefore may run several times and must not have side effects. Its `Err` is
/// returned as [`TransitionError::Refused`] with nothing written. Each read and each
/// write is bounded by `op_timeout`.
pub async fn transition<R, T, E>(
    store: &kv::Store,
    key: &str,
    op_timeout: Duration,
    mut decide: impl FnMut(Option<R>) -> Result<(R, T), E>,
) -> Result<Transitioned<R, T>, TransitionError<E>>
where
    R: Serialize + DeserializeOwned,
{
    let bucket = || store.name.clone();
    for attempt in 1..=MAX_ATTEMPTS {
        let entry = bounded(
            op_timeout,
            || format!("read key {key} in bucket {}", store.name),
            store.entry(key),
        )
        .await
        .map_err(|why| TransitionError::Unavailable {
            bucket: bucket(),
            key: key.to_string(),
            why,
        })?;
        let (current, revision) = match entry {
            None => (None, 0),
            Some(entry) => match entry.operation {
                Operation::Delete | Operation::Purge => (None, entry.revision),
                Operation::Put => (
                    Some(
                        parse::<R>(&store.name, key, &entry.value)
                            .map_err(TransitionError::Corrupt)?,
                    ),
                    entry.revision,
                ),
            },
        };
        let (record, out) = decide(current).map_err(TransitionError::Refused)?;
        let body = serde_json::to_vec(&record).map_err(|source| {
            TransitionError::Corrupt(NatsError::Corrupt {
                bucket: bucket(),
                key: key.to_string(),
                source,
            })
        })?;
        match tokio::time::timeout(op_timeout, store.update(key, body.into(), revision)).await {
            Ok(Ok(revision)) => {
                return Ok(Transitioned {
                    record,
                    out,
                    revision,
                    attempts: attempt,
                });
            }
            Ok(Err(err)) if err.kind() == UpdateErrorKind::WrongLastRevision => {
                let pause = rand::random_range(0..=MAX_JITTER.as_micros() as u64);
                tokio::time::sleep(Duration::from_micros(pause)).await;
            }
            Ok(Err(err)) => {
                return Err(TransitionError::Uncertain {
                    bucket: bucket(),
                    key: key.to_string(),
                    why: NatsError::nats(format!("write key {key} in bucket {}", store.name), err),
                });
            }
            Err(_) => {
                return Err(TransitionError::Uncertain {
                    bucket: bucket(),
                    key: key.to_string(),
                    why: NatsError::TimedOut {
                        what: format!("write key {key} in bucket {}", store.name),
                        after: op_timeout,
                    },
                });
            }
        }
    }
    Err(TransitionError::Contended {
        bucket: bucket(),
        key: key.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

/// Record `key` and its revision, or `None` when absent or deleted. Bounded by
/// `op_timeout`.
pub async fn read<R: DeserializeOwned>(
    store: &kv::Store,
    key: &str,
    op_timeout: Duration,
) -> Result<Option<(R, u64)>, NatsError> {
    let entry = bounded(
        op_timeout,
        || format!("read key {key} in bucket {}", store.name),
        store.entry(key),
    )
    .await?;
    match entry {
        Some(entry) if entry.operation == Operation::Put => Ok(Some((
            parse(&store.name, key, &entry.value)?,
            entry.revision,
        ))),
        _ => Ok(None),
    }
}

/// One change of a record, as [`watch_all`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEvent<R> {
    /// The key.
    pub key: String,
    /// The record, or `None` when it was deleted or purged.
    pub record: Option<R>,
    /// The revision of this change.
    pub revision: u64,
    /// The server's time stamp of this change.
    pub created: Timestamp,
    /// Whether the watcher had caught up with the bucket when it saw this change
    /// (`false` for the current values it replays first, and after a reconnection).
    pub current: bool,
}

/// Watches every record of `store`: first the current value of each key, then every
/// change, as [`RecordEvent`]s on the returned channel. After a disconnection or a
/// server restart it resumes after the last revision it delivered, so no change is
/// lost (values that changed twice meanwhile show only the newest: history is 1). A
/// value that is not an `R` is logged and skipped. It stops when the receiver is
/// dropped.
pub fn watch_all<R>(store: kv::Store, op_timeout: Duration) -> mpsc::Receiver<RecordEvent<R>>
where
    R: DeserializeOwned + Send + 'static,
{
    let mut entries = watch_entries(store, op_timeout);
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        while let Some(entry) = entries.recv().await {
            let record = match entry.operation {
                Operation::Delete | Operation::Purge => None,
                Operation::Put => match parse::<R>(&entry.bucket, &entry.key, &entry.value) {
                    Ok(record) => Some(record),
                    Err(err) => {
                        tracing::warn!(error = %err, "cluster: skipped a record");
                        continue;
                    }
                },
            };
            let created = server_time(&entry);
            let event = RecordEvent {
                key: entry.key,
                record,
                revision: entry.revision,
                created,
                current: entry.seen_current,
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// The raw entries of every key of `store`: the current value of each key (deliver
/// policy "last per subject"), then every change; after any failure it watches again
/// from the revision after the last one delivered (backing off up to 2 s between
/// attempts). Stops when the receiver is dropped.
pub(crate) fn watch_entries(store: kv::Store, op_timeout: Duration) -> mpsc::Receiver<kv::Entry> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut resume: Option<u64> = None;
        let mut pause = Duration::from_millis(100);
        let mut failing = false;
        loop {
            let watch = match resume {
                // Not `watch_all`: in async-nats 0.51 it delivers only new changes.
                None => tokio::time::timeout(op_timeout, store.watch_with_history(">")).await,
                Some(revision) => {
                    tokio::time::timeout(op_timeout, store.watch_all_from_revision(revision)).await
                }
            };
            match watch {
                Ok(Ok(mut watch)) => {
                    if failing {
                        tracing::info!(bucket = %store.name, "cluster: watching the bucket again");
                    }
                    failing = false;
                    pause = Duration::from_millis(100);
                    loop {
                        tokio::select! {
                            () = tx.closed() => return,
                            item = watch.next() => match item {
                                Some(Ok(entry)) => {
                                    resume = Some(entry.revision + 1);
                                    if tx.send(entry).await.is_err() {
                                        return;
                                    }
                                }
                                Some(Err(err)) => {
                                    tracing::debug!(bucket = %store.name, error = %err, "cluster: watch ended; watching again");
                                    break;
                                }
                                None => break,
                            },
                        }
                    }
                }
                Ok(Err(err)) => {
                    if !failing {
                        tracing::warn!(bucket = %store.name, error = %err, "cluster: cannot watch the bucket; retrying");
                    }
                    failing = true;
                }
                Err(_) => {
                    if !failing {
                        tracing::warn!(bucket = %store.name, "cluster: watching the bucket timed out; retrying");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    });
    rx
}

/// The server's time stamp of an entry (now, if it is out of range).
pub(crate) fn server_time(entry: &kv::Entry) -> Timestamp {
    Timestamp::from_nanosecond(entry.created.unix_timestamp_nanos())
        .unwrap_or_else(|_| Timestamp::now())
}

/// Parses a stored JSON value, naming the bucket and key when it is not an `R`.
pub(crate) fn parse<R: DeserializeOwned>(
    bucket: &str,
    key: &str,
    value: &[u8],
) -> Result<R, NatsError> {
    serde_json::from_slice(value).map_err(|source| NatsError::Corrupt {
        bucket: bucket.to_string(),
        key: key.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_names_bucket_and_key() {
        let err = parse::<u32>("karajo_state", "job.x", b"{").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("karajo_state") && text.contains("job.x"),
            "{text}"
        );
    }

    #[test]
    fn errors_say_whether_anything_was_written() {
        let uncertain: TransitionError<String> = TransitionError::Uncertain {
            bucket: "karajo_state".into(),
            key: "job.x".into(),
            why: NatsError::TimedOut {
                what: "write key job.x in bucket karajo_state".into(),
                after: Duration::from_secs(1),
            },
        };
        assert!(uncertain.to_string().contains("may have happened"));
        let unavailable: TransitionError<String> = TransitionError::Unavailable {
            bucket: "karajo_state".into(),
            key: "job.x".into(),
            why: NatsError::TimedOut {
                what: "read".into(),
                after: Duration::from_secs(1),
            },
        };
        assert!(unavailable.to_string().contains("nothing was written"));
    }
}
