//! The batching writer (group commit), one shape for every backend.
//!
//! A durable commit costs an fsync (and, on PostgreSQL, a round trip), so one commit per
//! request caps throughput at a few thousand writes a second. Instead every write is a job
//! sent to a queue; a runner that owns a write connection takes all jobs waiting (up to
//! [`MAX_BATCH`]), runs each inside its own SAVEPOINT within one transaction (the first in
//! the transaction itself), commits once, and only then answers each caller. A job that
//! fails is rolled back alone and leaves the others untouched; if the commit fails, every
//! caller of the batch gets an error and nothing of theirs was written.
//!
//! Two kinds of write are merged across callers, each into one call of the backend (on
//! PostgreSQL one statement) run as one job, each caller answered with its own part:
//! - recorded attempt outcomes, so the delivery engine sends each outcome here as it comes,
//!   and this is the only queue (and the only reply channel) on the record path;
//! - new customers with their events and outbox entries: on PostgreSQL a statement per
//!   customer cost a round trip and the executor's set-up of its data-modifying CTEs
//!   each time. If the merged statement fails, each customer is saved again alone, as a
//!   job of its own, so one bad change is refused to its caller only.
//!
//! A claim of due deliveries can also wait here, parked ([`Writer::park`]): it runs last in
//! the next batch with writes, in its transaction, so that a new event is leased by the
//! commit that stores it instead of by a batch of its own after a wake-up.
//!
//! Where the runner lives is the one difference between backends:
//! - PostgreSQL: [`Writer::spawn_tasks`], a tokio task per connection, several batches in
//!   flight (a batch is bound by round trips, not by the server), reconnecting after a
//!   lost connection.
//! - SQLite: [`Writer::spawn_thread`], one OS thread that owns the connection and runs a
//!   batch start to finish without leaving it. The driver (rusqlite) is synchronous, so the
//!   batch's future is complete when first polled: a batch costs one hop onto the thread
//!   and one reply per job, where an async driver's worker thread cost a hop per statement
//!   (measured: that capped the pipeline near 1,100 events/s on two cores).

use crate::conn::Conn;
use crate::outbox::{AttemptOutcome, Recorded};
use crate::StoreError;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Mutex};
use verihook_core::CustomerChange;

const MAX_BATCH: usize = 512;
const QUEUE: usize = 4_096;

/// Delivers a job's result once the fate of its batch is known.
type Reply = Box<dyn FnOnce(Result<(), Arc<StoreError>>) + Send>;
/// A job runs its writes and says whether they succeeded, with its reply.
type Job<C> = Box<dyn for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, (bool, Reply)> + Send>;
/// The backend's recording of attempt outcomes (see `Backend::record`).
pub(crate) type RecordFn<C> =
    for<'c> fn(&'c mut C, &'c [AttemptOutcome]) -> BoxFuture<'c, Result<Vec<Recorded>, StoreError>>;
/// The backend's storing of customer changes (see `Backend::save_changes`).
pub(crate) type SaveFn<C> =
    for<'c> fn(&'c mut C, &'c [CustomerChange]) -> BoxFuture<'c, Result<(), StoreError>>;

/// The writes merged across callers, as the backend runs them.
pub(crate) struct Merged<C> {
    /// Attempt outcomes: always in a transaction (the endpoints' health goes with them).
    pub(crate) record: RecordFn<C>,
    /// New customers with their events and outbox entries.
    pub(crate) save: SaveFn<C>,
    /// What one customer's save needs when it runs alone in a batch.
    pub(crate) save_alone: Shape,
}

impl<C> Clone for Merged<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Merged<C> {}

/// What a job's writes need when it runs alone in a batch (at low rates most batches are
/// one job, and on a server each statement saved is a round trip). In a batch of several,
/// every job gets its savepoint and the batch's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One statement, atomic by itself: no transaction of its own.
    OneStatement,
    /// Writes whose loss in a crash of the database only repeats work (a claim's lease):
    /// a transaction whose commit does not wait for the disk (`Conn::BEGIN_RELAXED`).
    Relaxed,
    /// Anything else: a transaction.
    Several,
}
type RecordReply = oneshot::Sender<Result<Vec<Recorded>, StoreError>>;
type SaveReply = oneshot::Sender<Result<(), StoreError>>;

/// What a queue holds: a job, outcomes to record or a new customer to save (each merged
/// with the batch's others of its kind), a claim of due deliveries (which makes nothing
/// due, so a parked claim does not ride on it), a claim to park, take back or renew (see
/// [`Writer::park`]), or a wake-up for a runner waiting on the API lane (see [`Lane`]).
enum Work<C> {
    Job(Job<C>, Shape),
    Record(Vec<AttemptOutcome>, RecordReply),
    Save(Box<CustomerChange>, SaveReply),
    Claim(Job<C>, Shape),
    Park(Job<C>, Shape),
    Unpark,
    /// A claim to run in the next batch in place of the parked one, if that has not run.
    Renew(Job<C>, Shape),
    Wake,
}

