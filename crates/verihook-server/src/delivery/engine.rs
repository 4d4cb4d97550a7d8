//! The dispatcher. One loop per process claims due deliveries (in batches, under a lease,
//! in a short transaction of their own), hands each to a task that sends it with no
//! transaction open, and the task records the outcome in another short transaction. A
//! process that dies leaves leases that expire; the deliveries fall due again and whoever
//! runs next sends them: at least once, across crashes.

use super::sender::{AttemptResult, Sender};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{instrument, Span};
use verihook_core::{EndpointId, EventId, RetryPolicy, Timestamp};
use verihook_store::outbox::ADOPT_EVERY;
use verihook_store::recoveries::PACE_TICK;
use verihook_store::{
    AttemptOutcome, AttemptRecord, ClaimRequest, ClaimedDelivery, Lease, NextStep, Outbox,
    Recorded, Ridden,
};

/// How much runs at once. A slow or dead endpoint can hold at most `per_endpoint` slots,
/// so the others' deliveries (its organization's other endpoints' too) keep flowing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub in_flight: usize,
    pub per_endpoint: usize,
    pub batch: usize,
    /// The longest idle sleep: new work wakes the loop at once, this is only a fallback.
    pub poll: Duration,
    /// How long in-flight attempts may finish after shutdown starts.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            in_flight: 512,
            per_endpoint: 32,
            batch: 256,
            poll: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What a claim took, or why it failed.
type ClaimResult = Result<Vec<ClaimedDelivery>, verihook_store::StoreError>;

/// How long a dispatcher waiting on saturated endpoints gathers freed slots before a
/// claim of its own (one round trip and commit each). A claim waiting in the writer needs
/// none: renewed, it runs in the writer's next batch, and what frees meanwhile waits for
/// the one after (see [`DeliveryEngine::wait_for_work`]).
const COALESCE: Duration = Duration::from_millis(2);
/// How often due probes of failing endpoints are looked for (each endpoint's own probe
/// waits 30 s doubling to 10 min; see the store).
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Probes started at once.
const PROBES_AT_ONCE: u32 = 16;

pub struct DeliveryEngine {
    outbox: Arc<dyn Outbox>,
    sender: Arc<Sender>,
    retry: RetryPolicy,
    limits: Limits,
    lease: Duration,
    state: Arc<Mutex<InFlight>>,
    /// A slot or a lease was freed: the engine's capacity grew.
    finished: Arc<Notify>,
    /// An endpoint at its limit has a slot again. Apart from `finished`: a dispatcher that
    /// waits on a saturated (say dead) endpoint must not be woken by every other
    /// endpoint's answer, or each one takes back its claim parked on the next writes.
    unsaturated: Notify,
    /// The pacer let recovered deliveries out: they fall due over its tick, later than a
    /// claim riding on the release sees.
    released: Notify,
    metrics: Arc<Metrics>,
}

/// What this process has claimed and not yet recorded.
#[derive(Default)]
struct InFlight {
    /// Attempts waiting for their answer, per endpoint; their sum is what `--in-flight`
    /// bounds. An answered attempt keeps its lease (below) until its outcome is recorded,
    /// but no longer holds a sending slot: a dead endpoint's hanging requests must not
    /// leave the others too few slots to cover their record's commit time.
    per_endpoint: HashMap<EndpointId, usize>,
    sending: usize,
    leases: HashMap<(EventId, EndpointId), Lease>,
    schedule: Schedule,
}

/// The next due time as last read from the outbox, and when it was read. Work that is due
/// at once wakes the dispatcher and is claimed; what moves the next due time earlier is a
/// retry this process records (noted here) or, on another node, one that node records
/// and sends itself. So after a claim that found all there was, the time read before
/// still holds until it passes, and is read again at most once per polling interval
/// (which finds what a node that died left behind). At low rates this saves a query per
/// event.
#[derive(Default)]
struct Schedule {
    /// `None`: unknown, read it.
    known: Option<Reading>,
}

struct Reading {
    due: Option<Timestamp>,
    read_at: Instant,
    /// The endpoints the reading left out, being at their limit then, and those a claim
    /// filled since (see [`Schedule::left_out`]). It says nothing of their deliveries:
    /// once one of them has room again, the reading no longer holds (taken as it was, a
    /// backlog drain idled a whole polling interval each time a claim's snapshot of the
    /// slots went stale while it ran).
    excluding: Vec<EndpointId>,
}

