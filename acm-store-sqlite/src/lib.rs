//! # acm-store-sqlite
//!
//! The durable, embedded default event store of acm, on `SQLite` — not built yet. It will
//! implement `acm_core::store::EventStore` with every guarantee of the trait (checked by the
//! conformance suite in `acm_core::testkit`), plus what durability needs: WAL with
//! `synchronous=FULL`, a group-commit writer thread, the outbox, inbox and pending-items
//! projection in the same transaction as the events, and a hash chain for tamper evidence.
//! Until then, `acm-store-memory` is the only store.
#![warn(missing_docs)]
