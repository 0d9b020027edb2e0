//! Replay protection, applied after a request's signature verified: the `_karajo_epoch` clock
//! window ([`check_epoch`]) and the memory of GitHub delivery ids and SourceHut nonces
//! already accepted ([`ReplayGuard`], keyed by [`delivery_key`]).
//!
//! The Go original checks neither (spec 5.1): a captured signed request can be replayed
//! forever. Here a body carrying `_karajo_epoch` is refused when its time is further than the
//! window (`epoch_window`, default 5 minutes) from the server's clock, and a GitHub or
//! SourceHut delivery seen within the last hour is refused. Owns no clock (callers pass
//! `now`), no IO and no HTTP; it never holds its lock across an `.await` because it has none.
//!
//! **Ordering.** The caller must verify the signature *first* and call
//! [`ReplayGuard::check_and_remember`] only for requests whose signature verified (and whose
//! epoch passed). Recording unsigned requests would let anyone fill the guard with delivery
//! ids or nonces they expect to see next, so that the genuine deliveries are refused, or push
//! the genuine entries out through the capacity bound.
//!
//! **Limits.** SourceHut's nonce is part of the signed message, so a replayed SourceHut
//! delivery cannot change it and is always caught within the TTL. GitHub's
//! `X-GitHub-Delivery` is *not* covered by GitHub's signature, so the guard only stops
//! verbatim replays and GitHub's own re-deliveries (which keep the delivery id); someone who
//! captured a signed GitHub body can resend it with a fresh id. GitHub payloads carry no
//! `_karajo_epoch`, so for them this is all the protection there is.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::HeaderMap;
use jiff::Timestamp;

use crate::job::AuthKind;

/// The body field (JSON key or form key) holding the sender's Unix time in seconds.
pub const EPOCH_FIELD: &str = "_karajo_epoch";
/// The default `epoch_window`.
pub const DEFAULT_EPOCH_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How long a delivery id or nonce is remembered.
pub const DEFAULT_DELIVERY_TTL: Duration = Duration::from_secs(60 * 60);
/// A default bound on remembered deliveries (about 1 MB at GitHub's 36-byte ids).
pub const DEFAULT_DELIVERY_CAPACITY: usize = 10_000;

/// The header holding GitHub's per-delivery id (a GUID).
pub const HEADER_GITHUB_DELIVERY: &str = "X-GitHub-Delivery";
/// The header holding SourceHut's per-delivery nonce (signed together with the body).
pub const HEADER_SOURCEHUT_NONCE: &str = "X-Payload-Nonce";

/// Longest piece of a request echoed into an error message.
const ECHO_LIMIT: usize = 64;

/// Why a signed request was refused as a possible replay. The HTTP layer answers 403
/// `forbidden` for all of them; the detail is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// `_karajo_epoch` is further from the server's clock than the window allows.
    #[error(
        "_karajo_epoch {epoch} is {skew:?} {} server time, outside the allowed window of {window:?}",
        direction(.ahead)
    )]
    EpochOutOfWindow {
        /// The epoch as written in the request.
        epoch: String,
        /// How far it is from the server's clock.
        skew: Duration,
        /// `true` when the epoch lies in the future (the sender's clock is ahead).
        ahead: bool,
        /// The window that was exceeded.
        window: Duration,
    },
    /// `_karajo_epoch` is present but not a number of seconds.
    #[error("_karajo_epoch {value:?} is not a Unix time in seconds")]
    InvalidEpoch {
        /// The value as written (cut to 64 characters).
        value: String,
    },
    /// The delivery id or nonce was already accepted within the TTL.
    #[error("delivery {key} was already accepted at {first_seen}")]
    Replayed {
        /// The key from [`delivery_key`].
        key: String,
        /// When it was first accepted.
        first_seen: Timestamp,
    },
}

fn direction(ahead: &bool) -> &'static str {
    if *ahead { "ahead of" } else { "behind" }
}