impl Schedule {
    /// The next due time, if it is still good: in the future, read within `fresh`, and
    /// leaving out none of the endpoints that have room now (none outside `saturated`).
    fn next_due(&self, fresh: Duration, saturated: &[EndpointId]) -> Option<Option<Timestamp>> {
        let reading = self.known.as_ref()?;
        let passed = reading.due.is_some_and(|due| due <= Timestamp::now());
        let covers = reading.excluding.iter().all(|e| saturated.contains(e));
        (!passed && covers && reading.read_at.elapsed() < fresh).then_some(reading.due)
    }

    /// A retry falls due at `at`.
    fn retry_at(&mut self, at: Timestamp) {
        if let Some(reading) = &mut self.known {
            if reading.due.is_none_or(|due| at < due) {
                reading.due = Some(at);
            }
        }
    }

    /// A claim since the reading filled `endpoints` to their limit, so deliveries of theirs
    /// may be due that it left behind and the reading never saw (written after it): once
    /// one of them has room again, the reading no longer holds.
    fn left_out(&mut self, endpoints: Vec<EndpointId>) {
        if let Some(reading) = &mut self.known {
            for endpoint in endpoints {
                if !reading.excluding.contains(&endpoint) {
                    reading.excluding.push(endpoint);
                }
            }
        }
    }
}

/// A claimed delivery's endpoint slot and lease in this process, freed however its task
/// ends (a panic included: one bug must not shrink the engine's capacity for good).
struct Held<'a> {
    engine: &'a DeliveryEngine,
    delivery: &'a ClaimedDelivery,
    slot: bool,
}

impl<'a> Held<'a> {
    fn new(engine: &'a DeliveryEngine, delivery: &'a ClaimedDelivery) -> Self {
        Self {
            engine,
            delivery,
            slot: true,
        }
    }

