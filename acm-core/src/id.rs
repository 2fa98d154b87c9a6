//! Validated identifiers.
//!
//! Every identifier that crosses a trust boundary is a newtype that can only be built by
//! parsing, so a value of these types is always well-formed. Host names are case-insensitive
//! and held in lower case. The user part of a URI is parsed by RFC 3261's grammar and held in a
//! canonical form (see [`McServiceId`]), so two spellings of one identity are one value. URIs are
//! held as `Arc<str>`: they are copied into many events and projections, and a clone must not
//! allocate.

use std::borrow::Cow;
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
    /// [`IdempotencyKey`].
    IdempotencyKey,
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
            Self::IdempotencyKey => "idempotency key",
        })
    }
}

/// What is wrong with an identifier.
///
/// Non-exhaustive: the grammar of what is accepted may tighten, and each new refusal gets its own
/// problem rather than reusing one that means something else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "problem")]
#[non_exhaustive]
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
    /// The URI's user part holds a character RFC 3261 does not allow there (§25.1: letters and
    /// digits, `-_.!~*'()`, `&=+$,;?/`, and `%` escapes), such as a second `@`, `<`, `"`, a
    /// non-ASCII letter or an invisible format character.
    InvalidUserCharacter {
        /// Byte offset of the offending character in the whole input.
        at: usize,
    },
    /// A `%` in the user part is not followed by two hexadecimal digits.
    InvalidEscape {
        /// Byte offset of the `%` in the whole input.
        at: usize,
    },
    /// The user part holds `%00`, an escaped NUL.
    EscapedNul {
        /// Byte offset of the `%` in the whole input.
        at: usize,
    },
    /// The URI or name has no host.
    NoHost,
    /// The host is not a valid domain name.
    InvalidHost,
    /// Not a UUID.
    NotUuid,
    /// A UUID, but not version 7.
    NotUuidV7,
    /// A character that is not visible ASCII (`!` to `~`) at this byte offset.
    NotVisibleAscii {
        /// Byte offset of the offending character.
        at: usize,
    },
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
            Self::InvalidUserCharacter { at } => {
                write!(
                    f,
                    "character at byte {at} is not allowed in a SIP URI user part"
                )
            }
            Self::InvalidEscape { at } => {
                write!(
                    f,
                    "% at byte {at} is not followed by two hexadecimal digits"
                )
            }
            Self::EscapedNul { at } => write!(f, "escaped NUL (%00) at byte {at}"),
            Self::NoHost => f.write_str("no host"),
            Self::InvalidHost => f.write_str("host is not a valid domain name"),
            Self::NotUuid => f.write_str("not a UUID"),
            Self::NotUuidV7 => f.write_str("not a version 7 UUID"),
            Self::NotVisibleAscii { at } => {
                write!(f, "character at byte {at} is not visible ASCII")
            }
        }
    }
}

/// An identifier was refused; names the field and the problem.
///
/// ```
/// use acm_core::{IdField, IdProblem, McServiceId};
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

