//! The log facts cache, `var/lib/karajo/state/log-facts`: what the start-up scan read
//! from each closed run log (its modification time, trigger, start, end and exit
//! code), so that the next start reads the directory listings and this one file instead
//! of opening, stating and reading every log. A closed log is never written again, so
//! an entry stays true for as long as the same file is in its directory: the same name
//! and inode, and, when the directory has changed since the cache listed it (its
//! modification time differs), the same size and modification time too. A log the
//! cache does not know is read as before. The file is only a cache: missing, damaged,
//! cut short or of another version, it is ignored and written anew. It holds no log
//! content, only times, sizes, triggers and exit codes.
//!
//! Format: a first line `karajo log facts 2`; for each directory a line `dir
//! <kind>/<id> <modification time>`, then one line per log in it: counter, status (the
//! file is `<id>.<counter>.<status>`), inode, size, modification time, start, end, trigger
//! and exit code; and a last line `end <number of log lines>`, without which nothing in
//! the file is used. Fields are tab-separated; times are nanoseconds since the epoch;
//! `-` is none.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use jiff::Timestamp;

use super::RunFacts;
use crate::job::{JobId, JobKind, RunStatus, Trigger};

/// The first line of the file.
const HEADER: &str = "karajo log facts 2";

/// What the cache knows of one closed log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedLog {
    /// The inode of the file the facts were read from.
    pub ino: u64,
    /// Its size.
    pub size: u64,
    /// The file's modification time.
    pub modified: Timestamp,
    /// What the log told.
    pub facts: RunFacts,
}

impl CachedLog {
    /// Whether the file `meta` describes still has this log's size and modification
    /// time.
    pub fn matches(&self, meta: Option<&std::fs::Metadata>) -> bool {
        meta.is_some_and(|meta| {
            meta.len() == self.size
                && super::run_log::modified_of(meta).is_ok_and(|t| t == self.modified)
        })
    }
}

/// What the cache holds for one log directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirFacts {
    /// The directory's modification time when it was listed.
    pub listed: Option<Timestamp>,
    /// Its closed logs, by the counter and status of their file names.
    pub logs: HashMap<(u64, RunStatus), CachedLog>,
}

/// The whole cache, by `<kind>/<id>`.
#[derive(Debug, Default)]
pub struct FactsCache {
    dirs: HashMap<String, DirFacts>,
    /// Some directory's logs were put in differing from what the file held.
    changed: bool,
}

