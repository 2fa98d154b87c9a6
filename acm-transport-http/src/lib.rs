//! # acm-transport-http
//!
//! The networked transport of acm — not built yet. It will implement
//! `acm_core::ports::PartnerTransport` over HTTPS with mutual TLS between ACM servers (a
//! partner is identified by its certificate), serve `acm_core::server::PartnerInbox` and the
//! ACM client API (bearer access tokens, RFC 9457 problem details), and carry pending ACM data
//! notifications. Until then, `acm_store_memory::InProcessNetwork` joins servers in process.
#![warn(missing_docs)]
