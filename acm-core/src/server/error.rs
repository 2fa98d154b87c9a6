//! Why a service call failed: a refusal of the lifecycle, of step 2, or of the idempotency
//! key, kept apart from failures of the store and the directory.

use crate::error::DomainError;
use crate::id::{IdempotencyKey, RequestId};
use crate::ports::{DirectoryError, IdSourceError};
use crate::request::AuthorizationRefusal;
use crate::store::StoreError;

use super::config::ConfigError;

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The lifecycle refused the command; nothing was recorded.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Step 2 refused the request; the refusal is recorded under `request_id`.
    #[error("request {request_id} refused: {reason}")]
    Refused {
        /// The recorded request.
        request_id: RequestId,
        /// Why.
        reason: AuthorizationRefusal,
    },
    /// The idempotency key was used before for another submission; nothing was recorded.
    #[error("idempotency key {key} was used for another submission (request {request_id})")]
    IdempotencyConflict {
        /// The key.
        key: IdempotencyKey,
        /// The request the key names.
        request_id: RequestId,
    },
    /// A directory could not be asked; nothing final was recorded. Try again later.
    #[error(transparent)]
    Unavailable(#[from] DirectoryError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stream kept changing under the command; try again.
    #[error("request {0} is busy; try again")]
    Contention(RequestId),
    /// The vendor's id source broke its promise; nothing was recorded.
    #[error(transparent)]
    Ids(#[from] IdSourceError),
    /// The server's configuration is out of range; it was not opened.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