impl FactsCache {
    /// Reads the cache at `path`. A missing file is an empty cache; so is a file that
    /// cannot be read or does not end with its `end` line (with a warning).
    pub fn load(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).unwrap_or_else(|| {
                tracing::warn!(path = %path.display(), "the log facts cache is damaged; the logs are read instead");
                Self::default()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::default(),
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "cannot read the log facts cache; the logs are read instead");
                Self::default()
            }
        }
    }

    /// The cache in `text`; `None` when it is not a whole cache of this version.
    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.split_terminator('\n');
        if lines.next()? != HEADER || !text.ends_with('\n') {
            return None;
        }
        let mut cache = Self::default();
        let mut count = 0usize;
        let mut current: Option<&mut DirFacts> = None;
        for line in lines {
            if let Some(n) = line.strip_prefix("end ") {
                return (n.parse::<usize>().ok()? == count).then_some(cache);
            }
            if let Some(dir) = line.strip_prefix("dir\t") {
                let (key, listed) = dir.split_once('\t')?;
                if !key.contains('/') || cache.dirs.contains_key(key) {
                    return None;
                }
                let facts = cache.dirs.entry(key.to_string()).or_default();
                facts.listed = parse_time(listed)?;
                current = Some(facts);
                continue;
            }
            let (name, log) = parse_line(line)?;
            current.as_mut()?.logs.insert(name, log);
            count += 1;
        }
        None
    }

    /// Takes the cached logs of job `id` of kind `kind` out of the cache (empty when
    /// none are known).
    pub fn take(&mut self, kind: JobKind, id: &JobId) -> DirFacts {
        self.dirs.remove(&key(kind, id)).unwrap_or_default()
    }

    /// Puts the logs of job `id` of kind `kind` in the cache, replacing what it held;
    /// `changed` says they differ from what the file held (see [`FactsCache::changed`]).
    pub fn insert(&mut self, kind: JobKind, id: &JobId, logs: DirFacts, changed: bool) {
        self.changed |= changed;
        if logs.logs.is_empty() {
            self.dirs.remove(&key(kind, id));
        } else {
            self.dirs.insert(key(kind, id), logs);
        }
    }

    /// Moves everything `other` holds into this cache.
    pub fn absorb(&mut self, other: Self) {
        self.changed |= other.changed;
        self.dirs.extend(other.dirs);
    }

    /// Whether logs put in differ from what the file held, so it is to be written.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// How many logs the cache knows.
    pub fn len(&self) -> usize {
        self.dirs.values().map(|d| d.logs.len()).sum()
    }

    /// Whether the cache knows no log.
    pub fn is_empty(&self) -> bool {
        self.dirs.values().all(|d| d.logs.is_empty())
    }

    /// Writes the cache to `path` (0600), through a new file of a name of its own
    /// renamed over the old one, so a reader never sees half of it and two writers
    /// (a start's and a shutdown's) never write into one file. Not synced: after a
    /// power cut the cache may be the previous one or none, and either is only read
    /// as a cache.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut text = String::with_capacity(self.len() * 96 + 64);
        text.push_str(HEADER);
        text.push('\n');
        let mut dirs: Vec<_> = self.dirs.iter().collect();
        dirs.sort_by(|a, b| a.0.cmp(b.0));
        let mut count = 0usize;
        for (dir, facts) in dirs {
            let _ = write!(text, "dir\t{dir}\t");
            push_time(&mut text, facts.listed);
            text.push('\n');
            for ((counter, status), log) in &facts.logs {
                let _ = write!(text, "{counter}\t{status}\t{}\t{}\t", log.ino, log.size);
                push_time(&mut text, Some(log.modified));
                text.push('\t');
                push_time(&mut text, log.facts.started);
                text.push('\t');
                push_time(&mut text, log.facts.ended);
                text.push('\t');
                text.push_str(log.facts.trigger.map_or("-", Trigger::as_str));
                text.push('\t');
                match log.facts.exit_code {
                    Some(code) => {
                        let _ = write!(text, "{code}");
                    }
                    None => text.push('-'),
                }
                text.push('\n');
                count += 1;
            }
        }
        let _ = writeln!(text, "end {count}");
        let dir = path.parent().unwrap_or(Path::new("."));
        super::create_private_dir(dir)?;
        let mut fresh = tempfile::Builder::new()
            .prefix(".log-facts.")
            .permissions(std::fs::Permissions::from_mode(super::FILE_MODE))
            .tempfile_in(dir)
            .map_err(|e| super::io_context(e, "create a file in", dir))?;
        fresh
            .write_all(text.as_bytes())
            .map_err(|e| super::io_context(e, "write", fresh.path()))?;
        fresh
            .persist(path)
            .map(drop)
            .map_err(|e| super::io_context(e.error, "rename over", path))
    }
}

/// The cache's name for the log directory of job `id` of kind `kind`.
fn key(kind: JobKind, id: &JobId) -> String {
    format!("{}/{id}", kind.as_str())
}

fn push_time(text: &mut String, t: Option<Timestamp>) {
    match t {
        Some(t) => {
            let _ = write!(text, "{}", t.as_nanosecond());
        }
        None => text.push('-'),
    }
}

fn parse_time(field: &str) -> Option<Option<Timestamp>> {
    if field == "-" {
        return Some(None);
    }
    Timestamp::from_nanosecond(field.parse().ok()?)
        .ok()
        .map(Some)
}

