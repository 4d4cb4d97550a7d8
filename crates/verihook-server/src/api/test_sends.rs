//! At most a few test sends (`POST /v1/webhook/test`) of one organization at once: each
//! makes an outbound request on demand, and without a bound any API key could turn the
//! server into a traffic amplifier toward a URL of its choice.

use super::error::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use verihook_core::OrganizationId;

/// Test sends of one organization at once.
pub const AT_ONCE: usize = 3;

#[derive(Default)]
pub struct TestSends {
    running: Mutex<HashMap<OrganizationId, usize>>,
}

/// One running test send; its place is freed when it is dropped, however the call ends.
pub struct Running {
    sends: Arc<TestSends>,
    organization: OrganizationId,
}

impl TestSends {
    /// A place for `organization`'s test send, or 429 while it has [`AT_ONCE`] running.
    pub fn start(self: &Arc<Self>, organization: &OrganizationId) -> Result<Running, ApiError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let n = running.entry(organization.clone()).or_default();
        if *n >= AT_ONCE {
            return Err(ApiError::rate_limited(format!(
                "at most {AT_ONCE} test events of an organization at once; retry when one has answered"
            )));
        }
        *n += 1;
        Ok(Running {
            sends: self.clone(),
            organization: organization.clone(),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self
            .sends
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
