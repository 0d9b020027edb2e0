//! Request signatures: computing the HMACs karajo clients send, and checking the three web
//! hook schemes (`hmac-sha256`, `github`, `sourcehut`) and the global-secret `X-Karajo-Sign`
//! of the API endpoints (spec 4.4, 5.1).
//!
//! Owns the byte-level rules only: which header, which prefix, which encoding, which key.
//! It does not read requests, pick status codes or know about jobs beyond [`AuthKind`]; the
//! HTTP layer answers 403 `forbidden` (or 401 for the global endpoints) for every
//! [`AuthError`], whose variants exist so logs can say what was expected.
//!
//! Deliberate differences from the Go original (listed in the README): every MAC comparison is
//! constant-time ([`Mac::verify_slice`]); GitHub's `X-Hub-Signature: sha1=<hex>` is accepted
//! as GitHub sends it; a SourceHut signature that is not base64 or not 64 bytes is refused
//! (403) instead of answering 500; the SourceHut key is a setting with sr.ht's key as default.

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::replay::SignatureId;
use crate::job::AuthKind;

/// The header of every request signed with a karajo secret: the global-secret API
/// endpoints (fixed name), the client's calls, signed notification web hooks, and the
/// default `header_sign` of jobs.
pub const HEADER_KARAJO_SIGN: &str = "X-Karajo-Sign";
/// GitHub's HMAC-SHA256 header (`sha256=<hex>`).
pub const HEADER_GITHUB_SHA256: &str = "X-Hub-Signature-256";
/// GitHub's legacy HMAC-SHA1 header (`sha1=<hex>`), used when the SHA-256 one is absent.
pub const HEADER_GITHUB_SHA1: &str = "X-Hub-Signature";
/// SourceHut's Ed25519 signature header (standard base64).
pub const HEADER_SOURCEHUT_SIGNATURE: &str = "X-Payload-Signature";
/// SourceHut's per-delivery nonce, appended to the body before signing.
pub const HEADER_SOURCEHUT_NONCE: &str = "X-Payload-Nonce";
/// GitHub's per-delivery id (a GUID), kept by its redeliveries.
pub const HEADER_GITHUB_DELIVERY: &str = "X-GitHub-Delivery";

/// sr.ht's official web hook signing key, as published by sr.ht and hard-coded in the
/// original (standard base64).
pub const SOURCEHUT_PUBLIC_KEY_BASE64: &str = "uX7KWyyDNMaBma4aVbJ/cbUQpdjqczuCyK/HxzV/u+4=";

/// [`SOURCEHUT_PUBLIC_KEY_BASE64`] decoded: the default of the `sourcehut_public_key` setting.
pub const SOURCEHUT_PUBLIC_KEY: [u8; 32] = [
    0xb9, 0x7e, 0xca, 0x5b, 0x2c, 0x83, 0x34, 0xc6, 0x81, 0x99, 0xae, 0x1a, 0x55, 0xb2, 0x7f, 0x71,
    0xb5, 0x10, 0xa5, 0xd8, 0xea, 0x73, 0x3b, 0x82, 0xc8, 0xaf, 0xc7, 0xc7, 0x35, 0x7f, 0xbb, 0xee,
];

/// Why a request's signature was not accepted. The HTTP layer answers every variant the same
/// way (403 `forbidden` for web hooks, 401 for the global endpoints); the detail is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The expected signature header is absent or empty.
    #[error("{scheme}: missing signature header {header}")]
    MissingSignature {
        /// `hmac-sha256`, `github`, `sourcehut` or `global`.
        scheme: &'static str,
        /// The header (or headers) that would have been accepted.
        header: String,
    },
    /// A signature was given but does not verify.
    #[error("{scheme}: forbidden: {header}: {reason}")]
    Forbidden {
        /// `hmac-sha256`, `github`, `sourcehut` or `global`.
        scheme: &'static str,
        /// The header whose value was checked.
        header: String,
        /// What was wrong with it (never echoes the value or the expected MAC).
        reason: &'static str,
    },
    /// The configured Ed25519 public key cannot be used (a configuration error; requests
    /// signed for it are refused).
    #[error("invalid Ed25519 public key: {reason}")]
    InvalidPublicKey {
        /// What was wrong with the key.
        reason: &'static str,
    },
}

