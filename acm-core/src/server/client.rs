//! What an ACM client asks of its own ACM server: submit (steps 1–3), log on (6, 12), the
//! pending ACM data download and its acknowledgement (7b–8, 13b–14), respond (9), withdraw.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::id::{FunctionalAlias, IdempotencyKey, McServiceId, RequestId, SystemId};
use crate::lifecycle::{Authorization, Command, RequestState, Withdrawal};
use crate::pending::{PendingAcmData, PendingItem};
use crate::ports::{DirectoryError, Ids};
use crate::request::{
    AcmRequest, AcmRequestBody, AuthorizationRefusal, Decision, MembershipOperation,
    MigrationOperation, Target, Urgency,
};
use crate::store::{Actor, StoreError};
use crate::views::{Claim, submission_digest};

use super::{AcmServer, ServiceError, Session};

/// What a user asks to submit (step 1); the requester comes from their access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Requester's functional alias (O).
    pub requester_alias: Option<FunctionalAlias>,
    /// The partner system.
    pub partner: SystemId,
    /// Who there.
    pub target: Target,
    /// What.
    pub body: AcmRequestBody,
    /// The client's key for this submission: a retry with the same key and content gets
    /// the first answer and records nothing.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl Submission {
    /// A request of any kind: `body` to `target` in `partner`.
    pub fn new(partner: SystemId, target: Target, body: AcmRequestBody) -> Self {
        Self {
            requester_alias: None,
            partner,
            target,
            body,
            idempotency_key: None,
        }
    }

    /// An interconnection group identity provision of `groups` to `target` in `partner`.
    pub fn provision(
        partner: SystemId,
        target: Target,
        groups: impl IntoIterator<Item = crate::id::GroupId>,
    ) -> Self {
        Self::new(partner, target, AcmRequestBody::provision(groups))
    }

    /// A group membership update of `group` (homed here) for `users` of `partner`.
    pub fn membership(
        partner: SystemId,
        target: Target,
        group: crate::id::GroupId,
        users: impl IntoIterator<Item = McServiceId>,
        operation: MembershipOperation,
        urgency: Option<Urgency>,
    ) -> Self {
        Self::new(
            partner,
            target,
            AcmRequestBody::membership(group, users, operation, urgency),
        )
    }

    /// A user migration management request: `users` of this system added to or removed
    /// from those authorised to migrate to `partner`.
    pub fn migration(
        partner: SystemId,
        target: Target,
        users: impl IntoIterator<Item = McServiceId>,
        operation: MigrationOperation,
    ) -> Self {
        Self::new(partner, target, AcmRequestBody::migration(users, operation))
    }

    /// The same submission with the client's idempotency key.
    #[must_use]
    pub fn with_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

/// Which part of a request's pending data a download listed, to acknowledge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "item", content = "request_id")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DownloadedItem {
    /// A partner request (it stays pending until answered; acknowledging it changes nothing).
    Request(RequestId),
    /// The response to the user's own request.
    Response(RequestId),
    /// The notice that the user's own request was undeliverable.
    Undeliverable(RequestId),
    /// The partner's answer to the user's withdrawal.
    WithdrawalOutcome(RequestId),
}

impl PendingItem {
    /// What acknowledges this item.
    pub fn receipt(&self) -> DownloadedItem {
        match self {
            Self::Request { request, .. } => DownloadedItem::Request(request.request_id),
            Self::Response { request, .. } => DownloadedItem::Response(request.request_id),
            Self::Undeliverable { request } => DownloadedItem::Undeliverable(request.request_id),
            Self::WithdrawalOutcome { request, .. } => {
                DownloadedItem::WithdrawalOutcome(request.request_id)
            }
        }
    }
}

impl AcmServer {
    /// Steps 1–3 at the primary: records the request, checks authorisation (step 2) and, when
    /// authorised, queues it for the partner (the relay sends it).
    ///
    /// - A refusal at step 2 is recorded and returned as [`ServiceError::Refused`];
    /// - a malformed request is [`ServiceError::Domain`] and records nothing;
    /// - a directory that cannot be asked is [`ServiceError::Unavailable`] and records
    ///   nothing;
    /// - with an idempotency key, a retry of the same submission gets the first answer
    ///   (the same request id, or the same refusal) and records nothing; another submission
    ///   with the key is [`ServiceError::IdempotencyConflict`].
    pub async fn submit(
        &self,
        requester: &McServiceId,
        submission: Submission,
    ) -> Result<RequestId, ServiceError> {
        let key = submission.idempotency_key.clone();
        let request_id = self.ports.ids.request_id()?;
        let request = Arc::new(AcmRequest {
            request_id,
            requester: requester.clone(),
            requester_alias: submission.requester_alias,
            partner: submission.partner,
            target: submission.target,
            body: submission.body,
        });
        if let Some(key) = &key
            && let Some(answer) = self.earlier_submission(&request, key).await?
        {
            return answer;
        }
        let authorization = match self.check_configured(&request).await? {
            Ok(()) => self.ports.directory.authorize(&request).await?,
            Err(refusal) => Err(refusal),
        };
        let command = Command::Submit {
            request: request.clone(),
            authorization: authorization.clone(),
            limits: self.config.limits,
            message_id: self.ports.ids.message_id()?,
            at: self.ports.clock.now(),
            idempotency_key: key.clone(),
        };
        let actor = Actor::User(requester.clone());
        match self.execute(request_id, &command, &actor, None).await {
            Ok(_) => {}
            // A retry racing the first submission lost to it: answer as the first.
            Err(ServiceError::Store(StoreError::Taken(Claim::Submission { key, .. }))) => {
                if let Some(answer) = self.earlier_submission(&request, &key).await? {
                    return answer;
                }
                return Err(ServiceError::Contention(request_id));
            }
            Err(error) => return Err(error),
        }
        match authorization {
            Ok(()) => Ok(request_id),
            Err(reason) => Err(ServiceError::Refused { request_id, reason }),
        }
    }

