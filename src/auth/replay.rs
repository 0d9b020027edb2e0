//! Replay protection, applied after a request's signature verified: every signature is
//! good for one request only.
//!
//! A request signed with a karajo secret (the global one or a job's, over a body or a
//! query string, on an API route or a web hook) must carry `_karajo_epoch` no further than
//! `epoch_window` in the past and `epoch_skew` in the future ([`StampRules`]); its
//! signature is then *spent* in the [`ReplayGuard`], which refuses it on any route until
//! its epoch has left the window, after which the clock check refuses it. GitHub and
//! SourceHut deliveries carry no `_karajo_epoch`: GitHub's must name its delivery
//! (`X-GitHub-Delivery`) and SourceHut's its nonce; their signature (and, for GitHub, the
//! delivery id and the body's digest) is spent for [`DEFAULT_DELIVERY_TTL`]. Signatures
//! that karajo itself sends (HTTP jobs) are spent at send time, so the server they go to
//! cannot replay them to karajo.
//!
//! Owns no clock (callers pass `now`), no IO and no HTTP; its lock is a
//! `std::sync::Mutex` held only inside each call.
//!
//! **Ordering.** The caller verifies the signature *first* and spends it only when it
//! verified: recording unsigned requests would let anyone fill the guard.
//!
//! **Bounded memory.** At most `capacity` signatures are remembered (about 130 bytes
//! each). When it is full the signature that expires first is forgotten, and every stamped
//! request whose signature would expire no later than a forgotten one is refused from
//! then on ([`ReplayError::Superseded`]): forgetting never lets a signature through twice.
//! Forgotten GitHub and SourceHut deliveries cannot be guarded that way (they carry no
//! time); only a sender holding the secret can fill the guard, so pick `capacity` above
//! the deliveries of an hour.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::percent::decode_form;

/// The body field (JSON key or form key) holding the sender's Unix time in seconds.
pub const EPOCH_FIELD: &str = "_karajo_epoch";
/// The field karajo's own client adds with random text, so that two identical requests
/// in the same second have different signatures. The server reads nothing from it.
pub const NONCE_FIELD: &str = "_karajo_nonce";
/// The default `epoch_window`.
pub const DEFAULT_EPOCH_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The default `epoch_skew`: how far ahead of the server's clock a sender's may be.
pub const DEFAULT_EPOCH_SKEW: Duration = Duration::from_secs(5);
/// How long a GitHub or SourceHut delivery is remembered.
pub const DEFAULT_DELIVERY_TTL: Duration = Duration::from_secs(60 * 60);
/// The default bound on remembered signatures (about 8.5 MB when full).
pub const DEFAULT_REPLAY_CAPACITY: usize = 65_536;

pub use super::signature::HEADER_GITHUB_DELIVERY;

/// Longest piece of a request echoed into an error message.
const ECHO_LIMIT: usize = 64;

/// How stamped requests are judged: the `[karajo]` settings `epoch_window`,
/// `epoch_skew` and `accept_unstamped_signatures`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampRules {
    /// How far in the past `_karajo_epoch` may be.
    pub window: Duration,
    /// How far in the future `_karajo_epoch` may be (clock skew).
    pub skew: Duration,
    /// Accept signed payloads without `_karajo_epoch`, reusable as in the Go original.
    pub accept_unstamped: bool,
}

impl Default for StampRules {
    fn default() -> Self {
        Self {
            window: DEFAULT_EPOCH_WINDOW,
            skew: DEFAULT_EPOCH_SKEW,
            accept_unstamped: false,
        }
    }
}

/// A signature, as the replay guard knows it: the SHA-256 of its raw bytes (the decoded
/// MAC or Ed25519 signature), so that one signature written in two ways (bare hex,
/// `sha256=` hex) is one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignatureId([u8; 32]);

impl SignatureId {
    /// The id of a signature's raw bytes.
    pub fn of(raw: &[u8]) -> Self {
        Self(Sha256::digest(raw).into())
    }