/// RFC 3261 §25.1 `unreserved`: `alphanum` and `mark`. These are the characters whose `%`
/// escapes mean the same as the characters themselves (§19.1.4), so they are held unescaped.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// RFC 3261 §25.1 `user-unreserved`: allowed unescaped in a user part, but reserved characters
/// elsewhere in URIs, so an escape of one is a different user part (§19.1.4) and stays escaped.
fn is_user_unreserved(b: u8) -> bool {
    matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

/// Checks `s[user_at..user_end]` against RFC 3261's `user` rule and returns it in canonical form:
/// escapes of unreserved characters decoded, the hex digits of the other escapes upper-cased.
/// Borrows when the user part has no escapes, as nearly all MC service IDs do.
fn canonical_user(
    field: IdField,
    s: &str,
    user_at: usize,
    user_end: usize,
) -> Result<Cow<'_, str>, IdError> {
    let mut canonical: Option<String> = None;
    // Bytes, not chars: the grammar is ASCII, and the first non-ASCII byte met is the lead byte
    // of the offending character, so its offset is the character's.
    let mut bytes = s.bytes().enumerate().take(user_end).skip(user_at);
    while let Some((at, b)) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(|(_, h)| hex_value(h));
            let lo = bytes.next().and_then(|(_, l)| hex_value(l));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(err(field, IdProblem::InvalidEscape { at }));
            };
            let byte = (hi << 4) | lo;
            if byte == 0 {
                // A NUL ends the string in many SIP stacks, so one MC system would see a
                // shorter identity than the other.
                return Err(err(field, IdProblem::EscapedNul { at }));
            }
            // Everything before `at` has passed the checks below, so it is ASCII and `at` is a
            // character boundary.
            let out = canonical.get_or_insert_with(|| {
                let mut out = String::with_capacity(user_end.saturating_sub(user_at));
                out.push_str(s.get(user_at..at).unwrap_or_default());
                out
            });
            if is_unreserved(byte) {
                out.push(char::from(byte));
            } else {
                push_escape(out, byte);
            }
        } else if is_unreserved(b) || is_user_unreserved(b) {
            if let Some(out) = canonical.as_mut() {
                out.push(char::from(b));
            }
        } else {
            return Err(err(field, IdProblem::InvalidUserCharacter { at }));
        }
    }
    Ok(match canonical {
        Some(out) => Cow::Owned(out),
        None => Cow::Borrowed(s.get(user_at..user_end).unwrap_or_default()),
    })
}

/// A SIP URI split into its parts, the user part in canonical form.
struct SipUri<'a> {
    /// The whole input.
    input: &'a str,
    /// `sip:` or `sips:`.
    scheme: &'static str,
    /// Canonical user part; `None` when the URI has none.
    user: Option<Cow<'a, str>>,
    /// The host as given; a suffix of `input`.
    host: &'a str,
}

impl SipUri<'_> {
    /// The canonical text (user part canonical, host in lower case) and the host's offset in it.
    fn canonical(&self) -> (Arc<str>, usize) {
        // Hosts compare without regard to case (RFC 3261 §19.1.4): hold them in lower case, so
        // equality, hashing and home-domain checks agree.
        let host_lower = !self.host.bytes().any(|b| b.is_ascii_uppercase());
        if host_lower && !matches!(self.user, Some(Cow::Owned(_))) {
            let host_at = self.input.len().saturating_sub(self.host.len());
            return (Arc::from(self.input), host_at);
        }
        let mut out = String::with_capacity(self.input.len());
        out.push_str(self.scheme);
        if let Some(user) = &self.user {
            out.push_str(user);
            out.push('@');
        }
        let host_at = out.len();
        out.push_str(&self.host.to_ascii_lowercase());
        (Arc::from(out), host_at)
    }
}

