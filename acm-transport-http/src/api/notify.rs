//! The pending ACM data notification stream (server-sent events). Opening it logs the user
//! on (steps 6/12) and closing it logs that session off (step 5); it carries a notice at once
//! for what already waits and whenever something new becomes pending (7a, 13a).

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::StreamExt;

use super::ApiState;
use super::error::ApiError;
use super::extract::User;
use crate::wire::client_routes::NOTIFICATION_EVENT;

/// Opens the notification stream of the token's user.
///
/// Each notice carries only the user (TS 23.280: the data itself is fetched by the download)
/// and an increasing id. A client that reconnects with `Last-Event-ID` continues the
/// numbering, and gets a notice at once when anything is pending — so no notice is lost
/// across a reconnection, whatever happened meanwhile.
#[utoipa::path(
    get,
    path = "/acm/v1/pending-acm-data/notifications",
    tag = "client",
    params(("Last-Event-ID" = Option<String>, Header, pattern = "^ *[+]?[0-9]+ *$", description = "The id of the last notice received, to resume: a decimal number up to 2^64 − 1")),
    responses(
        (status = 200, description = "`text/event-stream` of `pending-acm-data-notification` events, data a `PendingAcmDataNotification`", content_type = "text/event-stream", body = String),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn notifications(
    State(state): State<ApiState>,
    User(user): User,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last: u64 = match headers.get("last-event-id") {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                ApiError::http("invalid_last_event_id", "a notice id is a decimal number")
            })?,
    };
    let permit = state
        .inner
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::http("overloaded", "too many notification streams are open"))?;
    let session = state.inner.server.log_on(&user).await?;
    tracing::debug!(%user, "logged on (notification stream opened)");
    metrics::gauge!("acm_notification_streams").increment(1.0);
    let guard = StreamGuard(permit);
    let notices =
        futures_util::stream::unfold((session, last, guard), |(session, id, guard)| async move {
            let notice = session.next().await;
            let id = id.saturating_add(1);
            let event = Event::default()
                .event(NOTIFICATION_EVENT)
                .id(id.to_string())
                .json_data(&notice)
                .unwrap_or_else(|_| Event::default().comment("unencodable notice"));
            Some((Ok(event), (session, id, guard)))
        });
    let mut stopping = state.inner.stopping.clone();
    let stream = notices.take_until(async move {
        // Ends the stream when the server shuts down (and were the sender gone, too).
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(state.inner.config.keep_alive)))
}

/// Holds a stream's place in the limit; dropping it (the stream ended or the client went
/// away, logging the session off) gives the place back.
struct StreamGuard(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        metrics::gauge!("acm_notification_streams").decrement(1.0);
    }
}
