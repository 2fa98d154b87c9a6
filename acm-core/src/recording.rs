//! Port implementations that record what they are given, and a clock that moves only when
//! told: for tests, demos and replayable runs.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::id::RequestId;
use crate::ports::{AcceptanceHook, ClientNotifier, Clock, HookError, PendingAcmDataNotification};
use crate::request::{AcmRequest, AcmResponse};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A clock that moves only when told.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0)
                .single()
                .unwrap_or_default(),
        )
    }
}

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    /// Moves the clock forward (or back, for a negative `by`), stopping at the ends of
    /// chrono's range rather than overflowing.
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.now);
        *now = now
            .checked_add_signed(by)
            .unwrap_or(if by < Duration::zero() {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            });
    }

    /// Sets the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        *lock(&self.now) = now;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.now)
    }
}

/// Records every pending ACM data notification.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    sent: Mutex<Vec<PendingAcmDataNotification>>,
}

impl RecordingNotifier {
    /// Takes the notifications sent since the last call.
    pub fn take(&self) -> Vec<PendingAcmDataNotification> {
        std::mem::take(&mut *lock(&self.sent))
    }
}

#[async_trait]
impl ClientNotifier for RecordingNotifier {
    async fn notify(&self, notification: PendingAcmDataNotification) {
        lock(&self.sent).push(notification);
    }
}

/// Records each accepted request; can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingHook {
    calls: Mutex<Vec<RequestId>>,
    failing: Mutex<bool>,
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