/// Which queue a write waits in. Every batch first takes all the delivery lane holds (the
/// engine's claims, outcomes and releases), then API writes up to [`MAX_BATCH`]: however
/// many customer changes wait, the engine's work waits at most one batch, so ingest
/// cannot starve delivery of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    Api,
    Delivery,
}
/// Opens a new write connection (after the last one broke).
pub(crate) type Connect<C> =
    Arc<dyn Fn() -> BoxFuture<'static, Result<C, StoreError>> + Send + Sync>;

pub(crate) struct Writer<C> {
    api: mpsc::Sender<Work<C>>,
    delivery: mpsc::Sender<Work<C>>,
    /// A wake-up is on its way through the API lane (one is enough).
    wake_sent: Arc<AtomicBool>,
    /// The runner's `wrote_unclaimed`, for [`Writer::park`].
    wrote_unclaimed: Arc<AtomicBool>,
    /// How long outcomes to record wait for a batch that runs anyway (see
    /// [`Writer::record`]); `None`: they wake the runner at once.
    records_wait: Option<Duration>,
}

/// Both lanes' receiving ends, and the parked claim.
struct Queues<C> {
    api: mpsc::Receiver<Work<C>>,
    delivery: mpsc::Receiver<Work<C>>,
    wake_sent: Arc<AtomicBool>,
    parked: Option<(Job<C>, Shape)>,
    /// A batch with writes ran while no claim was parked: the next one runs at once.
    /// Shared with the senders: only such a claim wakes the runner when it is parked.
    wrote_unclaimed: Arc<AtomicBool>,
}

/// What a runner needs besides its connection.
struct Runner<C> {
    queues: Arc<Mutex<Queues<C>>>,
    merged: Merged<C>,
}

fn channels<C>() -> (Writer<C>, Queues<C>) {
    let (api, api_queue) = mpsc::channel(QUEUE);
    let (delivery, delivery_queue) = mpsc::channel(QUEUE);
    let wake_sent = Arc::new(AtomicBool::new(false));
    let wrote_unclaimed = Arc::new(AtomicBool::new(false));
    let writer = Writer {
        api,
        delivery,
        wake_sent: wake_sent.clone(),
        wrote_unclaimed: wrote_unclaimed.clone(),
        records_wait: None,
    };
    let queues = Queues {
        api: api_queue,
        delivery: delivery_queue,
        wake_sent,
        parked: None,
        wrote_unclaimed,
    };
    (writer, queues)
}

impl<C> Queues<C> {
    /// Waits for work in either lane (async runners), then takes a batch.
    async fn next_batch(&mut self, batch: &mut Vec<Work<C>>) -> bool {
        let first = tokio::select! {
            biased;
            work = self.delivery.recv() => work,
            work = self.api.recv() => work,
        };
        match first {
            None => return false,
            Some(Work::Wake) => {}
            Some(work) => batch.push(work),
        }
        self.fill(batch);
        true
    }

    /// Waits for work (a thread runner): delivery work arriving while it waits sends a
    /// wake-up through the API lane, so waiting on that one lane sees both.
    fn blocking_next_batch(&mut self, batch: &mut Vec<Work<C>>) -> bool {
        if self.wrote_unclaimed.load(Ordering::SeqCst) {
            // A claim parked before the flag was raised sent no wake-up (see
            // `Writer::park`), and must run now: it is in the lane by this read.
            fence(Ordering::SeqCst);
            self.take_deliveries(batch);
            if batch.iter().any(|w| matches!(w, Work::Park(..))) {
                self.fill(batch);
                return true;
            }
        }
        match self.api.blocking_recv() {
            None => return false,
            Some(Work::Wake) => {}
            Some(work) => batch.push(work),
        }
        self.fill(batch);
        true
    }

    /// All the delivery lane holds, then API work up to the batch limit, then the parked
    /// claim if it rides on this batch.
    fn fill(&mut self, batch: &mut Vec<Work<C>>) {
        self.take_deliveries(batch);
        let mut api = batch.len();
        while api < MAX_BATCH {
            match self.api.try_recv() {
                // Its work may have been queued after the lane was read (a sender between
                // its send and its wake-up then saw the flag still set and sent none).
                // Ignoring it would leave that work waiting for the next API write.
                Ok(Work::Wake) => self.take_deliveries(batch),
                Ok(work) => {
                    batch.push(work);
                    api += 1;
                }
                Err(_) => break,
            }
        }
        self.ride(batch);
    }

    fn take_deliveries(&mut self, batch: &mut Vec<Work<C>>) {
        // Cleared before the lane is read: work queued after this sends a new wake-up.
        self.wake_sent.store(false, Ordering::SeqCst);
        while let Ok(work) = self.delivery.try_recv() {
            if !matches!(work, Work::Wake) {
                batch.push(work);
            }
        }
    }

