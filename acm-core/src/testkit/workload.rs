//! The workload of the benchmarks: the partner side of one accepted request as B's server
//! runs it (5 commands, 6 events: the shape of the peer benchmarks' aggregate), and B's ports
//! with nothing behind them that costs.

use std::sync::{Arc, LazyLock};

use crate::{
    AcmRequest, AcmRequestBody, AcmServer, Actor, CausationId, Command, Decision, IdSource, Ids,
    Limits, MessageId, Processing, ReceiptFacts, RequestId, SystemId, Target,
};
use chrono::{DateTime, Utc};

use super::fixture::{bob, id as parse};

/// `mc-a.example`, the primary.
pub fn system_a() -> SystemId {
    parse("mc-a.example")
}

/// `mc-b.example`, the partner.
pub fn system_b() -> SystemId {
    parse("mc-b.example")
}

fn noon() -> DateTime<Utc> {
    parse("2026-01-01T12:00:00Z")
}

/// Shared identifiers, as requests decoded once would share them.
static TEMPLATE: LazyLock<AcmRequest> = LazyLock::new(|| AcmRequest {
    request_id: parse("0190a000-0000-7000-8000-0000000000aa"),
    requester: parse("sip:alice@mc-a.example"),
    requester_alias: None,
    partner: system_b(),
    target: Target::User(bob()),
    body: AcmRequestBody::provision([
        parse("sip:tac-1@mc-a.example"),
        parse("sip:tac-2@mc-a.example"),
        parse("sip:tac-3@mc-a.example"),
    ]),
});

/// One command with the actor and causation the service gives it.
#[derive(Debug)]
pub struct Step {
    /// The command.
    pub command: Command,
    /// Who the service records as its actor.
    pub actor: Actor,
    /// What caused it (the partner's message, for the steps a message drives).
    pub causation: Option<CausationId>,
}

fn id<T>(r: Result<T, crate::IdSourceError>) -> T {
    r.unwrap_or_else(|e| panic!("sequential ids are v7: {e}"))
}

/// Receive → Deliver → Respond → `RecordResponseAck` → `RecordAcceptanceApplied`.
pub fn partner_steps(ids: &dyn IdSource) -> (RequestId, Vec<Step>) {
    let request_id: RequestId = id(ids.request_id());
    let forward: MessageId = id(ids.message_id());
    let response: MessageId = id(ids.message_id());
    let facts = ReceiptFacts {
        local: system_b(),
        interconnected: true,
        home_domains: vec![system_a()],
        recipients: Ok(Arc::from([bob()])),
        processing: Processing::Manual,
        group_known: true,
        unknown_users: Vec::new(),
        limits: Limits::default(),
    };
    let steps = vec![
        Step {
            command: Command::Receive {
                from: system_a(),
                message_id: forward,
                request: Arc::new(AcmRequest {
                    request_id,
                    ..TEMPLATE.clone()
                }),
                facts,
                response_message_id: id(ids.message_id()),
                at: noon(),
            },
            actor: Actor::System(system_a()),
            causation: Some(forward.into()),
        },
        Step {
            command: Command::Deliver { to: bob() },
            actor: Actor::User(bob()),
            causation: None,
        },
        Step {
            command: Command::Respond {
                by: bob(),
                alias: None,
                decision: Decision::Accept,
                message_id: response,
            },
            actor: Actor::User(bob()),
            causation: None,
        },
        Step {
            command: Command::RecordResponseAck {
                message_id: response,
            },
            actor: Actor::System(system_a()),
            causation: Some(response.into()),
        },
        Step {
            command: Command::RecordAcceptanceApplied,
            actor: Actor::System(system_b()),
            causation: None,
        },
    ];
    (request_id, steps)
}

/// Runs one step through the server; every step of the lifecycle is accepted.
pub async fn run_step(server: &AcmServer, request_id: RequestId, step: &Step) {
    let events = super::execute(
        server,
        request_id,
        &step.command,
        &step.actor,
        step.causation,
    )
    .await
    .unwrap_or_else(|e| panic!("a lifecycle step was refused: {e}"));
    assert!(!events.is_empty(), "every step records");
}

/// B's ports with nothing behind them that costs: a static directory with bob, a transport
/// that is never called, a manual clock and sequential ids.
pub fn ports_b() -> crate::Ports {
    let directory = crate::StaticDirectory::new(system_b())
        .with_partner(system_a(), vec![system_a()])
        .with_user(bob(), true);
    crate::Ports::builder(
        Arc::new(directory),
        super::InProcessNetwork::new().transport(system_b()),
    )
    .clock(Arc::new(crate::ManualClock::default()))
    .ids(Arc::new(crate::SequentialIds::new(0xB)))
    .build()
}