    /// The id of a hex signature (as `X-Karajo-Sign` carries); `None` when not hex.
    pub fn of_hex(hex_text: &str) -> Option<Self> {
        hex::decode(hex_text).ok().map(|raw| Self::of(&raw))
    }

    /// A key for something that is not a signature (a delivery id, a body digest),
    /// kept apart from signatures by `tag`.
    fn tagged(tag: &[u8], value: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(tag);
        hash.update([0]);
        hash.update(value);
        Self(hash.finalize().into())
    }
}

/// Why a signed request was refused as a possible replay. The HTTP layer answers 409 for
/// [`ReplayError::Replayed`] and [`ReplayError::Superseded`], and 401 or 403 (as for a bad
/// signature) for the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// `_karajo_epoch` is further from the server's clock than the rules allow.
    #[error(
        "_karajo_epoch {epoch} is {skew:?} {} server time, outside the allowed {limit:?}: sign a fresh request",
        direction(.ahead)
    )]
    EpochOutOfWindow {
        /// The epoch as written in the request.
        epoch: String,
        /// How far it is from the server's clock.
        skew: Duration,
        /// `true` when the epoch lies in the future (the sender's clock is ahead).
        ahead: bool,
        /// The limit that was exceeded (`epoch_window` behind, `epoch_skew` ahead).
        limit: Duration,
    },
    /// `_karajo_epoch` is present but not a number of seconds.
    #[error("_karajo_epoch {value:?} is not a Unix time in seconds")]
    InvalidEpoch {
        /// The value as written (cut to 64 characters).
        value: String,
    },
    /// The signed payload carries no `_karajo_epoch`.
    #[error(
        "the signed request has no _karajo_epoch: sign one with the current Unix time (and a random _karajo_nonce), \
         or set [karajo] accept_unstamped_signatures = true to accept unstamped signatures, which can be replayed"
    )]
    Unstamped,
    /// The signed payload is empty: its signature would be a permanent token.
    #[error("the signed payload is empty: sign a request that carries _karajo_epoch")]
    EmptyPayload,
    /// A GitHub delivery without `X-GitHub-Delivery`.
    #[error("a GitHub delivery must carry the {HEADER_GITHUB_DELIVERY} header")]
    MissingDeliveryId,
    /// This signature (or delivery) was accepted before.
    #[error("this signature was already used at {first_seen}: sign a fresh request")]
    Replayed {
        /// When it was first accepted.
        first_seen: Timestamp,
    },
    /// The request is older than signatures the full guard had to forget.
    #[error("too many signed requests since this one was signed: sign a fresh request")]
    Superseded,
}

impl ReplayError {
    /// Whether the request was refused because its signature was used before (409),
    /// rather than for its stamp (401 or 403).
    pub fn is_reuse(&self) -> bool {
        matches!(self, Self::Replayed { .. } | Self::Superseded)
    }
}

fn direction(ahead: &bool) -> &'static str {
    if *ahead { "ahead of" } else { "behind" }
}

