//! The login throttle: failed logins back off per client and per user name, and each
//! client and each name has at most one password check in flight. Kept in memory
//! (a restart forgets it), bounded, and pure: the caller passes "now" and runs bcrypt.
//!
//! The rules, for a client address and, separately, for a user name:
//!
//! * the first [`FREE_FAILURES`] failures in a row cost nothing (typos);
//! * the next one starts a back-off of [`FIRST_BACKOFF`], and each further failure
//!   doubles it, up to [`CLIENT_MAX_BACKOFF`] for a client and [`USER_MAX_BACKOFF`]
//!   for a name (lower, because anyone can make a name back off: the cap bounds
//!   how long a stranger can lock a user out);
//! * while either backs off, a login is refused without checking its password; a
//!   refused attempt does not count as a failure and does not extend the back-off;
//! * a successful login clears both the client's and the user's count, and a count
//!   with no failure for [`FORGET_AFTER`] (and no back-off running) is forgotten;
//! * a second attempt from a client, or for a name, while one is being checked is
//!   refused at once, as is any attempt while [`MAX_PENDING`] are in flight, so one
//!   client (or one name) cannot queue password checks in front of others.
//!
//! Clients are IP addresses; IPv6 clients count per /64 (one site's prefix), so a
//! single host cannot take fresh addresses to start over. At most
//! [`DEFAULT_CAPACITY`] clients and as many names are tracked; past that the one with
//! the oldest failure is dropped (configured users last). Names that are not users
//! are tracked too (else the back-off would tell which names exist), cut to
//! [`NAME_KEY_LEN`] bytes.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Failures in a row that cost nothing.
pub const FREE_FAILURES: u32 = 5;
/// The back-off after the first failure past the free ones; it doubles with each
/// further failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest back-off of a client address.
pub const CLIENT_MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// The longest back-off of a user name.
pub const USER_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A count with no failure for this long (and no back-off running) is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Clients (and, separately, names) tracked at most.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Password checks in flight (running or waiting for a turn) at most.
pub const MAX_PENDING: usize = 32;
/// Names longer than this are tracked by their first this many bytes.
pub const NAME_KEY_LEN: usize = 64;
/// What a refused concurrent attempt is told to wait.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// Why a login was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// The client or the user name backs off after failed logins.
    BackedOff {
        /// How long until the next attempt can be checked.
        retry_after: Duration,
    },
    /// A check for the same client or name is in flight, or too many are.
    Busy,
}

impl Throttled {
    /// How long the client should wait (at least a second).
    pub fn retry_after(self) -> Duration {
        match self {
            Self::BackedOff { retry_after } => retry_after.max(Duration::from_secs(1)),
            Self::Busy => BUSY_RETRY,
        }
    }

    /// [`Throttled::retry_after`] in whole seconds, rounded up (for `Retry-After`).
    pub fn retry_after_secs(self) -> u64 {
        let wait = self.retry_after();
        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
    }
}

/// How one kind of key backs off.
#[derive(Debug, Clone, Copy)]
struct Policy {
    max: Duration,
}

impl Policy {
    /// The back-off after `failures` failures in a row; zero while they are free.
    fn backoff(self, failures: u32) -> Duration {
        let Some(past) = failures.checked_sub(FREE_FAILURES) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(past.min(31)).unwrap_or(u32::MAX);
        FIRST_BACKOFF.saturating_mul(factor).min(self.max)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    until: Instant,
    last: Instant,
    /// A configured user: dropped last when the table is full.
    protected: bool,
}

impl Entry {
    fn forgettable(&self, now: Instant) -> bool {
        now >= self.until && now.saturating_duration_since(self.last) >= FORGET_AFTER
    }
}

/// Failure counts by key, bounded.
#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Entry>,
    capacity: usize,
    policy: Policy,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(capacity: usize, policy: Policy) -> Self {
        Self {
            map: HashMap::new(),
            capacity: capacity.max(1),
            policy,
        }
    }

    /// How long `key` still backs off.
    fn remaining(&self, key: &K, now: Instant) -> Duration {
        self.map
            .get(key)
            .map_or(Duration::ZERO, |e| e.until.saturating_duration_since(now))
    }

