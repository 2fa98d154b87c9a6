//! Messages from partner ACM servers: a request (steps 4a/4b), a response (11), a withdrawal.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::DomainError;
use crate::id::{McServiceId, MessageId, RequestId, SystemId};
use crate::lifecycle::{Command, ReceiptFacts, RequestState};
use crate::message::{PartnerAck, PartnerMessage};
use crate::ports::{DirectoryError, Ids};
use crate::request::{AcmRequestBody, AcmRequestKind, Processing, Target, VerificationFailure};
use crate::store::{Actor, CausationId, StoreError};
use crate::views::{Claim, Digest, request_digest, response_digest};

use super::{AcmServer, ServiceError};

/// Where partner messages for a server arrive: implemented by [`AcmServer`], called by
/// transports (the in-process network, the HTTP server).
#[async_trait]
pub trait PartnerInbox: Send + Sync {
    /// Receives a message from an authenticated partner system.
    async fn receive(
        &self,
        from: &SystemId,
        message: PartnerMessage,
    ) -> Result<PartnerAck, ServiceError>;
}

#[async_trait]
impl PartnerInbox for AcmServer {
    async fn receive(
        &self,
        from: &SystemId,
        message: PartnerMessage,
    ) -> Result<PartnerAck, ServiceError> {
        AcmServer::receive(self, from, message).await
    }
}

impl AcmServer {
    /// Receives a message from partner system `from` (authenticated by the transport) and
    /// returns its acknowledgement once the message is durably stored.
    ///
    /// A message stored before is acknowledged again and stored once (the store's inbox
    /// knows it by id and content); a message id that names another request or content is
    /// refused ([`DomainError::MessageIdReused`]). When a directory cannot be asked the
    /// answer is [`ServiceError::Unavailable`] and nothing is recorded, so the sender keeps
    /// the message and tries again.
    pub async fn receive(
        &self,
        from: &SystemId,
        message: PartnerMessage,
    ) -> Result<PartnerAck, ServiceError> {
        let actor = Actor::System(from.clone());
        let causation = Some(CausationId::from(message.message_id()));
        match message {
            PartnerMessage::Request {
                message_id,
                request,
            } => {
                let request_id = request.request_id;
                let digest = request_digest(from, &request);
                if self.seen(message_id, request_id, digest).await? {
                    return Ok(PartnerAck::Stored);
                }
                let home_domains = self.ports.directory.partner_home_domains(from).await?;
                let interconnected = home_domains.is_some();
                let kind = request.body.kind();
                let (recipients, processing) = if interconnected {
                    (
                        self.recipients(&request.target, kind).await?,
                        self.ports.directory.processing(kind, from).await?,
                    )
                } else {
                    (Ok(Arc::from([])), Processing::Manual)
                };
                let (group_known, unknown_users) = if interconnected {
                    self.membership_facts(from, &request.body).await?
                } else {
                    (true, Vec::new())
                };
                let command = Command::Receive {
                    from: from.clone(),
                    message_id,
                    request,
                    facts: ReceiptFacts {
                        local: self.config.system.clone(),
                        interconnected,
                        home_domains: home_domains.unwrap_or_default(),
                        recipients,
                        processing,
                        group_known,
                        unknown_users,
                        limits: self.config.limits,
                    },
                    response_message_id: self.ports.ids.message_id()?,
                    at: self.ports.clock.now(),
                };
                self.receive_command(request_id, message_id, digest, &command, &actor, causation)
                    .await
            }
            PartnerMessage::Response {
                message_id,
                request_id,
                response,
            } => {
                let digest = response_digest(from, request_id, &response);
                if self.seen(message_id, request_id, digest).await? {
                    return Ok(PartnerAck::Stored);
                }
                self.require_partner(from).await?;
                let command = Command::ReceiveResponse {
                    from: from.clone(),
                    message_id,
                    response,
                };
                self.receive_command(request_id, message_id, digest, &command, &actor, causation)
                    .await
            }
            PartnerMessage::Withdrawal { request_id, .. } => {
                self.require_partner(from).await?;
                let command = Command::ReceiveWithdrawal { from: from.clone() };
                let events = self
                    .execute(request_id, &command, &actor, causation)
                    .await?;
                // Committed now: the answer comes from what was recorded, with no read that
                // could fail after the commit.
                if events.contains(&crate::event::Event::Withdrawn) {
                    return Ok(PartnerAck::Withdrawn);
                }
                // Nothing recorded: decided before (a repeat) or too late; nothing to lose.
                Ok(match self.state(request_id).await? {
                    RequestState::Partner(p) if p.withdrawn => PartnerAck::Withdrawn,
                    _ => PartnerAck::TooLate,
                })
            }
        }
    }

