//! Authentication of incoming requests: signature checks for web hooks and the global-secret
//! API endpoints ([`signature`]) and the replay rules that sit after them ([`replay`]).
//!
//! Everything here is pure and synchronous: no tokio, no axum, no IO. The HTTP layer reads
//! the raw body, calls [`verify_webhook`] or [`verify_global`], and only once the signature
//! verified spends it in the [`ReplayGuard`] ([`ReplayGuard::accept_signed`] for requests
//! stamped with `_karajo_epoch`, [`ReplayGuard::accept_delivery`] for GitHub and SourceHut).
//! bcrypt users ([`user`]), the login throttle ([`throttle`]) and web UI sessions
//! ([`session`]) live beside this part of the room.

pub mod replay;
pub mod session;
pub mod signature;
pub mod throttle;
pub mod user;

#[doc(inline)]
pub use self::{
    replay::{ReplayError, ReplayGuard, SignatureId, StampRules, github_delivery_keys, stamp},
    signature::{
        AuthError, HEADER_KARAJO_SIGN, SOURCEHUT_PUBLIC_KEY, SOURCEHUT_PUBLIC_KEY_BASE64,
        WebhookAuth, github_delivery_id, parse_public_key, sign_github_sha1, sign_hmac_sha256,
        verify_global, verify_webhook, webhook_headers_present,
    },
};
