//! The pending ACM data notification stream: a `text/event-stream` (the HTML standard's
//! server-sent events) read from the response body, chunk by chunk.

use std::collections::VecDeque;
use std::time::Duration;

use acm_core::PendingAcmDataNotification;

use super::ClientError;
use crate::wire::client_routes::NOTIFICATION_EVENT;

/// The longest line or event data the parser holds; a server that sends more without a line
/// end is broken or hostile, and the client stops reading rather than growing without bound.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// What one blank line dispatched: the last event ID as of then, and the event, if it carried
/// data (an event with an `id` and no data only moves the last event ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Dispatch {
    /// The last event ID string after this dispatch (empty: none).
    pub(super) last_event_id: String,
    /// The event, if it had data.
    pub(super) event: Option<Event>,
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Event {
    /// The event type (`message` when the stream named none).
    pub(super) name: String,
    /// The data lines joined with `\n`.
    pub(super) data: String,
}

/// The stream was cut off by the parser: a line or an event longer than [`MAX_EVENT_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TooLong;

/// An incremental `text/event-stream` parser: feed it the body's chunks as they come (a line,
/// even a CR LF pair, may be split across chunks) and take the dispatches.
#[derive(Debug, Default)]
pub(super) struct SseParser {
    /// The bytes of the line being read.
    line: Vec<u8>,
    /// The previous byte ended a line with CR: a LF right after it belongs to that line end.
    after_cr: bool,
    /// The first line is read (a byte order mark is only skipped there).
    started: bool,
    event_name: String,
    data: String,
    /// The last event ID buffer; it outlives a dispatch (the standard's semantics).
    id_buffer: String,
    /// The last event ID as of the latest dispatch queued.
    dispatched_id: String,
    retry: Option<Duration>,
    ready: VecDeque<Dispatch>,
}

impl SseParser {
    /// A parser that goes on from `last_event_id`, as after a reconnection: an event without
    /// an `id:` keeps it.
    pub(super) fn resuming(last_event_id: &str) -> Self {
        Self {
            id_buffer: last_event_id.to_owned(),
            dispatched_id: last_event_id.to_owned(),
            ..Self::default()
        }
    }

