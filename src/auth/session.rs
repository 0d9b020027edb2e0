//! Web UI sessions: random keys handed out at login, kept in memory (lost on restart),
//! each with its user and its CSRF token, and ended by logout, by an idle timeout and
//! by an absolute lifetime. Time is passed in, so this stays pure; the HTTP layer owns
//! cookies and the web UI owns the forms that carry the CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use subtle::ConstantTimeEq as _;

/// Length of session keys and CSRF tokens: 43 characters of `[0-9A-Za-z]` (about 256
/// bits).
pub const KEY_LEN: usize = 43;
/// A session unused this long ends.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(8 * 3600);
/// A session ends this long after login, used or not (the cookie's `Max-Age`, as
/// the original's).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// At most this many sessions are kept; the least recently used goes first.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// The name of the session cookie, as the original's.
pub const SESSION_COOKIE: &str = "karajo";

/// What a valid session says about its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session key (the cookie's value).
    pub key: String,
    /// The user who logged in.
    pub user: String,
    /// The token that forms of this session must send back.
    pub csrf: String,
}

impl SessionInfo {
    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

#[derive(Debug)]
struct Session {
    user: String,
    csrf: String,
    created: Timestamp,
    last_seen: Timestamp,
}

/// The sessions of one daemon.
#[derive(Debug)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, Session>>,
    idle: Duration,
    lifetime: Duration,
    capacity: usize,
}

impl Default for SessionStore {
    fn default() -> Self {
        Self::new(DEFAULT_IDLE, DEFAULT_LIFETIME, DEFAULT_CAPACITY)
    }
}

impl SessionStore {
    /// A store whose sessions end after `idle` unused or `lifetime` after login.
    pub fn new(idle: Duration, lifetime: Duration, capacity: usize) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            idle,
            lifetime,
            capacity: capacity.max(1),
        }
    }

    /// The absolute lifetime of a session (for the cookie's `Max-Age`).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Starts a session for `user`.
    pub fn create(&self, user: &str, now: Timestamp) -> SessionInfo {
        let key = random_key();
        let csrf = random_key();
        let mut sessions = self.lock();
        sessions.retain(|_, s| !self.expired(s, now));
        while sessions.len() >= self.capacity {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => sessions.remove(&k),
                None => break,
            };
        }
        sessions.insert(
            key.clone(),
            Session {
                user: user.to_string(),
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        SessionInfo {
            key,
            user: user.to_string(),
            csrf,
        }
    }

    /// The session of `key`, if it is valid at `now` and `is_user` still accepts its
    /// user (users removed from `user.conf` lose their sessions); marks it used.
    pub fn get(
        &self,
        key: &str,
        now: Timestamp,
        is_user: impl FnOnce(&str) -> bool,
    ) -> Option<SessionInfo> {
        if key.len() != KEY_LEN {
            return None;
        }
        let mut sessions = self.lock();
        let session = sessions.get_mut(key)?;
        if self.expired(session, now) || !is_user(&session.user) {
            sessions.remove(key);
            return None;
        }
        session.last_seen = now;
        Some(SessionInfo {
            key: key.to_string(),
            user: session.user.clone(),
            csrf: session.csrf.clone(),
        })
    }

    /// Ends the session of `key` (logout).
    pub fn remove(&self, key: &str) {
        self.lock().remove(key);
    }

    /// How many sessions are kept now (expired ones included until the next login).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expired(&self, session: &Session, now: Timestamp) -> bool {
        let age = |since: Timestamp| {
            now.duration_since(since)
                .unsigned_abs()
                .min(Duration::from_secs(u64::MAX / 4))
        };
        age(session.created) >= self.lifetime || age(session.last_seen) >= self.idle
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// [`KEY_LEN`] random characters from `[0-9A-Za-z]`, from the operating system's
/// seeded CSPRNG.
pub fn random_key() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(KEY_LEN)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn sessions_end_when_idle_after_their_lifetime_and_on_logout() {
        let store = SessionStore::new(Duration::from_secs(100), Duration::from_secs(250), 10);
        let s = store.create("admin", at(0));
        assert_eq!(s.key.len(), KEY_LEN);
        assert_ne!(s.key, s.csrf);
        assert!(s.key.chars().all(|c| c.is_ascii_alphanumeric()));
        // Used every 90 s: alive until the lifetime ends.
        for t in [90, 180] {
            assert_eq!(store.get(&s.key, at(t), |_| true).unwrap().user, "admin");
        }
        assert!(store.get(&s.key, at(260), |_| true).is_none());
        // Idle.
        let s = store.create("admin", at(0));
        assert!(store.get(&s.key, at(100), |_| true).is_none());
        // Logout and removed users.
        let s = store.create("admin", at(0));
        store.remove(&s.key);
        assert!(store.get(&s.key, at(1), |_| true).is_none());
        let s = store.create("gone", at(0));
        assert!(store.get(&s.key, at(1), |u| u != "gone").is_none());
        assert!(store.get("short", at(1), |_| true).is_none());
    }

    #[test]
    fn the_store_is_bounded_and_csrf_compares_exactly() {
        let store = SessionStore::new(Duration::from_secs(100), Duration::from_secs(100), 2);
        let a = store.create("a", at(0));
        let _b = store.create("b", at(1));
        let _c = store.create("c", at(2));
        assert_eq!(store.len(), 2);
        assert!(store.get(&a.key, at(3), |_| true).is_none());
        assert!(a.csrf_matches(&a.csrf.clone()));
        assert!(!a.csrf_matches(""));
        assert!(!a.csrf_matches(&a.key));
    }
}