    /// Takes the batch's parking orders (in the order sent), then puts the parked claim
    /// at the end of a batch that writes: it runs after those writes, in their
    /// transaction, and sees what they made due. A claim parked after a batch that wrote
    /// without one runs at once (alone if nothing else waits).
    fn ride(&mut self, batch: &mut Vec<Work<C>>) {
        let mut arrived = false;
        if batch
            .iter()
            .any(|w| matches!(w, Work::Park(..) | Work::Unpark | Work::Renew(..)))
        {
            let mut rest = Vec::with_capacity(batch.len());
            for work in batch.drain(..) {
                match work {
                    Work::Park(claim, shape) => {
                        self.parked = Some((claim, shape));
                        arrived = true;
                    }
                    // Dropped unrun: its caller hears that nothing was claimed.
                    Work::Unpark => self.parked = None,
                    // Runs last in this batch, with whatever writes it holds. If the
                    // parked claim ran first, the renewal is dropped unrun: its caller
                    // has the parked one's answer.
                    Work::Renew(claim, shape) => {
                        if self.parked.take().is_some() {
                            rest.push(Work::Claim(claim, shape));
                        }
                    }
                    work => rest.push(work),
                }
            }
            *batch = rest;
        }
        let claims = batch.iter().any(|w| matches!(w, Work::Claim(..)));
        let writes = batch
            .iter()
            .any(|w| !matches!(w, Work::Claim(..) | Work::Wake));
        let unclaimed = self.wrote_unclaimed.load(Ordering::SeqCst);
        if writes || (arrived && unclaimed) {
            if let Some((claim, shape)) = self.parked.take() {
                batch.push(Work::Claim(claim, shape));
                self.wrote_unclaimed.store(false, Ordering::SeqCst);
                return;
            }
        }
        // A claim runs last in its batch, and sees all written before it.
        let unclaimed = (unclaimed || writes) && !claims;
        self.wrote_unclaimed.store(unclaimed, Ordering::SeqCst);
    }
}

impl<C: Conn> Writer<C> {
    /// One tokio task per connection, all taking batches from one queue.
    pub(crate) fn spawn_tasks(connections: Vec<C>, connect: Connect<C>, merged: Merged<C>) -> Self {
        let (writer, queues) = channels();
        let queues = Arc::new(Mutex::new(queues));
        for connection in connections {
            let runner = Runner {
                queues: queues.clone(),
                merged,
            };
            tokio::spawn(run_task(connection, connect.clone(), runner));
        }
        writer
    }