/// The stamp of a signed payload: `Ok(Some(ns))` with the earliest `_karajo_epoch` in
/// nanoseconds when every occurrence is within the rules, `Ok(None)` when there is none.
///
/// Where the epoch is looked for:
/// * a JSON object's top-level `_karajo_epoch`: an integer, a float (fractional seconds) or a
///   string holding a decimal integer (some clients stringify numbers);
/// * otherwise a form / query string (`_karajo_epoch=1673222400&id=x`): the
///   percent-decoded value must be a decimal integer, or the Go original's HTTP job artefact
///   `%!s(int64=N)` (spec 7.1), which does hold the real time N. Every occurrence is checked.
///
/// A present field that is not a number (JSON `null`, `true`, a non-numeric string, an empty
/// form value) is refused.
pub fn stamp(
    payload: &[u8],
    now: Timestamp,
    rules: &StampRules,
) -> Result<Option<i128>, ReplayError> {
    let mut earliest: Option<i128> = None;
    for (text, epoch_ns) in find_epochs(payload)? {
        let offset = epoch_ns.saturating_sub(now.as_nanosecond());
        let (ahead, limit) = if offset > 0 {
            (true, rules.skew)
        } else {
            (false, rules.window)
        };
        let limit_ns = i128::try_from(limit.as_nanos()).unwrap_or(i128::MAX);
        if offset.unsigned_abs() > limit_ns.unsigned_abs() {
            return Err(ReplayError::EpochOutOfWindow {
                epoch: text,
                skew: duration_from_nanos(offset.unsigned_abs()),
                ahead,
                limit,
            });
        }
        earliest = Some(earliest.map_or(epoch_ns, |e| e.min(epoch_ns)));
    }
    Ok(earliest)
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
                let key = decode_form(kv.next().unwrap_or_default());
                (key == EPOCH_FIELD.as_bytes()).then(|| decode_form(kv.next().unwrap_or_default()))
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

/// Remembers the signatures already accepted and refuses them a second time.
///
/// Memory is bounded by `capacity` (see the module docs for what happens when it is
/// full). `Send + Sync`; every method takes the lock once and never across an `.await`.
#[derive(Debug)]
pub struct ReplayGuard {
    capacity: usize,
    delivery_ttl: Duration,
    inner: Mutex<Spent>,
}

/// The spent signatures. Invariant: `by_expiry` holds exactly one `(expires, id)` for
/// every entry of `at`, so both have the same length.
#[derive(Debug, Default)]
struct Spent {
    at: HashMap<SignatureId, Entry>,
    by_expiry: BinaryHeap<Reverse<(i128, SignatureId)>>,
    /// Stamped signatures expiring at or before this (ns) are refused: a signature that
    /// expired no later was forgotten to make room.
    floor: i128,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    first_seen: Timestamp,
    /// Whether it carried `_karajo_epoch` (only those raise the floor when forgotten).
    stamped: bool,
}

impl ReplayGuard {
    /// A guard remembering at most `capacity` signatures (at least 1), and GitHub and
    /// SourceHut deliveries for `delivery_ttl`.
    pub fn new(capacity: usize, delivery_ttl: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            delivery_ttl,
            inner: Mutex::new(Spent::default()),
        }
    }

    /// The one check of a request signed with a karajo secret, after its signature `id`
    /// verified over `payload`: the payload must not be empty and must carry a
    /// `_karajo_epoch` within `rules` (unless `rules.accept_unstamped` and it carries none,
    /// in which case it is accepted and not remembered, as the original), and the
    /// signature must not have been spent; it is spent now.
    pub fn accept_signed(
        &self,
        id: SignatureId,
        payload: &[u8],
        rules: &StampRules,
        now: Timestamp,
    ) -> Result<(), ReplayError> {
        if payload.is_empty() {
            return Err(ReplayError::EmptyPayload);
        }
        match stamp(payload, now, rules)? {
            None if rules.accept_unstamped => Ok(()),
            None => Err(ReplayError::Unstamped),
            Some(epoch) => {
                let expires = epoch.saturating_add(nanos(rules.window));
                self.spend(&[id], expires, true, now)
            }
        }
    }

    /// A GitHub or SourceHut delivery whose signature `id` verified: its `extra` keys
    /// (GitHub: the delivery id and the body digest, from [`github_delivery_keys`]) and
    /// the signature must all be new; they are remembered for the delivery TTL.
    pub fn accept_delivery(
        &self,
        id: SignatureId,
        extra: &[SignatureId],
        now: Timestamp,
    ) -> Result<(), ReplayError> {
        let mut keys = Vec::with_capacity(1 + extra.len());
        keys.push(id);
        keys.extend_from_slice(extra);
        let expires = now.as_nanosecond().saturating_add(nanos(self.delivery_ttl));
        self.spend(&keys, expires, false, now)
    }

    /// Records a signature karajo itself sent over a payload stamped `epoch_ns`, so the
    /// receiver cannot replay it to karajo. A signature already spent stays spent.
    pub fn spend_sent(&self, id: SignatureId, epoch_ns: i128, rules: &StampRules, now: Timestamp) {
        let expires = epoch_ns.saturating_add(nanos(rules.window));
        // Refused only when already spent, or older than the floor: refused anyway then.
        let _ = self.spend(&[id], expires, true, now);
    }

    /// How many signatures and delivery keys are remembered.
    pub fn len(&self) -> usize {
        self.lock().at.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spent> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses when any of `keys` is remembered (or, for a stamped request, when
    /// `expires` is at or below the floor); otherwise remembers all of them until
    /// `expires`.
    fn spend(
        &self,
        keys: &[SignatureId],
        expires: i128,
        stamped: bool,
        now: Timestamp,
    ) -> Result<(), ReplayError> {
        let mut spent = self.lock();
        spent.forget_expired(now.as_nanosecond());
        if let Some(entry) = keys.iter().find_map(|k| spent.at.get(k)) {
            return Err(ReplayError::Replayed {
                first_seen: entry.first_seen,
            });
        }
        if stamped && expires <= spent.floor {
            return Err(ReplayError::Superseded);
        }
        for key in keys {
            while spent.at.len() >= self.capacity {
                spent.forget_first();
            }
            let entry = Entry {
                first_seen: now,
                stamped,
            };
            spent.at.insert(*key, entry);
            spent.by_expiry.push(Reverse((expires, *key)));
        }
        Ok(())
    }
}

impl Spent {
    /// Drops the entries whose time has passed.
    fn forget_expired(&mut self, now_ns: i128) {
        while let Some(Reverse((expires, _))) = self.by_expiry.peek() {
            if *expires >= now_ns {
                break;
            }
            self.forget_first();
        }
    }

    /// Drops the entry that expires first, raising the floor when it was stamped.
    fn forget_first(&mut self) {
        let Some(Reverse((expires, key))) = self.by_expiry.pop() else {
            // Unreachable by the invariant; never let the bound break.
            self.at.clear();
            return;
        };
        if self.at.remove(&key).is_some_and(|entry| entry.stamped) {
            self.floor = self.floor.max(expires);
        }
    }
}

/// The keys that stand for a GitHub delivery besides its signature: the delivery id
/// (GitHub's redeliveries keep it) and the digest of the body (so that a body captured
/// with both of GitHub's signature headers cannot come back under the other one).
pub fn github_delivery_keys(delivery_id: &[u8], body: &[u8]) -> [SignatureId; 2] {
    [
        SignatureId::tagged(b"github-delivery", delivery_id),
        SignatureId::tagged(b"github-body", &Sha256::digest(body)),
    ]
}

fn nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WINDOW: Duration = Duration::from_secs(300);
    const RULES: StampRules = StampRules {
        window: WINDOW,
        skew: Duration::from_secs(5),
        accept_unstamped: false,
    };

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    /// The Go tests' frozen clock, 2023-01-09T00:00:00Z.
    const NOW: i64 = 1_673_222_400;

    fn ok(body: &[u8], now: Timestamp) -> bool {
        stamp(body, now, &RULES).is_ok()
    }

    fn id(n: u8) -> SignatureId {
        SignatureId::of(&[n])
    }

    #[test]
    fn window_behind_and_skew_ahead() {
        let now = at(NOW);
        for (epoch, good) in [
            (NOW, true),
            (NOW - 300, true),
            (NOW + 5, true),
            (NOW - 301, false),
            (NOW + 6, false),
            (NOW + 300, false),
        ] {
            let json = format!(r#"{{"id":"","_karajo_epoch":{epoch}}}"#);
            assert_eq!(ok(json.as_bytes(), now), good, "{json}");
            let form = format!("_karajo_epoch={epoch}&id=test_job_success");
            assert_eq!(ok(form.as_bytes(), now), good, "{form}");
            let query = format!("id=test_success&_karajo_epoch={epoch}");
            assert_eq!(ok(query.as_bytes(), now), good, "{query}");
        }
        let err = stamp(br#"{"_karajo_epoch":1673222099}"#, now, &RULES).unwrap_err();
        assert_eq!(
            err,
            ReplayError::EpochOutOfWindow {
                epoch: "1673222099".to_owned(),
                skew: Duration::from_secs(301),
                ahead: false,
                limit: WINDOW,
            }
        );
        assert_eq!(
            err.to_string(),
            "_karajo_epoch 1673222099 is 301s behind server time, outside the allowed 300s: sign a fresh request"
        );
        let err = stamp(br#"{"_karajo_epoch":1673222406}"#, now, &RULES).unwrap_err();
        assert!(err.to_string().contains("6s ahead of server time"), "{err}");
        assert_eq!(
            stamp(b"_karajo_epoch=1673222400&id=x", now, &RULES),
            Ok(Some(i128::from(NOW) * 1_000_000_000))
        );
    }

    #[test]
    fn epoch_forms() {
        let now = at(NOW);
        // The Go HTTP job's `%!s(int64=N)` (spec 5.2 row 3) is read as N.
        let go = b"_karajo_epoch=%25%21s%28int64%3D1795374689%29";
        assert!(ok(go, at(1_795_374_689)));
        assert!(!ok(go, now));
        // Every occurrence counts, and the earliest is the stamp.
        let twice = format!("_karajo_epoch={NOW}&_karajo_epoch={}", NOW - 1000);
        assert!(!ok(twice.as_bytes(), now));
        let both = format!("_karajo_epoch={NOW}&_karajo_epoch={}", NOW - 10);
        assert_eq!(
            stamp(both.as_bytes(), now, &RULES),
            Ok(Some(i128::from(NOW - 10) * 1_000_000_000))
        );
        // A percent-encoded key is still the key.
        let encoded = format!("%5Fkarajo%5Fepoch={}", NOW - 1000);
        assert!(!ok(encoded.as_bytes(), now));
        // Floats: fractional seconds are compared exactly.
        assert!(ok(br#"{"_karajo_epoch":1673222100.0}"#, now));
        assert!(!ok(br#"{"_karajo_epoch":1673222099.5}"#, now));
        assert!(ok(br#"{"_karajo_epoch":"1673222400"}"#, now));
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
                    stamp(body, now, &RULES),
                    Err(ReplayError::InvalidEpoch { .. })
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [
            &br#"{"_karajo_epoch":18446744073709551615}"#[..],
            br#"{"_karajo_epoch":-9223372036854775808}"#,
            br#"{"_karajo_epoch":1e300}"#,
            br#"{"_karajo_epoch":-1e300}"#,
        ] {
            assert!(matches!(
                stamp(body, now, &RULES),
                Err(ReplayError::EpochOutOfWindow { .. })
            ));
        }
        let long = format!(r#"{{"_karajo_epoch":"{}"}}"#, "x".repeat(1000));
        match stamp(long.as_bytes(), now, &RULES) {
            Err(ReplayError::InvalidEpoch { value }) => assert_eq!(value.len(), 64),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn payloads_without_an_epoch_have_no_stamp() {
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
            br#"{"_karajo_epoch":1"#,
        ] {
            assert_eq!(stamp(body, now, &RULES), Ok(None));
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(decode_form(b"a+b%20c%2x%"), b"a b c%2x%");
        assert_eq!(decode_form(b"%25%21s%28int64%3D1%29"), b"%!s(int64=1)");
        assert_eq!(decode_form(b"%e2%82%AC"), "€".as_bytes());
    }

    #[test]
    fn a_stamped_signature_is_accepted_once_until_it_leaves_the_window() {
        let guard = ReplayGuard::new(100, DEFAULT_DELIVERY_TTL);
        let body = format!("_karajo_epoch={NOW}&id=hello");
        guard
            .accept_signed(id(1), body.as_bytes(), &RULES, at(NOW))
            .unwrap();
        let err = guard
            .accept_signed(id(1), body.as_bytes(), &RULES, at(NOW + 299))
            .unwrap_err();
        assert_eq!(
            err,
            ReplayError::Replayed {
                first_seen: at(NOW)
            }
        );
        assert!(err.is_reuse());
        assert!(err.to_string().contains("sign a fresh request"), "{err}");
        // Still remembered at the last second of the window, then the clock refuses it.
        assert!(
            guard
                .accept_signed(id(1), body.as_bytes(), &RULES, at(NOW + 300))
                .is_err()
        );
        assert!(matches!(
            guard.accept_signed(id(1), body.as_bytes(), &RULES, at(NOW + 301)),
            Err(ReplayError::EpochOutOfWindow { .. })
        ));
        // Another signature over other bytes is another request; the first is forgotten
        // once out of the window.
        let later = format!("_karajo_epoch={}&id=hello", NOW + 301);
        guard
            .accept_signed(id(2), later.as_bytes(), &RULES, at(NOW + 301))
            .unwrap();
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn empty_and_unstamped_payloads() {
        let guard = ReplayGuard::new(100, DEFAULT_DELIVERY_TTL);
        assert_eq!(
            guard.accept_signed(id(1), b"", &RULES, at(NOW)),
            Err(ReplayError::EmptyPayload)
        );
        let err = guard
            .accept_signed(id(1), b"id=hello", &RULES, at(NOW))
            .unwrap_err();
        assert_eq!(err, ReplayError::Unstamped);
        assert!(!err.is_reuse());
        assert!(
            err.to_string().contains("accept_unstamped_signatures"),
            "{err}"
        );
        // Allowed: accepted as the original does, again and again; never the empty one.
        let legacy = StampRules {
            accept_unstamped: true,
            ..RULES
        };
        for _ in 0..3 {
            guard
                .accept_signed(id(1), b"id=hello", &legacy, at(NOW))
                .unwrap();
        }
        assert_eq!(
            guard.accept_signed(id(1), b"", &legacy, at(NOW)),
            Err(ReplayError::EmptyPayload)
        );
        // A stamped payload is still spent under the legacy rules.
        let body = format!("id=hello&_karajo_epoch={NOW}");
        guard
            .accept_signed(id(3), body.as_bytes(), &legacy, at(NOW))
            .unwrap();
        assert!(
            guard
                .accept_signed(id(3), body.as_bytes(), &legacy, at(NOW))
                .is_err()
        );
    }

    #[test]
    fn deliveries_and_sent_signatures_share_the_guard() {
        let guard = ReplayGuard::new(100, Duration::from_secs(3600));
        let keys = github_delivery_keys(b"72d3162e", b"{\"zen\":1}");
        guard.accept_delivery(id(1), &keys, at(NOW)).unwrap();
        // The same delivery id, the same body under another signature header, or the
        // same signature: all refused within the TTL.
        assert!(
            guard
                .accept_delivery(
                    id(9),
                    &github_delivery_keys(b"72d3162e", b"x"),
                    at(NOW + 10)
                )
                .is_err()
        );
        assert!(
            guard
                .accept_delivery(
                    id(9),
                    &github_delivery_keys(b"other", b"{\"zen\":1}"),
                    at(NOW + 10)
                )
                .is_err()
        );
        assert!(
            guard
                .accept_delivery(id(1), &github_delivery_keys(b"other", b"x"), at(NOW + 10))
                .is_err()
        );
        // A signature spent by a delivery cannot be used as a stamped request either.
        let body = format!("_karajo_epoch={NOW}");
        assert!(
            guard
                .accept_signed(id(1), body.as_bytes(), &RULES, at(NOW))
                .unwrap_err()
                .is_reuse()
        );
        // After the TTL the delivery may come again.
        guard.accept_delivery(id(1), &keys, at(NOW + 3601)).unwrap();
        // What karajo sent is spent.
        guard.spend_sent(id(7), i128::from(NOW) * 1_000_000_000, &RULES, at(NOW));
        assert!(
            guard
                .accept_signed(id(7), body.as_bytes(), &RULES, at(NOW))
                .unwrap_err()
                .is_reuse()
        );
        assert!(guard.accept_delivery(id(7), &[], at(NOW)).is_err());
    }

    #[test]
    fn a_full_guard_never_lets_a_forgotten_signature_through() {
        let guard = ReplayGuard::new(3, DEFAULT_DELIVERY_TTL);
        let body = |t: i64| format!("_karajo_epoch={t}");
        for i in 0..5u8 {
            let t = NOW + i64::from(i);
            guard
                .accept_signed(id(i), body(t).as_bytes(), &RULES, at(t))
                .unwrap();
            assert!(guard.len() <= 3);
        }
        // 0 and 1 were forgotten, and are refused all the same.
        for i in 0..5u8 {
            let t = NOW + i64::from(i);
            let err = guard
                .accept_signed(id(i), body(t).as_bytes(), &RULES, at(NOW + 5))
                .unwrap_err();
            assert!(err.is_reuse(), "{i}: {err}");
        }
        // A fresh signature still gets in; one as old as a forgotten one does not.
        guard
            .accept_signed(id(50), body(NOW + 5).as_bytes(), &RULES, at(NOW + 5))
            .unwrap();
        assert_eq!(
            guard.accept_signed(id(51), body(NOW + 1).as_bytes(), &RULES, at(NOW + 5)),
            Err(ReplayError::Superseded)
        );
        // Capacity 0 behaves as 1.
        let tiny = ReplayGuard::new(0, DEFAULT_DELIVERY_TTL);
        tiny.accept_delivery(id(1), &[], at(NOW)).unwrap();
        tiny.accept_delivery(id(2), &[], at(NOW)).unwrap();
        assert_eq!(tiny.len(), 1);
    }

    #[test]
    fn one_signature_written_two_ways_is_one_key() {
        let raw = [0xab_u8; 32];
        assert_eq!(
            SignatureId::of_hex(&hex::encode(raw)),
            Some(SignatureId::of(&raw))
        );
        assert_eq!(SignatureId::of_hex("xyz"), None);
    }

    #[test]
    fn concurrent_uses_accept_exactly_one() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ReplayGuard>();
        let guard = std::sync::Arc::new(ReplayGuard::new(1000, DEFAULT_DELIVERY_TTL));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let guard = guard.clone();
                std::thread::spawn(move || {
                    let body = format!("_karajo_epoch={NOW}");
                    guard
                        .accept_signed(id(1), body.as_bytes(), &RULES, at(NOW))
                        .is_ok()
                })
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
        fn stamp_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256), window in any::<u64>()) {
            let rules = StampRules { window: Duration::from_secs(window), ..RULES };
            let _ = stamp(&body, at(NOW), &rules);
        }

        #[test]
        fn stamp_matches_arithmetic(offset in -1000i64..1000) {
            let body = format!("_karajo_epoch={}", NOW + offset);
            prop_assert_eq!(ok(body.as_bytes(), at(NOW)), (-300..=5).contains(&offset));
        }

        #[test]
        fn the_guard_stays_bounded_and_in_step(uses in proptest::collection::vec((0u8..20, 0i64..1000), 0..200)) {
            let guard = ReplayGuard::new(5, DEFAULT_DELIVERY_TTL);
            let mut accepted = std::collections::HashSet::new();
            for (k, t) in uses {
                let body = format!("_karajo_epoch={}", NOW + t);
                if guard.accept_signed(id(k), body.as_bytes(), &RULES, at(NOW + t)).is_ok() {
                    // Never twice while the epoch is within the window.
                    prop_assert!(accepted.insert((k, t)), "accepted twice: {k} at {t}");
                }
                let spent = guard.lock();
                prop_assert!(spent.at.len() <= 5);
                prop_assert_eq!(spent.at.len(), spent.by_expiry.len());
            }
        }
    }
}
