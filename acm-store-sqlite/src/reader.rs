//! Reader threads, each with its own read-only connection: reads never wait for the writer's
//! fsync (WAL lets them read the last committed snapshot), and async callers only await a
//! channel, so no executor thread blocks on `SQLite`.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use acm_core::store::StoreError;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::BackendError;

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

enum Msg {
    Job(ReadJob),
    /// The thread that takes it closes its connection and ends.
    Stop,
}

/// A pool of reader threads sharing one job queue. The queue is a multi-consumer channel: a
/// job wakes one idle reader, and taking it wakes no other (a queue behind a mutex would).
#[derive(Debug)]
pub(crate) struct Readers {
    jobs: crossbeam_channel::Sender<Msg>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Readers {
    pub(crate) fn start(path: &Path, count: usize) -> rusqlite::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Msg>();
        let mut threads = Vec::with_capacity(count);
        for i in 0..count.max(1) {
            let conn = crate::open::open_reader(path)?;
            let rx = rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("acm-sqlite-reader-{i}"))
                .spawn(move || {
                    while let Ok(Msg::Job(job)) = rx.recv() {
                        job(&conn);
                    }
                })
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            threads.push(thread);
        }
        Ok(Self {
            jobs: tx,
            threads: Mutex::new(threads),
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
        let sent = self.jobs.send(Msg::Job(job)).is_ok();
        async move {
            if !sent {
                return Err(BackendError::Closed.into());
            }
            rx.await
                .map_err(|_| StoreError::from(BackendError::Closed))?
        }
    }

    /// Runs the jobs queued so far, then closes every reader connection and joins the threads.
    /// A job queued after this is dropped unrun when the last thread ends (its caller gets
    /// [`BackendError::Closed`]), and once they have all ended a submit fails at once.
    pub(crate) fn stop(&self) {
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for _ in &threads {
            // One stop per thread: a thread that takes one ends, so it takes no other.
            let _ = self.jobs.send(Msg::Stop);
        }
        for t in threads {
            let _ = t.join();
        }
    }
}