    /// One OS thread owning the connection, for a synchronous driver.
    pub(crate) fn spawn_thread(
        connection: C,
        name: &str,
        merged: Merged<C>,
    ) -> Result<Self, StoreError> {
        let (mut writer, queues) = channels();
        writer.records_wait = Some(RECORDS_WAIT);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run_thread(connection, queues, merged))
            .map_err(|e| StoreError::Config(format!("cannot start the writer thread: {e}")))?;
        Ok(writer)
    }

    /// Queues work in a lane (waking a waiting runner for the delivery lane).
    async fn send(&self, lane: Lane, work: Work<C>) -> Result<(), StoreError> {
        self.queue(lane, work).await?;
        if lane == Lane::Delivery {
            self.wake();
        }
        Ok(())
    }

    /// Queues work in a lane without waking anyone: a thread runner waiting on the API
    /// lane sees delivery work only with the next batch or wake-up.
    async fn queue(&self, lane: Lane, work: Work<C>) -> Result<(), StoreError> {
        let queue = match lane {
            Lane::Api => &self.api,
            Lane::Delivery => &self.delivery,
        };
        queue
            .send(work)
            .await
            .map_err(|_| StoreError::WriterStopped)
    }

    /// Tells a runner waiting on the API lane that the delivery lane holds work.
    fn wake(&self) {
        if !self.wake_sent.swap(true, Ordering::SeqCst) {
            // A full API lane means the runner is busy and reads the delivery lane first
            // next; a closed one, that it stopped (the reply says so).
            let _ = self.api.try_send(Work::Wake);
        }
    }

    /// Queues `work` in `lane` and waits for its answer on `answer`, at most
    /// [`WRITE_DEADLINE`] in all.
    async fn answer<T>(
        &self,
        lane: Lane,
        work: Work<C>,
        answer: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        within_deadline(async {
            self.send(lane, work).await?;
            answer.await.map_err(|_| StoreError::WriterStopped)?
        })
        .await
    }

    /// Records attempt outcomes in the next batch, together with every other outcome
    /// waiting there; answers once the batch is committed.
    pub(crate) async fn record(
        &self,
        outcomes: Vec<AttemptOutcome>,
    ) -> Result<Vec<Recorded>, StoreError> {
        let (tx, rx) = oneshot::channel();
        let work = Work::Record(outcomes, tx);
        // Unlike a job, outcomes are still recorded after their caller gave up: late is
        // better than sending those attempts again.
        let Some(wait) = self.records_wait else {
            return self.answer(Lane::Delivery, work, rx).await;
        };
        // Queued without a wake-up: the next batch takes them with its other writes, in
        // one commit (below saturation, mostly the next new event's); if none comes
        // within `wait`, they wake the runner themselves. Their lease holds meanwhile,
        // and a crash before the commit only sends the attempt again, as it would have
        // anyway.
        within_deadline(async {
            self.queue(Lane::Delivery, work).await?;
            let mut rx = rx;
            let answer = match tokio::time::timeout(wait, &mut rx).await {
                Ok(answer) => answer,
                Err(_) => {
                    self.wake();
                    rx.await
                }
            };
            answer.map_err(|_| StoreError::WriterStopped)?
        })
        .await
    }

    /// Stores a new customer with its events in the next batch, in one statement with the
    /// batch's other new customers where the backend can; answers once that is committed.
    pub(crate) async fn save(&self, change: CustomerChange) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        // A caller that gave up closed its reply: its save is dropped unrun (see `write`).
        self.answer(Lane::Api, Work::Save(Box::new(change), tx), rx)
            .await
    }

    /// Runs `op`, of the given shape, in the next batch that takes it from `lane`, and
    /// returns its result once that batch is committed.
    pub(crate) async fn write<T, F>(&self, lane: Lane, shape: Shape, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (job, rx) = job(op);
        self.answer(lane, Work::Job(job, shape), rx).await
    }

    /// Runs a claim of due deliveries (`op`) in the next batch, as [`Writer::write`]
    /// would; unlike a write, it is no batch for a parked claim to ride on.
    pub(crate) async fn claim<T, F>(&self, shape: Shape, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (job, rx) = job(op);
        self.answer(Lane::Delivery, Work::Claim(job, shape), rx)
            .await
    }

    /// Parks a claim (`op`) until the next batch with writes in it, whoever sends them;
    /// it then runs last in that batch, in its transaction. Only a single runner sees
    /// every write after the claim before it: with several, a parked claim could ride
    /// one batch while another commits beside it. The answer comes after the commit;
    /// a claim taken back ([`Writer::unpark`]) before it ran answers `Err` (closed).
    pub(crate) async fn park<T, F>(
        &self,
        shape: Shape,
        op: F,
    ) -> Result<oneshot::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (job, rx) = job(op);
        self.queue(Lane::Delivery, Work::Park(job, shape)).await?;
        // Parked, the claim waits for the next batch with writes, which wakes the runner
        // anyway; a wake-up now would only run a batch of what waits without one (outcomes
        // waiting for company, see `record`). Unless writes ran since the last claim:
        // then it must run at once. The runner raises the flag before it looks in the
        // lane again (`Queues::blocking_next_batch`), so one of the two sees the other.
        fence(Ordering::SeqCst);
        if self.wrote_unclaimed.load(Ordering::SeqCst) {
            self.wake();
        }
        Ok(rx)
    }

    /// Takes the parked claim back if it has not run.
    pub(crate) async fn unpark(&self) -> Result<(), StoreError> {
        self.send(Lane::Delivery, Work::Unpark).await
    }

    /// Puts a fresh claim (`op`) in the parked one's place, to run now, in one batch with
    /// the writes waiting (the outcomes of the attempts that freed the slots, mostly):
    /// one commit, where taking the parked claim back and claiming anew cost two. If the
    /// parked claim ran first, this one is dropped unrun (its answer `Err`, closed); if
    /// not, the parked one's answer is `Err` and this one runs.
    pub(crate) async fn renew<T, F>(
        &self,
        shape: Shape,
        op: F,
    ) -> Result<oneshot::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (job, rx) = job(op);
        self.send(Lane::Delivery, Work::Renew(job, shape)).await?;
        Ok(rx)
    }
}

/// `op` as a job, with the receiver of its answer (after the commit).
fn job<C, T, F>(op: F) -> (Job<C>, oneshot::Receiver<Result<T, StoreError>>)
where
    C: Conn,
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let job: Job<C> = Box::new(move |conn| {
        Box::pin(async move {
            if tx.is_closed() {
                // Its caller gave up (its deadline passed): a write that was never
                // answered must not happen later behind its back.
                let skipped: Reply = Box::new(|_| {});
                return (true, skipped);
            }
            let result = op(conn).await;
            (result.is_ok(), reply_after_commit(result, tx))
        })
    });
    (job, rx)
}

/// How long a caller waits for its write (queueing, running and commit). Past it the
/// caller is answered `Timeout`, and the write is dropped if it has not started: with the
/// database unreachable, the API answers 503 in seconds instead of hanging, and shutdown
/// is not held by writes that cannot finish.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(5);

/// How long outcomes to record wait for other writes on the single-writer thread (SQLite)
/// before they ask for a batch of their own. At 1,000 events/s a new event comes within a
/// millisecond or two, and its commit takes the outcomes with it: fewer commits (and
/// fsyncs) an event, and fewer new events waiting behind a commit of outcomes alone.
const RECORDS_WAIT: Duration = Duration::from_millis(10);

/// `answered`, given up with [`StoreError::Timeout`] after [`WRITE_DEADLINE`].
async fn within_deadline<T>(
    answered: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(WRITE_DEADLINE, answered)
        .await
        .map_err(|_| StoreError::Timeout(WRITE_DEADLINE))?
}

