//! `acm client …`: play an ACM client against a running ACM server, without curl. Every
//! answer is printed as JSON; a refusal is printed as its problem details and exits 1.

use std::path::PathBuf;

use acm_core::{
    FunctionalAlias, GroupId, IdempotencyKey, McServiceId, MembershipOperation, MigrationOperation,
    RequestId, SystemId, Target, Urgency,
};
use acm_transport_http::wire::{
    DecisionKind, MembershipSubmission, MigrationSubmission, ProvisionSubmission,
    ResponseSubmission,
};
use acm_transport_http::{AcmClient, ClientError, Submitted};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::Failure;

/// Where the ACM server is and who is asking.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The ACM server's client API, e.g. `https://localhost:8443`.
    #[arg(long, env = "ACM_SERVER")]
    server: String,
    /// PEM file of the CA that issued the server's certificate.
    #[arg(long, env = "ACM_CA")]
    ca: PathBuf,
    /// The access token (see `acm gen-token`).
    #[arg(long, env = "ACM_TOKEN", hide_env_values = true)]
    token: String,
    #[command(subcommand)]
    command: ClientCmd,
}

/// Whom a submission is for, and how it is sent.
#[derive(Debug, Args)]
struct To {
    /// The partner MC system.
    #[arg(long, env = "ACM_PARTNER")]
    partner: SystemId,
    /// The target user in the partner system (or use --target-alias / --target-server).
    #[arg(long, conflicts_with_all = ["target_alias", "target_server"], env = "ACM_TARGET_USER")]
    target_user: Option<McServiceId>,
    /// The target functional alias in the partner system.
    #[arg(long, conflicts_with = "target_server", env = "ACM_TARGET_ALIAS")]
    target_alias: Option<FunctionalAlias>,
    /// Address the partner ACM server itself (its ACM administrators).
    #[arg(long, env = "ACM_TARGET_SERVER")]
    target_server: bool,
    /// Submit as this functional alias of yours.
    #[arg(long, env = "ACM_ALIAS")]
    alias: Option<FunctionalAlias>,
    /// The idempotency key (a new one is made when absent; reuse it to retry safely).
    #[arg(long, env = "ACM_IDEMPOTENCY_KEY")]
    key: Option<IdempotencyKey>,
}

impl To {
    fn target(&self) -> Result<Target, Failure> {
        match (&self.target_user, &self.target_alias, self.target_server) {
            (Some(user), None, false) => Ok(Target::User(user.clone())),
            (None, Some(alias), false) => Ok(Target::FunctionalAlias(alias.clone())),
            (None, None, true) => Ok(Target::PartnerServer),
            _ => Err(Failure::Usage(
                "give one of --target-user, --target-alias, --target-server".into(),
            )),
        }
    }
}

