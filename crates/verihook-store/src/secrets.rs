//! Webhook secrets at rest (CONTRACT §8). With a key (`--secret-key`), every secret is
//! stored sealed with XChaCha20-Poly1305 as `sealed:v1:<base64 of nonce ‖ ciphertext>`, so
//! a copy of the database or a backup does not let anyone forge webhooks; the key lives
//! outside the database. Without a key, secrets are stored as they are (and `serve` warns).
//!
//! Reads accept both forms, so that a database is sealed on the first start with a key
//! ([`crate::Storage`] openers call `seal_plaintext`) while it keeps serving. A sealed
//! secret read without the key, or with another key, is an error, never a guess.

use crate::StoreError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::fmt;
use std::sync::Arc;
use verihook_core::WebhookSecret;

const SEALED: &str = "sealed:v1:";
const NONCE: usize = 24;
/// Binds each ciphertext to its use: a sealed value cannot be replayed as anything else.
const PURPOSE: &[u8] = b"verihook webhook secret v1";
const ANSWER: &[u8] = b"verihook idempotent answer v1";

/// The 32-byte key of `--secret-key`, given in base64.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub fn parse(base64: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(base64.trim())
            .map_err(|_| "the secret key must be base64".to_owned())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("the secret key must be 32 bytes, not {}", b.len()))?;
        Ok(Self(key))
    }

    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Seals secrets for storage and opens them when read; a no-op without a key.
#[derive(Clone, Default)]
pub(crate) struct Sealer(Option<Arc<XChaCha20Poly1305>>);

impl Sealer {
    pub(crate) fn new(key: Option<&SecretKey>) -> Self {
        Self(key.map(|k| Arc::new(XChaCha20Poly1305::new(&k.0.into()))))
    }

    pub(crate) fn has_key(&self) -> bool {
        self.0.is_some()
    }

    /// The form to store.
    pub(crate) fn seal(&self, secret: &WebhookSecret) -> Result<String, StoreError> {
        self.seal_text(secret.expose(), PURPOSE)
    }

    /// An idempotent request's stored answer, which may hold a secret or a key shown once.
    pub(crate) fn seal_answer(&self, body: &str) -> Result<String, StoreError> {
        self.seal_text(body, ANSWER)
    }

    pub(crate) fn open_answer(&self, stored: String) -> Result<String, StoreError> {
        self.open_text(stored, ANSWER)
    }

    fn seal_text(&self, text: &str, purpose: &[u8]) -> Result<String, StoreError> {
        let Some(cipher) = &self.0 else {
            return Ok(text.to_owned());
        };
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: text.as_bytes(),
            aad: purpose,
        };
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| StoreError::Config("sealing a secret failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED}{}", STANDARD.encode(out)))
    }

    /// The secret a stored value holds.
    pub(crate) fn open(&self, stored: WebhookSecret) -> Result<WebhookSecret, StoreError> {
        if Self::is_plain(stored.expose()) {
            return Ok(stored);
        }
        let text = self.open_text(stored.expose().to_owned(), PURPOSE)?;
        Ok(WebhookSecret::from_stored(text))
    }

    fn open_text(&self, stored: String, purpose: &[u8]) -> Result<String, StoreError> {
        let Some(encoded) = stored.strip_prefix(SEALED) else {
            return Ok(stored);
        };
        let Some(cipher) = &self.0 else {
            return Err(StoreError::Config(
                "the database holds sealed webhook secrets: start with its --secret-key".into(),
            ));
        };
        let wrong =
            || StoreError::Config("a webhook secret does not open with this --secret-key".into());
        let bytes = STANDARD.decode(encoded).map_err(|_| wrong())?;
        if bytes.len() < NONCE {
            return Err(wrong());
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let payload = Payload {
            msg: sealed,
            aad: purpose,
        };
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| wrong())?;
        String::from_utf8(plain).map_err(|_| wrong())
    }

    pub(crate) fn open_opt(
        &self,
        stored: Option<WebhookSecret>,
    ) -> Result<Option<WebhookSecret>, StoreError> {
        stored.map(|s| self.open(s)).transpose()
    }

    /// Whether a stored value is still in plaintext.
    pub(crate) fn is_plain(stored: &str) -> bool {
        !stored.starts_with(SEALED)
    }
}

const STORED_SECRETS: &str =
    "SELECT id, secret, previous_secret FROM endpoints WHERE secret IS NOT NULL";
/// Guarded by the value read, so a node sealing at start never overwrites a rotation
/// (or another node's sealing) that happened meanwhile.
const RESEAL_SECRET: &str = "UPDATE endpoints SET secret = $1 WHERE id = $2 AND secret = $3";
const RESEAL_PREVIOUS: &str =
    "UPDATE endpoints SET previous_secret = $1 WHERE id = $2 AND previous_secret = $3";

/// At start: seals every secret still in plaintext when there is a key (the first start
/// with one), and proves that the secrets already sealed open (refusing to start without
/// the key, or with another one, rather than failing every delivery later). Answers how
/// many secrets it sealed.
pub(crate) async fn seal_stored<C: crate::conn::Conn>(
    conn: &mut C,
    sealer: &Sealer,
) -> Result<usize, StoreError> {
    use crate::rows::Value;
    let mut sealed = 0;
    for row in conn.query(STORED_SECRETS, &[]).await? {
        let id = row.string("id")?;
        let columns = [
            (RESEAL_SECRET, row.opt_string("secret")?),
            (RESEAL_PREVIOUS, row.opt_string("previous_secret")?),
        ];
        for (reseal, stored) in columns {
            let Some(stored) = stored else { continue };
            if !Sealer::is_plain(&stored) {
                sealer.open(WebhookSecret::from_stored(stored))?;
            } else if sealer.has_key() {
                let secret = WebhookSecret::from_stored(stored.clone());
                let params = [
                    Value::owned_text(Some(sealer.seal(&secret)?)),
                    Value::text(&id),
                    Value::text(&stored),
                ];
                sealed += usize::try_from(conn.execute(reseal, &params).await?).unwrap_or(0);
            }
        }
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let key = SecretKey::generate();
        let sealer = Sealer::new(Some(&key));
        let secret = WebhookSecret::generate();
        let stored = sealer.seal(&secret).expect("sealed");
        assert!(stored.starts_with(SEALED));
        assert!(!stored.contains(secret.expose()));
        assert_ne!(
            stored,
            sealer.seal(&secret).expect("sealed"),
            "fresh nonces"
        );
        let opened = sealer.open(WebhookSecret::from_stored(stored.clone()));
        assert_eq!(opened.expect("opened").expose(), secret.expose());
        let other = Sealer::new(Some(&SecretKey::generate()));
        assert!(other
            .open(WebhookSecret::from_stored(stored.clone()))
            .is_err());
        assert!(Sealer::default()
            .open(WebhookSecret::from_stored(stored))
            .is_err());
    }

    #[test]
    fn plaintext_passes_and_keys_parse_strictly() {
        let sealer = Sealer::new(Some(&SecretKey::generate()));
        let plain = WebhookSecret::from_stored("whsec_plain".into());
        assert_eq!(sealer.open(plain).expect("plain").expose(), "whsec_plain");
        let key = SecretKey::generate();
        assert!(SecretKey::parse(&key.to_base64()).is_ok());
        assert!(SecretKey::parse("c2hvcnQ=").is_err());
        assert!(SecretKey::parse("not base64!").is_err());
    }
}
