//! The timer slots a node could not settle while the cluster was out of reach (cluster
//! spec 7.2.1, 7.2.4 and 9.3): the newest missed slot of each cluster job, and the
//! claims that were sent but got no answer. They live in memory and in one small JSON
//! file (`var/lib/karajo/cluster-pending.json`, rewritten atomically on every change),
//! so that a node restarted during or after an outage still catches each slot up once.
//! An entry leaves only when it is settled: fired, found to be another node's, or past
//! `misfire_grace`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::job::JobKey;
use crate::store::json_file;

/// A claim whose answer was lost: maybe ours, read back later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncertainClaim {
    /// The job.
    pub job: JobKey,
    /// The slot, in UTC seconds.
    pub slot: i64,
    /// The claim's key.
    pub key: String,
    /// The nonce written with it.
    pub nonce: String,
}

/// What is pending, as remembered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// The newest missed slot of each job.
    pub missed: BTreeMap<JobKey, i64>,
    /// Claims to read back.
    pub uncertain: Vec<UncertainClaim>,
}

impl Pending {
    /// Nothing to settle.
    pub fn is_empty(&self) -> bool {
        self.missed.is_empty() && self.uncertain.is_empty()
    }
}

/// The pending slots of one node, kept in a file when one is given.
#[derive(Debug)]
pub struct PendingSlots {
    file: Option<PathBuf>,
    pending: Mutex<Pending>,
}

/// The file's form: jobs as `job.<id>` / `job_http.<id>`, as the cluster names them.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    v: u32,
    missed: BTreeMap<String, i64>,
    uncertain: Vec<UncertainOnDisk>,
}

#[derive(Serialize, Deserialize)]
struct UncertainOnDisk {
    job: String,
    slot: i64,
    key: String,
    nonce: String,
}

const VERSION: u32 = 1;

impl PendingSlots {
    /// Nothing pending, and nothing kept on disk (tests).
    pub fn in_memory() -> Self {
        Self {
            file: None,
            pending: Mutex::default(),
        }
    }