/// How long a batch may wait on the database before its connection is given up: a server
/// cut off by the network drops packets, and TCP alone would wait many minutes to say so.
const BATCH_DEADLINE: Duration = Duration::from_secs(10);

/// The reply of a job whose writes gave `result`: that result if the batch commits,
/// otherwise the commit's error.
fn reply_after_commit<T: Send + 'static>(
    result: Result<T, StoreError>,
    caller: oneshot::Sender<Result<T, StoreError>>,
) -> Reply {
    Box::new(move |commit| {
        let outcome = match commit {
            Ok(()) => result,
            Err(e) => result.and(Err(StoreError::CommitFailed(e))),
        };
        // The caller may have gone away (client disconnected); the write stands.
        let _ = caller.send(outcome);
    })
}

async fn run_task<C: Conn>(mut conn: C, connect: Connect<C>, runner: Runner<C>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The queues are locked only while waiting for a batch, not while running it.
    while runner.queues.lock().await.next_batch(&mut batch).await {
        let ran = tokio::time::timeout(
            BATCH_DEADLINE,
            run_and_answer(&mut conn, &mut batch, runner.merged),
        )
        .await;
        if !matches!(ran, Ok(Ok(()))) {
            if ran.is_err() {
                // Its callers were answered `Timeout` already; the batch may or may not
                // have committed, and its outcomes are sent again when their leases end.
                tracing::error!("a batch got no answer from the database; reconnecting");
                batch.clear();
            }
            conn = reconnect(&connect).await;
        }
    }
    tracing::debug!("writer stopped: every store handle is gone");
}

fn run_thread<C: Conn>(mut conn: C, mut queues: Queues<C>, merged: Merged<C>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queues.blocking_next_batch(&mut batch) {
        let size = batch.len();
        let ran = run_and_answer(&mut conn, &mut batch, merged).now_or_never();
        if ran.is_none() {
            // A synchronous connection never waits; dropping the work answers each
            // caller with an error, and nothing of theirs was committed.
            tracing::error!(size, "a write batch waited on a synchronous connection");
            batch.clear();
        }
    }
    tracing::debug!("writer stopped: every store handle is gone");
}

/// Runs a batch and answers its callers. Err when the transaction broke before its
/// commit: the work is dropped unrun, which answers each caller with an error.
async fn run_and_answer<C: Conn>(
    conn: &mut C,
    batch: &mut Vec<Work<C>>,
    merged: Merged<C>,
) -> Result<(), ()> {
    let size = batch.len();
    match run_batch(conn, batch, merged).await {
        Ok((replies, commit)) => {
            if let Err(e) = &commit {
                tracing::error!(error = %e, size, "batch commit failed");
            }
            for reply in replies {
                reply(commit.clone());
            }
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, size, "write transaction failed");
            batch.clear();
            Err(())
        }
    }
}

type BatchOutcome = (Vec<Reply>, Result<(), Arc<StoreError>>);

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

/// Each job runs in its own savepoint, so that a failed job is undone without touching the
/// rest, except the first, which has the transaction to itself (see [`Open`]); the batch's
/// outcomes to record run together as one job, and so do its new customers. The savepoint
/// commands between two jobs go in one round trip: on a server, round trips are what a
/// batch costs.
#[tracing::instrument(level = "debug", skip_all, fields(size = batch.len()))]
async fn run_batch<C: Conn>(
    conn: &mut C,
    batch: &mut Vec<Work<C>>,
    merged: Merged<C>,
) -> Result<BatchOutcome, StoreError> {
    let Sorted { mut jobs, saves } = sort(batch, merged);
    if saves.is_empty() {
        match jobs.len() {
            // Only wake-ups: the work they announced went with an earlier batch.
            0 => return Ok((Vec::new(), Ok(()))),
            1 => {
                let (job, shape) = jobs.remove(0);
                return run_alone(conn, job, shape).await;
            }
            _ => {}
        }
    }
    let mut replies = Vec::with_capacity(jobs.len() + 1);
    conn.batch(C::BEGIN).await?;
    let mut open = Open::Empty;
    if !saves.is_empty() {
        open.enter(conn).await?;
        let saved = run_saves(conn, saves, merged.save, &mut jobs).await;
        open = open.after(conn, saved.is_some()).await?;
        replies.extend(saved);
    }
    for (job, _) in jobs {
        open.enter(conn).await?;
        let (succeeded, reply) = job(conn).await;
        open = open.after(conn, succeeded).await?;
        replies.push(reply);
    }
    open.close(conn).await?;
    Ok((replies, commit(conn).await))
}

