//! Organizations: the API's customers, each sandbox or live.

use crate::error::ValidationError;
use crate::id::OrganizationId;
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Statuses may be forced, to test every event.
    Sandbox,
    /// Statuses change only through the verification workflow.
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Live => "live",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sandbox" => Some(Self::Sandbox),
            "live" => Some(Self::Live),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub mode: Mode,
    pub created_at: Timestamp,
}

impl Organization {
    /// A new organization; `name` is trimmed and must be 1 to 200 characters.
    pub fn new(name: &str, mode: Mode, now: Timestamp) -> Result<Self, ValidationError> {
        let name =
            crate::customer::Text::parse(name).map_err(|m| ValidationError::new("name", m))?;
        Ok(Self {
            id: OrganizationId::generate(),
            name: name.as_str().to_owned(),
            mode,
            created_at: now,
        })
    }
}
