//! The audit export of a store file: every row as a line of acm's tamper-evident JSON Lines
//! format, with the row's stored payload bytes and stored link, and a trailer with the
//! store's recorded chain head.

use std::io::Write;
use std::path::Path;

use acm_core::audit::{EventMeta, ExportError, ExportSummary, ExportWriter};
use acm_core::{Actor, CausationId, StoreError};
use acm_core::{EventId, GlobalPosition, McServiceId, RequestId, StreamId, SystemId, Version};
use chrono::DateTime;
use rusqlite::Connection;
use uuid::Uuid;

use crate::chain::Fields;
use crate::error::{BackendError, OpenError, sqlite};

const VERIFY: &str = include_str!("store/verify.sql");

/// Why a store could not be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportFileError {
    /// The file is not a store that can be opened for reading.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Reading the store failed, or a row does not decode (run `acm audit verify` on it).
    #[error(transparent)]
    Read(#[from] StoreError),
    /// Writing the export failed.
    #[error(transparent)]
    Write(#[from] ExportError),
}

/// Exports the store at `path` to `out`, read-only and in one read transaction, so it is safe
/// beside a running server, the export is one consistent snapshot, and nothing is left beside
/// the file (as for [`verify_file`](crate::verify_file)). The export is built in memory
/// before it is written. Each line carries the
/// row's stored link; the trailer carries the store's recorded chain head, so a verifier of
/// the export finds what [`verify_file`](crate::verify_file) would find in the store.
///
/// ```
/// use acm_core::testkit::conformance::{event, stream, TestEvent};
/// use acm_core::{EventStore, ExpectedVersion};
/// # futures_executor::block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("acm.db");
/// let store = acm_store_sqlite::SqliteStore::<TestEvent>::open(&path).unwrap();
/// let s = stream(1);
/// store.append(s, ExpectedVersion::NoStream, vec![event(s, 1, 1)]).await.unwrap();
/// let mut out = Vec::new();
/// # // TestEvent is not an ACM event: only the chain's figures are compared here.
/// let summary = acm_store_sqlite::export_file(&path, &mut out).unwrap();
/// assert_eq!(summary.head, acm_store_sqlite::verify_file(&path).unwrap().head);
/// # });
/// ```
pub fn export_file(
    path: impl AsRef<Path>,
    out: impl Write,
) -> Result<ExportSummary, ExportFileError> {
    // The read may be done again (a server opened the store during it), so each attempt
    // writes into its own buffer and only the one that stands goes out.
    let (buf, summary) = crate::readonly::read(path.as_ref(), |conn| {
        conn.execute_batch("BEGIN").map_err(sqlite)?;
        let mut buf = Vec::new();
        let result = write_rows(conn, &mut buf);
        let _ = conn.execute_batch("COMMIT");
        result.map(|summary| (buf, summary))
    })?;
    let mut out = out;
    out.write_all(&buf)
        .and_then(|()| out.flush())
        .map_err(ExportError::from)?;
    Ok(summary)
}

fn write_rows(conn: &Connection, out: impl Write) -> Result<ExportSummary, ExportFileError> {
    // Without its head row the trailer claims an empty log, which the lines then contradict.
    let (recorded, recorded_link) = crate::writer::read_recorded_head(conn)
        .map_err(sqlite)?
        .unwrap_or((0, acm_core::chain::GENESIS));
    let mut writer = ExportWriter::new(out)?;
    let mut stmt = conn.prepare(VERIFY).map_err(sqlite)?;
    let mut rows = stmt.query([]).map_err(sqlite)?;
    while let Some(row) = rows.next().map_err(sqlite)? {
        let position = row.get::<_, i64>(0).map_err(sqlite)?;
        // A position below 1 cannot be written as one: only an altered store holds it.
        let Ok(position) = u64::try_from(position) else {
            return Err(StoreError::from(BackendError::Corrupt {
                position: 0,
                column: "position",
            })
            .into());
        };
        let corrupt = || {
            StoreError::from(BackendError::Corrupt {
                position,
                column: "row",
            })
        };
        let (fields, link) = crate::store::chain_fields(row, position).ok_or_else(corrupt)?;
        let meta = meta(&fields).ok_or_else(corrupt)?;
        // A deleted row leaves a hole: the export shows it as the store holds it, and its
        // verifier names the missing line.
        writer.write_stored(&meta, fields.payload, link)?;
    }
    Ok(writer.finish_recorded(recorded, recorded_link)?)
}

fn meta(f: &Fields<'_>) -> Option<EventMeta> {
    let uuid = |b: &[u8]| Uuid::from_slice(b).ok();
    let stream = RequestId::from_uuid(uuid(f.stream_id)?).ok()?;
    Some(EventMeta {
        position: GlobalPosition(f.position),
        event_id: EventId::from_uuid(uuid(f.event_id)?).ok()?,
        stream_id: StreamId(stream),
        version: Version(f.version),
        recorded_at: DateTime::from_timestamp_nanos(f.recorded_at),
        correlation_id: RequestId::from_uuid(uuid(f.correlation_id)?).ok()?,
        causation_id: match f.causation_id {
            None => None,
            Some(c) => Some(CausationId(uuid(c)?)),
        },
        actor: match f.actor_kind {
            "user" => Actor::User(f.actor_id.parse::<McServiceId>().ok()?),
            "system" => Actor::System(f.actor_id.parse::<SystemId>().ok()?),
            _ => return None,
        },
        event_type: f.event_type.to_owned(),
        schema_version: f.schema_version,
    })
}