    /// The answer to a submission made before with `key`, if there was one.
    async fn earlier_submission(
        &self,
        request: &AcmRequest,
        key: &IdempotencyKey,
    ) -> Result<Option<Result<RequestId, ServiceError>>, ServiceError> {
        let Some(earlier) = self.store.submission(&request.requester, key).await? else {
            return Ok(None);
        };
        let request_id = earlier.request_id;
        if earlier.digest != submission_digest(request) {
            return Ok(Some(Err(ServiceError::IdempotencyConflict {
                key: key.clone(),
                request_id,
            })));
        }
        Ok(Some(match self.state(request_id).await? {
            RequestState::Primary(p) => match &p.authorization {
                Authorization::Refused(reason) => Err(ServiceError::Refused {
                    request_id,
                    reason: reason.clone(),
                }),
                _ => Ok(request_id),
            },
            _ => Ok(request_id),
        }))
    }

    /// Step 2's checks of what the configuration knows, made here whatever the vendor's
    /// [`Authorizer`](crate::ports::Authorizer) answers: the partner is interconnected, every
    /// group is homed in this MC system, and the requester holds the functional alias they
    /// submit as.
    async fn check_configured(
        &self,
        request: &AcmRequest,
    ) -> Result<Result<(), AuthorizationRefusal>, DirectoryError> {
        let directory = &self.ports.directory;
        if directory
            .partner_home_domains(&request.partner)
            .await?
            .is_none()
        {
            return Ok(Err(AuthorizationRefusal::NotAPartner {
                partner: request.partner.clone(),
            }));
        }
        if let Some(group) = request.body.groups().iter().find(|g| {
            !self
                .config
                .home_domains
                .iter()
                .any(|d| d.as_str() == g.host())
        }) {
            return Ok(Err(AuthorizationRefusal::GroupNotHomedHere {
                group: group.clone(),
            }));
        }
        if let Some(alias) = &request.requester_alias {
            let held = alias.host() == self.config.system.as_str()
                && directory
                    .resolve(&Target::FunctionalAlias(alias.clone()), request.body.kind())
                    .await?
                    .is_ok_and(|holders| holders.contains(&request.requester));
            if !held {
                return Ok(Err(AuthorizationRefusal::AliasNotHeld {
                    alias: alias.clone(),
                    user: request.requester.clone(),
                }));
            }
        }
        Ok(Ok(()))
    }

    /// Steps 6/12: a user logs on. The session receives a pending ACM data notification at
    /// once when something is pending, and whenever something new becomes pending; dropping
    /// it logs this one session off (step 5). A user may hold several sessions.
    pub async fn log_on(&self, user: &McServiceId) -> Result<Session, ServiceError> {
        // Registered before the store is asked: whatever becomes pending from here on
        // raises the session, so nothing falls between the query and the registration.
        let session = self.sessions.open(user);
        if !self.store.pending_for(user).await?.is_empty() {
            session.raise();
        }
        Ok(session)
    }

    /// Whether `user` holds a session here.
    pub fn is_logged_on(&self, user: &McServiceId) -> bool {
        self.sessions.is_logged_on(user)
    }

    /// How many sessions are open.
    pub fn sessions(&self) -> usize {
        self.sessions.count()
    }