    /// Frees the endpoint's slot now; the lease stays until the guard goes.
    fn free_slot(&mut self) {
        if std::mem::take(&mut self.slot) {
            self.engine.release_endpoint_slot(self.delivery);
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.free_slot();
        self.engine.release_lease(self.delivery);
    }
}

fn lock(state: &Mutex<InFlight>) -> MutexGuard<'_, InFlight> {
    // The bookkeeping stays consistent even if a task panicked while holding the lock.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DeliveryEngine {
    pub fn new(
        outbox: Arc<dyn Outbox>,
        sender: Arc<Sender>,
        retry: RetryPolicy,
        delivery_timeout: Duration,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            outbox,
            sender,
            retry,
            limits,
            // Time to send under the timeout, and ample time to record the outcome. A
            // process that dies holds its deliveries no longer than this.
            lease: delivery_timeout + Duration::from_secs(10),
            state: Arc::default(),
            finished: Arc::new(Notify::new()),
            unsaturated: Notify::new(),
            released: Notify::new(),
            metrics,
        }
    }

    /// Runs until `shutdown` is cancelled, then lets attempts in flight finish within the
    /// grace period and hands back the leases of those that did not.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        let work = self.outbox.work_signal();
        let pacer = tokio::spawn(self.clone().pace(shutdown.clone()));
        let adopter = tokio::spawn(self.clone().adopt(shutdown.clone()));
        let mut next_probe = Instant::now();
        // The last claim took all that was due: wait for more before claiming again.
        let mut found_all = false;
        while !shutdown.is_cancelled() {
            if Instant::now() >= next_probe {
                next_probe = Instant::now() + PROBE_EVERY;
                self.probe(&tasks).await;
            }
            let (free, running) = self.capacity();
            if free == 0 {
                tokio::select! {
                    () = self.finished.notified() => {}
                    () = shutdown.cancelled() => {}
                }
                found_all = false;
                continue;
            }
            let wanted = free.min(self.limits.batch);
            let (claimed, wanted) = if found_all {
                let until = next_probe.saturating_duration_since(Instant::now());
                let waited = self.wait_for_work(&shutdown, &work, wanted, running, until);
                match waited.await {
                    Some(claimed) => claimed,
                    None => {
                        found_all = false;
                        continue;
                    }
                }
            } else {
                (self.claim(wanted, running).await, wanted)
            };
            let claimed = match claimed {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed; retrying");
                    self.idle(&shutdown, &work, self.limits.poll, false).await;
                    found_all = false;
                    continue;
                }
            };
            found_all = claimed.len() < wanted;
            for delivery in claimed {
                let engine = self.clone();
                tasks.spawn(async move { engine.deliver(delivery).await });
            }
        }
        pacer.abort();
        adopter.abort();
        self.drain(tasks).await;
    }

    /// Lets recovered deliveries out at each endpoint's pace, once a tick (CONTRACT §9).
    async fn pace(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(PACE_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            match self.outbox.release_paced().await {
                // What was let out falls due over the tick: the next due time known
                // before (a held delivery's, or none) no longer holds.
                Ok(released) if released > 0 => {
                    lock(&self.state).schedule.known = None;
                    self.released.notify_one();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "letting out recovered deliveries failed"),
            }
        }
    }

    /// Takes the parked deliveries that new endpoints adopt, a round at a time, until none
    /// is left; then looks again once an [`ADOPT_EVERY`] (for a restart's or another
    /// node's). Each round that adopts some wakes the dispatcher through the store.
    async fn adopt(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let wait = match self.outbox.adopt_parked().await {
                Ok(true) => Duration::ZERO,
                Ok(false) => ADOPT_EVERY,
                Err(e) => {
                    tracing::warn!(error = %e, "adopting parked deliveries failed");
                    ADOPT_EVERY
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Free slots in all, and the attempts running per endpoint.
    fn capacity(&self) -> (usize, Vec<(EndpointId, u32)>) {
        let state = lock(&self.state);
        // Leases awaiting their record are bounded too, at twice the sending slots.
        let free = self
            .limits
            .in_flight
            .saturating_sub(state.sending)
            .min((2 * self.limits.in_flight).saturating_sub(state.leases.len()));
        let running = state
            .per_endpoint
            .iter()
            .map(|(endpoint, n)| (endpoint.clone(), u32::try_from(*n).unwrap_or(u32::MAX)))
            .collect();
        (free, running)
    }

    #[instrument(level = "debug", skip_all, fields(wanted = wanted))]
    async fn claim(&self, wanted: usize, in_flight: Vec<(EndpointId, u32)>) -> ClaimResult {
        let request = self.request(wanted, in_flight);
        let asked = request.in_flight.clone();
        let claimed = self.outbox.claim(request).await?;
        self.took(&claimed, &asked);
        Ok(claimed)
    }

    /// Holds what a claim took (see [`Self::hold`]) and tells the schedule which endpoints
    /// it filled, counting the attempts `in_flight` when it was asked: the engine's own
    /// count may have dropped meanwhile, and a claim that filled an endpoint whose slot has
    /// since freed left its deliveries behind all the same.
    fn took(&self, claimed: &[ClaimedDelivery], in_flight: &[(EndpointId, u32)]) {
        self.hold(claimed);
        let mut counts: HashMap<&EndpointId, usize> = in_flight
            .iter()
            .map(|(endpoint, n)| (endpoint, usize::try_from(*n).unwrap_or(usize::MAX)))
            .collect();
        for d in claimed {
            *counts.entry(&d.endpoint).or_default() += 1;
        }
        let filled = counts
            .into_iter()
            .filter(|(_, n)| self.at_limit(*n))
            .map(|(endpoint, _)| endpoint.clone())
            .collect();
        lock(&self.state).schedule.left_out(filled);
    }

    fn request(&self, wanted: usize, in_flight: Vec<(EndpointId, u32)>) -> ClaimRequest {
        ClaimRequest {
            lease: self.lease,
            limit: u32::try_from(wanted).unwrap_or(u32::MAX),
            per_endpoint: u32::try_from(self.limits.per_endpoint).unwrap_or(u32::MAX),
            in_flight,
        }
    }

    /// After a claim that took all that was due, waits until more may be: the next due
    /// time (at most `until`, when probes are next due), a freed slot of an endpoint at
    /// its limit, shutdown, or new writes. Where the store can, a claim rides on those
    /// writes (run after them in their transaction, see `Outbox::claim_after_writes`);
    /// when the wait ends otherwise, a fresh claim (the slots counted anew) runs in its
    /// place at once. Its result, with how many it wanted. `None`: claim now.
    async fn wait_for_work(
        &self,
        shutdown: &CancellationToken,
        work: &Notify,
        wanted: usize,
        in_flight: Vec<(EndpointId, u32)>,
        until: Duration,
    ) -> Option<(ClaimResult, usize)> {
        // Read after the claim: the one that just filled an endpoint's slots must wait
        // on them, not on the polling interval.
        let saturated = self.saturated();
        let wait = self.until_next_due(&saturated).await.min(until);
        let slots_matter = !saturated.is_empty();
        // What the fresh claim asked with, should it run.
        let renewed = Mutex::new(None);
        let stop = Box::pin(async {
            let at_once = Duration::ZERO;
            self.until_more_may_be_due(shutdown, wait, slots_matter, at_once)
                .await;
            let (request, wanted) = self.renewal(shutdown)?;
            let mut asked = renewed.lock().unwrap_or_else(PoisonError::into_inner);
            *asked = Some((request.in_flight.clone(), wanted));
            Some(request)
        });
        let request = self.request(wanted, in_flight);
        let asked = request.in_flight.clone();
        match self.outbox.claim_after_writes(request, stop).await {
            Some(Ridden::Ran(claimed)) => Some((claimed.inspect(|c| self.took(c, &asked)), wanted)),
            Some(Ridden::Renewed(claimed)) => {
                let renewed = renewed.into_inner().unwrap_or_else(PoisonError::into_inner);
                let (asked, wanted) = renewed?;
                Some((claimed.inspect(|c| self.took(c, &asked)), wanted))
            }
            Some(Ridden::Stopped) => None,
            None => {
                self.idle(shutdown, work, wait, slots_matter).await;
                None
            }
        }
    }

    /// The claim to make now in place of one that waited for writes: `None` at shutdown,
    /// or with no slot free (the dispatcher then waits for one).
    fn renewal(&self, shutdown: &CancellationToken) -> Option<(ClaimRequest, usize)> {
        if shutdown.is_cancelled() {
            return None;
        }
        let (free, running) = self.capacity();
        let wanted = free.min(self.limits.batch);
        (wanted > 0).then(|| (self.request(wanted, running), wanted))
    }

    /// Waits for what makes deliveries due besides new writes: time (`wait`), the pacer's
    /// release, or a freed slot of a saturated endpoint (if `slots_matter`), then `gather`
    /// for more to finish, so that one claim serves several slots instead of one each; or
    /// shutdown.
    async fn until_more_may_be_due(
        &self,
        shutdown: &CancellationToken,
        wait: Duration,
        slots_matter: bool,
        gather: Duration,
    ) {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.released.notified() => {}
            () = self.unsaturated.notified(), if slots_matter => {
                if !gather.is_zero() {
                    tokio::time::sleep(gather).await;
                }
            }
            () = shutdown.cancelled() => {}
        }
    }

    /// Counts claimed deliveries against their endpoints' slots and keeps their leases.
    fn hold(&self, claimed: &[ClaimedDelivery]) {
        let mut state = lock(&self.state);
        for d in claimed {
            *state.per_endpoint.entry(d.endpoint.clone()).or_default() += 1;
            state.sending += 1;
            state.leases.insert(key(d), d.lease.clone());
        }
        self.metrics.set_in_flight(state.leases.len());
    }

    /// Starts the probes of failing endpoints that are due (`autoRecover`).
    async fn probe(self: &Arc<Self>, tasks: &TaskTracker) {
        match self.outbox.claim_probes(self.lease, PROBES_AT_ONCE).await {
            Ok(probes) => {
                self.hold(&probes);
                for d in probes {
                    tracing::info!(endpoint_id = %d.endpoint, event_id = %d.event.id, "probing a failing endpoint");
                    let engine = self.clone();
                    tasks.spawn(async move { engine.deliver(d).await });
                }
            }
            Err(e) => tracing::warn!(error = %e, "claiming probes failed"),
        }
    }

    /// This sender's endpoints at their limit.
    fn saturated(&self) -> Vec<EndpointId> {
        let state = lock(&self.state);
        state
            .per_endpoint
            .iter()
            .filter(|(_, n)| self.at_limit(**n))
            .map(|(endpoint, _)| endpoint.clone())
            .collect()
    }

    /// Whether an endpoint with `running` attempts may start no more.
    fn at_limit(&self, running: usize) -> bool {
        running >= self.limits.per_endpoint
    }

    /// How long until the next delivery falls due, at most the polling interval.
    async fn until_next_due(&self, saturated: &[EndpointId]) -> Duration {
        let known = lock(&self.state)
            .schedule
            .next_due(self.limits.poll, saturated);
        let due = match known {
            Some(due) => due,
            None => {
                let read_at = Instant::now();
                match self.outbox.next_due(saturated).await {
                    Ok(due) => {
                        lock(&self.state).schedule.known = Some(Reading {
                            due,
                            read_at,
                            excluding: saturated.to_vec(),
                        });
                        due
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the next due time failed");
                        return self.limits.poll;
                    }
                }
            }
        };
        due.map_or(self.limits.poll, |due| {
            let micros = due.unix_micros() - Timestamp::now().unix_micros();
            Duration::from_micros(u64::try_from(micros).unwrap_or(0)).min(self.limits.poll)
        })
    }

    /// Waits as [`Self::until_more_may_be_due`] does, or for the store's signal of new work.
    async fn idle(
        &self,
        shutdown: &CancellationToken,
        work: &Notify,
        wait: Duration,
        slots_matter: bool,
    ) {
        // New work cuts a freed slot's gathering short too: other endpoints lose no time.
        tokio::select! {
            () = work.notified() => {}
            () = self.until_more_may_be_due(shutdown, wait, slots_matter, COALESCE) => {}
        }
    }

    /// One attempt: send, decide what comes next, record it, and free the slot.
    #[instrument(skip_all, fields(event_id, organization_id, endpoint_id, attempt))]
    async fn deliver(&self, d: ClaimedDelivery) {
        let span = Span::current();
        span.record("event_id", d.event.id.as_str());
        span.record("organization_id", d.event.organization_id.as_str());
        span.record("endpoint_id", d.endpoint.as_str());
        span.record("attempt", d.attempt);
        let mut held = Held::new(self, &d);
        let result = self.sender.send(&d).await;
        // The endpoint's slot is free once its request is answered; the lease stays
        // until the outcome is recorded (nobody else can claim the delivery meanwhile).
        held.free_slot();
        let next = self.next_step(&d, &result);
        if let NextStep::RetryAt(at) = next {
            // Before recording: the record wakes the dispatcher, which must see it.
            lock(&self.state).schedule.retry_at(at);
        }
        self.log_attempt(&d, &result, next);
        self.measure_attempt(&d, &result, next);
        let outcome = AttemptOutcome {
            lease: d.lease.clone(),
            record: record_of(&d, &result),
            next,
        };
        let recorded = self.outbox.record(vec![outcome]).await;
        match recorded.as_ref().map(|r| r.first().copied()) {
            Ok(Some(Recorded::Moved)) if next == NextStep::Failed => {
                self.on_final_failure(&d, &result)
            }
            Ok(Some(Recorded::Moved | Recorded::Requeued)) => {}
            Ok(Some(Recorded::LeaseLost) | None) => tracing::warn!(
                event_id = %d.event.id,
                "lease lost before the outcome was recorded; another sender has the delivery"
            ),
            // The lease will run out and the delivery fall due again: sent at least once.
            Err(e) => {
                tracing::error!(event_id = %d.event.id, error = %e, "recording the attempt failed")
            }
        }
    }

    fn next_step(&self, d: &ClaimedDelivery, result: &AttemptResult) -> NextStep {
        if result.succeeded() {
            return NextStep::Delivered;
        }
        let schedule = d.retry_schedule.as_ref().unwrap_or(&self.retry);
        match schedule.wait_after(d.budget_used) {
            // The wait starts when the failed attempt ends.
            Some(wait) => {
                let ended = result.started_at.unix_micros()
                    + i64::try_from(result.duration.as_micros()).unwrap_or(0);
                let wait = i64::try_from(wait.as_micros()).unwrap_or(i64::MAX);
                NextStep::RetryAt(Timestamp::from_unix_micros(ended.saturating_add(wait)))
            }
            None => NextStep::Failed,
        }
    }

    fn measure_attempt(&self, d: &ClaimedDelivery, result: &AttemptResult, next: NextStep) {
        let class = result.failure.as_ref().map_or("", |(c, _)| c.as_str());
        self.metrics
            .attempt(outcome_name(next), class, result.duration);
        if next == NextStep::Delivered {
            let micros = Timestamp::now().unix_micros() - d.event.occurred_at.unix_micros();
            self.metrics
                .delivered(Duration::from_micros(u64::try_from(micros).unwrap_or(0)));
        }
    }

    fn log_attempt(&self, d: &ClaimedDelivery, result: &AttemptResult, next: NextStep) {
        let outcome = outcome_name(next);
        let (class, error) = result
            .failure
            .as_ref()
            .map_or(("", ""), |(c, m)| (c.as_str(), m.as_str()));
        tracing::info!(
            event_id = %d.event.id,
            organization_id = %d.event.organization_id,
            endpoint_id = %d.endpoint,
            event_type = d.event.event_type.as_str(),
            attempt = d.attempt,
            outcome,
            status = result.status_code,
            error_class = class,
            error,
            duration_ms = u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
            "webhook attempt"
        );
    }

    /// Logged and counted here; the operator's alert is per incident, written by the
    /// store with the outcome that opened it (see [`super::alerts`]).
    fn on_final_failure(&self, d: &ClaimedDelivery, result: &AttemptResult) {
        let last_error = result
            .failure
            .as_ref()
            .map(|(class, message)| format!("{}: {message}", class.as_str()))
            .unwrap_or_default();
        tracing::warn!(
            event_id = %d.event.id,
            organization_id = %d.event.organization_id,
            endpoint_id = %d.endpoint,
            attempts = d.budget_used + 1,
            last_error,
            "webhook delivery failed after its last attempt"
        );
        self.metrics.event_failed();
    }

    fn release_endpoint_slot(&self, d: &ClaimedDelivery) {
        let was_saturated = {
            let mut state = lock(&self.state);
            state.sending = state.sending.saturating_sub(1);
            // Attempts running before this one ended (0: none counted).
            let running = state.per_endpoint.get_mut(&d.endpoint).map_or(0, |n| {
                *n -= 1;
                *n + 1
            });
            if running == 1 {
                state.per_endpoint.remove(&d.endpoint);
            }
            running > 0 && self.at_limit(running)
        };
        if was_saturated {
            self.unsaturated.notify_one();
        }
        self.finished.notify_one();
    }

    fn release_lease(&self, d: &ClaimedDelivery) {
        {
            let mut state = lock(&self.state);
            state.leases.remove(&key(d));
            self.metrics.set_in_flight(state.leases.len());
        }
        self.finished.notify_one();
    }

    async fn drain(&self, tasks: TaskTracker) {
        tasks.close();
        let in_flight = lock(&self.state).leases.len();
        tracing::info!(in_flight, "delivery engine stopping");
        if tokio::time::timeout(self.limits.shutdown_grace, tasks.wait())
            .await
            .is_ok()
        {
            return;
        }
        let leases: Vec<Lease> = lock(&self.state).leases.drain().map(|(_, l)| l).collect();
        tracing::warn!(
            released = leases.len(),
            "attempts still running at shutdown; releasing them for retry"
        );
        if let Err(e) = self.outbox.release(leases, Timestamp::now()).await {
            // Their leases will simply expire.
            tracing::error!(error = %e, "releasing leases failed");
        }
    }
}

/// A delivery's place among this process's leases.
fn key(d: &ClaimedDelivery) -> (EventId, EndpointId) {
    (d.event.id.clone(), d.endpoint.clone())
}

fn outcome_name(next: NextStep) -> &'static str {
    match next {
        NextStep::Delivered => "delivered",
        NextStep::RetryAt(_) => "retry",
        NextStep::Failed => "failed",
    }
}

