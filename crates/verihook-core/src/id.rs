//! Prefixed identifiers, as Stripe and Svix make them: a prefix that says what the id
//! names (an id pasted into the wrong place is caught at the edge), then 24 symbols: the
//! creation time in milliseconds (10 symbols) and 70 bits from a CSPRNG (14 symbols), so
//! ids cannot be guessed or enumerated.
//!
//! Why the time first: ids are keys of the database's indexes, and a random key lands on a
//! random page of its index, so a batch of n new rows dirties about n pages of each such
//! index, and every one is written to the log at commit. Time-ordered keys land on the
//! index's last pages, as a sequence would. The time an id reveals is its object's
//! `createdAt`/`occurredAt`, which the API shows anyway.

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

/// Lowercase Crockford base32: no i, l, o or u, so ids read aloud without ambiguity.
/// 32 symbols divide 256 exactly, so masking a random byte picks each one uniformly; the
/// symbols are in ASCII order, so ids sort as their creation times do.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const RANDOM_LEN: usize = 24;
/// 50 bits of milliseconds since 1970: until the year 37,000.
const TIME_LEN: usize = 10;

/// `n` uniformly random symbols of [`ALPHABET`], from `rng`.
fn symbols_from(rng: &mut impl RngCore, n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect()
}

/// Random symbols for a credential (an API key): straight from the operating system.
fn credential_symbols(n: usize) -> String {
    symbols_from(&mut rand::rngs::OsRng, n)
}

/// Random symbols for ids and lease tokens, made for every event and every claim: from
/// the thread's CSPRNG (ChaCha12, seeded from the operating system and reseeded from it),
/// not a `getrandom` system call each, two an event.
fn random_symbols(n: usize) -> String {
    symbols_from(&mut rand::thread_rng(), n)
}

/// `millis` as [`TIME_LEN`] symbols, most significant first.
fn time_symbols(millis: u64) -> String {
    (0..TIME_LEN)
        .rev()
        .map(|i| char::from(ALPHABET[((millis >> (5 * i)) & 31) as usize]))
        .collect()
}

/// Milliseconds since 1970, by the clock every timestamp of the project reads.
fn now_millis() -> u64 {
    u64::try_from(crate::Timestamp::now().unix_micros() / 1_000).unwrap_or(0)
}

/// The body of a new id: the time now, then random symbols.
fn time_ordered_symbols() -> String {
    let mut body = time_symbols(now_millis());
    body.push_str(&random_symbols(RANDOM_LEN - TIME_LEN));
    body
}

/// A random opaque token (120 bits), e.g. to mark a lease as one claimant's.
pub fn random_token() -> String {
    random_symbols(RANDOM_LEN)
}

/// Which bytes are symbols of [`ALPHABET`], by value: ids are parsed wherever a row or a
/// request names one (a delivered event's several times), and a table lookup a byte is
/// a twentieth of a search of the alphabet.
const IS_SYMBOL: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = true;
        i += 1;
    }
    table
};

fn is_symbol(c: u8) -> bool {
    IS_SYMBOL[usize::from(c)]
}

/// The input is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct InvalidId {
    pub kind: &'static str,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id: the time now, then 70 random bits.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, time_ordered_symbols()))
            }

            /// Accepts exactly the form [`Self::generate`] produces.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                let valid = s
                    .strip_prefix($prefix)
                    .is_some_and(|rest| rest.len() == RANDOM_LEN && rest.bytes().all(is_symbol));
                if valid {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(InvalidId { kind: $kind })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// An organization: one customer of the KYC API, with one webhook endpoint.
    OrganizationId,
    "org_",
    "organization"
);
prefixed_id!(
    /// A customer under verification.
    CustomerId,
    "cus_",
    "customer"
);
prefixed_id!(
    /// A webhook endpoint: one URL of an organization, with its filter and secret.
    EndpointId,
    "ep_",
    "endpoint"
);

prefixed_id!(
    /// A webhook event; unique forever, the receiver's idempotency key.
    EventId,
    "evt_",
    "event"
);
prefixed_id!(
    /// A bulk recovery: failed events redelivered together, with its progress.
    RecoveryId,
    "rec_",
    "recovery"
);