/// The batch's new customers in one call of the backend, inside the current savepoint:
/// the reply to their callers if it succeeded. If it failed (one bad change fails the
/// call of all), each is queued to run alone, so that only its own caller hears of it.
async fn run_saves<C: Conn>(
    conn: &mut C,
    saves: Vec<(CustomerChange, SaveReply)>,
    save: SaveFn<C>,
    jobs: &mut Vec<(Job<C>, Shape)>,
) -> Option<Reply> {
    let (changes, callers): (Vec<_>, Vec<_>) = saves.into_iter().unzip();
    match save(conn, &changes).await {
        Ok(()) => Some(answer_savers(callers)),
        Err(e) => {
            tracing::debug!(error = %e, "merged save failed; saving one by one");
            let alone = changes.into_iter().zip(callers);
            jobs.extend(
                alone.map(|(change, caller)| (save_job(save, change, caller), Shape::Several)),
            );
            None
        }
    }
}

/// A batch's work by how it runs: jobs (the merged outcomes to record being one), and the
/// new customers to save together (two or more), whose callers still wait.
struct Sorted<C> {
    jobs: Vec<(Job<C>, Shape)>,
    saves: Vec<(CustomerChange, SaveReply)>,
}

fn sort<C: Conn>(batch: &mut Vec<Work<C>>, merged: Merged<C>) -> Sorted<C> {
    let mut jobs = Vec::with_capacity(batch.len());
    let mut saves = Vec::new();
    let mut outcomes = Vec::new();
    let mut recorders = Vec::new();
    let mut claims = Vec::new();
    for work in batch.drain(..) {
        match work {
            Work::Job(job, shape) => jobs.push((job, shape)),
            Work::Claim(job, shape) => claims.push((job, shape)),
            Work::Record(mine, reply) => {
                recorders.push((mine.len(), reply));
                outcomes.extend(mine);
            }
            // Its caller gave up (its deadline passed): a write that was never answered
            // must not happen later behind its back.
            Work::Save(_, caller) if caller.is_closed() => {}
            Work::Save(change, caller) => saves.push((*change, caller)),
            // Parking orders were taken before (`Queues::ride`).
            Work::Park(..) | Work::Unpark | Work::Renew(..) | Work::Wake => {}
        }
    }
    // One new customer is a job like any other (on PostgreSQL, alone in its batch, one
    // statement needing no transaction).
    let saves = match <[_; 1]>::try_from(saves) {
        Ok([(change, caller)]) => {
            jobs.push((save_job(merged.save, change, caller), merged.save_alone));
            Vec::new()
        }
        Err(saves) => saves,
    };
    if !recorders.is_empty() {
        let record = merged.record;
        let job: Job<C> = Box::new(move |conn: &mut C| {
            Box::pin(async move {
                let result = record(conn, &outcomes).await;
                (result.is_ok(), answer_recorders(result, recorders))
            })
        });
        jobs.push((job, Shape::Several));
    }
    // Last: a claim sees what the batch's other writes made due (and freed).
    jobs.extend(claims);
    Sorted { jobs, saves }
}

/// What a batch's transaction holds between two jobs, and so what the next one runs in.
///
/// The first job runs in the transaction itself, without a savepoint: if it fails, nothing
/// else is in the transaction yet, which is rolled back and begun again. A savepoint is
/// not free: SQLite copies every page a job changes first into the savepoint's journal
/// (measured: 4 % of the server's instructions, most of them for the new customers, which
/// run first), and on PostgreSQL it is one more command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// No job's writes: the next job runs in the transaction itself.
    Empty,
    /// Writes of jobs that succeeded, no savepoint open.
    Written,
    /// The last job's savepoint, and whether the job succeeded.
    Savepoint(bool),
}

impl Open {
    /// Makes ready for the next job: its savepoint, unless it is first.
    async fn enter<C: Conn>(self, conn: &mut C) -> Result<(), StoreError> {
        let sql = match self {
            Open::Empty => return Ok(()),
            Open::Written => "SAVEPOINT job",
            Open::Savepoint(true) => "RELEASE SAVEPOINT job; SAVEPOINT job",
            Open::Savepoint(false) => {
                "ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job; SAVEPOINT job"
            }
        };
        conn.batch(sql).await
    }

    /// What the transaction holds after a job entered from `self`; a first job that
    /// failed is rolled back with the transaction, which begins again empty.
    async fn after<C: Conn>(self, conn: &mut C, succeeded: bool) -> Result<Self, StoreError> {
        match (self, succeeded) {
            (Open::Empty, true) => Ok(Open::Written),
            (Open::Empty, false) => {
                conn.batch("ROLLBACK").await?;
                conn.batch(C::BEGIN).await?;
                Ok(Open::Empty)
            }
            (_, succeeded) => Ok(Open::Savepoint(succeeded)),
        }
    }

    /// Closes the last job's savepoint, if it has one, before the commit.
    async fn close<C: Conn>(self, conn: &mut C) -> Result<(), StoreError> {
        match self {
            Open::Empty | Open::Written => Ok(()),
            Open::Savepoint(true) => conn.batch("RELEASE SAVEPOINT job").await,
            Open::Savepoint(false) => {
                conn.batch("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")
                    .await
            }
        }
    }
}

/// One customer's save as a job of its own.
fn save_job<C: Conn>(save: SaveFn<C>, change: CustomerChange, caller: SaveReply) -> Job<C> {
    Box::new(move |conn: &mut C| {
        Box::pin(async move {
            let result = save(conn, std::slice::from_ref(&change)).await;
            (result.is_ok(), reply_after_commit(result, caller))
        })
    })
}

