//! The batching writer (group commit).
//!
//! SQLite allows one writer at a time and a durable commit costs an fsync, so one commit
//! per request caps throughput at a few thousand writes a second. Instead every write is a
//! job sent to one task that owns the write connection: it takes all jobs waiting (up to
//! [`MAX_BATCH`]), runs each inside its own SAVEPOINT within one transaction, commits once,
//! and only then answers each caller. A job that fails rolls back to its savepoint and
//! leaves the others untouched; if the commit fails, every caller of the batch gets an error.

use crate::StoreError;
use futures_util::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 512;
const QUEUE: usize = 4_096;

/// Delivers a job's result once the fate of its batch is known.
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A job runs its writes and says whether they succeeded, with its reply.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Reply)> + Send>;

#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(crate) fn spawn(connection: SqliteConnection) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(connection, queue));
        Self { jobs }
    }

    /// Runs `op` in the next batch and returns its result once the batch is committed.
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = op(conn).await;
                let succeeded = result.is_ok();
                let reply = Box::new(move |commit: Result<(), String>| {
                    let outcome = match commit {
                        Ok(()) => result,
                        Err(e) => result.and(Err(StoreError::CommitFailed(e))),
                    };
                    // The caller may have gone away (client disconnected); the write stands.
                    let _ = tx.send(outcome);
                }) as Reply;
                (succeeded, reply)
            })
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        rx.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(mut conn: SqliteConnection, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let size = batch.len();
        let replies = run_batch(&mut conn, &mut batch).await;
        match replies {
            Ok((replies, commit)) => {
                if let Err(e) = &commit {
                    tracing::error!(error = %e, size, "batch commit failed");
                }
                for reply in replies {
                    reply(commit.clone());
                }
            }
            Err(e) => {
                // Dropping the jobs unrun drops their reply channels: each caller gets an
                // error and nothing of theirs was written.
                tracing::error!(error = %e, size, "could not start a write transaction");
                batch.clear();
            }
        }
    }
    tracing::debug!("writer stopped: every store handle is gone");
}

type BatchOutcome = (Vec<Reply>, Result<(), String>);

async fn run_batch(
    conn: &mut SqliteConnection,
    batch: &mut Vec<Job>,
) -> Result<BatchOutcome, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch.drain(..) {
        // Each job in its own savepoint: a failed job is undone without touching the rest.
        sqlx::query("SAVEPOINT job").execute(&mut *tx).await?;
        let (succeeded, reply) = job(&mut tx).await;
        if !succeeded {
            sqlx::query("ROLLBACK TO job").execute(&mut *tx).await?;
        }
        sqlx::query("RELEASE job").execute(&mut *tx).await?;
        replies.push(reply);
    }
    let commit = tx.commit().await.map_err(|e| e.to_string());
    Ok((replies, commit))
}
