//! Validated identifiers.
//!
//! Every identifier that crosses a trust boundary is a newtype that can only be built by
//! parsing, so a value of these types is always well-formed. Host names are case-insensitive
//! and held in lower case; the user part of a URI is kept as given. URIs are held as `Arc<str>`: they
//! are copied into many events and projections, and a clone must not allocate.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest identifier accepted, in bytes (UTF-8).
pub const MAX_ID_LEN: usize = 255;

/// Which identifier an [`IdError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdField {
    /// [`McServiceId`].
    McServiceId,
    /// [`GroupId`].
    GroupId,
    /// [`FunctionalAlias`].
    FunctionalAlias,
    /// [`SystemId`].
    SystemId,
    /// [`RequestId`].
    RequestId,
    /// [`EventId`].
    EventId,
    /// [`MessageId`].
    MessageId,
}

impl fmt::Display for IdField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::McServiceId => "MC service ID",
            Self::GroupId => "MC service group ID",
            Self::FunctionalAlias => "functional alias",
            Self::SystemId => "MC system ID",
            Self::RequestId => "request ID",
            Self::EventId => "event ID",
            Self::MessageId => "message ID",
        })
    }
}

/// What is wrong with an identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "problem")]
pub enum IdProblem {
    /// The value is empty.
    Empty,
    /// The value is longer than [`MAX_ID_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The value holds a control character or white space at this byte offset.
    ControlCharacter {
        /// Byte offset of the offending character.
        at: usize,
    },
    /// The URI scheme is missing or is not `sip:` / `sips:`.
    WrongScheme,
    /// The URI has no `user@` part.
    NoUser,
    /// The URI or name has no host.
    NoHost,
    /// The host is not a valid domain name.
    InvalidHost,
    /// Not a UUID.
    NotUuid,
    /// A UUID, but not version 7.
    NotUuidV7,
}

impl fmt::Display for IdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty"),
            Self::TooLong { len } => write!(f, "{len} bytes, more than {MAX_ID_LEN}"),
            Self::ControlCharacter { at } => {
                write!(f, "control character or white space at byte {at}")
            }
            Self::WrongScheme => f.write_str("scheme must be sip: or sips:"),
            Self::NoUser => f.write_str("no user part (user@host)"),
            Self::NoHost => f.write_str("no host"),
            Self::InvalidHost => f.write_str("host is not a valid domain name"),
            Self::NotUuid => f.write_str("not a UUID"),
            Self::NotUuidV7 => f.write_str("not a version 7 UUID"),
        }
    }
}

/// An identifier was refused; names the field and the problem.
///
/// ```
/// use acm_core::id::{IdField, IdProblem, McServiceId};
/// let err = "http:alice@mc-a.example".parse::<McServiceId>().unwrap_err();
/// assert_eq!(err.field, IdField::McServiceId);
/// assert_eq!(err.problem, IdProblem::WrongScheme);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("invalid {field}: {problem}")]
pub struct IdError {
    /// The identifier concerned.
    pub field: IdField,
    /// What is wrong with it.
    pub problem: IdProblem,
}

fn err(field: IdField, problem: IdProblem) -> IdError {
    IdError { field, problem }
}

fn check_text(field: IdField, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(err(field, IdProblem::Empty));
    }
    if s.len() > MAX_ID_LEN {
        return Err(err(field, IdProblem::TooLong { len: s.len() }));
    }
    if let Some((at, _)) = s
        .char_indices()
        .find(|(_, c)| c.is_control() || c.is_whitespace())
    {
        return Err(err(field, IdProblem::ControlCharacter { at }));
    }
    Ok(())
}

