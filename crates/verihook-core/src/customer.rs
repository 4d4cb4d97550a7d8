//! Customers and their data, each value parsed once: names, e-mail addresses, dates of
//! birth, addresses, and the validated shapes of a new customer and of a partial update.
//! What a change does to a customer (and which events it emits) is in [`crate::change`].

use crate::country::CountryCode;
use crate::error::ValidationError;
use crate::id::{CustomerId, OrganizationId};
use crate::status::CustomerStatus;
use crate::timestamp::Timestamp;
use time::{macros::format_description, Date};

const MAX_TEXT: usize = 200;
const MAX_REASON: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerType {
    Individual,
    Business,
}

impl CustomerType {
    pub const ALL: [CustomerType; 2] = [Self::Individual, Self::Business];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Individual => "INDIVIDUAL",
            Self::Business => "BUSINESS",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// An e-mail address of the common `local@domain.tld` form, ASCII only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let invalid = "must be an e-mail address such as jane@example.com";
        if s.len() > 254 || !s.is_ascii() {
            return Err(invalid);
        }
        let (local, domain) = s.split_once('@').ok_or(invalid)?;
        let local_ok = (1..=64).contains(&local.len())
            && local.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&c))
            });
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                (1..=63).contains(&l.len())
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic()));
        if local_ok && domain_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Unicode's format characters (general category Cf): invisible, yet they reorder or hide
/// what a person reads (`"A\u{202e}gnp.exe"` shows as `Aexe.png`).
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
        | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

/// A short human-written text (a name, an address line): trimmed, 1 to 200 characters,
/// no control or invisible formatting characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        Self::parse_max(s, MAX_TEXT)
    }

    fn parse_max(s: &str, max: usize) -> Result<Self, &'static str> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            Err("must not be empty")
        } else if trimmed.chars().count() > max {
            Err("is too long")
        } else if trimmed.chars().any(char::is_control) {
            Err("must not contain control characters")
        } else if trimmed.chars().any(is_format) {
            Err("must not contain invisible formatting characters (bidirectional overrides, zero-width characters)")
        } else {
            Ok(Self(trimmed.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A date of birth: a real calendar date, in the past, not before 1900.
pub fn parse_date_of_birth(s: &str, today: Date) -> Result<Date, &'static str> {
    let format = format_description!("[year]-[month]-[day]");
    let date = Date::parse(s, format).map_err(|_| "must be a real date written YYYY-MM-DD")?;
    if date >= today {
        Err("must be in the past")
    } else if date.year() < 1900 {
        Err("must not be before 1900")
    } else {
        Ok(date)
    }
}

/// `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A postal address. Parts may arrive over several updates; [`Address::is_complete`] says
/// whether it has what a review needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub line1: Option<Text>,
    pub line2: Option<Text>,
    pub city: Option<Text>,
    pub state: Option<Text>,
    pub postal_code: Option<Text>,
    pub country: Option<CountryCode>,
}

impl Address {
    pub fn is_complete(&self) -> bool {
        self.line1.is_some()
            && self.city.is_some()
            && self.postal_code.is_some()
            && self.country.is_some()
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The address with the parts `patch` gives replaced and the rest kept (JSON
    /// merge-patch semantics: several patches may complete an address part by part).
    pub fn merged(&self, patch: &AddressPatch) -> Self {
        let part = |new: &Option<Text>, old: &Option<Text>| new.clone().or_else(|| old.clone());
        Self {
            line1: part(&patch.line1, &self.line1),
            line2: part(&patch.line2, &self.line2),
            city: part(&patch.city, &self.city),
            state: part(&patch.state, &self.state),
            postal_code: part(&patch.postal_code, &self.postal_code),
            country: patch.country.or(self.country),
        }
    }
}

/// Parts of an address to set, each already valid; the parts left `None` stay as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPatch {
    pub line1: Option<Text>,
    pub line2: Option<Text>,
    pub city: Option<Text>,
    pub state: Option<Text>,
    pub postal_code: Option<Text>,
    pub country: Option<CountryCode>,
}

/// A validated new customer.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub customer_type: CustomerType,
    pub email: Email,
    pub first_name: Text,
    pub last_name: Text,
    pub date_of_birth: Option<Date>,
    pub address: Address,
}

/// A validated partial update: the fields given, each already valid.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub email: Option<Email>,
    pub first_name: Option<Text>,
    pub last_name: Option<Text>,
    pub date_of_birth: Option<Date>,
    pub address: Option<AddressPatch>,
}

