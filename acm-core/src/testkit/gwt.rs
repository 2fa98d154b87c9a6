//! Given/when/then for deciders: decisions are plain values, so tests read as specifications.
//!
//! ```
//! use acm_core::testkit::given;
//! use acm_core::{Lifecycle, DomainError, Command};
//! given::<Lifecycle>([])
//!     .when(Command::RecordAcceptanceApplied)
//!     .then_error(DomainError::NotStored);
//! ```

use std::fmt::Debug;

use crate::lifecycle::Decider;

/// Events that happened before the command.
#[derive(Debug)]
pub struct Given<D: Decider> {
    events: Vec<D::Event>,
}

/// Starts a specification from past events.
pub fn given<D: Decider>(events: impl IntoIterator<Item = D::Event>) -> Given<D> {
    Given {
        events: events.into_iter().collect(),
    }
}

impl<D: Decider> Given<D> {
    /// The command under test.
    pub fn when(self, command: D::Command) -> When<D> {
        let state = D::fold(&self.events);
        let result = D::decide(&state, &command);
        When {
            state,
            result,
            command,
        }
    }
}

/// The decision taken.
#[allow(missing_debug_implementations)] // holds the decider's types, which need not be Debug
pub struct When<D: Decider> {
    state: D::State,
    result: Result<Vec<D::Event>, D::Error>,
    command: D::Command,
}

impl<D: Decider> When<D>
where
    D::Event: Debug + PartialEq,
    D::Error: Debug + PartialEq,
    D::Command: Debug,
{
    /// Asserts that exactly these events were decided; returns the state after them.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = D::Event>) -> D::State {
        let expected: Vec<_> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "events decided for {:?}", self.command);
                events.iter().fold(self.state, D::evolve)
            }
            Err(e) => panic!(
                "expected events {expected:?} for {:?}, got error {e:?}",
                self.command
            ),
        }
    }

    /// Asserts that the command was refused with this error.
    #[track_caller]
    #[allow(clippy::needless_pass_by_value)] // reads like the specification it is
    pub fn then_error(self, expected: D::Error) {
        match self.result {
            Ok(events) => panic!(
                "expected error {expected:?} for {:?}, got events {events:?}",
                self.command
            ),
            Err(e) => assert_eq!(e, expected, "error for {:?}", self.command),
        }
    }

    /// The raw result, for assertions the helpers do not cover.
    pub fn result(self) -> Result<Vec<D::Event>, D::Error> {
        self.result
    }
}
