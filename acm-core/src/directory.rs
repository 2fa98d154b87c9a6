//! A directory held in memory: configuration as data, for embedding, tests and the demo.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::id::{FunctionalAlias, GroupId, McServiceId, SystemId};
use crate::ports::{
    Authorizer, DirectoryError, Interconnections, Lookup, ProcessingPolicy, Recipients,
};
use crate::request::{
    AcmRequest, AcmRequestKind, AuthorizationRefusal, Processing, Target, VerificationFailure,
};

#[derive(Debug, Default)]
struct Tables {
    partners: HashMap<SystemId, Vec<SystemId>>,
    processing: HashMap<AcmRequestKind, Processing>,
    providers: HashSet<(McServiceId, SystemId, AcmRequestKind)>,
    users: HashMap<McServiceId, bool>,
    aliases: HashMap<FunctionalAlias, Vec<McServiceId>>,
    administrators: Vec<McServiceId>,
    interconnection_groups: HashSet<GroupId>,
}

/// An in-memory [`Directory`](crate::ports::Directory) for one MC system.
///
/// ```
/// use acm_core::StaticDirectory;
/// let dir = StaticDirectory::new("mc-a.example".parse().unwrap())
///     .with_partner("mc-b.example".parse().unwrap(), vec!["mc-b.example".parse().unwrap()])
///     .with_user("sip:alice@mc-a.example".parse().unwrap(), true);
/// assert!(dir.has_user(&"sip:alice@mc-a.example".parse().unwrap()));
/// ```
#[derive(Debug)]
pub struct StaticDirectory {
    system: SystemId,
    tables: RwLock<Tables>,
    unavailable: AtomicBool,
}

impl StaticDirectory {
    /// An empty directory for `system`: no partners, no users.
    pub fn new(system: SystemId) -> Self {
        Self {
            system,
            tables: RwLock::new(Tables::default()),
            unavailable: AtomicBool::new(false),
        }
    }

    fn write(&self, f: impl FnOnce(&mut Tables)) {
        let mut t = self
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut t);
    }

    fn read<R>(&self, f: impl FnOnce(&Tables) -> R) -> R {
        let t = self
            .tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&t)
    }

    /// Adds an interconnected partner and the domains it is the group home system for.
    #[must_use]
    pub fn with_partner(self, partner: SystemId, home_domains: Vec<SystemId>) -> Self {
        self.write(|t| {
            t.partners.insert(partner, home_domains);
        });
        self
    }

    /// Makes `group` (homed at a partner) known here as an interconnection group, as an
    /// accepted interconnection group identity provision would.
    #[must_use]
    pub fn with_interconnection_group(self, group: GroupId) -> Self {
        self.add_interconnection_group(group);
        self
    }

    /// Adds an interconnection group known here.
    pub fn add_interconnection_group(&self, group: GroupId) {
        self.write(|t| {
            t.interconnection_groups.insert(group);
        });
    }

    /// Sets how requests of `kind` are processed here (manual by default).
    #[must_use]
    pub fn with_processing(self, kind: AcmRequestKind, processing: Processing) -> Self {
        self.set_processing(kind, processing);
        self
    }

    /// Changes how requests of `kind` are processed here.
    pub fn set_processing(&self, kind: AcmRequestKind, processing: Processing) {
        self.write(|t| {
            t.processing.insert(kind, processing);
        });
    }

    /// Allows `user` to provide interconnection group IDs to `partner`.
    #[must_use]
    pub fn with_provider(self, user: McServiceId, partner: SystemId) -> Self {
        self.with_permission(
            user,
            partner,
            AcmRequestKind::InterconnectionGroupIdentityProvision,
        )
    }

    /// Allows `user` to send ACM requests of `kind` to `partner` (step 2).
    #[must_use]
    pub fn with_permission(
        self,
        user: McServiceId,
        partner: SystemId,
        kind: AcmRequestKind,
    ) -> Self {
        self.grant(user, partner, kind);
        self
    }

    /// Allows `user` to send ACM requests of `kind` to `partner` from now on.
    pub fn grant(&self, user: McServiceId, partner: SystemId, kind: AcmRequestKind) {
        self.write(|t| {
            t.providers.insert((user, partner, kind));
        });
    }

    /// Adds a user of this system, who may or may not receive ACM requests.
    #[must_use]
    pub fn with_user(self, user: McServiceId, may_receive: bool) -> Self {
        self.write(|t| {
            t.users.insert(user, may_receive);
        });
        self
    }

    /// Adds an ACM administrator (receives requests addressed to the partner server itself).
    #[must_use]
    pub fn with_administrator(self, user: McServiceId) -> Self {
        self.write(|t| {
            t.users.insert(user.clone(), true);
            t.administrators.push(user);
        });
        self
    }

    /// Sets who currently holds a functional alias.
    pub fn set_alias_holders(&self, alias: FunctionalAlias, holders: Vec<McServiceId>) {
        self.write(|t| {
            t.aliases.insert(alias, holders);
        });
    }

    /// The MC system this directory describes.
    pub fn system(&self) -> &SystemId {
        &self.system
    }

    /// Makes every lookup fail with a [`DirectoryError`] (`false`) or answer again (`true`),
    /// as a directory server going down and coming back would.
    pub fn set_available(&self, available: bool) {
        self.unavailable.store(!available, Ordering::SeqCst);
    }

    fn reachable(&self) -> Result<(), DirectoryError> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(DirectoryError::new(format!(
                "directory of {} is down",
                self.system
            )))
        } else {
            Ok(())
        }
    }

    /// Whether `user` is known here.
    pub fn has_user(&self, user: &McServiceId) -> bool {
        self.read(|t| t.users.contains_key(user))
    }
}