/// A decision's reason (for NEEDS_ADDITIONAL_INFORMATION and others).
pub fn parse_reason(value: Option<&str>) -> Result<Option<String>, ValidationError> {
    value
        .map(|v| {
            Text::parse_max(v, MAX_REASON)
                .map(|t| t.0)
                .map_err(|m| ValidationError::new("reason", m))
        })
        .transpose()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub organization_id: OrganizationId,
    pub customer_type: CustomerType,
    pub status: CustomerStatus,
    /// The reason given with the latest status change, if any.
    pub status_reason: Option<String>,
    pub email: Email,
    pub first_name: Text,
    pub last_name: Text,
    pub date_of_birth: Option<Date>,
    pub address: Address,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The sequence number of the customer's latest event (0: none yet). Each change
    /// numbers its events on from it (see [`crate::change`]).
    pub last_sequence: u64,
}

impl Customer {
    /// Whether the customer has what a review needs.
    pub fn data_complete(&self) -> bool {
        self.date_of_birth.is_some() && self.address.is_complete()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 01 - 15);

    #[test]
    fn texts_refuse_invisible_formatting_characters() {
        for bad in [
            "A\u{202e}gnp.exe",
            "Jo\u{200b}hn",
            "\u{2066}Jane",
            "Ja\u{feff}ne",
        ] {
            assert!(Text::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Text::parse("Zoë Ødegård-Nuñez").is_ok());
        assert!(Text::parse("محمد").is_ok());
    }

    #[test]
    fn dates_of_birth_must_be_real_and_past() {
        assert!(parse_date_of_birth("1990-02-28", TODAY).is_ok());
        for bad in [
            "1990-02-30",
            "2026-01-15",
            "2027-01-01",
            "1899-12-31",
            "90-01-01",
            "",
        ] {
            assert!(parse_date_of_birth(bad, TODAY).is_err(), "{bad}");
        }
        assert_eq!(format_date(date!(1990 - 02 - 03)), "1990-02-03");
    }

    #[test]
    fn address_parts_merge() {
        let text = |s: &str| Text::parse(s).ok();
        let first = Address::default().merged(&AddressPatch {
            line1: text("1 Main St"),
            ..Default::default()
        });
        let both = first.merged(&AddressPatch {
            city: text("Berlin"),
            country: CountryCode::parse("DE"),
            ..Default::default()
        });
        assert_eq!(both.line1.as_ref().map(Text::as_str), Some("1 Main St"));
        assert_eq!(both.city.as_ref().map(Text::as_str), Some("Berlin"));
        assert!(!both.is_complete(), "no postal code yet");
    }

    proptest! {
        #[test]
        fn email_parse_never_panics(s in "\\PC{0,80}") {
            let _ = Email::parse(&s);
        }

        #[test]
        fn plain_addresses_are_accepted(local in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,10})?", domain in "[a-z0-9]{1,20}", tld in "[a-z]{2,6}") {
            let email = format!("{local}@{domain}.{tld}");
            prop_assert!(Email::parse(&email).is_ok(), "{}", email);
        }

        #[test]
        fn addresses_without_one_at_are_refused(s in "[a-z.]{0,30}") {
            prop_assert!(Email::parse(&s).is_err());
        }

        #[test]
        fn text_is_trimmed_and_bounded(s in "\\PC{0,250}") {
            if let Ok(t) = Text::parse(&s) {
                prop_assert_eq!(t.as_str(), s.trim());
                prop_assert!(!t.as_str().is_empty() && t.as_str().chars().count() <= MAX_TEXT);
            }
        }
    }
}