/// Parses `sip:user@host` / `sips:user@host`.
fn parse_sip_uri(field: IdField, s: &str, user_required: bool) -> Result<SipUri<'_>, IdError> {
    // First, so control characters and white space keep their own problem wherever they are.
    check_text(field, s)?;
    let (scheme, rest) = if let Some(rest) = s.strip_prefix("sip:") {
        ("sip:", rest)
    } else if let Some(rest) = s.strip_prefix("sips:") {
        ("sips:", rest)
    } else {
        return Err(err(field, IdProblem::WrongScheme));
    };
    // A host never holds '@', so the last one is the separator and any other is in the user
    // part, where the grammar refuses it with its offset.
    let (user, host) = match rest.rsplit_once('@') {
        Some(("", _)) => return Err(err(field, IdProblem::NoUser)),
        Some((user, host)) => {
            let user_at = scheme.len();
            let user_end = user_at + user.len();
            (Some(canonical_user(field, s, user_at, user_end)?), host)
        }
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
        None => (None, rest),
    };
    if host.is_empty() {
        return Err(err(field, IdProblem::NoHost));
    }
    if !valid_host(host) {
        return Err(err(field, IdProblem::InvalidHost));
    }
    Ok(SipUri {
        input: s,
        scheme,
        user,
        host,
    })
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
            /// The full URI, in canonical form (see [`McServiceId`]).
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
                let (uri, host_at) = parse_sip_uri($field, s, $user_required)?.canonical();
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
    /// use acm_core::McServiceId;
    /// let alice: McServiceId = "sip:alice@mc-a.example".parse().unwrap();
    /// assert_eq!(alice.host(), "mc-a.example");
    /// ```
    ///
    /// # Canonical form
    ///
    /// This type, [`GroupId`] and [`FunctionalAlias`] accept a user part only as RFC 3261
    /// (§25.1) spells one: ASCII letters and digits, `-_.!~*'()`, `&=+$,;?/`, and `%` followed
    /// by two hex digits (but not `%00`); no password (`user:password@`) and no URI parameters.
    /// Everything else, including invisible and non-ASCII characters, is refused, so an
    /// identity cannot hide characters or borrow look-alike letters from another script. The
    /// value is held in canonical form, which [`as_str`](Self::as_str), `Display` and serde
    /// show:
    ///
    /// - an escape of a letter, digit or `-_.!~*'()` is decoded, since RFC 3261 §19.1.4 makes it
    ///   the same character;
    /// - any other escape stays escaped, with upper-case hex digits (escaping one of
    ///   `&=+$,;?/` makes a different user part);
    /// - the user part is otherwise case-sensitive, and the host is held in lower case.
    ///
    /// Equality, hashing and ordering are those of the canonical text.
    ///
    /// ```
    /// use acm_core::McServiceId;
    /// let escaped: McServiceId = "sip:%61lice%2f1@MC-A.example".parse().unwrap();
    /// assert_eq!(escaped.as_str(), "sip:alice%2F1@mc-a.example");
    /// assert_eq!(escaped, "sip:alice%2F1@mc-a.example".parse().unwrap());
    /// assert_ne!(escaped, "sip:alice/1@mc-a.example".parse().unwrap());
    /// ```
    McServiceId,
    IdField::McServiceId,
    true
);

uri_id!(
    /// An MC service group ID, a SIP URI such as `sip:tac-1@mc-a.example`; its host names the
    /// group's home MC system. Parsed and compared in the canonical form described at
    /// [`McServiceId`].
    GroupId,
    IdField::GroupId,
    true
);

