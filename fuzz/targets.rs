//! The bodies of the fuzz targets, shared by the cargo-fuzz targets in
//! `fuzz/fuzz_targets/` and the libFuzzer-free loop of the reliability suite
//! (`bench/reliability.rs`). Each takes arbitrary bytes, must never panic, and checks
//! a property where one is cheap: a parsed schedule's next instants move forward, a
//! body signed with a secret verifies and a changed one does not.

#![allow(dead_code)]

use http::{HeaderMap, HeaderName, HeaderValue};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use karajo::auth::{SOURCEHUT_PUBLIC_KEY, WebhookAuth, sign_hmac_sha256, verify_webhook};
use karajo::job::AuthKind;
use karajo::schedule::Schedule;

/// `karajo::config::ini::parse` on any text (the bytes read lossily as UTF-8, as a
/// file with a stray byte would be after a lossy read).
pub(crate) fn ini(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let first = karajo::config::ini::parse(&text);
    // Parsing is a pure function.
    let again = karajo::config::ini::parse(&text);
    assert_eq!(first.is_ok(), again.is_ok(), "parse is not deterministic");
}

/// Time zones the schedule target picks from: UTC and zones with DST jumps of an hour
/// and of half an hour.
const ZONES: [&str; 4] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
];

/// `karajo::schedule::Schedule::parse`; when it accepts, the next instants after a few
/// fixed times (around DST changes) must be strictly increasing.
pub(crate) fn schedule(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let tz = TimeZone::get(ZONES[usize::from(selector) % ZONES.len()]).unwrap_or(TimeZone::UTC);
    let text = String::from_utf8_lossy(rest);
    let Ok(schedule) = Schedule::parse(&text, tz) else {
        return;
    };
    let _ = schedule.describe();
    for start in [
        0i64,
        1_711_846_800, // 2024-03-31 01:00 UTC, Europe's spring-forward
        1_730_595_600, // 2024-11-03 01:00 UTC, near New York's fall-back
        1_800_000_000,
    ] {
        let Ok(now) = Timestamp::from_second(start) else {
            continue;
        };
        let mut previous = now;
        for next in schedule.upcoming(now, 3) {
            assert!(
                next > previous,
                "{text:?}: {next} does not follow {previous}"
            );
            previous = next;
        }
    }
}

/// `karajo::auth::verify_webhook` with headers and a body cut from the input, for every
/// auth kind; then a property: the body signed with the secret verifies for
/// `hmac-sha256`, and the same signature over a changed body does not.
pub(crate) fn webhook(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let kind = match data[0] % 3 {
        0 => AuthKind::HmacSha256,
        1 => AuthKind::Github,
        _ => AuthKind::Sourcehut,
    };
    let rest = &data[1..];
    // Layout: secret, then header lines "name: value", then the body, split at 0xFF.
    let mut parts = rest.split(|b| *b == 0xff);
    let secret = parts.next().unwrap_or_default().to_vec();
    let header_text = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for line in header_text.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_bytes(value.trim_ascii()),
        ) {
            headers.append(name, value);
        }
    }
    let auth = WebhookAuth {
        kind,
        header_sign: "X-Karajo-Sign".to_string(),
        secret: secret.clone(),
        sourcehut_public_key: SOURCEHUT_PUBLIC_KEY,
    };
    let _ = verify_webhook(&auth, &headers, body);

    let auth = WebhookAuth {
        kind: AuthKind::HmacSha256,
        ..auth
    };
    let signature = sign_hmac_sha256(&secret, body);
    let mut signed = HeaderMap::new();
    signed.insert(
        "x-karajo-sign",
        HeaderValue::from_str(&signature).expect("hex is a valid header value"),
    );
    assert!(
        verify_webhook(&auth, &signed, body).is_ok(),
        "a correctly signed body was refused"
    );
    let mut changed = body.to_vec();
    match changed.first_mut() {
        Some(b) => *b ^= 1,
        None => changed.push(0),
    }
    assert!(
        verify_webhook(&auth, &signed, &changed).is_err(),
        "a changed body was accepted"
    );
}