fn valid_host(host: &str) -> bool {
    // A DNS name (RFC 1123 labels); IP literals are not MC system names.
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Parses `sip:user@host` / `sips:user@host`; returns the byte offset of the host.
fn parse_sip_uri(field: IdField, s: &str, user_required: bool) -> Result<usize, IdError> {
    check_text(field, s)?;
    let rest_at = if s.starts_with("sip:") {
        4
    } else if s.starts_with("sips:") {
        5
    } else {
        return Err(err(field, IdProblem::WrongScheme));
    };
    let rest = &s[rest_at..];
    let host_at = match rest.rfind('@') {
        Some(0) => return Err(err(field, IdProblem::NoUser)),
        Some(i) => i + 1,
        None if user_required => {
            return Err(err(
                field,
                if rest.is_empty() {
                    IdProblem::NoHost
                } else {
                    IdProblem::NoUser
                },
            ));
        }
        None => 0,
    };
    let host = &rest[host_at..];
    if host.is_empty() {
        return Err(err(field, IdProblem::NoHost));
    }
    if !valid_host(host) {
        return Err(err(field, IdProblem::InvalidHost));
    }
    Ok(rest_at + host_at)
}

macro_rules! uri_id {
    ($(#[$doc:meta])* $name:ident, $field:expr, $user_required:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name {
            uri: Arc<str>,
            // Offsets are below MAX_ID_LEN, so u16 is enough and keeps the value two words.
            host_at: u16,
        }

        impl $name {
            /// The full URI.
            pub fn as_str(&self) -> &str {
                &self.uri
            }

            /// The host part: the MC system this identity belongs to.
            pub fn host(&self) -> &str {
                &self.uri[usize::from(self.host_at)..]
            }

            /// The MC system this identity belongs to.
            pub fn system(&self) -> SystemId {
                SystemId(Arc::from(self.host()))
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let host_at = parse_sip_uri($field, s, $user_required)?;
                // Hosts compare without regard to case (RFC 3261 §19.1.4): hold them in
                // lower case, so equality, hashing and home-domain checks agree.
                let uri: Arc<str> = if s[host_at..].bytes().any(|b| b.is_ascii_uppercase()) {
                    Arc::from(format!("{}{}", &s[..host_at], s[host_at..].to_ascii_lowercase()))
                } else {
                    Arc::from(s)
                };
                Ok(Self {
                    uri,
                    host_at: u16::try_from(host_at).map_err(|_| {
                        err($field, IdProblem::TooLong { len: s.len() })
                    })?,
                })
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                s.parse()
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.uri.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.uri)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.uri)
            }
        }
    };
}

uri_id!(
    /// An MC service user's identity, a SIP URI such as `sip:alice@mc-a.example`.
    ///
    /// ```
    /// use acm_core::id::McServiceId;
    /// let alice: McServiceId = "sip:alice@mc-a.example".parse().unwrap();
    /// assert_eq!(alice.host(), "mc-a.example");
    /// ```
    McServiceId,
    IdField::McServiceId,
    true
);

uri_id!(
    /// An MC service group ID, a SIP URI such as `sip:tac-1@mc-a.example`; its host names the
    /// group's home MC system.
    GroupId,
    IdField::GroupId,
    true
);

uri_id!(
    /// A functional alias (a role), a SIP URI such as `sip:duty-officer@mc-b.example`, that
    /// resolves to whoever currently holds it.
    FunctionalAlias,
    IdField::FunctionalAlias,
    true
);

/// An MC system, named by its domain, such as `mc-a.example`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SystemId(Arc<str>);

impl SystemId {
    /// The domain name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SystemId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        check_text(IdField::SystemId, s)?;
        if !valid_host(s) {
            return Err(err(IdField::SystemId, IdProblem::InvalidHost));
        }
        Ok(Self(Arc::from(s.to_ascii_lowercase())))
    }
}

impl TryFrom<String> for SystemId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl TryFrom<&str> for SystemId {
    type Error = IdError;
    fn try_from(s: &str) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<SystemId> for String {
    fn from(id: SystemId) -> String {
        id.0.to_string()
    }
}

impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SystemId({})", self.0)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "Uuid", into = "Uuid")]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a version 7 UUID.
            pub fn from_uuid(uuid: Uuid) -> Result<Self, IdError> {
                if uuid.get_version_num() == 7 {
                    Ok(Self(uuid))
                } else {
                    Err(err($field, IdProblem::NotUuidV7))
                }
            }

            /// The UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl TryFrom<Uuid> for $name {
            type Error = IdError;
            fn try_from(uuid: Uuid) -> Result<Self, IdError> {
                Self::from_uuid(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                check_text($field, s)?;
                let uuid = Uuid::parse_str(s).map_err(|_| err($field, IdProblem::NotUuid))?;
                Self::from_uuid(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

uuid_id!(
    /// One ACM request, the same on both MC systems (a transport-level addition: the
    /// standard's information elements carry no request id). Also the correlation id of every
    /// event about that request.
    RequestId,
    IdField::RequestId
);

uuid_id!(
    /// One stored event; the key of idempotent appends.
    EventId,
    IdField::EventId
);

uuid_id!(
    /// One message between ACM servers; the receiver deduplicates by it.
    MessageId,
    IdField::MessageId
);

/// The stream that holds one ACM request's events on one ACM server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(pub RequestId);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "acm-request-{}", self.0)
    }
}

impl From<RequestId> for StreamId {
    fn from(id: RequestId) -> Self {
        Self(id)
    }
}

/// Position of an event in its stream, counted from 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    /// The version of a stream with no events.
    pub const NONE: Self = Self(0);

    /// The version after this one.
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Position of an event in the whole log of one ACM server, counted from 1, gap-free.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct GlobalPosition(pub u64);

impl GlobalPosition {
    /// Before the first event: reading "after START" reads everything.
    pub const START: Self = Self(0);

    /// The position after this one.
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for GlobalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests;
