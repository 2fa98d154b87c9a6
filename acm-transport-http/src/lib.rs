//! # acm-transport-http
//!
//! The networked side of acm. Today it holds the [`Runner`] that drives an ACM server's
//! duties on tokio, with graceful shutdown. The HTTPS transport comes next: it will implement
//! `acm_core::PartnerTransport` with mutual TLS between ACM servers (a partner is identified
//! by its certificate), serve `acm_core::PartnerInbox` and the ACM client API (bearer access
//! tokens, RFC 9457 problem details), and carry pending ACM data notifications. Until then,
//! `acm_store_memory::InProcessNetwork` joins servers in process.
#![warn(missing_docs)]

mod runner;

pub use runner::{Runner, run_until};