/// One log line of the file: the counter and status of its file name, and its facts.
fn parse_line(line: &str) -> Option<((u64, RunStatus), CachedLog)> {
    let mut fields = line.split('\t');
    let counter = fields.next()?.parse().ok()?;
    let status = RunStatus::parse(fields.next()?)?;
    let ino = fields.next()?.parse().ok()?;
    let size = fields.next()?.parse().ok()?;
    let modified = parse_time(fields.next()?)??;
    let started = parse_time(fields.next()?)?;
    let ended = parse_time(fields.next()?)?;
    let trigger = match fields.next()? {
        "-" => None,
        word => Some(Trigger::ALL.into_iter().find(|t| t.as_str() == word)?),
    };
    let exit_code = match fields.next()? {
        "-" => None,
        code => Some(code.parse().ok()?),
    };
    if fields.next().is_some() {
        return None;
    }
    let facts = RunFacts {
        trigger,
        started,
        ended,
        exit_code,
    };
    Some((
        (counter, status),
        CachedLog {
            ino,
            size,
            modified,
            facts,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FactsCache {
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        let mut cache = FactsCache::default();
        let mut facts = DirFacts {
            listed: Some(t(1_700_000_200)),
            ..DirFacts::default()
        };
        let logs = &mut facts.logs;
        logs.insert(
            (1, RunStatus::Success),
            CachedLog {
                ino: 42,
                size: 1234,
                modified: Timestamp::from_nanosecond(1_700_000_000_123_456_789).unwrap(),
                facts: RunFacts {
                    trigger: Some(Trigger::CatchUp),
                    started: Some(t(1_700_000_000)),
                    ended: Some(t(1_700_000_001)),
                    exit_code: Some(0),
                },
            },
        );
        logs.insert(
            (2, RunStatus::Failed),
            CachedLog {
                ino: 43,
                size: 0,
                modified: t(1_700_000_100),
                facts: RunFacts {
                    exit_code: Some(-3),
                    ..RunFacts::default()
                },
            },
        );
        cache.insert(JobKind::Exec, &JobId::from_raw("a"), facts, true);
        cache
    }

    #[test]
    fn a_saved_cache_loads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/log-facts");
        let mut cache = sample();
        cache.save(&path).unwrap();
        let mut loaded = FactsCache::load(&path);
        assert_eq!(loaded.len(), 2);
        let a = JobId::from_raw("a");
        assert_eq!(
            loaded.take(JobKind::Exec, &a),
            cache.take(JobKind::Exec, &a)
        );
        assert!(loaded.is_empty());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn two_writers_at_once_leave_one_whole_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-facts");
        let small = sample();
        let mut big = sample();
        let mut more = big.take(JobKind::Exec, &JobId::from_raw("a"));
        for counter in 3..2000 {
            let log = more.logs[&(1, RunStatus::Success)];
            more.logs.insert((counter, RunStatus::Success), log);
        }
        big.insert(JobKind::Exec, &JobId::from_raw("a"), more, true);
        for _ in 0..20 {
            std::thread::scope(|scope| {
                scope.spawn(|| small.save(&path).unwrap());
                scope.spawn(|| big.save(&path).unwrap());
            });
            let loaded = FactsCache::load(&path).len();
            assert!(loaded == 2 || loaded == 1999, "{loaded} logs");
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }

    #[test]
    fn a_cut_or_foreign_cache_is_not_used_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-facts");
        sample().save(&path).unwrap();
        let whole = std::fs::read_to_string(&path).unwrap();
        // Cut anywhere before its end line: nothing of it is used.
        for cut in [whole.len() - 1, whole.len() - 7, whole.len() / 2, 10] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(FactsCache::load(&path).is_empty(), "cut at {cut}");
        }
        // A count that does not match, a bad field, another version.
        for text in [
            whole.replace("end 2", "end 3"),
            whole.replace("\t42\t", "\tx\t"),
            whole.replace("\tsuccess\t", "\tsuccesses\t"),
            whole.replace("catch-up", "cron"),
            whole.replace("facts 2", "facts 1"),
            whole.replace("end 2", "dir\tjob/a\t-\nend 2"),
        ] {
            std::fs::write(&path, &text).unwrap();
            assert!(FactsCache::load(&path).is_empty(), "{text}");
        }
        assert!(FactsCache::load(&dir.path().join("missing")).is_empty());
    }
}