    fn fail(&mut self, key: &K, protected: bool, now: Instant) {
        if !self.map.contains_key(key) && self.map.len() >= self.capacity {
            self.make_room(now);
        }
        let entry = self.map.entry(key.clone()).or_insert(Entry {
            failures: 0,
            until: now,
            last: now,
            protected,
        });
        if entry.forgettable(now) {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        entry.protected |= protected;
        entry.until = now + self.policy.backoff(entry.failures);
    }

    fn clear(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// Forgets old counts, then, if still full, the one with the oldest failure
    /// (unprotected ones first).
    fn make_room(&mut self, now: Instant) {
        self.map.retain(|_, e| !e.forgettable(now));
        if self.map.len() < self.capacity {
            return;
        }
        let oldest = self
            .map
            .iter()
            .min_by_key(|(_, e)| (e.protected, e.last))
            .map(|(k, _)| k.clone());
        if let Some(key) = oldest {
            self.map.remove(&key);
        }
    }
}

#[derive(Debug)]
struct Inner {
    clients: Table<Option<IpAddr>>,
    names: Table<String>,
    busy_clients: HashSet<Option<IpAddr>>,
    busy_names: HashSet<String>,
}

/// The login throttle of one daemon.
#[derive(Debug)]
pub struct LoginThrottle {
    inner: Mutex<Inner>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl LoginThrottle {
    /// A throttle tracking at most `capacity` clients and `capacity` names.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                clients: Table::new(
                    capacity,
                    Policy {
                        max: CLIENT_MAX_BACKOFF,
                    },
                ),
                names: Table::new(
                    capacity,
                    Policy {
                        max: USER_MAX_BACKOFF,
                    },
                ),
                busy_clients: HashSet::new(),
                busy_names: HashSet::new(),
            }),
        }
    }

    /// Starts a login attempt by `client` (`None`: unknown, all such clients count as
    /// one) for the user `name` (`known`: a configured user). Refused while the client
    /// or the name backs off, or while a check for either is in flight; otherwise the
    /// caller checks the password and reports the result on the returned [`Attempt`].
    pub fn begin(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        name: &str,
        known: bool,
        now: Instant,
    ) -> Result<Attempt, Throttled> {
        let client = client_key(client);
        let name = name_key(name);
        let mut inner = self.lock();
        let wait = inner
            .clients
            .remaining(&client, now)
            .max(inner.names.remaining(&name, now));
        if !wait.is_zero() {
            return Err(Throttled::BackedOff { retry_after: wait });
        }
        if inner.busy_clients.contains(&client)
            || inner.busy_names.contains(&name)
            || inner.busy_clients.len() >= MAX_PENDING
        {
            return Err(Throttled::Busy);
        }
        inner.busy_clients.insert(client);
        inner.busy_names.insert(name.clone());
        Ok(Attempt {
            throttle: self.clone(),
            client,
            name,
            known,
        })
    }

    /// Clients and names tracked now (for tests and metrics).
    pub fn tracked(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.clients.map.len(), inner.names.map.len())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A login attempt whose password is being checked. Dropping it without a result
/// (the request went away before the check) counts nothing.
#[derive(Debug)]
pub struct Attempt {
    throttle: Arc<LoginThrottle>,
    client: Option<IpAddr>,
    name: String,
    known: bool,
}

impl Attempt {
    /// The password was right: the client's and the name's counts are cleared.
    pub fn succeeded(self) {
        let mut inner = self.throttle.lock();
        inner.clients.clear(&self.client);
        inner.names.clear(&self.name);
    }

    /// The password (or the name) was wrong at `now`.
    pub fn failed(self, now: Instant) {
        let mut inner = self.throttle.lock();
        inner.clients.fail(&self.client, false, now);
        inner.names.fail(&self.name, self.known, now);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let mut inner = self.throttle.lock();
        inner.busy_clients.remove(&self.client);
        inner.busy_names.remove(&self.name);
    }
}

/// The key of a client: IPv4 (also when written as mapped IPv6) as is, IPv6 by /64.
fn client_key(ip: Option<IpAddr>) -> Option<IpAddr> {
    ip.map(|ip| match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    })
}