/// Refuses `body` when it carries a `_karajo_epoch` further than `window` from `now` in
/// either direction; exactly `window` away still passes.
///
/// Where the epoch is looked for:
/// * a JSON object's top-level `_karajo_epoch`: an integer, a float (fractional seconds) or a
///   string holding a decimal integer (some clients stringify numbers);
/// * otherwise a form / query string (`_karajo_epoch=1673222400&id=x`, as the Go client's
///   pause/resume/cancel bodies and the `job_http` pause/resume query strings): the
///   percent-decoded value must be a decimal integer, or the Go original's HTTP job artefact
///   `%!s(int64=N)` (spec 7.1), which does hold the real time N. Every occurrence is checked.
///
/// Bodies without the field pass: JSON arrays and scalars, other JSON objects (GitHub and
/// SourceHut payloads), empty and binary bodies. A present field that is not a number (JSON
/// `null`, `true`, a non-numeric string, an empty form value) is refused, because a signed
/// body whose epoch cannot be checked could be replayed forever.
pub fn check_epoch(body: &[u8], now: Timestamp, window: Duration) -> Result<(), ReplayError> {
    for (text, epoch_ns) in find_epochs(body)? {
        let window_ns = i128::try_from(window.as_nanos()).unwrap_or(i128::MAX);
        let offset = epoch_ns.saturating_sub(now.as_nanosecond());
        if offset.unsigned_abs() > window_ns.unsigned_abs() {
            return Err(ReplayError::EpochOutOfWindow {
                epoch: text,
                skew: duration_from_nanos(offset.unsigned_abs()),
                ahead: offset > 0,
                window,
            });
        }
    }
    Ok(())
}

/// The epochs in `body`, each as (text as written, nanoseconds since the Unix epoch).
fn find_epochs(body: &[u8]) -> Result<Vec<(String, i128)>, ReplayError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => match map.get(EPOCH_FIELD) {
            Some(value) => Ok(vec![epoch_from_json(value)?]),
            None => Ok(Vec::new()),
        },
        Ok(_) => Ok(Vec::new()),
        Err(_) => body
            .split(|&b| b == b'&')
            .filter_map(|pair| {
                let mut kv = pair.splitn(2, |&b| b == b'=');
                let key = percent_decode(kv.next().unwrap_or_default());
                (key == EPOCH_FIELD.as_bytes())
                    .then(|| percent_decode(kv.next().unwrap_or_default()))
            })
            .map(|value| {
                let text = String::from_utf8_lossy(&value).into_owned();
                match epoch_from_text(&text) {
                    Some(ns) => Ok((text, ns)),
                    None => Err(invalid(&text)),
                }
            })
            .collect(),
    }
}

fn epoch_from_json(value: &serde_json::Value) -> Result<(String, i128), ReplayError> {
    let ns = match value {
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(|s| i128::from(s) * 1_000_000_000)
            .or_else(|| n.as_u64().map(|s| i128::from(s) * 1_000_000_000))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    // Saturating float-to-int cast: absurd values just land far outside any window.
                    .map(|f| (f * 1e9) as i128)
            }),
        serde_json::Value::String(s) => epoch_from_text(s),
        _ => None,
    };
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match ns {
        Some(ns) => Ok((text, ns)),
        None => Err(invalid(&text)),
    }
}

/// A decimal integer number of seconds, possibly wrapped as Go's `%!s(int64=N)`.
fn epoch_from_text(text: &str) -> Option<i128> {
    let digits = text
        .strip_prefix("%!s(int64=")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or(text);
    digits
        .parse::<i64>()
        .ok()
        .map(|s| i128::from(s) * 1_000_000_000)
}

fn invalid(text: &str) -> ReplayError {
    ReplayError::InvalidEpoch {
        value: text.chars().take(ECHO_LIMIT).collect(),
    }
}

fn duration_from_nanos(ns: u128) -> Duration {
    let secs = u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9 and fits.
    let nanos = u32::try_from(ns % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, nanos)
}

