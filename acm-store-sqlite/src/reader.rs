//! Reader threads, each with its own read-only connection: reads never wait for the writer's
//! fsync (WAL lets them read the last committed snapshot), and async callers only await a
//! channel, so no executor thread blocks on `SQLite`.

use std::path::Path;
use std::thread::JoinHandle;

use acm_core::store::StoreError;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::BackendError;

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// A pool of reader threads sharing one job queue. The queue is a multi-consumer channel: a
/// job wakes one idle reader, and taking it wakes no other (a queue behind a mutex would).
#[derive(Debug)]
pub(crate) struct Readers {
    jobs: Option<crossbeam_channel::Sender<ReadJob>>,
    threads: Vec<JoinHandle<()>>,
}

impl Readers {
    pub(crate) fn start(path: &Path, count: usize) -> rusqlite::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<ReadJob>();
        let mut threads = Vec::with_capacity(count);
        for i in 0..count.max(1) {
            let conn = crate::open::open_reader(path)?;
            let rx = rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("acm-sqlite-reader-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job(&conn);
                    }
                })
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            threads.push(thread);
        }
        Ok(Self {
            jobs: Some(tx),
            threads,
        })
    }

    /// Queues `f` for a reader thread now, and returns the future of its result.
    pub(crate) fn submit<T, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| drop(tx.send(f(conn))));
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        async move {
            if !sent {
                return Err(BackendError::Closed.into());
            }
            rx.await
                .map_err(|_| StoreError::from(BackendError::Closed))?
        }
    }

    pub(crate) fn stop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