uri_id!(
    /// A functional alias (a role), a SIP URI such as `sip:duty-officer@mc-b.example`, that
    /// resolves to whoever currently holds it. Parsed and compared in the canonical form
    /// described at [`McServiceId`].
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

/// A key an ACM client chooses for one submission, so that a retry after a lost reply is
/// recognised (the HTTP `Idempotency-Key` header): 1 to [`MAX_ID_LEN`] visible ASCII
/// characters, kept as given. It is scoped to its requester: two users may use one key.
///
/// ```
/// use acm_core::{IdProblem, IdempotencyKey};
/// let key: IdempotencyKey = "retry-7f3a".parse().unwrap();
/// assert_eq!(key.as_str(), "retry-7f3a");
/// assert_eq!("two words".parse::<IdempotencyKey>().unwrap_err().problem,
///            IdProblem::NotVisibleAscii { at: 3 });
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(Arc<str>);

impl IdempotencyKey {
    /// The key as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IdempotencyKey {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let field = IdField::IdempotencyKey;
        if s.is_empty() {
            return Err(err(field, IdProblem::Empty));
        }
        if s.len() > MAX_ID_LEN {
            return Err(err(field, IdProblem::TooLong { len: s.len() }));
        }
        if let Some(at) = s.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(err(field, IdProblem::NotVisibleAscii { at }));
        }
        Ok(Self(Arc::from(s)))
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> String {
        key.0.to_string()
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
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

/// The identifiers' JSON schemas (utoipa), for the `OpenAPI` document of the HTTP transport:
/// strings, with the parsers' grammar as ECMA-262 patterns, so a schema accepts exactly what
/// serde reads (it writes the canonical form, which the same pattern accepts).
#[cfg(feature = "openapi")]
mod schema {
    use std::borrow::Cow;

    use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};

    use super::MAX_ID_LEN;

    /// An RFC 1123 label: what `valid_host` accepts between the dots.
    const LABEL: &str = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";

    fn host() -> String {
        format!("{LABEL}(?:\\.{LABEL})*")
    }

    /// A SIP URI with a user part, as `parse_sip_uri` reads it: RFC 3261 user characters and
    /// `%` escapes other than `%00`.
    pub(super) fn sip_uri() -> String {
        format!(
            "^sips?:(?:[A-Za-z0-9\\-_.!~*'()&=+$,;?/]|%(?:0[1-9A-Fa-f]|[1-9A-Fa-f][0-9A-Fa-f]))+@{}$",
            host()
        )
    }

    /// A version 7 UUID in each form `Uuid::parse_str` reads: hyphenated, braced, URN and
    /// simple, in either case.
    pub(super) fn uuid_v7() -> String {
        const H: &str = "[0-9A-Fa-f]";
        let hyphenated = format!("{H}{{8}}-{H}{{4}}-7{H}{{3}}-{H}{{4}}-{H}{{12}}");
        format!(
            "^(?:{hyphenated}|\\{{{hyphenated}\\}}|[Uu][Rr][Nn]:[Uu][Uu][Ii][Dd]:{hyphenated}|{H}{{12}}7{H}{{19}})$"
        )
    }

    pub(super) fn string(
        pattern: String,
        max_length: usize,
        description: &str,
        example: &str,
    ) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .min_length(Some(1))
            .max_length(Some(max_length))
            .description(Some(description))
            .examples([example])
            .build()
            .into()
    }

    macro_rules! string_schema {
        ($name:ident, $pattern:expr, $max:expr, $description:expr, $example:expr) => {
            impl utoipa::PartialSchema for super::$name {
                fn schema() -> RefOr<Schema> {
                    string($pattern, $max, $description, $example)
                }
            }

            impl utoipa::ToSchema for super::$name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        };
    }

    string_schema!(
        McServiceId,
        sip_uri(),
        MAX_ID_LEN,
        "An MC service ID: a SIP URI `sip:user@host` (RFC 3261 user part); written in canonical form",
        "sip:alice@mc-a.example"
    );
    string_schema!(
        GroupId,
        sip_uri(),
        MAX_ID_LEN,
        "An MC service group ID: a SIP URI whose host names the group's home MC system; written in canonical form",
        "sip:fire-ops@mc-a.example"
    );
    string_schema!(
        FunctionalAlias,
        sip_uri(),
        MAX_ID_LEN,
        "A functional alias: a SIP URI; written in canonical form",
        "sip:duty-officer@mc-b.example"
    );
    string_schema!(
        SystemId,
        format!("^{}$", host()),
        253,
        "An MC system: its domain name; written in lower case",
        "mc-b.example"
    );
    string_schema!(
        IdempotencyKey,
        format!("^[!-~]{{1,{MAX_ID_LEN}}}$"),
        MAX_ID_LEN,
        "A client's key for one submission: visible ASCII",
        "retry-7f3a"
    );
    string_schema!(
        RequestId,
        uuid_v7(),
        45,
        "A request id: a version 7 UUID, written hyphenated in lower case",
        "01890a5d-ac96-774b-bcce-b302099a8057"
    );
    string_schema!(
        MessageId,
        uuid_v7(),
        45,
        "A message id: a version 7 UUID, written hyphenated in lower case",
        "01890a5d-ac96-7e1c-8b4e-6c2a5d1f0e33"
    );
}

#[cfg(test)]
mod tests;
