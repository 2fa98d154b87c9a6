//! Reader threads, each with its own read-only connection: reads never wait for the writer's
//! fsync (WAL lets them read the last committed snapshot), and async callers only await a
//! channel, so no executor thread blocks on `SQLite`.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use acm_core::StoreError;
use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

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
    /// Places in the queue (jobs queued or running): bounds it.
    queue: Arc<Semaphore>,
}

impl Readers {
    pub(crate) fn start(path: &Path, count: usize, queue: usize) -> rusqlite::Result<Self> {
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
            queue: Arc::new(Semaphore::new(queue.max(1))),
        })
    }

    /// Queues `f` for a reader thread now when the queue has room (so that pages asked for
    /// ahead are read while the caller works), else once it has: the future waits for room
    /// asynchronously, never blocking its executor's thread. Yields `f`'s result.
    pub(crate) fn submit<T, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let queue = self.queue.clone();
        let jobs = self.jobs.clone();
        let enqueue = move |permit: OwnedSemaphorePermit| {
            // The permit is released once the job has run (or is dropped unrun).
            let job: ReadJob = Box::new(move |conn| {
                drop(tx.send(f(conn)));
                drop(permit);
            });
            jobs.send(Msg::Job(job)).is_ok()
        };
        let now = match queue.clone().try_acquire_owned() {
            Ok(permit) => Ok(enqueue(permit)),
            Err(_) => Err(enqueue),
        };
        async move {
            let sent = match now {
                Ok(sent) => sent,
                Err(enqueue) => match queue.acquire_owned().await {
                    Ok(permit) => enqueue(permit),
                    Err(_) => false,
                },
            };
            if !sent {
                return Err(BackendError::Closed.into());
            }
            rx.await
                .map_err(|_| StoreError::from(BackendError::Closed))?
        }
    }

    /// Asks every reader thread to stop after the jobs queued so far, without waiting.
    pub(crate) fn signal_stop(&self) {
        let count = self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        for _ in 0..count {
            let _ = self.jobs.send(Msg::Stop);
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
