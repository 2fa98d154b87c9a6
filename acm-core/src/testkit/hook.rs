//! An acceptance hook that records its calls, for the fixture, tests and demos.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::{AcceptanceHook, AcmRequest, AcmResponse, HookError, RequestId};
use async_trait::async_trait;

/// Records each accepted request; can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingHook {
    calls: Mutex<Vec<RequestId>>,
    failing: Mutex<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RecordingHook {
    /// Requests the hook was called for, in order.
    pub fn calls(&self) -> Vec<RequestId> {
        lock(&self.calls).clone()
    }

    /// Makes later calls fail (`true`) or succeed.
    pub fn set_failing(&self, failing: bool) {
        *lock(&self.failing) = failing;
    }
}

#[async_trait]
impl AcceptanceHook for RecordingHook {
    async fn accepted(&self, request: &AcmRequest, _: &AcmResponse) -> Result<(), HookError> {
        if *lock(&self.failing) {
            return Err(HookError("configuration management unavailable".into()));
        }
        lock(&self.calls).push(request.request_id);
        Ok(())
    }
}
