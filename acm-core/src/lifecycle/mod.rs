//! The pure lifecycle of one ACM request on one ACM server: state, commands, `decide`, `evolve`.
//!
//! Everything here is a plain value. Facts that need a port (is the user authorised? who holds
//! this alias?) are looked up by the service and passed in the command, and so is the time:
//! `decide` is deterministic and `evolve` is total.

use crate::error::DomainError;
use crate::event::Event;
use crate::store::DomainEvent;

/// A pure decider: the shape every aggregate of acm has.
pub trait Decider {
    /// State folded from events; `Default` is "no events yet".
    type State: Default;
    /// What may be asked of it.
    type Command;
    /// What it records.
    type Event: DomainEvent;
    /// Why it refuses a command.
    type Error;

    /// Decides which events a command produces in a state; an error records nothing.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Total: an event that does not apply leaves the state
    /// unchanged.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Folds a sequence of events from the empty state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), Self::evolve)
    }
}

/// The ACM request lifecycle, as a [`Decider`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Lifecycle;

impl Decider for Lifecycle {
    type State = RequestState;
    type Command = Command;
    type Event = Event;
    type Error = DomainError;

    fn decide(state: &RequestState, command: &Command) -> Result<Vec<Event>, DomainError> {
        decide(state, command)
    }

    fn evolve(state: RequestState, event: &Event) -> RequestState {
        evolve(state, event)
    }
}

mod command;
mod decide;
mod evolve;
mod state;

pub use command::{Command, ReceiptFacts};
pub use decide::decide;
pub use evolve::evolve;
pub use state::{
    Authorization, PartnerState, PrimaryState, RequestState, Verification, Withdrawal,
};

#[cfg(test)]
mod tests;