prefixed_id!(
    /// One of an organization's API keys, as listed and revoked (never the key itself).
    ApiKeyId,
    "key_",
    "API key"
);

/// An organization's API key. Shown once at creation; only its SHA-256 digest is stored,
/// so a leaked database does not leak credentials.
pub struct ApiKey(String);

impl ApiKey {
    const PREFIX: &'static str = "vhk_";

    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, credential_symbols(40)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first symbols, enough for a person to tell keys apart in a listing and far
    /// too few (20 random bits) to help guess one.
    pub fn prefix(&self) -> &str {
        &self.0[..Self::PREFIX.len() + 4]
    }

    /// The digest under which keys are stored and looked up. A lookup by digest leaks
    /// nothing useful through timing: finding a digest's neighbours does not help forge a key.
    pub fn digest(presented: &str) -> [u8; 32] {
        Sha256::digest(presented.as_bytes()).into()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_symbol_table_holds_the_alphabet_and_nothing_else() {
        for byte in 0..=u8::MAX {
            assert_eq!(is_symbol(byte), ALPHABET.contains(&byte), "byte {byte}");
        }
    }

    #[test]
    fn generated_ids_parse_back_and_differ() {
        let a = CustomerId::generate();
        let b = CustomerId::generate();
        assert_ne!(a, b);
        assert_eq!(CustomerId::parse(a.as_str()), Ok(a.clone()));
        assert!(a.as_str().starts_with("cus_"));
        assert_eq!(a.as_str().len(), 4 + RANDOM_LEN);
    }

    #[test]
    fn ids_sort_as_their_creation_times_do() {
        let before = time_symbols(now_millis());
        let id = EventId::generate();
        let after = time_symbols(now_millis());
        let stamp = &id.as_str()[4..4 + TIME_LEN];
        assert!(before.as_str() <= stamp && stamp <= after.as_str(), "{id}");
        assert!(time_symbols(1) < time_symbols(2));
        assert!(time_symbols(31) < time_symbols(32));
        assert!(time_symbols((1 << 50) - 2) < time_symbols((1 << 50) - 1));
        assert_eq!(time_symbols(0), "0000000000");
    }

    #[test]
    fn the_random_part_differs_within_one_millisecond() {
        let ids: std::collections::HashSet<String> = (0..1_000)
            .map(|_| CustomerId::generate().as_str()[4 + TIME_LEN..].to_owned())
            .collect();
        assert_eq!(ids.len(), 1_000);
    }

    #[test]
    fn an_id_of_another_kind_is_refused() {
        let event = EventId::generate();
        assert!(CustomerId::parse(event.as_str()).is_err());
    }

    #[test]
    fn api_keys_are_long_and_digested() {
        let key = ApiKey::generate();
        assert!(key.expose().len() > 40);
        assert_eq!(ApiKey::digest(key.expose()), ApiKey::digest(key.expose()));
        assert_ne!(ApiKey::digest(key.expose()), ApiKey::digest("vhk_other"));
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_the_generated_form(s in ".{0,40}") {
            if let Ok(id) = EventId::parse(&s) {
                prop_assert!(s.starts_with("evt_"));
                prop_assert_eq!(id.as_str(), s.as_str());
                prop_assert_eq!(s.len(), 4 + RANDOM_LEN);
            }
        }

        #[test]
        fn every_well_formed_id_parses(body in "[0-9abcdefghjkmnpqrstvwxyz]{24}") {
            let s = format!("org_{body}");
            prop_assert!(OrganizationId::parse(&s).is_ok());
        }

        #[test]
        fn wrong_length_or_symbol_is_refused(body in "[0-9a-z]{0,30}") {
            let s = format!("cus_{body}");
            let expected = body.len() == RANDOM_LEN && !body.contains(['i', 'l', 'o', 'u']);
            prop_assert_eq!(CustomerId::parse(&s).is_ok(), expected);
        }
    }
}
