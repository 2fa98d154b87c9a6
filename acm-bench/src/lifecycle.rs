//! The benchmarks' workload: the test kit's (`acm_core::testkit::workload`).

pub use acm_core::testkit::fixture::bob;
pub use acm_core::testkit::workload::{partner_steps, ports_b, run_step, system_a, system_b};
