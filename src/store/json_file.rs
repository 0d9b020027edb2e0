//! Small JSON state files and JSON-lines records, the one way every per-entity file
//! under `var/lib/karajo/state` is read and written: a file is written atomically
//! (temporary file, fsync, rename, fsync of the directory), and one that cannot be read
//! back is moved aside as `<name>.corrupt-<unix seconds>` instead of stopping karajo or
//! being overwritten; a JSON-lines record is appended one line at a time and compacted
//! to its newest entries when it has grown to twice what is kept.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead as _, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::Path;

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::state::write_atomic;
use super::{FILE_MODE, io_context, rename_no_replace};

/// Reads a JSON file. A missing file is `None`; a file that cannot be used is moved
/// aside and is `None` too, with the reason.
pub fn load<T: DeserializeOwned>(path: &Path, now: Timestamp) -> (Option<T>, Option<String>) {
    let reason = match fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<T>(&bytes) {
            Ok(value) => return (Some(value), None),
            Err(e) => format!("invalid content: {e}"),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (None, None),
        Err(e) => format!("unreadable: {e}"),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = path.with_file_name(format!("{name}.corrupt-{}", now.as_second()));
    let moved = rename_no_replace(path, &aside)
        .map(|()| format!("{reason}; moved to {}", aside.display()))
        .unwrap_or_else(|e| format!("{reason}; could not move it aside: {e}"));
    (None, Some(moved))
}

/// Writes `value` as JSON atomically, ending with a newline; `pretty` indents it.
pub fn save<T: Serialize>(path: &Path, value: &T, pretty: bool) -> io::Result<()> {
    let encoded = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    let mut json = encoded.map_err(|e| io_context(io::Error::other(e), "encode", path))?;
    json.push(b'\n');
    write_atomic(path, |file| file.write_all(&json))
}

/// Deletes a file; one already gone is not an error.
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_context(e, "delete", path)),
        _ => Ok(()),
    }
}

/// Appends `entry` as one JSON line (the file 0600, created when missing), then, when
/// the file holds `2 × keep` lines or more, rewrites it atomically with the newest
/// `keep`. Appends are serialised in the process, so a compaction never drops a line
/// appended while it read the file.
pub fn append_line<T: Serialize + DeserializeOwned>(
    path: &Path,
    entry: &T,
    keep: usize,
) -> io::Result<()> {
    static APPENDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = APPENDING.lock().unwrap_or_else(|e| e.into_inner());
    let mut line =
        serde_json::to_vec(entry).map_err(|e| io_context(io::Error::other(e), "encode", path))?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| io_context(e, "open", path))?;
    // A line a crash cut short gets its end, so it does not swallow this one.
    let len = file
        .metadata()
        .map_err(|e| io_context(e, "stat", path))?
        .len();
    let mut last = [0u8; 1];
    if len > 0 && file.read_at(&mut last, len - 1).is_ok() && last[0] != b'\n' {
        line.insert(0, b'\n');
    }
    file.write_all(&line)
        .map_err(|e| io_context(e, "append to", path))?;
    let lines = count_lines(path)?;
    if lines >= keep.max(1) * 2 {
        let newest = read_lines::<T>(path, keep)?;
        let mut text = Vec::new();
        for entry in newest.iter().rev() {
            serde_json::to_writer(&mut text, entry)
                .map_err(|e| io_context(io::Error::other(e), "encode", path))?;
            text.push(b'\n');
        }
        write_atomic(path, |file| file.write_all(&text))?;
    }
    Ok(())
}

/// The newest `limit` entries of a JSON-lines file, newest first; lines that cannot be
/// read (a crash cut the last one short) are skipped. A missing file has none.
pub fn read_lines<T: DeserializeOwned>(path: &Path, limit: usize) -> io::Result<Vec<T>> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_context(e, "open", path)),
    };
    let mut all = std::collections::VecDeque::new();
    for line in io::BufReader::new(file).lines() {
        let line = line.map_err(|e| io_context(e, "read", path))?;
        if let Ok(entry) = serde_json::from_str::<T>(&line) {
            all.push_back(entry);
            if all.len() > limit {
                all.pop_front();
            }
        }
    }
    Ok(all.into_iter().rev().collect())
}

fn count_lines(path: &Path) -> io::Result<usize> {
    let bytes = fs::read(path).map_err(|e| io_context(e, "read", path))?;
    Ok(bytecount_newlines(&bytes))
}

fn bytecount_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Entry {
        n: u32,
    }

    #[test]
    fn a_file_round_trips_and_an_unreadable_one_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        let now: Timestamp = "2026-11-30T00:00:00Z".parse().unwrap();
        assert_eq!(load::<Entry>(&path, now), (None, None));
        save(&path, &Entry { n: 7 }, false).unwrap();
        assert_eq!(load::<Entry>(&path, now).0, Some(Entry { n: 7 }));
        fs::write(&path, "{not json").unwrap();
        let (value, problem) = load::<Entry>(&path, now);
        assert_eq!(value, None);
        assert!(problem.unwrap().contains("a.json.corrupt-1795996800"));
        assert!(!path.exists());
        assert!(dir.path().join("a.json.corrupt-1795996800").exists());
    }

    #[test]
    fn a_record_keeps_its_newest_entries_and_skips_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        for n in 1..=9 {
            append_line(&path, &Entry { n }, 3).unwrap();
        }
        // Compacted at 6 lines to 3, then 3 more appended: 7..9 after 4..6.
        let lines = fs::read_to_string(&path).unwrap();
        assert!(lines.lines().count() < 6, "{lines}");
        let newest: Vec<u32> = read_lines::<Entry>(&path, 3)
            .unwrap()
            .into_iter()
            .map(|e| e.n)
            .collect();
        assert_eq!(newest, [9, 8, 7]);
        // A line cut short by a crash is skipped, and does not swallow the next one.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"n\":1").unwrap();
        assert_eq!(read_lines::<Entry>(&path, 1).unwrap(), [Entry { n: 9 }]);
        append_line(&path, &Entry { n: 10 }, 3).unwrap();
        assert_eq!(
            read_lines::<Entry>(&path, 2).unwrap(),
            [Entry { n: 10 }, Entry { n: 9 }]
        );
    }
}
