//! Webhook endpoints: the URL events go to and the secret they are signed with.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use std::fmt;
use url::Url;

const MAX_URL_LEN: usize = 2_048;

/// A URL events may be sent to: absolute, `https` (or `http` where the operator allows it),
/// with a host, and without credentials or a fragment. It carries the `http::Uri` a request
/// is sent to, built once here, so that the sender never parses the URL again.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: Url,
    uri: http::Uri,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWebhookUrl {
    #[error("must be an absolute URL such as https://api.example.com/webhooks/verification")]
    Malformed,
    #[error("must use https")]
    NotHttps,
    #[error("must not be longer than 2048 characters")]
    TooLong,
    #[error("must not contain a user name or password")]
    Credentials,
    #[error("must not contain a fragment (#…)")]
    Fragment,
}

impl WebhookUrl {
    pub fn parse(s: &str, allow_http: bool) -> Result<Self, InvalidWebhookUrl> {
        if s.len() > MAX_URL_LEN {
            return Err(InvalidWebhookUrl::TooLong);
        }
        let url = Url::parse(s).map_err(|_| InvalidWebhookUrl::Malformed)?;
        // Parsing may lengthen it (percent-encoding, punycode): the form stored must read
        // back too (found by fuzzing).
        if url.as_str().len() > MAX_URL_LEN {
            return Err(InvalidWebhookUrl::TooLong);
        }
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            _ => return Err(InvalidWebhookUrl::NotHttps),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(InvalidWebhookUrl::Malformed);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidWebhookUrl::Credentials);
        }
        if url.fragment().is_some() {
            return Err(InvalidWebhookUrl::Fragment);
        }
        let uri = http::Uri::try_from(url.as_str()).map_err(|_| InvalidWebhookUrl::Malformed)?;
        Ok(Self { url, uri })
    }

    /// A URL read back from storage, validated when it was stored: only the scheme rule,
    /// which the operator may have tightened since (`--allow-http`), is left to the caller.
    pub fn from_stored(s: &str) -> Result<Self, InvalidWebhookUrl> {
        Self::parse(s, true)
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The request target, ready for an HTTP client.
    pub fn uri(&self) -> &http::Uri {
        &self.uri
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// The secret an endpoint's events are signed with: `whsec_` and the base64 of 24 random
/// bytes, the form Standard Webhooks keys with (its decoded bytes), while verihook's own
/// scheme keys with the whole string's UTF-8 bytes. `Debug` never shows it, so it cannot
/// slip into a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    const PREFIX: &'static str = "whsec_";

    const RANDOM_BYTES: usize = 24;

    /// 192 bits from the operating system's CSPRNG, in base64 (32 characters, no padding).
    pub fn generate() -> Self {
        let mut bytes = [0u8; Self::RANDOM_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!("{}{}", Self::PREFIX, STANDARD.encode(bytes)))
    }

    /// A secret read back from storage.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key of verihook's scheme: the whole string.
    pub fn key(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The HMAC key of Standard Webhooks: the base64 after `whsec_`, decoded. Every secret
    /// verihook generates (and every earlier one: 40 base32 symbols are valid base64) has
    /// one.
    pub fn standard_key(&self) -> Option<Vec<u8>> {
        verihook_receiver::standard_webhooks::key(&self.0)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn https_is_required_unless_allowed() {
        let https = "https://api.example.com/webhooks/verification";
        assert_eq!(
            WebhookUrl::parse(https, false).map(|u| u.as_str().to_owned()),
            Ok(https.to_owned())
        );
        assert_eq!(
            WebhookUrl::parse("http://localhost:3000/hook", false),
            Err(InvalidWebhookUrl::NotHttps)
        );
        assert!(WebhookUrl::parse("http://localhost:3000/hook", true).is_ok());
        assert_eq!(
            WebhookUrl::parse("ftp://example.com/x", true),
            Err(InvalidWebhookUrl::NotHttps)
        );
    }

    #[test]
    fn a_url_that_parsing_lengthens_past_the_limit_is_refused() {
        // 2,000 characters, each percent-encoded to three: 6,000 once parsed, too long to
        // be read back from storage.
        let url = format!("https://example.com/{}", "é".repeat(1_000));
        assert!(url.len() <= MAX_URL_LEN);
        assert_eq!(
            WebhookUrl::parse(&url, false),
            Err(InvalidWebhookUrl::TooLong)
        );
    }

    #[test]
    fn odd_urls_are_refused() {
        assert_eq!(
            WebhookUrl::parse("example.com/x", false),
            Err(InvalidWebhookUrl::Malformed)
        );
        assert_eq!(
            WebhookUrl::parse("", false),
            Err(InvalidWebhookUrl::Malformed)
        );
        assert_eq!(
            WebhookUrl::parse("https://user:pw@example.com/", false),
            Err(InvalidWebhookUrl::Credentials)
        );
        assert_eq!(
            WebhookUrl::parse("https://example.com/#x", false),
            Err(InvalidWebhookUrl::Fragment)
        );
        let long = format!("https://example.com/{}", "a".repeat(2_100));
        assert_eq!(
            WebhookUrl::parse(&long, false),
            Err(InvalidWebhookUrl::TooLong)
        );
    }

    #[test]
    fn secrets_are_random_and_redacted() {
        let a = WebhookSecret::generate();
        assert_ne!(a, WebhookSecret::generate());
        assert!(a.expose().starts_with("whsec_"));
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(a.standard_key().map(|k| k.len()), Some(24));
        let earlier = WebhookSecret::from_stored(format!("whsec_{}", "7".repeat(40)));
        assert_eq!(earlier.standard_key().map(|k| k.len()), Some(30));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,100}") {
            let _ = WebhookUrl::parse(&s, true);
        }
    }
}
