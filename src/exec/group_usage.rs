//! What a service instance's processes use, read from `/proc` as pm2 and `top` show it:
//! the CPU time, resident memory and number of the live processes of its process group
//! (and, in pid-file mode, of the tracked daemon's own group), and the CPU share between
//! two readings. One scan of `/proc` measures every instance asked for, and nothing is
//! read between requests, so idle services cost nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shortest time between the two readings a CPU share is computed from; a request
/// sooner than this after the last reading gets that reading's share again.
const SHARE_WINDOW: Duration = Duration::from_secs(1);

/// How long one scan of `/proc` serves further requests: a service page's live stream
/// is redrawn on every snapshot, and many viewers or a busy scheduler must not make each
/// redraw read every process's `stat` again.
const SCAN_REUSE: Duration = Duration::from_millis(500);

/// A reading not asked for again within this long is forgotten (the service was
/// removed or nobody looks).
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// The totals of one instance's processes at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupTotals {
    /// User plus system CPU time of the live processes and of the children they have
    /// waited for (a process whose parent died is counted while it lives only).
    pub cpu: Duration,
    /// The sum of their resident set sizes (pages shared between them are counted in
    /// each, as `ps` and pm2 count them).
    pub rss_bytes: u64,
    /// How many processes live (zombies included).
    pub processes: u32,
}

/// One instance's use, with its CPU share.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Its processes' totals.
    pub totals: GroupTotals,
    /// CPU time per wall time in percent of one core (200 is two cores busy), over the
    /// time since an earlier reading at least 1 s old, or over the
    /// instance's whole life when there is none.
    pub cpu_percent: f64,
}

/// One instance to measure.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The service's id.
    pub service: &'a str,
    /// The instance's UUID: a new instance starts a new series of readings.
    pub instance: &'a str,
    /// The tracked process; its process group is counted too.
    pub pid: u32,
    /// The process group karajo spawned.
    pub pgid: u32,
    /// How long the instance has lived (for the share of a first reading).
    pub up: Duration,
}

/// One process's line of `/proc/<pid>/stat`, the fields counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    pid: u32,
    pgrp: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
    /// Resident pages.
    rss_pages: u64,
}

/// Reads the fields counted from the text of `/proc/<pid>/stat`. The command name (field
/// 2) is in parentheses and may hold spaces and parentheses, so the fields after it are
/// counted from its last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_once(" (")?.0.trim().parse().ok()?;
    // Fields from 3 (state) on: pgrp is field 5, utime..cstime 14..17, rss 24.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let ticks = (14..=17).map(field).sum::<Option<u64>>()?;
    Some(ProcStat {
        pid,
        pgrp: u32::try_from(field(5)?).ok()?,
        ticks,
        rss_pages: field(24)?,
    })
}

/// Every process's counted fields, from one pass over `/proc`. A process that ends
/// while it is read is left out.
fn scan_proc() -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect()
}

/// The totals of the processes in `pgid`'s group or in `pid`'s group.
fn totals_of(processes: &[ProcStat], pid: u32, pgid: u32) -> GroupTotals {
    let tracked_group = processes.iter().find(|p| p.pid == pid).map(|p| p.pgrp);
    let groups: HashSet<u32> = [Some(pgid), tracked_group].into_iter().flatten().collect();
    let ticks_per_second = rustix::param::clock_ticks_per_second().max(1);
    let page = rustix::param::page_size() as u64;
    let mut ticks = 0;
    let mut totals = GroupTotals::default();
    for p in processes.iter().filter(|p| groups.contains(&p.pgrp)) {
        ticks += p.ticks;
        totals.rss_bytes += p.rss_pages * page;
        totals.processes += 1;
    }
    totals.cpu = Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64);
    totals
}

/// The last reading of one service's instance.
#[derive(Debug, Clone)]
struct Reading {
    instance: String,
    at: Instant,
    cpu: Duration,
    cpu_percent: f64,
    asked: Instant,
}

/// Measures instances and remembers each one's last reading, so that a page refresh or
/// a metrics scrape shows the CPU share since the one before.
#[derive(Debug, Default)]
pub struct UsageMeter {
    readings: Mutex<HashMap<String, Reading>>,
    /// The last scan of `/proc` and when it was made.
    last_scan: Mutex<Option<(Instant, Arc<Vec<ProcStat>>)>>,
}

