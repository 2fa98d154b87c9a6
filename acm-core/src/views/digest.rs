//! Content digests: how a store tells a replayed message (or a retried submission) from a
//! different one that reuses its id or key.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::id::{RequestId, SystemId};
use crate::request::{AcmRequest, AcmResponse};

/// SHA-256 of a message's or a submission's content, in a domain-separated encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Digest(pub [u8; 32]);

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", crate::chain::to_hex(&self.0))
    }
}

/// Feeds serde's output into the hash without building the JSON text.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn digest(tag: &str, parts: &impl Serialize) -> Digest {
    let mut writer = HashWriter(Sha256::new());
    writer.0.update(tag.as_bytes());
    writer.0.update([0]);
    // Serialising these plain structs cannot fail (no maps with non-string keys); were it
    // to, the digest of what was written is still a function of the content.
    if serde_json::to_writer(&mut writer, parts).is_err() {
        writer.0.update([0xff]);
    }
    Digest(writer.0.finalize().into())
}

/// The digest of a request message from `from` (what the partner's inbox compares).
pub fn request_digest(from: &SystemId, request: &AcmRequest) -> Digest {
    digest("acm/request/v1", &(from, request))
}

/// The digest of a response message from `from` to `request_id`.
pub fn response_digest(from: &SystemId, request_id: RequestId, response: &AcmResponse) -> Digest {
    digest("acm/response/v1", &(from, request_id, response))
}

/// The digest of what a user submitted, without the request id the server chose: a retry
/// with the same key and this digest is the same submission.
pub fn submission_digest(request: &AcmRequest) -> Digest {
    digest(
        "acm/submission/v1",
        &(
            &request.requester,
            &request.requester_alias,
            &request.partner,
            &request.target,
            &request.body,
        ),
    )
}
