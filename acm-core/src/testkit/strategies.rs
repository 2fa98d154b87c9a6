//! Proptest strategies for acm's values: identifiers, requests, commands and events, for test
//! teams property-testing their own code around acm.
//!
//! ```
//! use acm_core::testkit::strategies;
//! use proptest::prelude::*;
//! proptest!(|(user in strategies::mc_service_id("mc-b.example"))| {
//!     prop_assert_eq!(user.host(), "mc-b.example");
//! });
//! ```

use std::sync::Arc;

use proptest::prelude::*;

use crate::event::Event;
use crate::id::{FunctionalAlias, GroupId, IdempotencyKey, McServiceId, RequestId, SystemId};
use crate::lifecycle::{Command, RequestState, decide, evolve};
use crate::request::{AcmRequest, AcmRequestBody, Target};

use super::acm::{Step, command, step_strategy};

fn user_part() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9._-]{0,15}"
}

/// A system id: `mc-<x>.example`.
pub fn system_id() -> impl Strategy<Value = SystemId> {
    "[a-z]{1,8}".prop_filter_map("a domain", |s| format!("mc-{s}.example").parse().ok())
}

/// A user of `system`.
pub fn mc_service_id(system: &str) -> impl Strategy<Value = McServiceId> {
    let system = system.to_owned();
    user_part().prop_filter_map("a SIP URI", move |u| {
        format!("sip:{u}@{system}").parse().ok()
    })
}

/// A group homed at `system`.
pub fn group_id(system: &str) -> impl Strategy<Value = GroupId> {
    let system = system.to_owned();
    user_part().prop_filter_map("a SIP URI", move |u| {
        format!("sip:{u}@{system}").parse().ok()
    })
}

/// A functional alias of `system`.
pub fn functional_alias(system: &str) -> impl Strategy<Value = FunctionalAlias> {
    let system = system.to_owned();
    user_part().prop_filter_map("a SIP URI", move |u| {
        format!("sip:{u}@{system}").parse().ok()
    })
}

/// A request id (UUID v7).
pub fn request_id() -> impl Strategy<Value = RequestId> {
    any::<u64>().prop_map(|n| super::acm::request_id(n % 1_000_000))
}

/// An idempotency key.
pub fn idempotency_key() -> impl Strategy<Value = IdempotencyKey> {
    "[!-~]{1,64}".prop_filter_map("visible ASCII", |s| s.parse().ok())
}

/// A provision request from a user of `primary` to a user of `partner`, with 1–5 groups
/// homed at `primary` (they may repeat: `validate` refuses duplicates).
pub fn request(primary: &str, partner: &str) -> impl Strategy<Value = Arc<AcmRequest>> {
    let partner_id: SystemId = partner
        .parse()
        .unwrap_or_else(|_| unreachable_system(partner));
    (
        request_id(),
        mc_service_id(primary),
        mc_service_id(partner),
        proptest::collection::vec(group_id(primary), 1..=5),
    )
        .prop_map(move |(request_id, requester, target, groups)| {
            Arc::new(AcmRequest {
                request_id,
                requester,
                requester_alias: None,
                partner: partner_id.clone(),
                target: Target::User(target),
                body: AcmRequestBody::provision(groups),
            })
        })
}

fn unreachable_system(s: &str) -> SystemId {
    panic!("{s} is not a system id")
}

/// A history step of the ACM store conformance suite (requests 0–5).
pub fn step() -> impl Strategy<Value = Step> {
    step_strategy(3)
}

/// A command, as a step of a history would give it.
pub fn any_command() -> impl Strategy<Value = Command> {
    step().prop_map(|s| command(&s).1)
}

/// The events a history of up to `len` steps records for one request, in order: every
/// prefix is a log that `decide` could have written.
pub fn events(len: usize) -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(step(), 1..=len.max(1)).prop_map(|steps| {
        let mut state = RequestState::Empty;
        let mut log = Vec::new();
        for s in steps {
            let (n, cmd) = command(&s);
            // One request: the primary's (0) or the partner's (1), whichever comes first.
            if n > 1 {
                continue;
            }
            if let Ok(new) = decide(&state, &cmd) {
                state = new.iter().fold(state, evolve);
                log.extend(new);
            }
        }
        log
    })
}