    /// Steps 7b–8 and 13b–14: the pending ACM data download. It records the delivery of each
    /// partner request to `user` (step 8: a request stays pending until answered), and
    /// nothing else: a response, a withdrawal's outcome or an undeliverable notice stays
    /// pending until [`Self::acknowledge_download`] says the client has it, so a reply lost
    /// on the wire loses nothing and a retry gets the same items.
    pub async fn download_pending(
        &self,
        user: &McServiceId,
    ) -> Result<PendingAcmData, ServiceError> {
        let ids = self.store.pending_for(user).await?;
        let actor = Actor::User(user.clone());
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            let state = match self.state(id).await? {
                RequestState::Partner(p) if !p.delivered_to.contains(user) => {
                    match self
                        .execute(id, &Command::Deliver { to: user.clone() }, &actor, None)
                        .await
                    {
                        Ok(_) => self.state(id).await?,
                        // Answered, withdrawn or expired since the list was read.
                        Err(ServiceError::Domain(error)) => {
                            tracing::debug!(%id, %error, "pending item went away during download");
                            continue;
                        }
                        Err(error) => return Err(error),
                    }
                }
                state => state,
            };
            let mut found = pending_items(&state, user);
            if found.is_empty() {
                // The store lists it and the cached state does not: another server on the
                // same store moved it on. Read the stream itself once.
                found = pending_items(&self.fresh_state(id).await?, user);
            }
            items.extend(found);
        }
        // Stable: within one urgency, the store's order (oldest request first) stays.
        items.sort_by_key(|item| std::cmp::Reverse(item.request().body.urgency()));
        Ok(PendingAcmData {
            mc_service_id: user.clone(),
            items,
        })
    }

    /// The client has the items a download listed: records their delivery (step 14) so
    /// they are no longer pending. Acknowledging an item twice, or a partner request (which
    /// stays pending until answered), changes nothing; an item that is not this user's, or
    /// unknown, is skipped (and logged), so a retry of the same list always succeeds. Returns
    /// how many events it recorded. Only a store failure is an error, and what was recorded
    /// before it stays recorded (acknowledging it again is harmless).
    pub async fn acknowledge_download(
        &self,
        user: &McServiceId,
        items: &[DownloadedItem],
    ) -> Result<usize, ServiceError> {
        let actor = Actor::User(user.clone());
        let mut recorded = 0;
        let mut ids: Vec<RequestId> = Vec::new();
        for item in items {
            match item {
                DownloadedItem::Request(_) => {}
                DownloadedItem::Response(id)
                | DownloadedItem::Undeliverable(id)
                | DownloadedItem::WithdrawalOutcome(id) => {
                    if !ids.contains(id) {
                        ids.push(*id);
                    }
                }
            }
        }
        for id in ids {
            let command = Command::DeliverResponse {
                to: user.clone(),
                response: items.contains(&DownloadedItem::Response(id)),
                undeliverable: items.contains(&DownloadedItem::Undeliverable(id)),
                withdrawal_outcome: items.contains(&DownloadedItem::WithdrawalOutcome(id)),
            };
            match self.execute(id, &command, &actor, None).await {
                Ok(events) => recorded += events.len(),
                Err(ServiceError::Domain(error)) => {
                    tracing::debug!(%id, %user, %error, "acknowledged item is not pending; skipped");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(recorded)
    }

    /// Step 9 at the partner: a recipient answers a delivered request. A retry of the same
    /// answer succeeds and records nothing.
    pub async fn respond(
        &self,
        user: &McServiceId,
        alias: Option<FunctionalAlias>,
        request_id: RequestId,
        decision: Decision,
    ) -> Result<(), ServiceError> {
        if let Some(alias) = &alias {
            // The responder functional alias is checked against the holders now, as the
            // directory knows them (TS 23.280: from the functional alias controlling server).
            let kind = self
                .state(request_id)
                .await?
                .request()
                .map(|r| r.body.kind());
            let held = match kind {
                Some(kind) => self
                    .ports
                    .directory
                    .resolve(&Target::FunctionalAlias(alias.clone()), kind)
                    .await?
                    .is_ok_and(|holders| holders.contains(user)),
                None => false,
            };
            if !held {
                return Err(DomainError::AliasNotHeld {
                    alias: alias.clone(),
                    user: user.clone(),
                }
                .into());
            }
        }
        let command = Command::Respond {
            by: user.clone(),
            alias,
            decision,
            message_id: self.ports.ids.message_id()?,
        };
        self.execute(request_id, &command, &Actor::User(user.clone()), None)
            .await?;
        Ok(())
    }

    /// The requester withdraws a request not yet delivered; the partner decides whether it
    /// is still in time.
    pub async fn withdraw(
        &self,
        user: &McServiceId,
        request_id: RequestId,
    ) -> Result<(), ServiceError> {
        let command = Command::RequestWithdrawal {
            by: user.clone(),
            message_id: self.ports.ids.message_id()?,
        };
        self.execute(request_id, &command, &Actor::User(user.clone()), None)
            .await?;
        Ok(())
    }
}

/// The items `state` holds pending for `user`.
fn pending_items(state: &RequestState, user: &McServiceId) -> Vec<PendingItem> {
    let mut items = Vec::new();
    match state {
        RequestState::Partner(p) if p.delivered_to.contains(user) && p.is_open() => {
            items.push(PendingItem::Request {
                request: p.request.clone(),
                from: p.from.clone(),
                stored_at: p.stored_at,
            });
        }
        RequestState::Primary(p) if p.request.requester == *user => {
            if p.withdrawal_outcome_pending() {
                items.push(PendingItem::WithdrawalOutcome {
                    request: p.request.clone(),
                    withdrawn: matches!(p.withdrawal, Withdrawal::Withdrawn(_)),
                });
            }
            if p.undeliverable_pending() {
                items.push(PendingItem::Undeliverable {
                    request: p.request.clone(),
                });
            }
            if let (true, Some((_, response))) = (p.response_pending(), &p.response) {
                items.push(PendingItem::Response {
                    request: p.request.clone(),
                    response: response.clone(),
                });
            }
        }
        _ => {}
    }
    items
}