/// How one job's web hook is authenticated: its `auth_kind` and the material each kind needs.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookAuth {
    /// The job's `auth_kind`.
    pub kind: AuthKind,
    /// The header holding the HMAC for [`AuthKind::HmacSha256`] (default `X-Karajo-Sign`);
    /// looked up case-insensitively. Unused by the other kinds.
    pub header_sign: String,
    /// The job secret (defaults to the global secret); unused by [`AuthKind::Sourcehut`].
    pub secret: Vec<u8>,
    /// The Ed25519 key SourceHut deliveries are checked against (default
    /// [`SOURCEHUT_PUBLIC_KEY`]); unused by the other kinds.
    pub sourcehut_public_key: [u8; 32],
}

impl std::fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookAuth")
            .field("kind", &self.kind)
            .field("header_sign", &self.header_sign)
            .field("secret", &"<redacted>")
            .field(
                "sourcehut_public_key",
                &base64::engine::general_purpose::STANDARD.encode(self.sourcehut_public_key),
            )
            .finish()
    }
}

/// Lower-case hex HMAC-SHA256 of `payload` keyed with `secret`: the value of `X-Karajo-Sign`
/// (and of a job's `header_sign`) that karajo clients and HTTP jobs send.
pub fn sign_hmac_sha256(secret: &[u8], payload: &[u8]) -> String {
    let mut mac = hmac_sha256(secret);
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Lower-case hex HMAC-SHA1 of `payload` keyed with `secret`, as in GitHub's legacy
/// `X-Hub-Signature` header (without the `sha1=` prefix). For tests and the command line.
pub fn sign_github_sha1(secret: &[u8], payload: &[u8]) -> String {
    let mut mac = hmac_sha1(secret);
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a job web hook request (`POST /karajo/api/job_exec/run/<path>`) against the job's
/// `auth_kind`; `body` must be the raw request body, byte for byte.
///
/// * `hmac-sha256`: `auth.header_sign` holds the lower-case hex HMAC-SHA256 of the body.
/// * `github`: `X-Hub-Signature-256: sha256=<hex>` (bare hex accepted); only when that header
///   is absent or empty, `X-Hub-Signature: sha1=<hex>` (bare hex accepted).
/// * `sourcehut`: `X-Payload-Signature` is the standard base64 Ed25519 signature of the body
///   followed by the `X-Payload-Nonce` value (empty when absent), under
///   `auth.sourcehut_public_key`.
///
/// Hex must be lower-case, as the original demands. Never panics. Returns the id of the
/// signature that verified, for the replay guard.
pub fn verify_webhook(
    auth: &WebhookAuth,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SignatureId, AuthError> {
    match auth.kind {
        AuthKind::HmacSha256 => {
            let scheme = AuthKind::HmacSha256.as_str();
            let given = header_bytes(headers, &auth.header_sign).ok_or_else(|| {
                AuthError::MissingSignature {
                    scheme,
                    header: auth.header_sign.clone(),
                }
            })?;
            check_hex_mac(hmac_sha256(&auth.secret), body, given)
                .map_err(|reason| forbidden(scheme, &auth.header_sign, reason))
        }
        AuthKind::Github => verify_github(&auth.secret, headers, body),
        AuthKind::Sourcehut => verify_sourcehut(&auth.sourcehut_public_key, headers, body),
    }
}

/// The cheap part of [`verify_webhook`], for before the body is read: the headers a
/// delivery of `auth.kind` must carry are present (the signature; GitHub's delivery id;
/// SourceHut's nonce). Refusing here costs no body read.
pub fn webhook_headers_present(auth: &WebhookAuth, headers: &HeaderMap) -> Result<(), AuthError> {
    let missing = |header: String| AuthError::MissingSignature {
        scheme: auth.kind.as_str(),
        header,
    };
    let has = |name: &str| header_bytes(headers, name).is_some();
    match auth.kind {
        AuthKind::HmacSha256 if !has(&auth.header_sign) => Err(missing(auth.header_sign.clone())),
        AuthKind::Github if !has(HEADER_GITHUB_SHA256) && !has(HEADER_GITHUB_SHA1) => Err(missing(
            format!("{HEADER_GITHUB_SHA256} or {HEADER_GITHUB_SHA1}"),
        )),
        AuthKind::Github if !has(HEADER_GITHUB_DELIVERY) => {
            Err(missing(HEADER_GITHUB_DELIVERY.to_owned()))
        }
        AuthKind::Sourcehut if !has(HEADER_SOURCEHUT_SIGNATURE) => {
            Err(missing(HEADER_SOURCEHUT_SIGNATURE.to_owned()))
        }
        AuthKind::Sourcehut if !has(HEADER_SOURCEHUT_NONCE) => {
            Err(missing(HEADER_SOURCEHUT_NONCE.to_owned()))
        }
        _ => Ok(()),
    }
}

/// GitHub's delivery id header, when present and not empty.
pub fn github_delivery_id(headers: &HeaderMap) -> Option<&[u8]> {
    header_bytes(headers, HEADER_GITHUB_DELIVERY)
}

/// Checks the `X-Karajo-Sign` of the API endpoints signed with the global secret (spec 4.4):
/// `provided` is the header value (if any) and `signed_bytes` the raw body for
/// `job_exec/{pause,resume,cancel}` or the raw query string, exactly as sent, for
/// `job_http/{pause,resume}`. Returns the id of the signature for the replay guard.
pub fn verify_global(
    secret: &[u8],
    provided: Option<&str>,
    signed_bytes: &[u8],
) -> Result<SignatureId, AuthError> {
    const SCHEME: &str = "global";
    let given = provided
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AuthError::MissingSignature {
            scheme: SCHEME,
            header: HEADER_KARAJO_SIGN.to_owned(),
        })?;
    check_hex_mac(hmac_sha256(secret), signed_bytes, given.as_bytes())
        .map_err(|reason| forbidden(SCHEME, HEADER_KARAJO_SIGN, reason))
}

/// Decodes a standard-base64 Ed25519 public key (the `sourcehut_public_key` setting) and
/// checks that it is a usable curve point.
pub fn parse_public_key(base64_key: &str) -> Result<[u8; 32], AuthError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_key.trim())
        .map_err(|_| AuthError::InvalidPublicKey {
            reason: "not standard base64",
        })?;
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| AuthError::InvalidPublicKey {
            reason: "not 32 bytes long",
        })?;
    VerifyingKey::from_bytes(&key).map_err(|_| AuthError::InvalidPublicKey {
        reason: "not a point on the curve",
    })?;
    Ok(key)
}

