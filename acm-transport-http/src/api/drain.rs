//! Reading what an answer left of its request's body, so that an HTTP/1.1 client gets the
//! answer.
//!
//! Many answers come before the body is read: a missing token (401), a wrong media type
//! (415), a method not allowed (405), a missing idempotency key (400), the call limit (503).
//! hyper then stops reading the connection and closes it with the rest of the body unread,
//! and a TCP close with unread data sends a reset, which makes the client's kernel throw away
//! the answer it had received: the client sees a broken connection instead of the problem.
//! So the rest of the body is read (and thrown away) before the answer goes out, up to
//! [`MAX_DRAIN`] bytes and the body time-out; past those the answer says `Connection: close`.
//! HTTP/2 needs none of this: an unread stream is reset on its own, the answer stays.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;

/// The most of a body left unread that is read before answering; a client that sends more
/// than this after an early answer loses the answer to the reset.
pub(crate) const MAX_DRAIN: usize = 1024 * 1024;

/// The body a handler reads, shared with [`rest_of_body`], which reads what is left of it
/// after the answer.
type Slot = Arc<Mutex<Option<Body>>>;

struct Tapped(Slot);

impl HttpBody for Tapped {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map(HttpBody::size_hint).unwrap_or_default()
    }
}

/// Runs the call, then reads what it left of an HTTP/1 request body (within `timeout`) before
/// the answer goes out.
pub(crate) async fn rest_of_body(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    if request.version() >= Version::HTTP_2 || request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let slot: Slot = Arc::new(Mutex::new(Some(body)));
    let mut response = next
        .run(Request::from_parts(parts, Body::new(Tapped(slot.clone()))))
        .await;
    let left = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(body) = left
        && !body.is_end_stream()
    {
        let drained = tokio::time::timeout(timeout, drain(body)).await;
        if !matches!(drained, Ok(true)) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// Reads `body` to its end; `false` when it is longer than [`MAX_DRAIN`] or broken.
async fn drain(body: Body) -> bool {
    let mut read = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        match chunk {
            Ok(bytes) => {
                read = read.saturating_add(bytes.len());
                if read > MAX_DRAIN {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}