/// `application/x-www-form-urlencoded` decoding of one key or value: `+` is a space, `%XX` a
/// byte; a malformed escape is kept as written.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        let hex_pair = || {
            let hi = (*input.get(i + 1)? as char).to_digit(16)?;
            let lo = (*input.get(i + 2)? as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        };
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                if let Some(byte) = hex_pair() {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// The replay key of a web hook delivery: `github:<X-GitHub-Delivery>` or
/// `sourcehut:<X-Payload-Nonce>`; `None` for `hmac-sha256` jobs (their bodies carry
/// `_karajo_epoch` instead) and when the header is absent or empty.
///
/// Callers guarding several jobs with one [`ReplayGuard`] may prefix the job id; GitHub and
/// SourceHut make ids and nonces unique per delivery, so it is not required.
pub fn delivery_key(kind: AuthKind, headers: &HeaderMap) -> Option<String> {
    let (prefix, header) = match kind {
        AuthKind::Github => ("github:", HEADER_GITHUB_DELIVERY),
        AuthKind::Sourcehut => ("sourcehut:", HEADER_SOURCEHUT_NONCE),
        AuthKind::HmacSha256 => return None,
    };
    let value = headers.get(header)?.as_bytes();
    if value.is_empty() {
        return None;
    }
    Some(format!("{prefix}{}", String::from_utf8_lossy(value)))
}

/// Remembers accepted delivery keys for `ttl` and refuses them a second time.
///
/// Memory is bounded: at most `capacity` keys are kept (about `capacity` × (key length + 100)
/// bytes). When it is full, expired keys go first, then the oldest live one. The trade-off:
/// after more than `capacity` accepted deliveries within one TTL the oldest can be replayed
/// again; since only deliveries that passed the signature check are recorded, only a sender
/// holding the secret (or GitHub / SourceHut themselves) can cause that. Choose `capacity`
/// well above the expected deliveries per TTL. A `capacity` of 0 is treated as 1.
///
/// An entry lives from `now` for exactly `ttl`: at `first_seen + ttl` the key is accepted
/// again. Uses a `std::sync::Mutex` held only inside each call; `Send + Sync`.
#[derive(Debug)]
pub struct ReplayGuard {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Seen>,
}

/// The remembered keys. Invariant: every `(key, t)` in `at` has an entry `(t, key)` in
/// `order`; `order` may also hold stale entries (the key was removed or re-recorded later),
/// which are skipped when popped.
#[derive(Debug, Default)]
struct Seen {
    at: HashMap<String, Timestamp>,
    order: VecDeque<(Timestamp, String)>,
}

impl ReplayGuard {
    /// A guard that remembers keys for `ttl` (1 hour in use) and at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            inner: Mutex::new(Seen::default()),
        }
    }

    /// Refuses `key` when it was recorded less than the TTL before `now`; otherwise records
    /// it at `now`. Call only after the request's signature verified (see the module docs).
    pub fn check_and_remember(&self, key: &str, now: Timestamp) -> Result<(), ReplayError> {
        let mut seen = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        self.evict_expired(&mut seen, now);
        if let Some(&first_seen) = seen.at.get(key)
            && !self.expired(first_seen, now)
        {
            return Err(ReplayError::Replayed {
                key: key.chars().take(ECHO_LIMIT * 4).collect(),
                first_seen,
            });
        }
        seen.at.remove(key);
        while seen.at.len() >= self.capacity {
            let Some((t, oldest)) = seen.order.pop_front() else {
                // Unreachable by the invariant; never let the bound break.
                seen.at.clear();
                break;
            };
            if seen.at.get(&oldest) == Some(&t) {
                seen.at.remove(&oldest);
            }
        }
        seen.at.insert(key.to_owned(), now);
        seen.order.push_back((now, key.to_owned()));
        if seen.order.len() > 2 * self.capacity + 16 {
            // Only when the clock went backwards and keys were re-recorded out of order.
            let mut fresh: Vec<(Timestamp, String)> =
                seen.at.iter().map(|(k, &t)| (t, k.clone())).collect();
            fresh.sort();
            seen.order = fresh.into();
        }
        Ok(())
    }

    /// How many keys are remembered (expired ones included until the next call evicts them).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .at
            .len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expired(&self, first_seen: Timestamp, now: Timestamp) -> bool {
        let ttl = i128::try_from(self.ttl.as_nanos()).unwrap_or(i128::MAX);
        now.as_nanosecond()
            .saturating_sub(first_seen.as_nanosecond())
            >= ttl
    }

    /// Drops entries from the front of `order` while they are expired.
    fn evict_expired(&self, seen: &mut Seen, now: Timestamp) {
        while let Some((t, _)) = seen.order.front() {
            if !self.expired(*t, now) {
                break;
            }
            if let Some((t, key)) = seen.order.pop_front()
                && seen.at.get(&key) == Some(&t)
            {
                seen.at.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    const WINDOW: Duration = Duration::from_secs(300);

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    /// The Go tests' frozen clock, 2023-01-09T00:00:00Z.
    const NOW: i64 = 1_673_222_400;

    #[test]
    fn epoch_window_edges_json() {
        let now = at(NOW);
        for (epoch, ok) in [
            (NOW, true),
            (NOW - 300, true),
            (NOW + 300, true),
            (NOW - 301, false),
            (NOW + 301, false),
        ] {
            let body = format!(r#"{{"id":"","_karajo_epoch":{epoch}}}"#);
            assert_eq!(
                check_epoch(body.as_bytes(), now, WINDOW).is_ok(),
                ok,
                "{body}"
            );
        }
        let err = check_epoch(br#"{"_karajo_epoch":1673222099}"#, now, WINDOW).unwrap_err();
        assert_eq!(
            err,
            ReplayError::EpochOutOfWindow {
                epoch: "1673222099".to_owned(),
                skew: Duration::from_secs(301),
                ahead: false,
                window: WINDOW,
            }
        );
        assert_eq!(
            err.to_string(),
            "_karajo_epoch 1673222099 is 301s behind server time, outside the allowed window of 300s"
        );
        let err = check_epoch(br#"{"_karajo_epoch":1673222701}"#, now, WINDOW).unwrap_err();
        assert!(matches!(
            err,
            ReplayError::EpochOutOfWindow { ahead: true, .. }
        ));
        assert!(
            err.to_string().contains("301s ahead of server time"),
            "{err}"
        );
    }

    #[test]
    fn epoch_window_edges_form_and_query() {
        let now = at(NOW);
        for (epoch, ok) in [
            (NOW - 300, true),
            (NOW + 300, true),
            (NOW - 301, false),
            (NOW + 301, false),
        ] {
            let form = format!("_karajo_epoch={epoch}&id=test_job_success");
            assert_eq!(
                check_epoch(form.as_bytes(), now, WINDOW).is_ok(),
                ok,
                "{form}"
            );
            let query = format!("id=test_success&_karajo_epoch={epoch}");
            assert_eq!(
                check_epoch(query.as_bytes(), now, WINDOW).is_ok(),
                ok,
                "{query}"
            );
        }
        // Spec 5.2 row 5, at the tests' frozen time.
        check_epoch(b"_karajo_epoch=1673222400&id=test_job_success", now, WINDOW).unwrap();
        // The Go HTTP job's `%!s(int64=N)` (spec 5.2 row 3) is read as N.
        let go = b"_karajo_epoch=%25%21s%28int64%3D1795374689%29";
        check_epoch(go, at(1_795_374_689), WINDOW).unwrap();
        assert!(matches!(
            check_epoch(go, now, WINDOW),
            Err(ReplayError::EpochOutOfWindow { ahead: true, .. })
        ));
        // Every occurrence counts.
        let twice = format!("_karajo_epoch={NOW}&_karajo_epoch={}", NOW - 1000);
        assert!(check_epoch(twice.as_bytes(), now, WINDOW).is_err());
        // A percent-encoded key is still the key.
        let encoded = format!("%5Fkarajo%5Fepoch={}", NOW - 1000);
        assert!(check_epoch(encoded.as_bytes(), now, WINDOW).is_err());
    }

    #[test]
    fn epoch_json_forms() {
        let now = at(NOW);
        // Floats: fractional seconds are compared exactly.
        check_epoch(br#"{"_karajo_epoch":1673222100.0}"#, now, WINDOW).unwrap();
        assert!(check_epoch(br#"{"_karajo_epoch":1673222099.5}"#, now, WINDOW).is_err());
        check_epoch(br#"{"_karajo_epoch":1.6732224e9}"#, now, WINDOW).unwrap();
        // A string holding an integer.
        check_epoch(br#"{"_karajo_epoch":"1673222400"}"#, now, WINDOW).unwrap();
        assert!(check_epoch(br#"{"_karajo_epoch":"1673222000"}"#, now, WINDOW).is_err());
        // Present but not a number: refused.
        for body in [
            &br#"{"_karajo_epoch":null}"#[..],
            br#"{"_karajo_epoch":true}"#,
            br#"{"_karajo_epoch":"soon"}"#,
            br#"{"_karajo_epoch":"1673222400.5"}"#,
            br#"{"_karajo_epoch":{}}"#,
            b"_karajo_epoch=&id=x",
            b"_karajo_epoch",
            b"_karajo_epoch=yesterday",
        ] {
            assert!(
                matches!(
                    check_epoch(body, now, WINDOW),
                    Err(ReplayError::InvalidEpoch { .. })
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Huge numbers do not overflow; they are just far away.
        for body in [
            &br#"{"_karajo_epoch":18446744073709551615}"#[..],
            br#"{"_karajo_epoch":-9223372036854775808}"#,
            br#"{"_karajo_epoch":1e300}"#,
            br#"{"_karajo_epoch":-1e300}"#,
        ] {
            assert!(matches!(
                check_epoch(body, now, WINDOW),
                Err(ReplayError::EpochOutOfWindow { .. })
            ));
        }
        // A huge window accepts far-away epochs (1e300 s is beyond even Duration::MAX).
        check_epoch(br#"{"_karajo_epoch":1e15}"#, now, Duration::MAX).unwrap();
        check_epoch(
            br#"{"_karajo_epoch":-9223372036854775808}"#,
            now,
            Duration::MAX,
        )
        .unwrap();
        // The long invalid value is cut in the error.
        let long = format!(r#"{{"_karajo_epoch":"{}"}}"#, "x".repeat(1000));
        match check_epoch(long.as_bytes(), now, WINDOW) {
            Err(ReplayError::InvalidEpoch { value }) => assert_eq!(value.len(), 64),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bodies_without_epoch_pass() {
        let now = at(NOW);
        for body in [
            &b""[..],
            b"{}",
            br#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
            br#"{"nested":{"_karajo_epoch":1}}"#,
            br#"[{"_karajo_epoch":1}]"#,
            b"42",
            b"id=test_success",
            b"\xff\xfe\x00binary",
            b"not json at all",
            br#"{"_karajo_epoch":1"#, // broken JSON, not a form key either
        ] {
            check_epoch(body, now, WINDOW).unwrap();
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a+b%20c%2x%"), b"a b c%2x%");
        assert_eq!(percent_decode(b"%25%21s%28int64%3D1%29"), b"%!s(int64=1)");
        assert_eq!(percent_decode(b"%e2%82%AC"), "€".as_bytes());
    }

    #[test]
    fn delivery_keys() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-github-delivery",
            HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        );
        h.insert("X-Payload-Nonce", HeaderValue::from_static("12345"));
        assert_eq!(
            delivery_key(AuthKind::Github, &h).as_deref(),
            Some("github:72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(
            delivery_key(AuthKind::Sourcehut, &h).as_deref(),
            Some("sourcehut:12345")
        );
        assert_eq!(delivery_key(AuthKind::HmacSha256, &h), None);
        let empty = HeaderMap::new();
        assert_eq!(delivery_key(AuthKind::Github, &empty), None);
        assert_eq!(delivery_key(AuthKind::Sourcehut, &empty), None);
        let mut blank = HeaderMap::new();
        blank.insert("X-Payload-Nonce", HeaderValue::from_static(""));
        assert_eq!(delivery_key(AuthKind::Sourcehut, &blank), None);
    }

    #[test]
    fn guard_refuses_within_ttl_and_forgets_after() {
        let guard = ReplayGuard::new(Duration::from_secs(3600), 100);
        let t0 = at(NOW);
        guard.check_and_remember("github:a", t0).unwrap();
        guard.check_and_remember("sourcehut:a", t0).unwrap();
        let err = guard
            .check_and_remember("github:a", at(NOW + 3599))
            .unwrap_err();
        assert_eq!(
            err,
            ReplayError::Replayed {
                key: "github:a".to_owned(),
                first_seen: t0,
            }
        );
        assert_eq!(
            err.to_string(),
            "delivery github:a was already accepted at 2023-01-09T00:00:00Z"
        );
        // The refused attempt did not extend the entry.
        guard
            .check_and_remember("github:a", at(NOW + 3600))
            .unwrap();
        // Re-recorded at NOW + 3600, so refused again until NOW + 7200.
        assert!(
            guard
                .check_and_remember("github:a", at(NOW + 7199))
                .is_err()
        );
        // Expired entries are evicted: sourcehut:a (NOW) went at NOW + 3600.
        assert_eq!(guard.len(), 1);
        guard
            .check_and_remember("github:b", at(NOW + 7200))
            .unwrap();
        assert_eq!(guard.len(), 1);
        assert!(!guard.is_empty());
    }

    #[test]
    fn guard_capacity_bound_evicts_oldest() {
        let guard = ReplayGuard::new(Duration::from_secs(3600), 3);
        for (i, key) in ["k0", "k1", "k2", "k3", "k4"].iter().enumerate() {
            guard.check_and_remember(key, at(NOW + i as i64)).unwrap();
            assert!(guard.len() <= 3);
        }
        assert_eq!(guard.len(), 3);
        // k0 and k1 were pushed out (the documented trade-off); k2..k4 are still refused.
        for key in ["k2", "k3", "k4"] {
            assert!(
                guard.check_and_remember(key, at(NOW + 10)).is_err(),
                "{key}"
            );
        }
        guard.check_and_remember("k0", at(NOW + 10)).unwrap();
        assert!(guard.check_and_remember("k4", at(NOW + 10)).is_err());
        assert!(guard.check_and_remember("k2", at(NOW + 10)).is_ok());
        assert_eq!(guard.len(), 3);
        // Capacity 0 behaves as 1.
        let tiny = ReplayGuard::new(Duration::from_secs(3600), 0);
        tiny.check_and_remember("a", at(NOW)).unwrap();
        assert!(tiny.check_and_remember("a", at(NOW)).is_err());
        tiny.check_and_remember("b", at(NOW)).unwrap();
        assert_eq!(tiny.len(), 1);
    }

    #[test]
    fn guard_survives_a_clock_going_backwards() {
        let guard = ReplayGuard::new(Duration::from_secs(60), 4);
        for round in 0..50i64 {
            let t = at(NOW
                + if round % 2 == 0 {
                    round * 100
                } else {
                    -round * 100
                });
            guard.check_and_remember(&format!("k{}", round % 7), t).ok();
            assert!(guard.len() <= 4);
            let seen = guard.inner.lock().unwrap();
            assert!(seen.order.len() <= 2 * 4 + 16);
            for (k, t) in &seen.at {
                assert!(seen.order.contains(&(*t, k.clone())), "invariant for {k}");
            }
        }
    }

    #[test]
    fn guard_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ReplayGuard>();
        let guard = std::sync::Arc::new(ReplayGuard::new(Duration::from_secs(3600), 1000));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let guard = guard.clone();
                std::thread::spawn(move || guard.check_and_remember("same", at(NOW)).is_ok())
            })
            .collect();
        let accepted = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(accepted, 1);
    }

    proptest! {
        #[test]
        fn check_epoch_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256), window in any::<u64>()) {
            let _ = check_epoch(&body, at(NOW), Duration::from_secs(window));
        }

        #[test]
        fn check_epoch_form_matches_arithmetic(offset in -1000i64..1000) {
            let body = format!("_karajo_epoch={}", NOW + offset);
            prop_assert_eq!(check_epoch(body.as_bytes(), at(NOW), WINDOW).is_ok(), offset.abs() <= 300);
        }

        #[test]
        fn guard_never_exceeds_capacity(keys in proptest::collection::vec((0u8..20, 0i64..10_000), 0..200)) {
            let guard = ReplayGuard::new(Duration::from_secs(600), 5);
            for (k, t) in keys {
                let _ = guard.check_and_remember(&k.to_string(), at(NOW + t));
                prop_assert!(guard.len() <= 5);
            }
        }
    }
}