    /// For a group membership update: whether its group is an interconnection group here,
    /// and which listed users of this system the directory does not know. The outer error is
    /// a directory that could not be asked.
    async fn membership_facts(
        &self,
        from: &SystemId,
        body: &AcmRequestBody,
    ) -> Result<(bool, Vec<McServiceId>), DirectoryError> {
        let AcmRequestBody::GroupMembershipUpdate { group, users, .. } = body else {
            return Ok((true, Vec::new()));
        };
        let directory = &self.ports.directory;
        let known = directory.is_interconnection_group(group, from).await?;
        let mut unknown = Vec::new();
        // Bounded by the receiver's `max_users` only after validation; an over-long list
        // fails verification as malformed, so it is not looked up user by user.
        if users.len() <= self.config.limits.max_users {
            for user in users.iter() {
                if user.host() == self.config.system.as_str()
                    && !directory.is_user(user, body.kind()).await?
                {
                    unknown.push(user.clone());
                }
            }
        }
        Ok((known, unknown))
    }

    /// Refuses a message from a system that is not an interconnected partner.
    async fn require_partner(&self, from: &SystemId) -> Result<(), ServiceError> {
        match self.ports.directory.partner_home_domains(from).await? {
            Some(_) => Ok(()),
            None => Err(DomainError::NotInterconnected {
                system: from.clone(),
            }
            .into()),
        }
    }

    /// Whether the store's inbox holds this very message; a message id it holds for another
    /// request or content is refused.
    async fn seen(
        &self,
        message_id: MessageId,
        request_id: RequestId,
        digest: Digest,
    ) -> Result<bool, ServiceError> {
        match self.store.received(message_id).await? {
            None => Ok(false),
            Some(entry) if entry.request_id == request_id && entry.digest == digest => Ok(true),
            Some(_) => Err(DomainError::MessageIdReused { message_id }.into()),
        }
    }

    async fn receive_command(
        &self,
        request_id: RequestId,
        message_id: MessageId,
        digest: Digest,
        command: &Command,
        actor: &Actor,
        causation: Option<CausationId>,
    ) -> Result<PartnerAck, ServiceError> {
        match self.execute(request_id, command, actor, causation).await {
            Ok(_) => Ok(PartnerAck::Stored),
            // Another message with this id won the race to the store.
            Err(ServiceError::Store(StoreError::Taken(Claim::Message(_)))) => {
                if self.seen(message_id, request_id, digest).await? {
                    Ok(PartnerAck::Stored)
                } else {
                    Err(DomainError::MessageIdReused { message_id }.into())
                }
            }
            Err(error) => Err(error),
        }
    }

    /// The users `target` resolves to who may receive a request of `kind` here: every
    /// resolved user (an alias's holders, the administrators) is checked as a direct target
    /// would be, so a holder unknown here, of another system, or who may not receive is not
    /// offered the request. The outer error is a directory that could not be asked.
    async fn recipients(
        &self,
        target: &Target,
        kind: AcmRequestKind,
    ) -> Result<Result<Arc<[McServiceId]>, VerificationFailure>, DirectoryError> {
        let resolved = match self.ports.directory.resolve(target, kind).await? {
            Ok(users) => users,
            Err(failure) => return Ok(Err(failure)),
        };
        let mut eligible: Vec<McServiceId> = Vec::with_capacity(resolved.len());
        for user in resolved {
            if user.host() != self.config.system.as_str() || eligible.contains(&user) {
                continue;
            }
            // A direct target was resolved as a user already; an alias holder or an
            // administrator is asked about as one.
            let may_receive = matches!(target, Target::User(_))
                || self
                    .ports
                    .directory
                    .resolve(&Target::User(user.clone()), kind)
                    .await?
                    .is_ok_and(|users| users.contains(&user));
            if may_receive {
                eligible.push(user);
            } else {
                tracing::debug!(%user, %target, "resolved user may not receive; not offered");
            }
        }
        if eligible.is_empty() {
            return Ok(Err(VerificationFailure::NoEligibleRecipient));
        }
        Ok(Ok(eligible.into()))
    }
}
