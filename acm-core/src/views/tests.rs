//! `changes` against the fold: applying each append's changes in turn gives the views of the
//! final states, whatever the history.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::lifecycle::{decide, evolve};
use crate::testkit::acm::{Step, command, step_strategy};

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// Runs `steps` through `decide`; returns the final states and the views built append by
/// append from `changes`.
fn run(steps: &[Step]) -> (BTreeMap<u64, RequestState>, ViewModel) {
    let mut states: BTreeMap<u64, RequestState> = BTreeMap::new();
    let mut model = ViewModel::new();
    for step in steps {
        let (n, cmd) = command(step);
        let before = states.get(&n).cloned().unwrap_or_default();
        let Ok(events) = decide(&before, &cmd) else {
            continue;
        };
        let after = events.iter().fold(before.clone(), evolve);
        let change = changes(&before, &after);
        if model
            .check(crate::testkit::acm::request_id(n), &change)
            .is_err()
        {
            continue;
        }
        model.apply(crate::testkit::acm::request_id(n), &change, at());
        states.insert(n, after);
    }
    (states, model)
}

proptest! {
    #[test]
    fn incremental_changes_equal_the_views_of_the_fold(
        steps in proptest::collection::vec(step_strategy(3), 1..60)
    ) {
        let (states, incremental) = run(&steps);
        let mut folded = ViewModel::new();
        for (n, state) in &states {
            folded.apply(crate::testkit::acm::request_id(*n), &of_state(state), at());
        }
        prop_assert_eq!(incremental.pending(), folded.pending());
        let keys = |m: &ViewModel| -> Vec<_> {
            m.outbox().into_iter().map(|(id, r)| (id, r.request_id, r.partner)).collect()
        };
        prop_assert_eq!(keys(&incremental), keys(&folded));
        prop_assert_eq!(incremental.due_hooks(usize::MAX), folded.due_hooks(usize::MAX));
        prop_assert_eq!(incremental.timers(), folded.timers());
        prop_assert_eq!(incremental.inbox(), folded.inbox());
        prop_assert_eq!(incremental.submissions(), folded.submissions());
        for state in states.values() {
            // A settled request is in no view a server works from.
            if is_settled(state) {
                let v = of_state(state);
                prop_assert!(v.pending_added.is_empty() && v.outbox_queued.is_none());
                prop_assert!(v.hook != Some(true) && v.timer.flatten().is_none());
            }
        }
    }
}

#[test]
fn an_unchanged_state_changes_nothing() {
    let (states, _) = run(&[
        Step::Submit(0, true, Some(1)),
        Step::Receive(1, crate::request::Processing::Manual),
    ]);
    for state in states.values() {
        assert!(changes(state, state).is_empty());
        assert!(!of_state(state).is_empty());
    }
}