/// After the commit, every caller of a merged save hears its fate.
fn answer_savers(callers: Vec<SaveReply>) -> Reply {
    Box::new(move |commit| {
        for caller in callers {
            let _ = caller.send(commit.clone().map_err(StoreError::CommitFailed));
        }
    })
}

/// A batch of one job needs no savepoint: the transaction is the job's, and a job of one
/// statement needs none at all (it commits by itself). At low rates most batches are one
/// job, and on a server each statement saved is a round trip and the database's parse and
/// execution of it.
async fn run_alone<C: Conn>(
    conn: &mut C,
    job: Job<C>,
    shape: Shape,
) -> Result<BatchOutcome, StoreError> {
    match shape {
        Shape::Several => conn.batch(C::BEGIN).await?,
        Shape::Relaxed => conn.batch(C::BEGIN_RELAXED).await?,
        Shape::OneStatement => {}
    }
    let (succeeded, reply) = job(conn).await;
    if !succeeded {
        // Also without a transaction: it proves the connection still works (an error
        // here reconnects), and changes nothing.
        conn.batch("ROLLBACK").await?;
        // The reply carries the job's own error; nothing was written.
        return Ok((vec![reply], Ok(())));
    }
    match shape {
        Shape::Several | Shape::Relaxed => Ok((vec![reply], commit(conn).await)),
        Shape::OneStatement => Ok((vec![reply], Ok(()))),
    }
}

/// Commits the batch's transaction; the error, shared by its callers, if that fails.
async fn commit<C: Conn>(conn: &mut C) -> Result<(), Arc<StoreError>> {
    if let Err(e) = conn.batch("COMMIT").await {
        // Leave no transaction open behind a failed commit.
        let _ = conn.batch("ROLLBACK").await;
        return Err(Arc::new(e));
    }
    Ok(())
}

