//! The ACM server's durable outbox: [`OutboxLedger`] over the store's outbox table.

use acm_core::Event;
use acm_core::id::MessageId;
use acm_core::ports::{OutboxLedger, OwedMessage};
use acm_core::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::BackendError;
use crate::store::SqliteStore;

#[async_trait]
impl OutboxLedger for SqliteStore<Event> {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: usize,
    ) -> Result<Vec<OwedMessage>, StoreError> {
        if !self.is_projected() {
            // Without the projection the outbox table is never filled: relaying from it would
            // silently send nothing.
            return Err(BackendError::NoProjection.into());
        }
        Ok(self
            .claim_outbox(now, lease, limit)
            .await?
            .into_iter()
            .map(|row| OwedMessage {
                request_id: row.request_id,
                message_id: row.message_id,
                attempts: row.attempts,
            })
            .collect())
    }

    async fn failed(
        &self,
        message_id: MessageId,
        retry_at: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        self.outbox_failed(message_id, retry_at).await
    }
}
