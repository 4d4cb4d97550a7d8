//! The batching writer (group commit), shared by every backend.
//!
//! A durable commit costs an fsync (and, on PostgreSQL, a round trip), so one commit per
//! request caps throughput at a few thousand writes a second. Instead every write is a job
//! sent to one task that owns a write connection: it takes all jobs waiting (up to
//! [`MAX_BATCH`]), runs each inside its own SAVEPOINT within one transaction, commits once,
//! and only then answers each caller. A job that fails rolls back to its savepoint and
//! leaves the others untouched; if the commit fails, every caller of the batch gets an
//! error and nothing of theirs was written. If the connection breaks (a database restart),
//! the writer reconnects and carries on.

use crate::StoreError;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Mutex};

const MAX_BATCH: usize = 512;
const QUEUE: usize = 4_096;

/// Delivers a job's result once the fate of its batch is known.
pub(crate) type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Answers the callers of a batch with the fate of its commit.
pub(crate) fn answer_batch(replies: Vec<Reply>, commit: Result<(), String>, size: usize) {
    if let Err(e) = &commit {
        tracing::error!(error = %e, size, "batch commit failed");
    }
    for reply in replies {
        reply(commit.clone());
    }
}

/// The reply of a job whose writes gave `result`: that result if the batch commits,
/// otherwise the commit's error. Shared by both writers.
pub(crate) fn reply_after_commit<T: Send + 'static>(
    result: Result<T, StoreError>,
    caller: oneshot::Sender<Result<T, StoreError>>,
) -> Reply {
    Box::new(move |commit: Result<(), String>| {
        let outcome = match commit {
            Ok(()) => result,
            Err(e) => result.and(Err(StoreError::CommitFailed(e))),
        };
        // The caller may have gone away (client disconnected); the write stands.
        let _ = caller.send(outcome);
    })
}
/// A job runs its writes and says whether they succeeded, with its reply.
type Job<C> = Box<dyn for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, (bool, Reply)> + Send>;
/// Opens a new write connection.
pub(crate) type Connect<C> =
    Box<dyn Fn() -> BoxFuture<'static, Result<C, sqlx::Error>> + Send + Sync>;

/// A connection the writer can drive with plain statements. Implemented per backend, on
/// the concrete connection type.
pub(crate) trait WriteConnection: Send + 'static {
    /// Runs `sql`, which may be several statements, in one round trip.
    fn exec<'a>(&'a mut self, sql: &'static str) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

pub(crate) struct Writer<C> {
    jobs: mpsc::Sender<Job<C>>,
}

impl<C> Clone for Writer<C> {
    fn clone(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
        }
    }
}

impl<C: WriteConnection> Writer<C> {
    /// One writer task per connection, all taking batches from one queue. Against a
    /// server (PostgreSQL) a batch is bound by round trips, not by the database, so
    /// several batches in flight multiply throughput.
    pub(crate) fn spawn(connections: Vec<C>, connect: Connect<C>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        let connect = Arc::new(connect);
        for connection in connections {
            tokio::spawn(run(connection, connect.clone(), queue.clone()));
        }
        Self { jobs }
    }

    /// Runs `op` in the next batch and returns its result once the batch is committed.
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job<C> = Box::new(move |conn| {
            Box::pin(async move {
                let result = op(conn).await;
                (result.is_ok(), reply_after_commit(result, tx))
            })
        });
        submit(&self.jobs, job, rx).await
    }
}

/// Queues `job` and waits for its answer. Shared by both writers.
pub(crate) async fn submit<J, T>(
    jobs: &mpsc::Sender<J>,
    job: J,
    answer: oneshot::Receiver<Result<T, StoreError>>,
) -> Result<T, StoreError> {
    jobs.send(job)
        .await
        .map_err(|_| StoreError::WriterStopped)?;
    answer.await.map_err(|_| StoreError::WriterStopped)?
}

async fn run<C: WriteConnection>(
    mut conn: C,
    connect: Arc<Connect<C>>,
    queue: Arc<Mutex<mpsc::Receiver<Job<C>>>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The queue is locked only while waiting for a batch, not while running it.
    while queue.lock().await.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let size = batch.len();
        match run_batch(&mut conn, &mut batch).await {
            Ok((replies, commit)) => answer_batch(replies, commit, size),
            Err(e) => {
                // Dropping the jobs unrun drops their reply channels: each caller gets an
                // error and nothing of theirs was written.
                tracing::error!(error = %e, size, "write transaction failed; reconnecting");
                batch.clear();
                conn = reconnect(&connect).await;
            }
        }
    }
    tracing::debug!("writer stopped: every store handle is gone");
}

/// Keeps trying, with a growing pause, until the database answers again.
async fn reconnect<C>(connect: &Connect<C>) -> C {
    let mut pause = Duration::from_millis(50);
    loop {
        match connect().await {
            Ok(conn) => return conn,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis(), "database unreachable");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

type BatchOutcome = (Vec<Reply>, Result<(), String>);

/// Each job runs in its own savepoint, so that a failed job is undone without touching the
/// rest. The savepoint commands between two jobs go in one round trip: on a server, round
/// trips are what a batch costs.
async fn run_batch<C: WriteConnection>(
    conn: &mut C,
    batch: &mut Vec<Job<C>>,
) -> Result<BatchOutcome, sqlx::Error> {
    let mut replies = Vec::with_capacity(batch.len());
    let mut before_job = "BEGIN; SAVEPOINT job";
    let mut after_last = "RELEASE SAVEPOINT job";
    for job in batch.drain(..) {
        conn.exec(before_job).await?;
        let (succeeded, reply) = job(conn).await;
        (before_job, after_last) = if succeeded {
            (
                "RELEASE SAVEPOINT job; SAVEPOINT job",
                "RELEASE SAVEPOINT job",
            )
        } else {
            (
                "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job; SAVEPOINT job",
                "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job",
            )
        };
        replies.push(reply);
    }
    conn.exec(after_last).await?;
    let commit = match conn.exec("COMMIT").await {
        Ok(()) => Ok(()),
        Err(e) => {
            // Leave no transaction open behind a failed commit.
            let _ = conn.exec("ROLLBACK").await;
            Err(e.to_string())
        }
    };
    Ok((replies, commit))
}