#[derive(Debug, Subcommand)]
enum ClientCmd {
    /// Step 1: submit an interconnection group identity provision request.
    Submit {
        #[command(flatten)]
        to: To,
        /// An MC service group ID homed in your system; repeat for several.
        #[arg(
            long = "group",
            required = true,
            env = "ACM_GROUPS",
            value_delimiter = ','
        )]
        groups: Vec<GroupId>,
    },
    /// Step 1: submit a group membership update request (users of the partner system added
    /// to or deleted from one group homed in your system).
    Membership {
        #[command(flatten)]
        to: To,
        /// The MC service group, homed in your system.
        #[arg(long, env = "ACM_GROUP")]
        group: GroupId,
        /// A user of the partner system; repeat for several.
        #[arg(
            long = "user",
            required = true,
            env = "ACM_USERS",
            value_delimiter = ','
        )]
        users: Vec<McServiceId>,
        /// `add` or `delete`.
        #[arg(long, value_enum, env = "ACM_OPERATION")]
        operation: MembershipOp,
        /// `normal`, `urgent` or `emergency`.
        #[arg(long, value_enum, env = "ACM_URGENCY")]
        urgency: Option<UrgencyArg>,
    },
    /// Step 1: submit a user migration management request (users of your system added to
    /// or removed from those authorised to migrate to the partner system).
    Migration {
        #[command(flatten)]
        to: To,
        /// A user of your system; repeat for several.
        #[arg(
            long = "user",
            required = true,
            env = "ACM_USERS",
            value_delimiter = ','
        )]
        users: Vec<McServiceId>,
        /// `add` or `remove`.
        #[arg(long, value_enum, env = "ACM_OPERATION")]
        operation: MigrationOp,
    },
    /// Download your pending ACM data (steps 7b–8, 13b–14); nothing is acknowledged.
    Pending,
    /// Download your pending ACM data and acknowledge every item of it.
    Ack,
    /// Step 9: answer a request delivered to you.
    Respond {
        /// The request.
        request_id: RequestId,
        /// `accept` or `reject`.
        #[arg(value_enum)]
        decision: Verdict,
        /// Why, for a rejection.
        #[arg(long, env = "ACM_REASON")]
        reason: Option<String>,
        /// Answer as this functional alias of yours.
        #[arg(long, env = "ACM_ALIAS")]
        alias: Option<FunctionalAlias>,
    },
    /// Withdraw your own request.
    Withdraw {
        /// The request.
        request_id: RequestId,
    },
    /// Your own request as your server sees it.
    Status {
        /// The request.
        request_id: RequestId,
    },
    /// Log on: print each pending ACM data notification as it arrives, until interrupted.
    Watch {
        /// Resume after this notice id.
        #[arg(long, env = "ACM_LAST_EVENT_ID")]
        last_event_id: Option<String>,
        /// Stop after this many notices.
        #[arg(long, env = "ACM_WATCH_COUNT")]
        count: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Verdict {
    Accept,
    Reject,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MembershipOp {
    Add,
    Delete,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MigrationOp {
    Add,
    Remove,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum UrgencyArg {
    Normal,
    Urgent,
    Emergency,
}

impl From<MembershipOp> for MembershipOperation {
    fn from(op: MembershipOp) -> Self {
        match op {
            MembershipOp::Add => Self::Add,
            MembershipOp::Delete => Self::Delete,
        }
    }
}

impl From<MigrationOp> for MigrationOperation {
    fn from(op: MigrationOp) -> Self {
        match op {
            MigrationOp::Add => Self::Add,
            MigrationOp::Remove => Self::Remove,
        }
    }
}

impl From<UrgencyArg> for Urgency {
    fn from(urgency: UrgencyArg) -> Self {
        match urgency {
            UrgencyArg::Normal => Self::Normal,
            UrgencyArg::Urgent => Self::Urgent,
            UrgencyArg::Emergency => Self::Emergency,
        }
    }
}

/// A submission of one of the three kinds.
enum Body {
    Provision(ProvisionSubmission),
    Membership(MembershipSubmission),
    Migration(MigrationSubmission),
}

fn print(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Open(e.to_string()))?;
    println!("{text}");
    Ok(())
}

#[allow(clippy::needless_pass_by_value)] // the shape `map_err` takes
fn failed(error: ClientError) -> Failure {
    match error.problem() {
        Some(problem) => {
            // The problem details are the answer; printed whole, as the server gave them.
            let _ = print(problem);
            Failure::Broken(format!("{} ({})", problem.title, problem.code())).reported()
        }
        None => Failure::Open(error.to_string()),
    }
}

/// Runs one `acm client` command.
pub async fn run(args: ClientArgs) -> Result<(), Failure> {
    let ca = std::fs::read(&args.ca)
        .map_err(|e| Failure::Open(format!("--ca {}: {e}", args.ca.display())))?;
    let client =
        AcmClient::new(&args.server, &ca, args.token).map_err(|e| Failure::Usage(e.to_string()))?;
    match args.command {
        ClientCmd::Submit { to, groups } => {
            let submission = ProvisionSubmission {
                target: to.target()?,
                partner: to.partner,
                groups,
                requester_alias: to.alias,
                requester: None,
            };
            submit(&client, &Body::Provision(submission), to.key).await
        }
        ClientCmd::Membership {
            to,
            group,
            users,
            operation,
            urgency,
        } => {
            let submission = MembershipSubmission {
                target: to.target()?,
                partner: to.partner,
                group,
                users,
                operation: operation.into(),
                urgency: urgency.map(Into::into),
                requester_alias: to.alias,
                requester: None,
            };
            submit(&client, &Body::Membership(submission), to.key).await
        }
        ClientCmd::Migration {
            to,
            users,
            operation,
        } => {
            let submission = MigrationSubmission {
                target: to.target()?,
                partner: to.partner,
                users,
                operation: operation.into(),
                requester_alias: to.alias,
                requester: None,
            };
            submit(&client, &Body::Migration(submission), to.key).await
        }
        ClientCmd::Pending => print(&client.pending().await.map_err(failed)?),
        ClientCmd::Ack => {
            let data = client.pending().await.map_err(failed)?;
            let recorded = client.acknowledge_all(&data).await.map_err(failed)?;
            print(&serde_json::json!({ "downloaded": data, "recorded": recorded.recorded }))
        }
        ClientCmd::Respond {
            request_id,
            decision,
            reason,
            alias,
        } => {
            let decision = match decision {
                Verdict::Accept => DecisionKind::Accept,
                Verdict::Reject => DecisionKind::Reject,
            };
            client
                .respond(
                    request_id,
                    &ResponseSubmission {
                        decision,
                        reason,
                        responder_alias: alias,
                    },
                )
                .await
                .map_err(failed)?;
            print(&serde_json::json!({ "request_id": request_id, "status": "responded" }))
        }
        ClientCmd::Withdraw { request_id } => {
            print(&client.withdraw(request_id).await.map_err(failed)?)
        }
        ClientCmd::Status { request_id } => {
            print(&client.status(request_id).await.map_err(failed)?)
        }
        ClientCmd::Watch {
            last_event_id,
            count,
        } => watch(&client, last_event_id.as_deref(), count).await,
    }
}

async fn submit(
    client: &AcmClient,
    body: &Body,
    key: Option<IdempotencyKey>,
) -> Result<(), Failure> {
    let key = match key {
        Some(key) => key,
        None => uuid::Uuid::new_v4()
            .to_string()
            .parse()
            .map_err(|e: acm_core::IdError| Failure::Usage(e.to_string()))?,
    };
    let answer = match body {
        Body::Provision(submission) => client.submit(submission, &key).await,
        Body::Membership(submission) => client.submit_membership(submission, &key).await,
        Body::Migration(submission) => client.submit_migration(submission, &key).await,
    };
    match answer.map_err(failed)? {
        Submitted::Queued(accepted) => print(&serde_json::json!({
            "request_id": accepted.request_id,
            "status": accepted.status,
            "idempotency_key": key.to_string(),
        })),
        Submitted::Refused {
            request_id,
            refusal,
            detail,
        } => {
            print(&serde_json::json!({
                "request_id": request_id,
                "status": "refused",
                "refusal": refusal,
                "detail": detail,
            }))?;
            Err(Failure::Broken(format!("refused at step 2: {refusal}")).reported())
        }
    }
}

async fn watch(
    client: &AcmClient,
    last_event_id: Option<&str>,
    count: Option<usize>,
) -> Result<(), Failure> {
    let mut stream = client.notifications(last_event_id).await.map_err(failed)?;
    let mut seen = 0;
    while count.is_none_or(|c| seen < c) {
        match stream.next().await {
            Some(Ok(notice)) => {
                seen += 1;
                print(&serde_json::json!({
                    "id": notice.id,
                    "mc_service_id": notice.notification.mc_service_id,
                }))?;
            }
            Some(Err(e)) => return Err(failed(e)),
            None => {
                return Err(Failure::Open(
                    "the server ended the notification stream".into(),
                ));
            }
        }
    }
    Ok(())
}
