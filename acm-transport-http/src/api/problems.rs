//! Every kind of problem the APIs answer with: its stable code, HTTP status and title. The
//! one list that the error mapping, the `OpenAPI` document and `docs/http.md` are built from.

/// One kind of problem: `type` is `urn:acm:problem:<code>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemKind {
    /// The stable code.
    pub code: &'static str,
    /// The HTTP status it is answered with.
    pub status: u16,
    /// The title, the same for every problem of this kind.
    pub title: &'static str,
}

const fn kind(code: &'static str, status: u16, title: &'static str) -> ProblemKind {
    ProblemKind {
        code,
        status,
        title,
    }
}

/// Every problem kind, client mistakes (4xx) first. A `DomainError` is answered with its own
/// `code()`; the other kinds belong to the HTTP layer.
pub const PROBLEM_KINDS: &[ProblemKind] = &[
    // The request as HTTP.
    kind("malformed_json", 400, "The body is not JSON"),
    kind("invalid_body", 422, "The body does not match the schema"),
    kind(
        "unsupported_media_type",
        415,
        "The body must be application/json",
    ),
    kind("body_too_large", 413, "The body is larger than allowed"),
    kind("body_timeout", 408, "The body did not arrive in time"),
    kind(
        "invalid_request_id",
        400,
        "The request id in the path is not valid",
    ),
    kind(
        "idempotency_key_missing",
        400,
        "An Idempotency-Key header is required",
    ),
    kind(
        "idempotency_key_invalid",
        400,
        "The Idempotency-Key header is not valid",
    ),
    kind(
        "invalid_last_event_id",
        400,
        "The Last-Event-ID header is not a notice id",
    ),
    kind("not_found", 404, "No such resource"),
    kind(
        "method_not_allowed",
        405,
        "Method not allowed on this resource",
    ),
    // Who is asking.
    kind("token_missing", 401, "An access token is required"),
    kind("token_malformed", 401, "The access token is malformed"),
    kind(
        "token_bad_signature",
        401,
        "The access token's signature does not verify",
    ),
    kind(
        "token_algorithm_not_allowed",
        401,
        "The access token's algorithm is not allowed",
    ),
    kind("token_expired", 401, "The access token has expired"),
    kind(
        "token_not_yet_valid",
        401,
        "The access token is not valid yet",
    ),
    kind(
        "token_wrong_audience",
        401,
        "The access token is for another audience",
    ),
    kind(
        "token_wrong_issuer",
        401,
        "The access token is from another issuer",
    ),
    kind(
        "token_missing_claim",
        401,
        "The access token lacks the MC service ID claim",
    ),
    kind(
        "token_invalid_claim",
        401,
        "The access token's MC service ID claim is not valid",
    ),
    kind(
        "token_unknown_key",
        401,
        "The access token names an unknown key",
    ),
    kind(
        "requester_mismatch",
        403,
        "The requester in the body is not the token's user",
    ),
    kind(
        "unknown_partner",
        403,
        "The client certificate names no interconnected partner",
    ),
    // Step 2 and the idempotency key.
    kind(
        "authorization_refused",
        403,
        "The request was refused at step 2 (recorded)",
    ),
    kind(
        "idempotency_key_reused",
        422,
        "The Idempotency-Key was used for another submission",
    ),
    // The lifecycle's refusals (acm_core::DomainError codes); nothing was recorded.
    kind("empty_group_list", 422, "The group list is empty"),
    kind("duplicate_group", 422, "A group is listed twice"),
    kind("too_many_groups", 422, "More groups than allowed"),
    kind("empty_user_list", 422, "The user list is empty"),
    kind("duplicate_user", 422, "A user is listed twice"),
    kind("too_many_users", 422, "More users than allowed"),
    kind(
        "user_outside_partner",
        422,
        "A listed user is not in the partner MC system",
    ),
    kind(
        "user_not_of_requester_system",
        422,
        "A listed user is not of the requester's MC system",
    ),
    kind(
        "target_must_be_user_or_alias",
        422,
        "A group membership update is addressed to a user or a functional alias",
    ),
    kind(
        "user_results_mismatch",
        422,
        "The per-user results do not answer the request's user list",
    ),
    kind(
        "target_outside_partner",
        422,
        "The target is not in the partner MC system",
    ),
    kind("reason_too_long", 422, "The reason is longer than allowed"),
    kind("unknown_request", 404, "No such request here"),
    kind(
        "not_stored",
        404,
        "The request is not stored at this server",
    ),
    kind(
        "not_a_recipient",
        403,
        "The user is not a recipient of this request",
    ),
    kind(
        "not_delivered",
        403,
        "The request was not delivered to this user",
    ),
    kind("not_the_requester", 403, "Only the requester may do this"),
    kind(
        "alias_not_held",
        403,
        "The user does not hold this functional alias",
    ),
    kind(
        "not_interconnected",
        403,
        "The sender is not an interconnected partner",
    ),
    kind(
        "not_the_sender",
        403,
        "The sender did not send this request",
    ),
    kind(
        "responder_not_of_sender",
        403,
        "The responder is not of the sending MC system",
    ),
    kind(
        "wrong_side",
        409,
        "The command is for the other MC system's server",
    ),
    kind(
        "request_exists",
        409,
        "A request with this id exists already",
    ),
    kind(
        "request_id_reused",
        409,
        "The request id is reused by another message",
    ),
    kind(
        "message_id_reused",
        409,
        "The message id was received for another request",
    ),
    kind(
        "unexpected_message",
        409,
        "A message id this request does not expect",
    ),
    kind("closed", 409, "The request is closed"),
    kind(
        "response_exists",
        409,
        "A response to this request was stored already",
    ),
    kind("no_pending_response", 409, "No response is pending"),
    kind(
        "not_withdrawable",
        409,
        "The request cannot be withdrawn now",
    ),
    kind("not_accepted", 409, "The request was not accepted"),
    kind("not_due", 409, "The request is not due to expire"),
    kind(
        "not_awaiting_ack",
        409,
        "The request no longer awaits the partner's acknowledgement",
    ),
    // The server's side: try again later (Retry-After says when).
    kind("overloaded", 503, "Too many requests in flight; try again"),
    kind(
        "timeout",
        503,
        "The request took too long; retry it with the same key",
    ),
    kind(
        "directory_unavailable",
        503,
        "A directory could not be asked; nothing was recorded",
    ),
    kind(
        "store_unavailable",
        503,
        "The store could not be written or read",
    ),
    kind(
        "storage_full",
        507,
        "The server's storage is full; nothing was recorded, retry with the same key later",
    ),
    kind(
        "busy",
        503,
        "The request kept changing under the command; try again",
    ),
    kind("not_ready", 503, "The server is not ready"),
    kind("internal", 500, "Internal error"),
];

/// The kind with `code`; unknown codes are [`internal`](PROBLEM_KINDS).
pub fn problem_kind(code: &str) -> ProblemKind {
    PROBLEM_KINDS
        .iter()
        .find(|k| k.code == code)
        .copied()
        .unwrap_or(kind("internal", 500, "Internal error"))
}
