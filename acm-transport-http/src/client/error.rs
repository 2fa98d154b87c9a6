//! What can go wrong between an ACM client and its ACM server.

use crate::Problem;

/// Why a call of the client API failed.
///
/// A server's answer never panics the client: whatever it sends is one of these.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused with a problem details body (RFC 9457); match on
    /// [`Problem::code`], never on the text.
    #[error("{}", problem_text(.0))]
    Problem(Problem),
    /// The server failed without a problem details body (a proxy, an overloaded front end, a
    /// server that is not an ACM server).
    #[error("HTTP {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The start of the body, as text.
        body: String,
    },
    /// No answer: the connection, the TLS handshake (an untrusted server certificate) or a
    /// time-out failed. Whether a submission was recorded is unknown: retry with the same
    /// idempotency key.
    #[error("transport: {0}")]
    Transport(String),
    /// A success answer whose body is not what the wire contract says.
    #[error("undecodable answer: {0}")]
    Decode(String),
    /// The client cannot be built or cannot send: a base URL that is not `https`, a CA
    /// file without certificates, a token that is not a valid header value.
    #[error("client configuration: {0}")]
    Config(String),
}

fn problem_text(problem: &Problem) -> String {
    let mut text = format!("{} {}: {}", problem.status, problem.code(), problem.title);
    if let Some(detail) = &problem.detail {
        text.push_str(" (");
        text.push_str(detail);
        text.push(')');
    }
    text
}

impl ClientError {
    /// A stable code: the problem's code for [`ClientError::Problem`], else `http_status`,
    /// `transport`, `decode` or `config`.
    pub fn code(&self) -> &str {
        match self {
            Self::Problem(problem) => problem.code(),
            Self::Status { .. } => "http_status",
            Self::Transport(_) => "transport",
            Self::Decode(_) => "decode",
            Self::Config(_) => "config",
        }
    }

    /// The HTTP status of an answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem(problem) => Some(problem.status),
            Self::Status { status, .. } => Some(*status),
            Self::Transport(_) | Self::Decode(_) | Self::Config(_) => None,
        }
    }

    /// The problem details, for [`ClientError::Problem`].
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Problem(problem) => Some(problem),
            _ => None,
        }
    }

    /// A reqwest failure to reach the server or to read its answer, with its causes: reqwest's
    /// own text ("error sending request") says too little to act on.
    pub(super) fn transport(error: &reqwest::Error) -> Self {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::Transport(text)
    }
}