/// The key of a name: its first [`NAME_KEY_LEN`] bytes (cut at a character).
fn name_key(name: &str) -> String {
    let mut end = name.len().min(NAME_KEY_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Fails `n` attempts of `client` for `name` at `now`.
    fn fail_n(t: &Arc<LoginThrottle>, client: Option<IpAddr>, name: &str, n: u32, now: Instant) {
        for _ in 0..n {
            t.begin(client, name, true, now).unwrap().failed(now);
        }
    }

    #[test]
    fn backoff_starts_after_the_free_failures_doubles_and_is_capped() {
        let client = Policy {
            max: CLIENT_MAX_BACKOFF,
        };
        let user = Policy {
            max: USER_MAX_BACKOFF,
        };
        let got: Vec<u64> = (1..=16).map(|n| client.backoff(n).as_secs()).collect();
        assert_eq!(
            got,
            [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
        );
        assert_eq!(user.backoff(10), secs(32));
        assert_eq!(user.backoff(11), secs(60));
        assert_eq!(user.backoff(u32::MAX), secs(60));
    }

    #[test]
    fn a_backed_off_client_or_name_is_refused_until_it_ends() {
        let t = Arc::new(LoginThrottle::default());
        let now = Instant::now();
        let a = ip("192.0.2.1");
        fail_n(&t, a, "admin", FREE_FAILURES, now);
        // The client backs off, whatever name it tries...
        let refused = t.begin(a, "bob", true, now).unwrap_err();
        assert_eq!(
            refused,
            Throttled::BackedOff {
                retry_after: secs(1)
            }
        );
        assert_eq!(refused.retry_after_secs(), 1);
        // ...and so does the name, from any client.
        let b = ip("192.0.2.2");
        assert!(matches!(
            t.begin(b, "admin", true, now),
            Err(Throttled::BackedOff { .. })
        ));
        // Refusals do not count: after the back-off one more failure doubles it.
        let later = now + secs(1);
        t.begin(a, "admin", true, later).unwrap().failed(later);
        let wait = t.begin(a, "x", false, later).unwrap_err();
        assert_eq!(wait.retry_after(), secs(2));
        // Another client and another name are not affected.
        t.begin(b, "bob", true, later).unwrap().succeeded();
        // A success clears both the client and the name.
        let after = later + secs(2);
        t.begin(a, "admin", true, after).unwrap().succeeded();
        assert_eq!(t.tracked(), (0, 0));
    }

    #[test]
    fn counts_are_forgotten_after_a_quiet_time() {
        let t = Arc::new(LoginThrottle::default());
        let now = Instant::now();
        let a = ip("192.0.2.1");
        fail_n(&t, a, "admin", FREE_FAILURES - 1, now);
        let later = now + FORGET_AFTER;
        // Four old failures are forgotten: this is the first of a new count.
        t.begin(a, "admin", true, later).unwrap().failed(later);
        assert!(t.begin(a, "admin", true, later).is_ok());
    }

    #[test]
    fn one_check_in_flight_per_client_and_per_name() {
        let t = Arc::new(LoginThrottle::default());
        let now = Instant::now();
        let a = ip("192.0.2.1");
        let first = t.begin(a, "admin", true, now).unwrap();
        assert_eq!(t.begin(a, "bob", true, now).unwrap_err(), Throttled::Busy);
        assert_eq!(
            t.begin(ip("192.0.2.2"), "admin", true, now).unwrap_err(),
            Throttled::Busy
        );
        let other = t.begin(ip("192.0.2.2"), "bob", true, now).unwrap();
        drop(first);
        drop(other);
        // Dropped without a result: nothing counted.
        assert_eq!(t.tracked(), (0, 0));
        // At most MAX_PENDING at once.
        let held: Vec<Attempt> = (0..MAX_PENDING)
            .map(|i| {
                let client = Some(IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]));
                t.begin(client, &format!("u{i}"), false, now).unwrap()
            })
            .collect();
        assert_eq!(t.begin(a, "z", false, now).unwrap_err(), Throttled::Busy);
        drop(held);
        assert!(t.begin(a, "z", false, now).is_ok());
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let t = Arc::new(LoginThrottle::default());
        let now = Instant::now();
        fail_n(&t, ip("2001:db8:1:2::1"), "admin", FREE_FAILURES, now);
        assert!(
            t.begin(ip("2001:db8:1:2:ffff::9"), "x", false, now)
                .is_err()
        );
        assert!(t.begin(ip("2001:db8:1:3::1"), "x", false, now).is_ok());
        fail_n(&t, ip("::ffff:192.0.2.9"), "a", FREE_FAILURES, now);
        assert!(t.begin(ip("192.0.2.9"), "y", false, now).is_err());
        // Unknown clients all share one count.
        fail_n(&t, None, "b", FREE_FAILURES, now);
        assert!(t.begin(None, "c", false, now).is_err());
    }

    #[test]
    fn the_tables_are_bounded_and_drop_the_oldest_stranger_first() {
        let t = Arc::new(LoginThrottle::new(3));
        let start = Instant::now();
        let mut now = start;
        // A configured user's count survives a flood of other names and clients.
        fail_n(&t, ip("192.0.2.1"), "admin", FREE_FAILURES, now);
        for i in 0..50u8 {
            now += Duration::from_millis(10);
            let attempt = t
                .begin(
                    Some(IpAddr::from([198, 51, 100, i])),
                    &format!("n{i}"),
                    false,
                    now,
                )
                .unwrap();
            attempt.failed(now);
            let (clients, names) = t.tracked();
            assert!(clients <= 3 && names <= 3, "{clients} {names}");
        }
        assert!(matches!(
            t.begin(
                ip("203.0.113.1"),
                "admin",
                true,
                start + Duration::from_millis(100)
            ),
            Err(Throttled::BackedOff { .. })
        ));
        // Long names are tracked by their start.
        let long = "é".repeat(100);
        assert_eq!(name_key(&long).len(), NAME_KEY_LEN);
        let cut = name_key(&format!("a{long}"));
        assert!(cut.len() <= NAME_KEY_LEN && cut.starts_with('a'));
    }
}