impl UsageMeter {
    /// Measures `targets` (blocking: it reads `/proc`), in their order.
    pub fn measure(&self, targets: &[Target<'_>]) -> Vec<Usage> {
        if targets.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        let processes = self.scan(now);
        let mut readings = self
            .readings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        readings.retain(|_, r| now.duration_since(r.asked) < FORGET_AFTER);
        targets
            .iter()
            .map(|t| {
                let totals = totals_of(&processes, t.pid, t.pgid);
                let cpu_percent = share(&mut readings, t, totals.cpu, now);
                Usage {
                    totals,
                    cpu_percent,
                }
            })
            .collect()
    }
}

impl UsageMeter {
    /// Every process's counted fields: the last scan when it is younger than
    /// [`SCAN_REUSE`], else a new one.
    fn scan(&self, now: Instant) -> Arc<Vec<ProcStat>> {
        let mut last = self
            .last_scan
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*last {
            Some((at, scan)) if now.duration_since(*at) < SCAN_REUSE => scan.clone(),
            _ => {
                let scan = Arc::new(scan_proc());
                *last = Some((now, scan.clone()));
                scan
            }
        }
    }
}

/// The CPU share of `target` whose CPU time is `cpu` now, updating its reading.
fn share(
    readings: &mut HashMap<String, Reading>,
    target: &Target<'_>,
    cpu: Duration,
    now: Instant,
) -> f64 {
    let percent = |cpu: Duration, wall: Duration| {
        if wall.is_zero() {
            0.0
        } else {
            cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
        }
    };
    if let Some(r) = readings
        .get_mut(target.service)
        .filter(|r| r.instance == target.instance)
    {
        r.asked = now;
        let since = now.duration_since(r.at);
        if since >= SHARE_WINDOW {
            // A member whose parent died and which ended took its time along.
            r.cpu_percent = percent(cpu.saturating_sub(r.cpu), since);
            r.at = now;
            r.cpu = cpu;
        }
        return r.cpu_percent;
    }
    let cpu_percent = percent(cpu, target.up);
    readings.insert(
        target.service.to_string(),
        Reading {
            instance: target.instance.to_string(),
            at: now,
            cpu,
            cpu_percent,
            asked: now,
        },
    );
    cpu_percent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_after_the_last_parenthesis_of_the_name() {
        let line = "4242 (my (odd) name) S 1 4240 4240 0 -1 4194560 100 0 0 0 \
                    150 50 7 3 20 0 1 0 123456 10000000 321 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                pid: 4242,
                pgrp: 4240,
                ticks: 150 + 50 + 7 + 3,
                rss_pages: 321,
            })
        );
        assert_eq!(parse_stat("4242 (cut) S 1 4240"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_share_is_the_lifetime_average_first_then_the_rate_between_readings() {
        let mut readings = HashMap::new();
        let start = Instant::now();
        let target = Target {
            service: "api",
            instance: "one",
            pid: 1,
            pgid: 1,
            up: Duration::from_secs(10),
        };
        let cpu = |ms| Duration::from_millis(ms);
        // 2 s of CPU over 10 s of life: 20 %.
        assert_eq!(share(&mut readings, &target, cpu(2_000), start), 20.0);
        // Half a second later: too soon, the same share again.
        let soon = start + Duration::from_millis(500);
        assert_eq!(share(&mut readings, &target, cpu(2_400), soon), 20.0);
        // 2 s after the first reading, 1.5 s more CPU: 75 %.
        let later = start + Duration::from_secs(2);
        assert_eq!(share(&mut readings, &target, cpu(3_500), later), 75.0);
        // CPU time that went down (a reaped member left) reads as 0, not a negative.
        let then = later + Duration::from_secs(1);
        assert_eq!(share(&mut readings, &target, cpu(1_000), then), 0.0);
        // A new instance starts over from its own life.
        let next = Target {
            instance: "two",
            up: Duration::from_secs(4),
            ..target
        };
        assert_eq!(share(&mut readings, &next, cpu(1_000), then), 25.0);
    }

    #[test]
    fn a_busy_process_group_is_measured_from_proc() {
        use std::os::unix::process::CommandExt as _;
        // A shell in its own group with a busy child and a child holding 64 MiB (Debian's
        // python3, which the tests install).
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("(while :; do :; done) & /usr/bin/python3 -c 'import time; b = b\"x\" * (64 << 20); time.sleep(3)' & sleep 3; kill 0")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(1_500));
        let meter = UsageMeter::default();
        let target = Target {
            service: "busy",
            instance: "i",
            pid,
            pgid: pid,
            up: Duration::from_millis(1_500),
        };
        let first = meter.measure(&[target])[0];
        std::thread::sleep(Duration::from_millis(1_100));
        let second = meter.measure(&[target])[0];
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        let _ = child.wait();
        assert!(first.totals.processes >= 3, "{first:?}");
        assert!(second.totals.cpu > first.totals.cpu, "{first:?} {second:?}");
        // A shared, loaded machine gives the busy loop what it can: the figures must
        // agree with each other rather than reach a fixed share.
        assert!(second.totals.cpu >= Duration::from_millis(50), "{second:?}");
        let gained = (second.totals.cpu - first.totals.cpu).as_secs_f64();
        let share = 100.0 * gained / 1.1;
        assert!(second.cpu_percent > 1.0, "{second:?}");
        assert!(
            (second.cpu_percent - share).abs() <= share * 0.5 + 5.0,
            "{} % against {share:.1} % gained over 1.1 s: {second:?}",
            second.cpu_percent
        );
        assert!(second.totals.rss_bytes >= 64 << 20, "{second:?}");
        // No process of another group is counted: an unknown group is empty.
        let none = meter.measure(&[Target {
            service: "gone",
            pid: u32::MAX,
            pgid: u32::MAX,
            ..target
        }])[0];
        assert_eq!(none.totals, GroupTotals::default());
    }
}
