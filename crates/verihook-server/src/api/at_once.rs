//! At most a few of one kind of costly call of one organization at once: test sends
//! (`POST /v1/webhook/test`: each makes an outbound request on demand, and without a
//! bound any API key could turn the server into a traffic amplifier toward a URL of its
//! choice), and event streams (each holds a connection and reads on every event).

use super::error::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use verihook_core::OrganizationId;

pub struct AtOnce {
    limit: usize,
    /// What is bounded, for the 429's message ("test events", "event streams").
    what: &'static str,
    running: Mutex<HashMap<OrganizationId, usize>>,
}

/// One running call; its place is freed when it is dropped, however the call ends.
pub struct Place {
    bound: Arc<AtOnce>,
    organization: OrganizationId,
}

impl AtOnce {
    pub fn new(limit: usize, what: &'static str) -> Self {
        Self {
            limit,
            what,
            running: Mutex::default(),
        }
    }

    /// A place for `organization`'s call, or 429 while it has `limit` running.
    pub fn start(self: &Arc<Self>, organization: &OrganizationId) -> Result<Place, ApiError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let n = running.entry(organization.clone()).or_default();
        if *n >= self.limit {
            return Err(ApiError::rate_limited(format!(
                "at most {} {} of an organization at once; retry when one has ended",
                self.limit, self.what
            )));
        }
        *n += 1;
        Ok(Place {
            bound: self.clone(),
            organization: organization.clone(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut running = self
            .bound
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = running.get_mut(&self.organization) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.organization);
            }
        }
    }
}
