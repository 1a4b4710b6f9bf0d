//! JWTs for the tests: Mercure claims signed with `jsonwebtoken` (the `alg: none` one put
//! together by hand), with HS256 secrets or the test-only RSA, EC P-256 and Ed25519 keys of
//! `tests/fixtures/auth/`.
//!
//! Shared by the in-process tests of this crate and the binary's (`crates/ssehub/tests`
//! includes this file with `#[path]`), so both layers sign with the same keys and claims.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The HS256 secret of publisher tokens (at least 32 bytes, as the binary requires).
pub(crate) const PUBLISHER_SECRET: &str = "test-publisher-secret-0123456789abcdef";
/// The HS256 secret of subscriber tokens.
pub(crate) const SUBSCRIBER_SECRET: &str = "test-subscriber-secret-0123456789abcdef";
/// A secret the hubs do not know.
pub(crate) const OTHER_SECRET: &str = "some-other-secret-nobody-configured-0123";

/// The path of `crates/ssehub-http/tests/fixtures/auth/<name>`, from either crate (both are
/// in `crates/`).
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ssehub-http/tests/fixtures/auth")
        .join(name)
}

/// The bytes of [`fixture`]`(name)`.
pub(crate) fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// The Unix time, in seconds.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A value that makes every token different (so each one can be looked for in the logs).
pub(crate) fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// What signs a token.
#[derive(Clone)]
pub(crate) enum Key {
    /// HS256 with this secret.
    Hs(Vec<u8>),
    /// RS256 with `rsa_private.pem`.
    Rsa,
    /// ES256 with `ec_private.pem`.
    Ec,
    /// EdDSA with `ed25519_private.pem`.
    Ed,
}

impl Key {
    /// HS256 with `secret`.
    pub(crate) fn hs(secret: &str) -> Key {
        Key::Hs(secret.as_bytes().to_vec())
    }
}

/// Signs `claims` (plus a unique `jti`) with `key`, with `kid` in the header if given.
pub(crate) fn sign(key: &Key, kid: Option<&str>, mut claims: Value) -> String {
    claims["jti"] = json!(unique());
    let (algorithm, key) = match key {
        Key::Hs(secret) => (Algorithm::HS256, EncodingKey::from_secret(secret)),
        Key::Rsa => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&read_fixture("rsa_private.pem")).unwrap(),
        ),
        Key::Ec => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&read_fixture("ec_private.pem")).unwrap(),
        ),
        Key::Ed => (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&read_fixture("ed25519_private.pem")).unwrap(),
        ),
    };
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// Mercure claims: `{"mercure": {"publish": […], "subscribe": […]}}`, with `exp` if given.
pub(crate) fn mercure(publish: &[&str], subscribe: &[&str], exp: Option<u64>) -> Value {
    let mut claims = json!({"mercure": {"publish": publish, "subscribe": subscribe}});
    if let Some(exp) = exp {
        claims["exp"] = json!(exp);
    }
    claims
}

/// Base64url without padding (RFC 7515), for the hand-made `alg: none` token.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// An unsigned token: header `{"alg":"none","typ":"JWT"}`, `claims`, and an empty signature.
pub(crate) fn alg_none(mut claims: Value) -> String {
    claims["jti"] = json!(unique());
    format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(claims.to_string().as_bytes())
    )
}
