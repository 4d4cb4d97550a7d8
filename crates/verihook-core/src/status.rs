//! The verification statuses and the workflow between them (docs/verification-workflow.md
//! draws it).
//!
//! ```text
//! CREATED ──(data complete)──▶ UNDER_REVIEW ──▶ ACTIVE ◀──▶ DEACTIVATED
//!                                 │   ▲    └──▶ REJECTED (final)
//!                                 ▼   │ (data resubmitted)
//!                      NEEDS_ADDITIONAL_INFORMATION
//! ```

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomerStatus {
    Created,
    UnderReview,
    NeedsAdditionalInformation,
    Active,
    Rejected,
    Deactivated,
}

/// The input names no status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status; expected one of CREATED, UNDER_REVIEW, NEEDS_ADDITIONAL_INFORMATION, ACTIVE, REJECTED, DEACTIVATED")]
pub struct UnknownStatus;

/// Who asks for a change decides which changes are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionPolicy {
    /// The verification workflow: live decisions and data-driven moves.
    Workflow,
    /// The sandbox may force any status, so integrators can test every event.
    Sandbox,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("customer is already {0}")]
    Unchanged(CustomerStatus),
    #[error("the verification workflow does not allow {from} → {to}")]
    NotAllowed {
        from: CustomerStatus,
        to: CustomerStatus,
    },
    #[error("customer data is incomplete: dateOfBirth and an address with line1, city, postalCode and country are required before review")]
    DataIncomplete,
}

impl CustomerStatus {
    pub const ALL: [CustomerStatus; 6] = [
        Self::Created,
        Self::UnderReview,
        Self::NeedsAdditionalInformation,
        Self::Active,
        Self::Rejected,
        Self::Deactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::UnderReview => "UNDER_REVIEW",
            Self::NeedsAdditionalInformation => "NEEDS_ADDITIONAL_INFORMATION",
            Self::Active => "ACTIVE",
            Self::Rejected => "REJECTED",
            Self::Deactivated => "DEACTIVATED",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(UnknownStatus)
    }

    /// The edges of the workflow, ignoring the data-completeness condition.
    fn workflow_allows(self, to: Self) -> bool {
        use CustomerStatus::*;
        matches!(
            (self, to),
            (Created, UnderReview)
                | (UnderReview, Active | Rejected | NeedsAdditionalInformation)
                | (NeedsAdditionalInformation, UnderReview)
                | (Active, Deactivated)
                | (Deactivated, Active)
        )
    }

    /// Whether `self → to` may happen under `policy`. `data_complete` says whether the
    /// customer has the data a review needs; only entering review from CREATED asks for it
    /// (a customer back from NEEDS_ADDITIONAL_INFORMATION is re-reviewed on the
    /// verification team's word).
    pub fn check_transition(
        self,
        to: Self,
        policy: TransitionPolicy,
        data_complete: bool,
    ) -> Result<(), TransitionError> {
        if self == to {
            return Err(TransitionError::Unchanged(self));
        }
        if policy == TransitionPolicy::Sandbox {
            return Ok(());
        }
        if !self.workflow_allows(to) {
            return Err(TransitionError::NotAllowed { from: self, to });
        }
        if self == Self::Created && !data_complete {
            return Err(TransitionError::DataIncomplete);
        }
        Ok(())
    }

    /// A change into this status completes verification (`verification.completed`).
    pub fn completes_verification(self) -> bool {
        matches!(self, Self::Active | Self::Rejected | Self::Deactivated)
    }
}

impl fmt::Display for CustomerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for CustomerStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::CustomerStatus::*;
    use super::*;

    const ALLOWED: [(CustomerStatus, CustomerStatus); 7] = [
        (Created, UnderReview),
        (UnderReview, Active),
        (UnderReview, Rejected),
        (UnderReview, NeedsAdditionalInformation),
        (NeedsAdditionalInformation, UnderReview),
        (Active, Deactivated),
        (Deactivated, Active),
    ];

    #[test]
    fn every_pair_follows_the_workflow() {
        for from in CustomerStatus::ALL {
            for to in CustomerStatus::ALL {
                let result = from.check_transition(to, TransitionPolicy::Workflow, true);
                let expected = if from == to {
                    Err(TransitionError::Unchanged(from))
                } else if ALLOWED.contains(&(from, to)) {
                    Ok(())
                } else {
                    Err(TransitionError::NotAllowed { from, to })
                };
                assert_eq!(result, expected, "{from} → {to}");
            }
        }
    }

    #[test]
    fn rejected_is_final() {
        for to in CustomerStatus::ALL {
            assert!(Rejected
                .check_transition(to, TransitionPolicy::Workflow, true)
                .is_err());
        }
    }

    #[test]
    fn review_needs_complete_data_only_from_created() {
        assert_eq!(
            Created.check_transition(UnderReview, TransitionPolicy::Workflow, false),
            Err(TransitionError::DataIncomplete)
        );
        assert_eq!(
            NeedsAdditionalInformation.check_transition(
                UnderReview,
                TransitionPolicy::Workflow,
                false
            ),
            Ok(())
        );
    }

    #[test]
    fn sandbox_forces_anything_but_the_same_status() {
        for from in CustomerStatus::ALL {
            for to in CustomerStatus::ALL {
                let result = from.check_transition(to, TransitionPolicy::Sandbox, false);
                assert_eq!(result.is_ok(), from != to, "{from} → {to}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_fail() {
        for status in CustomerStatus::ALL {
            assert_eq!(CustomerStatus::parse(status.as_str()), Ok(status));
        }
        assert_eq!(CustomerStatus::parse("active"), Err(UnknownStatus));
        assert_eq!(CustomerStatus::parse(""), Err(UnknownStatus));
    }

    #[test]
    fn completion_statuses() {
        let completing: Vec<_> = CustomerStatus::ALL
            .into_iter()
            .filter(|s| s.completes_verification())
            .collect();
        assert_eq!(completing, [Active, Rejected, Deactivated]);
    }
}