/// After the commit, each caller gets its own outcomes' part of the merged result.
fn answer_recorders(
    result: Result<Vec<Recorded>, StoreError>,
    recorders: Vec<(usize, RecordReply)>,
) -> Reply {
    Box::new(move |commit| {
        let mut recorded = match (result, commit) {
            (Ok(recorded), Ok(())) => recorded.into_iter(),
            (Err(e), _) => {
                let e = Arc::new(e);
                for (_, reply) in recorders {
                    let _ = reply.send(Err(StoreError::RecordFailed(e.clone())));
                }
                return;
            }
            (Ok(_), Err(e)) => {
                for (_, reply) in recorders {
                    let _ = reply.send(Err(StoreError::CommitFailed(e.clone())));
                }
                return;
            }
        };
        for (n, reply) in recorders {
            let _ = reply.send(Ok(recorded.by_ref().take(n).collect()));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;
    use std::sync::atomic::AtomicUsize;

    fn no_record<'c>(
        _: &'c mut Connection,
        _: &'c [AttemptOutcome],
    ) -> BoxFuture<'c, Result<Vec<Recorded>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn no_save<'c>(
        _: &'c mut Connection,
        _: &'c [CustomerChange],
    ) -> BoxFuture<'c, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// A job that writes `value`; one that `fails` then writes it again, which the key
    /// refuses, so that its first write is there to be undone.
    fn job(value: i64, fails: bool) -> Work<Connection> {
        let job: Job<Connection> = Box::new(move |conn: &mut Connection| {
            Box::pin(async move {
                let insert = |conn: &Connection| conn.execute("INSERT INTO t VALUES (?1)", [value]);
                let mut succeeded = insert(conn).is_ok();
                if fails {
                    succeeded = succeeded && insert(conn).is_ok();
                }
                let reply: Reply = Box::new(|_| {});
                (succeeded, reply)
            })
        });
        Work::Job(job, Shape::Several)
    }

    fn committed(mut batch: Vec<Work<Connection>>) -> Vec<i64> {
        let mut conn = Connection::open_in_memory().expect("opened");
        conn.execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .expect("created");
        let merged = Merged {
            record: no_record,
            save: no_save,
            save_alone: Shape::Several,
        };
        let ran = run_and_answer(&mut conn, &mut batch, merged).now_or_never();
        assert_eq!(ran, Some(Ok(())));
        let mut read = conn.prepare("SELECT v FROM t ORDER BY v").expect("read");
        let values = read.query_map([], |row| row.get(0)).expect("read");
        values.collect::<Result<_, _>>().expect("read")
    }

    /// The first job runs without a savepoint: when it fails, the transaction is rolled
    /// back and begun again, and the jobs after it still land; a later one that fails is
    /// undone alone.
    #[test]
    fn a_failed_job_is_undone_alone_whether_it_runs_first_or_later() {
        let batch = vec![job(1, true), job(2, false), job(3, true), job(4, false)];
        assert_eq!(committed(batch), [2, 4]);
        let batch = vec![job(1, true), job(2, true), job(3, false), job(4, true)];
        assert_eq!(committed(batch), [3]);
        assert_eq!(
            committed(vec![job(1, true), job(2, true)]),
            Vec::<i64>::new()
        );
        assert_eq!(committed(vec![job(1, false), job(2, false)]), [1, 2]);
    }

    /// Outcomes to record: each writes a row, so their batch commits.
    fn a_row<'c>(
        conn: &'c mut Connection,
        _: &'c [AttemptOutcome],
    ) -> BoxFuture<'c, Result<Vec<Recorded>, StoreError>> {
        let inserted = Connection::execute(conn, "INSERT INTO t VALUES (NULL)", []);
        Box::pin(async move {
            inserted?;
            Ok(Vec::new())
        })
    }

    fn insert_row(conn: &mut Connection) -> BoxFuture<'_, Result<(), StoreError>> {
        let inserted = Connection::execute(conn, "INSERT INTO t VALUES (NULL)", []);
        Box::pin(async move { inserted.map(|_| ()).map_err(StoreError::from) })
    }

    /// A writer thread over a table `t`, counting its commits.
    fn counted_thread(dir: &std::path::Path) -> (Writer<Connection>, Arc<AtomicUsize>) {
        let conn = Connection::open(dir.join("w.db")).expect("opened");
        conn.execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .expect("created");
        let commits = Arc::new(AtomicUsize::new(0));
        let counter = commits.clone();
        conn.commit_hook(Some(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            false
        }));
        let merged = Merged {
            record: a_row,
            save: no_save,
            save_alone: Shape::Several,
        };
        let writer = Writer::spawn_thread(conn, "test-writer", merged).expect("started");
        (writer, commits)
    }

    #[tokio::test]
    async fn outcomes_on_the_writer_thread_ride_the_next_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (writer, commits) = counted_thread(dir.path());
        let mut recording = Box::pin(writer.record(Vec::new()));
        // Queued, and waiting: no batch of their own, however long no other write comes
        // (their own wait runs only while they are polled, and nothing polls them here).
        assert!(futures_util::poll!(&mut recording).is_pending());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(commits.load(Ordering::SeqCst), 0, "nothing committed yet");
        let wrote = writer.write(Lane::Api, Shape::Several, insert_row);
        wrote.await.expect("written");
        recording.await.expect("recorded");
        assert_eq!(commits.load(Ordering::SeqCst), 1, "one commit for both");
    }

    /// A parked claim waits for the next write without waking the runner: outcomes
    /// waiting for company are not committed by a batch of their own for it, and ride
    /// with the claim on the write that comes.
    #[tokio::test]
    async fn a_parked_claim_wakes_nothing_and_rides_the_next_write_with_the_outcomes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (writer, commits) = counted_thread(dir.path());
        let mut recording = Box::pin(writer.record(Vec::new()));
        assert!(futures_util::poll!(&mut recording).is_pending());
        let claimed = writer.park(Shape::Several, |_| Box::pin(async { Ok(7) }));
        let claimed = claimed.await.expect("parked");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(commits.load(Ordering::SeqCst), 0, "nothing ran yet");
        let wrote = writer.write(Lane::Api, Shape::Several, insert_row);
        wrote.await.expect("written");
        let claimed = tokio::time::timeout(WRITE_DEADLINE, claimed).await;
        assert_eq!(claimed.expect("answered").expect("ran").expect("ok"), 7);
        recording.await.expect("recorded");
        assert_eq!(
            commits.load(Ordering::SeqCst),
            1,
            "one commit for all three"
        );
    }

    /// A claim parked after writes the last claim missed, but before the runner raised
    /// its flag for them, sent no wake-up: the runner finds it before it waits.
    #[test]
    fn a_claim_parked_unwoken_after_missed_writes_is_found_before_the_runner_waits() {
        let (writer, mut queues) = channels::<Connection>();
        queues.wrote_unclaimed.store(true, Ordering::SeqCst);
        let (claim, _answer) = super::job(|_: &mut Connection| Box::pin(async { Ok(()) }));
        let parked = writer.delivery.try_send(Work::Park(claim, Shape::Several));
        assert!(parked.is_ok(), "queued");
        let (found, taken) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut batch = Vec::new();
            let more = queues.blocking_next_batch(&mut batch);
            let claims = batch
                .iter()
                .filter(|w| matches!(w, Work::Claim(..)))
                .count();
            let _ = found.send((more, claims));
        });
        let taken = taken.recv_timeout(WRITE_DEADLINE);
        assert_eq!(taken, Ok((true, 1)), "the claim runs in the next batch");
        drop(writer);
    }

    #[tokio::test]
    async fn outcomes_alone_are_recorded_after_their_wait() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (writer, commits) = counted_thread(dir.path());
        let started = std::time::Instant::now();
        writer.record(Vec::new()).await.expect("recorded");
        assert!(started.elapsed() >= RECORDS_WAIT, "they waited for company");
        assert_eq!(commits.load(Ordering::SeqCst), 1);
    }
}