    /// Reads `bytes`; the dispatches they complete are queued for [`SseParser::next_dispatch`].
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<(), TooLong> {
        let mut rest = bytes;
        while let Some(&first) = rest.first() {
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            if let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                self.push_line_bytes(&rest[..end])?;
                self.after_cr = rest[end] == b'\r';
                self.end_line()?;
                rest = &rest[end + 1..];
            } else {
                self.push_line_bytes(rest)?;
                rest = &[];
            }
        }
        Ok(())
    }

    /// The next dispatch, oldest first.
    pub(super) fn next_dispatch(&mut self) -> Option<Dispatch> {
        self.ready.pop_front()
    }

    /// The reconnection time the server asked for (`retry:`), if any.
    pub(super) fn retry(&self) -> Option<Duration> {
        self.retry
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), TooLong> {
        if self.line.len() + bytes.len() > MAX_EVENT_BYTES {
            return Err(TooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), TooLong> {
        let line = std::mem::take(&mut self.line);
        let mut bytes = line.as_slice();
        if !self.started {
            self.started = true;
            bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        }
        // Line ends are ASCII, so decoding line by line is the same as decoding the stream.
        let text = String::from_utf8_lossy(bytes);
        let result = self.process(&text);
        // Keep the allocation for the next line.
        self.line = line;
        self.line.clear();
        result
    }

    fn process(&mut self, line: &str) -> Result<(), TooLong> {
        if line.is_empty() {
            self.dispatch();
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event_name),
            "data" => {
                if self.data.len() + value.len() + 1 > MAX_EVENT_BYTES {
                    return Err(TooLong);
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => value.clone_into(&mut self.id_buffer),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits only, so the parse fails only on overflow: such a wish is ignored.
                if let Ok(millis) = value.parse::<u64>() {
                    self.retry = Some(Duration::from_millis(millis));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self) {
        let name = std::mem::take(&mut self.event_name);
        let id_moved = self.id_buffer != self.dispatched_id;
        if self.data.is_empty() {
            if id_moved {
                self.dispatched_id.clone_from(&self.id_buffer);
                self.ready.push_back(Dispatch {
                    last_event_id: self.dispatched_id.clone(),
                    event: None,
                });
            }
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the `\n` after the last data line
        self.dispatched_id.clone_from(&self.id_buffer);
        self.ready.push_back(Dispatch {
            last_event_id: self.dispatched_id.clone(),
            event: Some(Event {
                name: if name.is_empty() {
                    "message".to_owned()
                } else {
                    name
                },
                data,
            }),
        });
    }
}

/// One pending ACM data notification from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The stream's last event ID when this notice came (the standard's `lastEventId`: the
    /// latest `id:` the server sent, on this event or an earlier one); `None` when there is
    /// none.
    pub id: Option<String>,
    /// The notification: only the user it is for, no content; download the pending ACM data
    /// to see what it is.
    pub notification: PendingAcmDataNotification,
}

/// The open pending ACM data notification stream of one user
/// ([`AcmClient::notifications`](super::AcmClient::notifications)).
///
/// The stream has no overall time-out: it is open as long as the user is logged on. When it
/// ends or fails, open it again with [`Notifications::last_event_id`] (after waiting
/// [`Notifications::retry`] if the server asked for it).
#[derive(Debug)]
pub struct Notifications {
    response: reqwest::Response,
    parser: SseParser,
    last_event_id: Option<String>,
    failure: Option<ClientError>,
    ended: bool,
}

impl Notifications {
    pub(super) fn new(response: reqwest::Response, last_event_id: Option<&str>) -> Self {
        let last_event_id = last_event_id.filter(|id| !id.is_empty());
        Self {
            response,
            parser: SseParser::resuming(last_event_id.unwrap_or_default()),
            last_event_id: last_event_id.map(str::to_owned),
            failure: None,
            ended: false,
        }
    }

    /// The next notice; `None` when the server ended the stream. Keep-alive comments and
    /// events of other names are skipped. A notice whose data is not a notification is a
    /// [`ClientError::Decode`] and the stream goes on; a broken connection is a
    /// [`ClientError::Transport`] and the stream ends after it.
    pub async fn next(&mut self) -> Option<Result<Notice, ClientError>> {
        loop {
            while let Some(dispatch) = self.parser.next_dispatch() {
                self.last_event_id =
                    Some(dispatch.last_event_id).filter(|id: &String| !id.is_empty());
                let Some(event) = dispatch.event else {
                    continue;
                };
                if event.name != NOTIFICATION_EVENT {
                    continue;
                }
                return Some(
                    serde_json::from_str::<PendingAcmDataNotification>(&event.data)
                        .map(|notification| Notice {
                            id: self.last_event_id.clone(),
                            notification,
                        })
                        .map_err(|e| ClientError::Decode(format!("a notification's data: {e}"))),
                );
            }
            if let Some(failure) = self.failure.take() {
                return Some(Err(failure));
            }
            if self.ended {
                return None;
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => {
                    if self.parser.feed(&bytes) == Err(TooLong) {
                        self.ended = true;
                        self.failure = Some(ClientError::Decode(format!(
                            "an event stream line or event longer than {MAX_EVENT_BYTES} bytes"
                        )));
                    }
                }
                // An unfinished event at the end is discarded, as the standard says.
                Ok(None) => self.ended = true,
                Err(e) => {
                    self.ended = true;
                    self.failure = Some(ClientError::transport(&e));
                }
            }
        }
    }

    /// The ID of the last event read (`None` before any, or after the server cleared it):
    /// the `Last-Event-ID` to reopen the stream with.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The reconnection time the server asked for, if it did.
    pub fn retry(&self) -> Option<Duration> {
        self.parser.retry()
    }
}