fn record_of(d: &ClaimedDelivery, r: &AttemptResult) -> AttemptRecord {
    AttemptRecord {
        endpoint_id: Some(d.endpoint.clone()),
        attempt: d.attempt,
        started_at: r.started_at,
        duration_ms: u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
        status_code: r.status_code,
        error_class: r.failure.as_ref().map(|(c, _)| *c),
        error: r.failure.as_ref().map(|(_, m)| m.clone()),
        response_body: r.response_excerpt.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    const FRESH: Duration = Duration::from_secs(1);

    fn in_micros(micros: i64) -> Timestamp {
        Timestamp::from_unix_micros(Timestamp::now().unix_micros() + micros)
    }

    /// An engine over a fresh SQLite store holding `customers` new customers of one
    /// organization (one endpoint), and the deliveries it claimed of them.
    async fn claimed(
        customers: usize,
        limits: Limits,
    ) -> (tempfile::TempDir, Arc<DeliveryEngine>, Vec<ClaimedDelivery>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("engine.db").display());
        let store = verihook_store::connect(&url).await.expect("opened");
        let org = verihook_core::Organization::new(
            "Engine",
            verihook_core::Mode::Sandbox,
            Timestamp::now(),
        )
        .expect("valid");
        let key =
            verihook_store::NewApiKey::of(&verihook_core::ApiKey::generate(), Timestamp::now());
        store
            .organizations
            .create_organization(&org, &key)
            .await
            .expect("created");
        let hook =
            verihook_core::WebhookUrl::parse("https://example.com/hook", false).expect("valid");
        store
            .organizations
            .set_webhook_url(&org.id, &hook, verihook_core::WebhookSecret::generate())
            .await
            .expect("set");
        for _ in 0..customers {
            let new = verihook_core::NewCustomer {
                customer_type: verihook_core::CustomerType::Individual,
                email: verihook_core::customer::Email::parse("p@example.com").expect("valid"),
                first_name: verihook_core::customer::Text::parse("P").expect("valid"),
                last_name: verihook_core::customer::Text::parse("N").expect("valid"),
                date_of_birth: None,
                address: verihook_core::Address::default(),
            };
            let change = verihook_core::Customer::create(org.id.clone(), new, Timestamp::now())
                .expect("created");
            store
                .customers
                .insert_customer(change)
                .await
                .expect("stored");
        }
        let sender = Sender::new(Duration::from_secs(1), false, None).expect("sender");
        let engine = Arc::new(DeliveryEngine::new(
            store.outbox.clone(),
            Arc::new(sender),
            RetryPolicy::default(),
            Duration::from_secs(1),
            limits,
            Arc::new(Metrics::new()),
        ));
        let claimed = engine.claim(10, Vec::new()).await.expect("claimed");
        (dir, engine, claimed)
    }

    /// A delivery task that panics mid-attempt still gives back its endpoint's slot and
    /// its lease: the engine's capacity does not shrink.
    #[tokio::test]
    async fn a_panicking_delivery_frees_its_slot_and_lease() {
        let (_dir, engine, claimed) = claimed(1, Limits::default()).await;
        assert_eq!(claimed.len(), 1);
        assert_eq!(lock(&engine.state).leases.len(), 1);
        let task = tokio::spawn({
            let engine = engine.clone();
            let d = claimed[0].clone();
            async move {
                let _held = Held::new(&engine, &d);
                panic!("a bug in the middle of an attempt");
            }
        });
        assert!(task.await.is_err(), "the task panicked");
        let state = lock(&engine.state);
        assert!(state.per_endpoint.is_empty(), "the endpoint's slot is free");
        assert_eq!((state.sending, state.leases.len()), (0, 0));
    }

    /// A dispatcher waiting on an endpoint at its limit hears of that endpoint's freed
    /// slots only: any other answer woke it before, and each time it took back the claim
    /// it had parked on the next writes.
    #[tokio::test]
    async fn only_a_freed_slot_of_an_endpoint_at_its_limit_signals() {
        for (limit, signals) in [(2, true), (3, false)] {
            let limits = Limits {
                per_endpoint: limit,
                ..Limits::default()
            };
            let (_dir, engine, claimed) = claimed(2, limits).await;
            assert_eq!(claimed.len(), 2);
            drop(Held::new(&engine, &claimed[0]));
            let signalled = engine.unsaturated.notified().now_or_never().is_some();
            assert_eq!(signalled, signals, "two in flight, a limit of {limit}");
        }
    }

    /// A reading taken while an endpoint had nothing due says nothing of what was written
    /// for it after. A claim that filled the endpoint left some of that behind: once it has
    /// room again, the reading must be read again, or the dispatcher sleeps a polling
    /// interval on deliveries that are due. Also when the claim was asked with a count
    /// of attempts that a freed slot has made stale by the time it is held.
    #[tokio::test]
    async fn a_claim_that_filled_an_endpoint_makes_a_reading_of_it_stale() {
        let limits = Limits {
            per_endpoint: 2,
            ..Limits::default()
        };
        let (_dir, engine, first) = claimed(4, limits).await;
        assert_eq!(first.len(), 2, "the limit");
        let endpoint = first[0].endpoint.clone();
        lock(&engine.state).schedule.known = Some(reading(None, Instant::now()));
        drop(Held::new(&engine, &first[0]));
        let asked = vec![(endpoint, 1)];
        // The other slot frees while the claim is under way: it fills the endpoint as it
        // was asked, and leaves it one attempt short of its limit.
        drop(Held::new(&engine, &first[1]));
        let second = engine.claim(10, asked).await.expect("claimed");
        assert_eq!(second.len(), 1);
        let saturated = engine.saturated();
        assert!(saturated.is_empty(), "one attempt of two running");
        let known = lock(&engine.state).schedule.next_due(FRESH, &saturated);
        assert_eq!(known, None, "the reading is read again");
    }

    #[test]
    fn an_unread_schedule_is_read() {
        assert_eq!(Schedule::default().next_due(FRESH, &[]), None);
    }

    #[test]
    fn a_future_due_time_read_just_now_holds() {
        let due = in_micros(500_000);
        let schedule = Schedule {
            known: Some(reading(Some(due), Instant::now())),
        };
        assert_eq!(schedule.next_due(FRESH, &[]), Some(Some(due)));
        let empty = Schedule {
            known: Some(reading(None, Instant::now())),
        };
        assert_eq!(empty.next_due(FRESH, &[]), Some(None));
    }

    #[test]
    fn a_passed_due_time_or_an_old_reading_is_read_again() {
        let passed = Schedule {
            known: Some(reading(Some(in_micros(-1)), Instant::now())),
        };
        assert_eq!(passed.next_due(FRESH, &[]), None);
        let old = Schedule {
            known: Some(reading(None, Instant::now() - FRESH)),
        };
        assert_eq!(old.next_due(FRESH, &[]), None);
    }

    #[test]
    fn a_retry_recorded_here_moves_the_known_time_earlier_only() {
        let (later, sooner) = (in_micros(900_000), in_micros(300_000));
        let mut schedule = Schedule {
            known: Some(reading(Some(later), Instant::now())),
        };
        schedule.retry_at(sooner);
        assert_eq!(schedule.next_due(FRESH, &[]), Some(Some(sooner)));
        schedule.retry_at(later);
        assert_eq!(schedule.next_due(FRESH, &[]), Some(Some(sooner)));
        let mut empty = Schedule {
            known: Some(reading(None, Instant::now())),
        };
        empty.retry_at(later);
        assert_eq!(empty.next_due(FRESH, &[]), Some(Some(later)));
    }

    #[test]
    fn a_reading_that_left_out_an_endpoint_with_room_now_is_read_again() {
        let (a, b) = (EndpointId::generate(), EndpointId::generate());
        let mut left_out = reading(None, Instant::now());
        left_out.excluding = vec![a.clone()];
        let schedule = Schedule {
            known: Some(left_out),
        };
        assert_eq!(
            schedule.next_due(FRESH, &[a.clone(), b.clone()]),
            Some(None)
        );
        assert_eq!(schedule.next_due(FRESH, &[a]), Some(None));
        assert_eq!(schedule.next_due(FRESH, &[b]), None, "a has room again");
        assert_eq!(schedule.next_due(FRESH, &[]), None, "a has room again");
    }

    fn reading(due: Option<Timestamp>, read_at: Instant) -> Reading {
        Reading {
            due,
            read_at,
            excluding: Vec::new(),
        }
    }
}