fn verify_github(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SignatureId, AuthError> {
    let scheme = AuthKind::Github.as_str();
    if let Some(given) = header_bytes(headers, HEADER_GITHUB_SHA256) {
        let hex = given.strip_prefix(b"sha256=").unwrap_or(given);
        return check_hex_mac(hmac_sha256(secret), body, hex)
            .map_err(|reason| forbidden(scheme, HEADER_GITHUB_SHA256, reason));
    }
    if let Some(given) = header_bytes(headers, HEADER_GITHUB_SHA1) {
        let hex = given.strip_prefix(b"sha1=").unwrap_or(given);
        return check_hex_mac(hmac_sha1(secret), body, hex)
            .map_err(|reason| forbidden(scheme, HEADER_GITHUB_SHA1, reason));
    }
    Err(AuthError::MissingSignature {
        scheme,
        header: format!("{HEADER_GITHUB_SHA256} or {HEADER_GITHUB_SHA1}"),
    })
}

fn verify_sourcehut(
    public_key: &[u8; 32],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SignatureId, AuthError> {
    let scheme = AuthKind::Sourcehut.as_str();
    let refuse = |reason| forbidden(scheme, HEADER_SOURCEHUT_SIGNATURE, reason);
    let given = header_bytes(headers, HEADER_SOURCEHUT_SIGNATURE).ok_or_else(|| {
        AuthError::MissingSignature {
            scheme,
            header: HEADER_SOURCEHUT_SIGNATURE.to_owned(),
        }
    })?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(given)
        .map_err(|_| refuse("not standard base64"))?;
    let signature =
        Signature::from_slice(&raw).map_err(|_| refuse("not a 64-byte Ed25519 signature"))?;
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| AuthError::InvalidPublicKey {
        reason: "not a point on the curve",
    })?;
    let nonce = headers
        .get(HEADER_SOURCEHUT_NONCE)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let mut message = Vec::with_capacity(body.len() + nonce.len());
    message.extend_from_slice(body);
    message.extend_from_slice(nonce);
    key.verify_strict(&message, &signature)
        .map_err(|_| refuse("signature does not match"))?;
    Ok(SignatureId::of(&raw))
}

/// Compares `given` (hex text) with the MAC of `payload`, in constant time. Only lower-case
/// hex is accepted, as in the original's string comparison. Returns the MAC's id.
fn check_hex_mac<M: Mac>(
    mut mac: M,
    payload: &[u8],
    given: &[u8],
) -> Result<SignatureId, &'static str> {
    if !given.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("not lower-case hex");
    }
    let given = hex::decode(given).map_err(|_| "odd number of hex digits")?;
    mac.update(payload);
    mac.verify_slice(&given)
        .map_err(|_| "signature does not match")?;
    Ok(SignatureId::of(&given))
}