#[async_trait]
impl Authorizer for StaticDirectory {
    async fn authorize(&self, request: &AcmRequest) -> Lookup<(), AuthorizationRefusal> {
        self.reachable()?;
        // Interconnection, home domains and the requester's alias are the server's own
        // checks (see `Authorizer`); what is left here is the provider table.
        self.read(|t| {
            if !t.providers.contains(&(
                request.requester.clone(),
                request.partner.clone(),
                request.body.kind(),
            )) {
                return Ok(Err(AuthorizationRefusal::NotAuthorized {
                    user: request.requester.clone(),
                    partner: request.partner.clone(),
                }));
            }
            Ok(Ok(()))
        })
    }
}

#[async_trait]
impl Interconnections for StaticDirectory {
    async fn partner_home_domains(
        &self,
        system: &SystemId,
    ) -> Result<Option<Vec<SystemId>>, DirectoryError> {
        self.reachable()?;
        Ok(self.read(|t| t.partners.get(system).cloned()))
    }

    async fn is_interconnection_group(
        &self,
        group: &GroupId,
        from: &SystemId,
    ) -> Result<bool, DirectoryError> {
        self.reachable()?;
        Ok(self.read(|t| {
            t.interconnection_groups.contains(group)
                && t.partners
                    .get(from)
                    .is_some_and(|homes| homes.iter().any(|d| d.as_str() == group.host()))
        }))
    }
}

#[async_trait]
impl Recipients for StaticDirectory {
    async fn resolve(
        &self,
        target: &Target,
        _kind: AcmRequestKind,
    ) -> Lookup<Vec<McServiceId>, VerificationFailure> {
        self.reachable()?;
        Ok(self.read(|t| match target {
            Target::User(user) => match t.users.get(user) {
                None => Err(VerificationFailure::UnknownTarget { user: user.clone() }),
                Some(false) => Err(VerificationFailure::TargetMayNotReceive { user: user.clone() }),
                Some(true) => Ok(vec![user.clone()]),
            },
            Target::FunctionalAlias(alias) => match t.aliases.get(alias) {
                Some(holders) if !holders.is_empty() => Ok(holders.clone()),
                _ => Err(VerificationFailure::AliasNotHeld {
                    alias: alias.clone(),
                }),
            },
            Target::PartnerServer => {
                if t.administrators.is_empty() {
                    Err(VerificationFailure::NoAdministrator)
                } else {
                    Ok(t.administrators.clone())
                }
            }
        }))
    }
}

#[async_trait]
impl ProcessingPolicy for StaticDirectory {
    async fn processing(
        &self,
        kind: AcmRequestKind,
        _from: &SystemId,
    ) -> Result<Processing, DirectoryError> {
        self.reachable()?;
        Ok(self.read(|t| t.processing.get(&kind).copied().unwrap_or_default()))
    }
}

/// A [`Directory`](crate::ports::Directory) assembled from one implementation of each part,
/// so that a vendor replaces only the parts it has (say, its own user database as
/// [`Recipients`]) and keeps the others.
///
/// ```
/// use std::sync::Arc;
/// use acm_core::{ComposedDirectory, StaticDirectory};
/// let config = Arc::new(StaticDirectory::new("mc-b.example".parse().unwrap()));
/// let directory = ComposedDirectory { recipients: config.clone(), ..ComposedDirectory::from(config) };
/// # let _: Arc<dyn acm_core::Directory> = Arc::new(directory);
/// ```
#[derive(Clone)]
pub struct ComposedDirectory {
    /// Step 2.
    pub authorizer: Arc<dyn Authorizer>,
    /// Partners and their home domains.
    pub interconnections: Arc<dyn Interconnections>,
    /// Users, aliases, administrators.
    pub recipients: Arc<dyn Recipients>,
    /// Manual or automatic processing.
    pub processing: Arc<dyn ProcessingPolicy>,
}

impl std::fmt::Debug for ComposedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComposedDirectory").finish_non_exhaustive()
    }
}

impl From<Arc<StaticDirectory>> for ComposedDirectory {
    fn from(d: Arc<StaticDirectory>) -> Self {
        Self {
            authorizer: d.clone(),
            interconnections: d.clone(),
            recipients: d.clone(),
            processing: d,
        }
    }
}

#[async_trait]
impl Authorizer for ComposedDirectory {
    async fn authorize(&self, request: &AcmRequest) -> Lookup<(), AuthorizationRefusal> {
        self.authorizer.authorize(request).await
    }
}

#[async_trait]
impl Interconnections for ComposedDirectory {
    async fn partner_home_domains(
        &self,
        system: &SystemId,
    ) -> Result<Option<Vec<SystemId>>, DirectoryError> {
        self.interconnections.partner_home_domains(system).await
    }

    async fn is_interconnection_group(
        &self,
        group: &GroupId,
        from: &SystemId,
    ) -> Result<bool, DirectoryError> {
        self.interconnections
            .is_interconnection_group(group, from)
            .await
    }
}

#[async_trait]
impl Recipients for ComposedDirectory {
    async fn resolve(
        &self,
        target: &Target,
        kind: AcmRequestKind,
    ) -> Lookup<Vec<McServiceId>, VerificationFailure> {
        self.recipients.resolve(target, kind).await
    }

    async fn is_user(
        &self,
        user: &McServiceId,
        kind: AcmRequestKind,
    ) -> Result<bool, DirectoryError> {
        self.recipients.is_user(user, kind).await
    }
}

#[async_trait]
impl ProcessingPolicy for ComposedDirectory {
    async fn processing(
        &self,
        kind: AcmRequestKind,
        from: &SystemId,
    ) -> Result<Processing, DirectoryError> {
        self.processing.processing(kind, from).await
    }
}
