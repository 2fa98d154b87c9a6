//! Logged-on users' sessions and the pending ACM data notifications they receive.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use foldhash::HashMap;

use super::signal::Signal;

use crate::id::McServiceId;
use crate::ports::PendingAcmDataNotification;

/// Who is logged on here, by user; a user may hold several sessions (two clients).
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_user: Mutex<HashMap<McServiceId, Vec<Arc<Signal>>>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<McServiceId, Vec<Arc<Signal>>>> {
        self.by_user.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a session for `user`.
    pub(crate) fn open(self: &Arc<Self>, user: &McServiceId) -> Session {
        let slot = Arc::new(Signal::default());
        self.lock()
            .entry(user.clone())
            .or_default()
            .push(slot.clone());
        Session {
            user: user.clone(),
            slot,
            sessions: self.clone(),
        }
    }

    /// Tells every session of `user` that ACM data is pending.
    pub(crate) fn notify(&self, user: &McServiceId) {
        if let Some(slots) = self.lock().get(user) {
            for slot in slots {
                slot.raise();
            }
        }
    }

    pub(crate) fn is_logged_on(&self, user: &McServiceId) -> bool {
        self.lock().contains_key(user)
    }

    pub(crate) fn count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn close(&self, user: &McServiceId, slot: &Arc<Signal>) {
        let mut by_user = self.lock();
        if let Some(slots) = by_user.get_mut(user) {
            slots.retain(|s| !Arc::ptr_eq(s, slot));
            if slots.is_empty() {
                by_user.remove(user);
            }
        }
    }
}

/// A logged-on user's session (steps 6 and 12): it receives the pending ACM data
/// notifications for its user, and dropping it logs that one session off (step 5).
///
/// Whoever holds the session receives the notices: one for what was pending at log-on, and
/// one whenever something new becomes pending. Notices that arrive before the previous one
/// was taken merge into one; the data itself stays pending in the store until downloaded.
#[derive(Debug)]
pub struct Session {
    user: McServiceId,
    slot: Arc<Signal>,
    sessions: Arc<Sessions>,
}

impl Session {
    /// The user.
    pub fn user(&self) -> &McServiceId {
        &self.user
    }

    /// The notification waiting for this session, if any, taking it.
    pub fn try_next(&self) -> Option<PendingAcmDataNotification> {
        self.slot.take().then(|| self.notice())
    }

    /// Waits for the next notification.
    pub async fn next(&self) -> PendingAcmDataNotification {
        self.slot.wait().await;
        self.notice()
    }

    fn notice(&self) -> PendingAcmDataNotification {
        PendingAcmDataNotification {
            mc_service_id: self.user.clone(),
        }
    }

    pub(crate) fn raise(&self) {
        self.slot.raise();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.sessions.close(&self.user, &self.slot);
    }
}