/// The value of header `name` (case-insensitive), or `None` when it is absent, empty or
/// `name` is not a valid header name.
fn header_bytes<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get(name)
        .map(|v| v.as_bytes())
        .filter(|v| !v.is_empty())
}

fn forbidden(scheme: &'static str, header: &str, reason: &'static str) -> AuthError {
    AuthError::Forbidden {
        scheme,
        header: header.to_owned(),
        reason,
    }
}

/// HMAC block size of SHA-1 and SHA-256 (RFC 2104's `B`).
const HMAC_BLOCK: usize = 64;

/// The RFC 2104 block key for `secret`: hashed first when longer than a block, then padded
/// with zeros. HMAC does exactly this to any key, so feeding the block key to the infallible
/// [`KeyInit::new`] gives the same MAC as `new_from_slice(secret)` without a `Result` that can
/// never be an error.
fn block_key(secret: &[u8], hash: impl FnOnce(&[u8]) -> Vec<u8>) -> [u8; HMAC_BLOCK] {
    let mut key = [0u8; HMAC_BLOCK];
    if secret.len() > HMAC_BLOCK {
        let digest = hash(secret);
        key[..digest.len()].copy_from_slice(&digest);
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    key
}

fn hmac_sha256(secret: &[u8]) -> Hmac<Sha256> {
    let key = block_key(secret, |s| Sha256::digest(s).to_vec());
    <Hmac<Sha256> as KeyInit>::new(&key.into())
}

fn hmac_sha1(secret: &[u8]) -> Hmac<Sha1> {
    let key = block_key(secret, |s| Sha1::digest(s).to_vec());
    <Hmac<Sha1> as KeyInit>::new(&key.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};
    use http::HeaderValue;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"s3cret";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn auth_for(kind: AuthKind) -> WebhookAuth {
        WebhookAuth {
            kind,
            header_sign: "X-Karajo-Sign".to_owned(),
            secret: SECRET.to_vec(),
            sourcehut_public_key: SOURCEHUT_PUBLIC_KEY,
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    // Spec 5.2, rows 1-7 and 9-10 (HMAC-SHA256) and 8, 11 (HMAC-SHA1).
    #[test]
    fn spec_vectors_hmac_sha256() {
        let cases: &[(&[u8], &[u8], &str)] = &[
            (
                b"s3cret",
                br#"{"_karajo_epoch":1677350854}"#,
                "fef16cabebdcbdcc7fdbfb9bd5a01c00803af7568a05054e87b2239f84f38c54",
            ),
            (
                b"s3cret",
                br#"{"_karajo_epoch":1795374689}"#,
                "9895d2929f408d599da408c02925cc027f8e7f5eb52a5e3f165efd0e2b00ddec",
            ),
            (
                b"s3cret",
                b"_karajo_epoch=%25%21s%28int64%3D1795374689%29",
                "6728d0ed40e1076d9bb37bd3bfd700743acde843d76745707c1953e3a5e175f4",
            ),
            (
                b"s3cret",
                br#"{"id":"","_karajo_epoch":1673222400}"#,
                "4fa8aa00f3141e6f6297ef5eb760ee3411d10daba4dc29d513654ae6cf823d39",
            ),
            (
                b"s3cret",
                b"_karajo_epoch=1673222400&id=test_job_success",
                "2fcbdfa553c82d78b5240a5dec0cdd345fc95418161bd4c0f6aa4534e86fec8b",
            ),
            (
                b"s3cret",
                b"id=test_success",
                "92760216888d288b13641549b9f0a222f3507dba8af3f75da71d52125ae79e73",
            ),
            (
                b"s3cret",
                b"_karajo_sign=123",
                "13ae68823b494cdb61634f10d5ba145a6161aab3f354cb3e999bc2b738ad48dd",
            ),
            (
                b"s3cret",
                b"",
                "91dfac70c5348b04e1babb8b421ac92cec08b565b49ca16130dccb72503647b7",
            ),
            (
                b"ghsecret",
                br#"{"zen":"Keep it logically awesome."}"#,
                "dc04fe2cef5c35df0c4ebdbb90b9a5fb6a753ee7cbef60bd3062d9f7b9513473",
            ),
            // GitHub's documented example (rust-stack.md section 4).
            (
                b"It's a Secret to Everybody",
                b"Hello, World!",
                "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
            // RFC 4231 test case 6: a key longer than the block is hashed first.
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, msg, want) in cases {
            assert_eq!(sign_hmac_sha256(key, msg), *want, "key {key:?} msg {msg:?}");
            verify_global(key, Some(want), msg).unwrap();
        }
    }

    #[test]
    fn spec_vectors_hmac_sha1() {
        assert_eq!(
            sign_github_sha1(b"s3cret", b"_karajo_sign=123"),
            "b1361d24d8e782d0586fb9f7c1c03b7ea9d1b1a3"
        );
        assert_eq!(
            sign_github_sha1(b"ghsecret", br#"{"zen":"Keep it logically awesome."}"#),
            "7df50a25d8ac73bf35cfa4c81e8734201fe909f5"
        );
        // RFC 2202 test case 6 (key longer than the block).
        assert_eq!(
            sign_github_sha1(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn spec_vector_ed25519_rfc8032() {
        let secret: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let signing = SigningKey::from_bytes(&secret);
        let public = parse_public_key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").unwrap();
        assert_eq!(signing.verifying_key().to_bytes(), public);
        let want = "ZtjILBoDcli1y/mm8x2t7vaextkrn2uJAPfXrd9y6hUhGaUUj9FC72P2EhjLuTwKLX24kXORhUd87xe0vm2mAA==";
        assert_eq!(b64(&signing.sign(br#"{"a":1}12345"#).to_bytes()), want);

        let auth = WebhookAuth {
            sourcehut_public_key: public,
            ..auth_for(AuthKind::Sourcehut)
        };
        let h = headers(&[("X-Payload-Signature", want), ("X-Payload-Nonce", "12345")]);
        verify_webhook(&auth, &h, br#"{"a":1}"#).unwrap();
        // The nonce is part of the signed message.
        let h = headers(&[("X-Payload-Signature", want), ("X-Payload-Nonce", "12346")]);
        assert!(matches!(
            verify_webhook(&auth, &h, br#"{"a":1}"#),
            Err(AuthError::Forbidden { .. })
        ));
        // ... and so is its absence: the same bytes split differently still verify.
        let h = headers(&[("X-Payload-Signature", want)]);
        verify_webhook(&auth, &h, br#"{"a":1}12345"#).unwrap();
        // The real sr.ht key does not accept it.
        let h = headers(&[("X-Payload-Signature", want), ("X-Payload-Nonce", "12345")]);
        assert!(verify_webhook(&auth_for(AuthKind::Sourcehut), &h, br#"{"a":1}"#).is_err());
    }

    #[test]
    fn builtin_sourcehut_key_parses() {
        assert_eq!(
            parse_public_key(SOURCEHUT_PUBLIC_KEY_BASE64).unwrap(),
            SOURCEHUT_PUBLIC_KEY
        );
        assert_eq!(
            hex::encode(SOURCEHUT_PUBLIC_KEY),
            "b97eca5b2c8334c68199ae1a55b27f71b510a5d8ea733b82c8afc7c7357fbbee"
        );
        VerifyingKey::from_bytes(&SOURCEHUT_PUBLIC_KEY).unwrap();
    }

    #[test]
    fn parse_public_key_errors() {
        assert!(matches!(
            parse_public_key("not base64!"),
            Err(AuthError::InvalidPublicKey { .. })
        ));
        assert!(matches!(
            parse_public_key(&b64(&[1; 31])),
            Err(AuthError::InvalidPublicKey { .. })
        ));
    }

    // TestJobExec_authGithub.
    #[test]
    fn go_test_auth_github() {
        let auth = auth_for(AuthKind::Github);
        let payload = b"_karajo_sign=123";
        let v7 = "13ae68823b494cdb61634f10d5ba145a6161aab3f354cb3e999bc2b738ad48dd";
        let v8 = "b1361d24d8e782d0586fb9f7c1c03b7ea9d1b1a3";

        let h = headers(&[("X-Hub-Signature-256", &format!("sha256={v7}"))]);
        verify_webhook(&auth, &h, payload).unwrap();
        let h = headers(&[("X-Hub-Signature", v8)]);
        verify_webhook(&auth, &h, payload).unwrap();

        let h = headers(&[("X-Hub-Signature-256", &format!("sha256={v7}"))]);
        let err = verify_webhook(&auth, &h, b"_karajo_sign=1234").unwrap_err();
        assert_eq!(
            err,
            AuthError::Forbidden {
                scheme: "github",
                header: "X-Hub-Signature-256".to_owned(),
                reason: "signature does not match",
            }
        );
        assert!(err.to_string().starts_with("github: forbidden"));
    }

    #[test]
    fn github_prefixes_and_fallback() {
        let auth = auth_for(AuthKind::Github);
        let payload = b"_karajo_sign=123";
        let v7 = sign_hmac_sha256(SECRET, payload);
        let v8 = sign_github_sha1(SECRET, payload);
        // Bare hex in the SHA-256 header, as the original accepts.
        verify_webhook(&auth, &headers(&[("x-hub-signature-256", &v7)]), payload).unwrap();
        // `sha1=` prefix, as GitHub really sends it (the original rejects it).
        let h = headers(&[("X-Hub-Signature", &format!("sha1={v8}"))]);
        verify_webhook(&auth, &h, payload).unwrap();
        // An empty SHA-256 header falls back to SHA-1.
        let h = headers(&[("X-Hub-Signature-256", ""), ("X-Hub-Signature", &v8)]);
        verify_webhook(&auth, &h, payload).unwrap();
        // A present but wrong SHA-256 header does not fall back.
        let h = headers(&[
            ("X-Hub-Signature-256", &format!("sha256={v8}")),
            ("X-Hub-Signature", &v8),
        ]);
        assert!(matches!(
            verify_webhook(&auth, &h, payload),
            Err(AuthError::Forbidden { header, .. }) if header == "X-Hub-Signature-256"
        ));
        // Wrong prefix for the header.
        let h = headers(&[("X-Hub-Signature", &format!("sha256={v8}"))]);
        assert!(verify_webhook(&auth, &h, payload).is_err());
        let h = headers(&[("X-Hub-Signature-256", &format!("sha1={v7}"))]);
        assert!(verify_webhook(&auth, &h, payload).is_err());
        // Upper-case hex refused in both.
        let h = headers(&[(
            "X-Hub-Signature-256",
            &format!("sha256={}", v7.to_uppercase()),
        )]);
        assert!(verify_webhook(&auth, &h, payload).is_err());
        let h = headers(&[("X-Hub-Signature", &format!("sha1={}", v8.to_uppercase()))]);
        assert!(verify_webhook(&auth, &h, payload).is_err());
        // Neither header.
        let err = verify_webhook(&auth, &HeaderMap::new(), payload).unwrap_err();
        assert_eq!(
            err,
            AuthError::MissingSignature {
                scheme: "github",
                header: "X-Hub-Signature-256 or X-Hub-Signature".to_owned(),
            }
        );
    }

    // TestJobExec_authSourcehut.
    #[test]
    fn go_test_auth_sourcehut() {
        let signing = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let auth = WebhookAuth {
            sourcehut_public_key: signing.verifying_key().to_bytes(),
            ..auth_for(AuthKind::Sourcehut)
        };
        let payload = b"_karajo_sign=123";
        let sig = b64(&signing.sign(b"_karajo_sign=1234").to_bytes());
        let h = headers(&[("X-Payload-Signature", &sig), ("X-Payload-Nonce", "4")]);
        verify_webhook(&auth, &h, payload).unwrap();
        let err = verify_webhook(&auth, &h, b"_karajo_sign=1235").unwrap_err();
        assert!(err.to_string().starts_with("sourcehut: forbidden"), "{err}");
    }

    #[test]
    fn sourcehut_bad_input_is_forbidden() {
        let signing = SigningKey::from_bytes(&[7; 32]);
        let auth = WebhookAuth {
            sourcehut_public_key: signing.verifying_key().to_bytes(),
            ..auth_for(AuthKind::Sourcehut)
        };
        let body = b"{}";
        let forbidden_for = |sig: &str| {
            let h = headers(&[("X-Payload-Signature", sig), ("X-Payload-Nonce", "n")]);
            verify_webhook(&auth, &h, body).unwrap_err()
        };
        // Not base64 (the original answers 500 here).
        assert!(matches!(
            forbidden_for("%%%not-base64%%%"),
            AuthError::Forbidden {
                reason: "not standard base64",
                ..
            }
        ));
        // Base64 but not 64 bytes.
        assert!(matches!(
            forbidden_for(&b64(&[0; 63])),
            AuthError::Forbidden {
                reason: "not a 64-byte Ed25519 signature",
                ..
            }
        ));
        // URL-safe alphabet or missing padding are not standard base64.
        let good = signing.sign(b"{}n").to_bytes();
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode(good);
        if url_safe != b64(&good) {
            assert!(matches!(
                forbidden_for(&url_safe),
                AuthError::Forbidden { .. }
            ));
        }
        let h = headers(&[
            ("X-Payload-Signature", &b64(&good)),
            ("X-Payload-Nonce", "n"),
        ]);
        verify_webhook(&auth, &h, body).unwrap();
        // Missing or empty signature header.
        for h in [
            headers(&[("X-Payload-Nonce", "n")]),
            headers(&[("X-Payload-Signature", ""), ("X-Payload-Nonce", "n")]),
        ] {
            assert_eq!(
                verify_webhook(&auth, &h, body).unwrap_err(),
                AuthError::MissingSignature {
                    scheme: "sourcehut",
                    header: "X-Payload-Signature".to_owned(),
                }
            );
        }
    }

    // TestJobExec_authHmacSha256.
    #[test]
    fn go_test_auth_hmac_sha256() {
        let auth = auth_for(AuthKind::HmacSha256);
        let v7 = "13ae68823b494cdb61634f10d5ba145a6161aab3f354cb3e999bc2b738ad48dd";
        let h = headers(&[("X-Karajo-Sign", v7)]);
        verify_webhook(&auth, &h, b"_karajo_sign=123").unwrap();
        let err = verify_webhook(&auth, &h, b"_karajo_sign=1234").unwrap_err();
        assert!(
            err.to_string().starts_with("hmac-sha256: forbidden"),
            "{err}"
        );
    }

    #[test]
    fn hmac_sha256_header_rules() {
        let payload = b"_karajo_sign=123";
        let v7 = sign_hmac_sha256(SECRET, payload);
        let custom = WebhookAuth {
            header_sign: "X-My-Sign".to_owned(),
            ..auth_for(AuthKind::HmacSha256)
        };
        // The header name is looked up case-insensitively.
        verify_webhook(&custom, &headers(&[("x-my-SIGN", &v7)]), payload).unwrap();
        // Only the configured header counts.
        let err = verify_webhook(&custom, &headers(&[("X-Karajo-Sign", &v7)]), payload);
        assert_eq!(
            err.unwrap_err(),
            AuthError::MissingSignature {
                scheme: "hmac-sha256",
                header: "X-My-Sign".to_owned(),
            }
        );
        // Upper-case hex is refused, as the original.
        let err = verify_webhook(
            &custom,
            &headers(&[("X-My-Sign", &v7.to_uppercase())]),
            payload,
        );
        assert!(matches!(
            err,
            Err(AuthError::Forbidden {
                reason: "not lower-case hex",
                ..
            })
        ));
        // A prefix, truncation, an extra byte or an empty value are refused.
        for bad in [
            format!("sha256={v7}"),
            v7[..62].to_owned(),
            format!("{v7}00"),
            format!("{v7}0"),
        ] {
            assert!(
                verify_webhook(&custom, &headers(&[("X-My-Sign", &bad)]), payload).is_err(),
                "{bad}"
            );
        }
        let err = verify_webhook(&custom, &headers(&[("X-My-Sign", "")]), payload);
        assert!(matches!(err, Err(AuthError::MissingSignature { .. })));
        // A header_sign that is not a valid header name cannot be present.
        let odd = WebhookAuth {
            header_sign: "bad header".to_owned(),
            ..auth_for(AuthKind::HmacSha256)
        };
        assert!(matches!(
            verify_webhook(&odd, &headers(&[("X-Karajo-Sign", &v7)]), payload),
            Err(AuthError::MissingSignature { .. })
        ));
    }

    #[test]
    fn global_signature() {
        // Spec 5.2 row 5 (job_exec pause form body) and row 6 (job_http pause query string).
        let form = b"_karajo_epoch=1673222400&id=test_job_success";
        let v5 = "2fcbdfa553c82d78b5240a5dec0cdd345fc95418161bd4c0f6aa4534e86fec8b";
        verify_global(SECRET, Some(v5), form).unwrap();
        verify_global(
            SECRET,
            Some("92760216888d288b13641549b9f0a222f3507dba8af3f75da71d52125ae79e73"),
            b"id=test_success",
        )
        .unwrap();
        // Empty body signed as HMAC("") (spec 4.4 note).
        verify_global(
            SECRET,
            Some("91dfac70c5348b04e1babb8b421ac92cec08b565b49ca16130dccb72503647b7"),
            b"",
        )
        .unwrap();
        assert!(matches!(
            verify_global(SECRET, None, form),
            Err(AuthError::MissingSignature {
                scheme: "global",
                ..
            })
        ));
        assert!(matches!(
            verify_global(SECRET, Some(""), form),
            Err(AuthError::MissingSignature { .. })
        ));
        assert!(matches!(
            verify_global(SECRET, Some(&v5.to_uppercase()), form),
            Err(AuthError::Forbidden { .. })
        ));
        assert!(matches!(
            verify_global(b"other", Some(v5), form),
            Err(AuthError::Forbidden {
                scheme: "global",
                ..
            })
        ));
    }

    #[test]
    fn debug_redacts_secret() {
        let text = format!("{:?}", auth_for(AuthKind::HmacSha256));
        assert!(text.contains("<redacted>"));
        assert!(!text.contains("115, 51")); // b"s3"
    }

    fn any_kind() -> impl Strategy<Value = AuthKind> {
        prop_oneof![
            Just(AuthKind::HmacSha256),
            Just(AuthKind::Github),
            Just(AuthKind::Sourcehut),
        ]
    }

    proptest! {
        #[test]
        fn verify_webhook_never_panics(
            kind in any_kind(),
            values in proptest::collection::vec(
                (0usize..6, proptest::collection::vec(any::<u8>(), 0..120)),
                0..6,
            ),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            const NAMES: [&str; 6] = [
                "X-Karajo-Sign",
                "X-Hub-Signature-256",
                "X-Hub-Signature",
                "X-Payload-Signature",
                "X-Payload-Nonce",
                "X-Other",
            ];
            let mut map = HeaderMap::new();
            for (i, raw) in values {
                // Prefixes and base64-ish text make the interesting paths reachable.
                let mut v = match i % 3 {
                    0 => b"sha256=".to_vec(),
                    1 => b"sha1=".to_vec(),
                    _ => Vec::new(),
                };
                v.extend(raw);
                if let Ok(v) = HeaderValue::from_bytes(&v) {
                    map.append(NAMES[i], v);
                }
            }
            let _ = verify_webhook(&auth_for(kind), &map, &body);
        }

        #[test]
        fn signed_hmac_always_verifies(
            secret in proptest::collection::vec(any::<u8>(), 0..200),
            body in proptest::collection::vec(any::<u8>(), 0..512),
            header in "[A-Za-z][A-Za-z0-9-]{0,30}",
        ) {
            let sig = sign_hmac_sha256(&secret, &body);
            let auth = WebhookAuth {
                kind: AuthKind::HmacSha256,
                header_sign: header.clone(),
                secret: secret.clone(),
                sourcehut_public_key: SOURCEHUT_PUBLIC_KEY,
            };
            let mut map = HeaderMap::new();
            map.insert(
                http::HeaderName::from_bytes(header.as_bytes()).unwrap(),
                HeaderValue::from_str(&sig).unwrap(),
            );
            prop_assert!(verify_webhook(&auth, &map, &body).is_ok());
            prop_assert!(verify_global(&secret, Some(&sig), &body).is_ok());
            let gh = WebhookAuth { kind: AuthKind::Github, ..auth };
            let mut map = HeaderMap::new();
            map.insert(
                "x-hub-signature",
                HeaderValue::from_str(&format!("sha1={}", sign_github_sha1(&secret, &body))).unwrap(),
            );
            prop_assert!(verify_webhook(&gh, &map, &body).is_ok());
        }
    }
}