    /// What `file` remembers. A file that cannot be read is moved aside with a warning
    /// and nothing is pending; entries naming no job karajo can run are dropped.
    pub fn load(file: PathBuf, now: Timestamp) -> Self {
        let (on_disk, problem) = json_file::load::<OnDisk>(&file, now);
        if let Some(problem) = problem {
            tracing::warn!(path = %file.display(), problem, "cluster: the pending slots file cannot be used; nothing is caught up from it");
        }
        let mut pending = Pending::default();
        for disk in on_disk.into_iter().filter(|d| d.v == VERSION) {
            for (job, slot) in disk.missed {
                match super::parse_state_key(&job) {
                    Some(key) => {
                        pending.missed.insert(key, slot);
                    }
                    None => tracing::warn!(job, "cluster: a pending slot names no job; dropped"),
                }
            }
            for u in disk.uncertain {
                match super::parse_state_key(&u.job) {
                    Some(job) => pending.uncertain.push(UncertainClaim {
                        job,
                        slot: u.slot,
                        key: u.key,
                        nonce: u.nonce,
                    }),
                    None => tracing::warn!(
                        job = u.job,
                        "cluster: a pending claim names no job; dropped"
                    ),
                }
            }
        }
        Self {
            file: Some(file),
            pending: Mutex::new(pending),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of what is pending.
    pub fn snapshot(&self) -> Pending {
        self.lock().clone()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Slot `slot` of `job` was missed (only the newest of a job is kept).
    pub fn miss(&self, job: &JobKey, slot: i64) {
        self.change(|p| {
            let old = p.missed.get(job).copied();
            let newest = old.map_or(slot, |old| old.max(slot));
            if old == Some(newest) {
                return false;
            }
            p.missed.insert(job.clone(), newest);
            true
        });
    }

    /// A claim got no answer.
    pub fn uncertain(&self, claim: UncertainClaim) {
        self.change(|p| {
            if p.uncertain.contains(&claim) {
                return false;
            }
            p.uncertain.push(claim);
            true
        });
    }

    /// The missed slot `slot` of `job` is settled (a newer one stays).
    pub fn settle_missed(&self, job: &JobKey, slot: i64) {
        self.change(|p| {
            if p.missed.get(job) == Some(&slot) {
                p.missed.remove(job);
                return true;
            }
            false
        });
    }

    /// The uncertain claim `claim` is settled.
    pub fn settle_uncertain(&self, claim: &UncertainClaim) {
        self.change(|p| {
            let before = p.uncertain.len();
            p.uncertain.retain(|c| c != claim);
            p.uncertain.len() != before
        });
    }

    /// Applies `change` and, if it changed anything, rewrites the file while the lock
    /// is held, so that the file never goes back to an older content.
    fn change(&self, change: impl FnOnce(&mut Pending) -> bool) {
        let mut pending = self.lock();
        if !change(&mut pending) {
            return;
        }
        let Some(file) = &self.file else { return };
        let on_disk = OnDisk {
            v: VERSION,
            missed: pending
                .missed
                .iter()
                .map(|(job, slot)| (super::state_key(job), *slot))
                .collect(),
            uncertain: pending
                .uncertain
                .iter()
                .map(|c| UncertainOnDisk {
                    job: super::state_key(&c.job),
                    slot: c.slot,
                    key: c.key.clone(),
                    nonce: c.nonce.clone(),
                })
                .collect(),
        };
        let saved = if pending.is_empty() {
            json_file::remove(file)
        } else {
            json_file::save(file, &on_disk, true)
        };
        if let Err(err) = saved {
            tracing::error!(path = %file.display(), %err, "cluster: cannot save the pending slots; a restart would forget them");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobId;

    fn job(id: &str) -> JobKey {
        JobKey::exec(JobId::from_raw(id))
    }

    fn claim(id: &str, slot: i64) -> UncertainClaim {
        UncertainClaim {
            job: job(id),
            slot,
            key: format!("job.{id}.{slot}"),
            nonce: format!("nonce-{slot}"),
        }
    }

    #[test]
    fn missed_and_uncertain_slots_survive_a_restart_until_settled() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster-pending.json");
        let now = Timestamp::now();
        let pending = PendingSlots::load(file.clone(), now);
        assert!(pending.is_empty());
        pending.miss(&job("a"), 100);
        pending.miss(&job("a"), 160);
        pending.miss(&job("a"), 130);
        pending.uncertain(claim("b", 200));
        pending.uncertain(claim("b", 200));
        drop(pending);

        let again = PendingSlots::load(file.clone(), now);
        let seen = again.snapshot();
        assert_eq!(seen.missed, BTreeMap::from([(job("a"), 160)]));
        assert_eq!(seen.uncertain, vec![claim("b", 200)]);
        // An older slot settled does not settle the newer one.
        again.settle_missed(&job("a"), 100);
        assert_eq!(again.snapshot().missed.len(), 1);
        again.settle_missed(&job("a"), 160);
        again.settle_uncertain(&claim("b", 200));
        assert!(again.is_empty());
        assert!(!file.exists(), "an empty list leaves no file");
        assert!(PendingSlots::load(file, now).is_empty());
    }

    #[test]
    fn a_damaged_file_is_moved_aside_and_entries_for_unknown_kinds_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster-pending.json");
        std::fs::write(&file, b"{not json").unwrap();
        let now = Timestamp::now();
        assert!(PendingSlots::load(file.clone(), now).is_empty());
        assert!(!file.exists());
        assert!(std::fs::read_dir(dir.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".corrupt-")
        }));
        std::fs::write(
            &file,
            br#"{"v":1,"missed":{"monitor.m":5,"job.ok":7},"uncertain":[{"job":"nope","slot":1,"key":"k","nonce":"n"}]}"#,
        )
        .unwrap();
        let seen = PendingSlots::load(file, now).snapshot();
        assert_eq!(seen.missed, BTreeMap::from([(job("ok"), 7)]));
        assert!(seen.uncertain.is_empty());
    }
}
