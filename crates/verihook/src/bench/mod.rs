//! `verihook bench`: the end-to-end benchmark. It starts a server (or uses `--target`), a
//! receiver that verifies every signature, and drives the real HTTP API; it reports API
//! requests/s, delivered events/s, change→receipt latency, the server's peak memory, and
//! events lost and duplicated. docs/performance.md has the figures and how to read them.

mod cpu;
mod load;
mod purge;
mod receiver;
mod report;
mod server;
mod soak;

use cpu::CpuTimes;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use load::{Api, Org, Sent, Until};
use receiver::Receiver;
use report::{per_sec, Percentiles, Report};
use server::ServerUnderTest;
use std::sync::Arc;
use std::time::{Duration, Instant};
use verihook_receiver::Scheme;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Every endpoint answers at once.
    Healthy,
    /// 1 of 100 organizations never answers; the other 99's latency beside a healthy run's.
    DeadEndpoint,
    /// Events pile up while no receiver is reachable, then drain.
    Backlog,
    /// Each event to 3 endpoints of its organization with different filters (one of them
    /// Standard Webhooks), beside a fourth whose filter takes none of them.
    FanOut,
    /// Fan-out, with each organization's fourth endpoint taking every event and never
    /// answering; the three live endpoints' latency beside a healthy fan-out run's.
    FanOutDead,
    /// An open loop (500/s for 60 s unless told) while the receiver is down for
    /// `--outage` (from a sixth of the way in): the time from its return to the last
    /// recovered delivery, the alerts, the duplicates. Recovery is automatic (`autoRecover`).
    Outage,
    /// An open loop (500/s for 30 min unless told) to three endpoints per organization,
    /// the receiver answering 503 to one request in ten; `--nodes 2` on PostgreSQL. Lost
    /// and duplicates, each node's memory and the change→receipt p50/p99 of the first and
    /// the last five minutes (a fifth of a shorter run each).
    Soak,
    /// The API's latency while the retention purge deletes `--events` expired events
    /// (1,000,000 unless told) from a SQLite file, beside the same load once it is done.
    Purge,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value_t = Scenario::Healthy)]
    scenario: Scenario,
    /// Database of the server started for the run (default: a fresh SQLite file).
    #[arg(long)]
    database_url: Option<String>,
    /// Use a running server instead of starting one (its peak memory is then unknown).
    #[arg(long, requires = "admin_token")]
    target: Option<String>,
    /// The running server's admin token (with --target).
    #[arg(long)]
    admin_token: Option<String>,
    /// Closed loop: how many changes (default 5,000; 200,000 for backlog).
    #[arg(long)]
    events: Option<u64>,
    /// Closed loop: clients sending at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Open loop: changes per second (with --duration) instead of a closed loop.
    #[arg(long, requires = "duration")]
    rate: Option<u64>,
    /// Open loop: how long to send, e.g. 30s.
    #[arg(long, value_parser = verihook_server::config::parse_duration)]
    duration: Option<Duration>,
    /// Sustained closed loop: `--concurrency` clients for this long (e.g. 60s), then the
    /// figures of the second half (accepted/s, delivered/s, p99) and the peak outbox lag.
    #[arg(long, conflicts_with_all = ["rate", "events"], value_parser = verihook_server::config::parse_duration)]
    sustain: Option<Duration>,
    /// Organizations the changes are spread over (100 for dead-endpoint).
    #[arg(long, default_value_t = 10)]
    organizations: usize,
    /// How long to wait for the last deliveries once sending is done.
    #[arg(long, default_value = "120s", value_parser = verihook_server::config::parse_duration)]
    drain_timeout: Duration,
    /// Outage: how long the receiver is down.
    #[arg(long, default_value = "30s", value_parser = verihook_server::config::parse_duration)]
    outage: Duration,
    /// Soak: `verihook serve` nodes sharing the database (more than one needs PostgreSQL);
    /// the load goes to the first, deliveries are shared.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Put the server on core 0 and the bench (load and receiver) on core 1, with
    /// `taskset`: the server's throughput then comes from one core whatever the bench
    /// costs. A PostgreSQL server is left where it runs.
    #[arg(long, conflicts_with = "target")]
    pin: bool,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// The cores `--pin` uses.
const SERVER_CORE: u32 = 0;
const BENCH_CORE: u32 = 1;

pub async fn run(args: BenchArgs) -> Result<(), String> {
    if args.pin {
        server::pin_this_process(BENCH_CORE)?;
    }
    let report = match args.scenario {
        Scenario::Healthy => phase(&args, args.organizations, Shape::Plain).await?,
        Scenario::FanOut => {
            let mut fan = phase(&args, args.organizations, Shape::FanOut).await?;
            fan.scenario = "fan-out".into();
            fan
        }
        Scenario::FanOutDead => {
            let healthy = phase(&args, args.organizations, Shape::FanOut).await?;
            let mut dead = phase(&args, args.organizations, Shape::FanOutDead).await?;
            dead.scenario = "fan-out-dead-endpoint".into();
            dead.extra.push(("healthyRunP99Ms", healthy.latency_ms.p99));
            dead.extra.push(("healthyRunP50Ms", healthy.latency_ms.p50));
            dead.extra
                .push(("healthyRunDeliveredPerSec", healthy.delivered_per_sec));
            dead
        }
        Scenario::DeadEndpoint => {
            let healthy = phase(&args, 100, Shape::Plain).await?;
            let mut dead = phase(&args, 100, Shape::DeadFirst).await?;
            dead.scenario = "dead-endpoint".into();
            dead.extra.push(("healthyRunP99Ms", healthy.latency_ms.p99));
            dead.extra.push(("healthyRunP50Ms", healthy.latency_ms.p50));
            dead
        }
        Scenario::Backlog => backlog(&args).await?,
        Scenario::Outage => outage(&args).await?,
        Scenario::Purge => purge::purge(&args).await?,
        Scenario::Soak => soak::soak(&args).await?,
    };
    eprint!("{}", report.table());
    if args.json {
        println!("{}", report.json());
    }
    if report.lost > 0 {
        return Err(format!("{} events were lost", report.lost));
    }
    Ok(())
}

fn server(
    args: &BenchArgs,
    delivery_timeout: &str,
    env: &[(&str, String)],
) -> Result<ServerUnderTest, String> {
    match (&args.target, &args.admin_token) {
        (Some(base), Some(token)) => Ok(ServerUnderTest::target(base.clone(), token.clone())),
        _ => {
            let core = args.pin.then_some(SERVER_CORE);
            ServerUnderTest::start_on(args.database_url.as_deref(), delivery_timeout, env, core)
        }
    }
}

fn database_name(args: &BenchArgs) -> String {
    match (&args.target, &args.database_url) {
        (Some(_), _) => "external".into(),
        (None, Some(url)) if url.starts_with("postgres") => "postgres".into(),
        _ => "sqlite".into(),
    }
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

async fn wait_ready(base: &str) -> Result<(), String> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the server did not become ready".into())
}

/// How the organizations' endpoints are laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// One endpoint each.
    Plain,
    /// One endpoint each, the first organization's never answering.
    DeadFirst,
    /// Three endpoints each take every event (see [`Scenario::FanOut`]).
    FanOut,
    /// As `FanOut`, and a fourth endpoint that takes every event never answers.
    FanOutDead,
}

impl Shape {
    /// The endpoints each event goes to.
    fn lanes(self) -> u8 {
        match self {
            Shape::FanOut | Shape::FanOutDead => 3,
            Shape::Plain | Shape::DeadFirst => 1,
        }
    }
}

/// Organizations with webhooks to the receiver, laid out as `shape` says.
async fn organizations(
    api: &Api,
    receiver: &Receiver,
    count: usize,
    shape: Shape,
    with_url: bool,
) -> Result<Vec<Org>, String> {
    let mut orgs = Vec::with_capacity(count);
    for n in 0..count {
        let org = api.organization(n).await?;
        if with_url {
            let dead = shape == Shape::DeadFirst && n == 0;
            let path = if dead { "dead" } else { "hook" };
            let secret = api
                .webhook(&org, &format!("{}/{path}", receiver.base))
                .await?;
            receiver.trust(&org.id, 0, &secret, Scheme::Verihook);
        }
        if matches!(shape, Shape::FanOut | Shape::FanOutDead) {
            fan_out(api, receiver, &org, shape == Shape::FanOutDead).await?;
        }
        orgs.push(org);
    }
    Ok(orgs)
}

/// Beside the default endpoint (every type): two more that take `customer.created`
/// among other types, one of them signing with Standard Webhooks, and a fourth that never
/// answers, taking none of the bench's events (its filter costs the fan-out a comparison,
/// nothing more) or, when `dead`, every one.
async fn fan_out(api: &Api, receiver: &Receiver, org: &Org, dead: bool) -> Result<(), String> {
    let lanes = [
        (
            1,
            ["customer.created", "customer.updated"],
            Scheme::Verihook,
        ),
        (
            2,
            ["customer.created", "verification.completed"],
            Scheme::StandardWebhooks,
        ),
    ];
    for (lane, types, scheme) in lanes {
        let body = serde_json::json!({
            "url": format!("{}/fan/{lane}", receiver.base),
            "eventTypes": types,
            "signatureScheme": scheme.as_str(),
        });
        let secret = api.endpoint(org, body).await?;
        receiver.trust(&org.id, lane, &secret, scheme);
    }
    let types: &[&str] = if dead {
        &[]
    } else {
        &["verification.rfi_required"]
    };
    let fourth = serde_json::json!({
        "url": format!("{}/dead", receiver.base),
        "eventTypes": types,
    });
    api.endpoint(org, fourth).await?;
    Ok(())
}

async fn send(
    args: &BenchArgs,
    api: Arc<Api>,
    orgs: Arc<Vec<Org>>,
    default_events: u64,
) -> (Sent, String) {
    if let Some(duration) = args.sustain {
        let bar = ProgressBar::new_spinner();
        let until = Until::Elapsed(duration);
        let sent = load::closed_loop(0, api, orgs, until, args.concurrency, bar.clone()).await;
        bar.finish_and_clear();
        let mode = format!(
            "sustained closed loop, concurrency {}, {} s",
            args.concurrency,
            duration.as_secs()
        );
        return (sent, mode);
    }
    match (args.rate, args.duration) {
        (Some(rate), Some(duration)) => {
            let total = (rate as f64 * duration.as_secs_f64()) as u64;
            let bar = progress(total, "sending");
            let sent = load::open_loop(api, orgs, rate, duration, bar.clone()).await;
            bar.finish_and_clear();
            (sent, format!("open loop, {rate}/s"))
        }
        _ => {
            let events = args.events.unwrap_or(default_events);
            let bar = progress(events, "sending");
            let until = Until::Count(events);
            let sent = load::closed_loop(0, api, orgs, until, args.concurrency, bar.clone()).await;
            bar.finish_and_clear();
            (
                sent,
                format!("closed loop, concurrency {}", args.concurrency),
            )
        }
    }
}

/// Waits until every accepted change of a healthy organization has arrived on each of its
/// `lanes`, or the drain timeout passes with no progress.
async fn await_deliveries(
    receiver: &Receiver,
    sent: &Sent,
    skip_org: Option<usize>,
    lanes: u8,
    timeout: Duration,
) {
    let expected: Vec<(u64, u8)> = sent
        .accepted
        .iter()
        .filter(|(_, (_, org))| Some(*org) != skip_org)
        .flat_map(|(i, _)| (0..lanes).map(move |lane| (*i, lane)))
        .collect();
    let total = expected.len();
    let bar = progress(total as u64, "delivered");
    let mut last_progress = (0usize, Instant::now());
    let mut missing = expected;
    loop {
        // A count of every arrival is cheap; a look-up of every expected key holds the
        // receiver's lock for tens of ms at a million, and every 25 ms that made the
        // receiver the slowest part of the run. The keys are looked up only once enough
        // arrived, and only those still missing.
        let arrived = receiver.snapshot(|a| a.first.len());
        // Arrivals of other runs on this receiver count too: the bar stops at the total.
        bar.set_position(arrived.min(total) as u64);
        if arrived >= missing.len() {
            receiver.snapshot(|a| missing.retain(|k| !a.first.contains_key(k)));
            if missing.is_empty() {
                break;
            }
        }
        if arrived != last_progress.0 {
            last_progress = (arrived, Instant::now());
        } else if last_progress.1.elapsed() > timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bar.finish_and_clear();
}

/// The figures of a run, over the organizations other than `skip_org`: each delivery (an
/// event on one of its `lanes`) counts once.
/// What arrived of a run's accepted changes.
struct Measured {
    latency: Percentiles,
    delivered: u64,
    lost: u64,
    duplicates: u64,
    delivered_per_sec: f64,
}

/// The report of a `scenario` run: what was `measured` of `sent`, and the run's own
/// `extra` figures.
fn report(
    args: &BenchArgs,
    scenario: &str,
    mode: String,
    sent: &Sent,
    measured: Measured,
    (server, receiver): (&ServerUnderTest, &Receiver),
    extra: Vec<(&'static str, f64)>,
) -> Report {
    Report {
        scenario: scenario.into(),
        mode,
        database: database_name(args),
        events: measured.delivered + measured.lost,
        api_per_sec: per_sec(sent.accepted.len() as u64, sent.elapsed),
        delivered_per_sec: measured.delivered_per_sec,
        latency_ms: measured.latency,
        peak_rss_mb: server.peak_rss_mb(),
        lost: measured.lost,
        duplicates: measured.duplicates,
        bad_signatures: receiver.snapshot(|a| a.bad_signatures),
        extra,
    }
}

/// Change→receipt latencies in microseconds, from 1 µs to an hour.
fn latency_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

fn record_latency(histogram: &mut Histogram<u64>, sent: Instant, arrived: Instant) {
    let us = arrived.saturating_duration_since(sent).as_micros();
    let _ = histogram.record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
}

fn measure(
    receiver: &Receiver,
    sent: &Sent,
    skip_org: Option<usize>,
    lanes: u8,
    began: Instant,
) -> Measured {
    receiver.snapshot(|a| {
        let mut latency = latency_histogram();
        let (mut delivered, mut lost) = (0u64, 0u64);
        for (index, (start, org)) in &sent.accepted {
            if Some(*org) == skip_org {
                continue;
            }
            for lane in 0..lanes {
                match a.first.get(&(*index, lane)) {
                    Some(arrived) => {
                        delivered += 1;
                        record_latency(&mut latency, *start, *arrived);
                    }
                    None => lost += 1,
                }
            }
        }
        let distinct = a.first.len() as u64;
        let duplicates = a.total.saturating_sub(distinct);
        let span = a
            .last
            .map_or(Duration::ZERO, |l| l.saturating_duration_since(began));
        Measured {
            latency: Percentiles::of(&latency),
            delivered,
            lost,
            duplicates,
            delivered_per_sec: per_sec(delivered, span),
        }
    })
}

/// A receiver, a server (started, or `--target`) ready to serve, and an API client.
async fn set_up(args: &BenchArgs) -> Result<(Receiver, ServerUnderTest, Arc<Api>), String> {
    set_up_with(args, &[]).await
}

/// [`set_up`], the server with the settings of `env` besides.
async fn set_up_with(
    args: &BenchArgs,
    env: &[(&str, String)],
) -> Result<(Receiver, ServerUnderTest, Arc<Api>), String> {
    let receiver = Receiver::start().await?;
    // Operator alerts go to the receiver too, to be counted.
    let mut env = env.to_vec();
    env.push((
        "VERIHOOK_ALERT_WEBHOOK_URL",
        format!("{}/alerts", receiver.base),
    ));
    let server = server(args, "10s", &env)?;
    wait_ready(&server.base).await?;
    let api = Arc::new(Api::new(
        &server.base,
        &server.admin_token,
        args.concurrency,
    )?);
    Ok((receiver, server, api))
}

/// One run: a fresh server, `orgs` organizations, the load, the deliveries.
async fn phase(args: &BenchArgs, orgs: usize, shape: Shape) -> Result<Report, String> {
    let (receiver, server, api) = set_up(args).await?;
    let orgs = Arc::new(organizations(&api, &receiver, orgs, shape, true).await?);
    let lanes = shape.lanes();
    let began = Instant::now();
    let postgres = database_name(args) == "postgres";
    let cpu_before = CpuTimes::now(server.pid(), postgres);
    let lag = LagWatch::start(api.clone());
    let (sent, mode) = send(args, api, orgs, 5_000).await;
    let peak_lag = lag.stop().await;
    let skip = (shape == Shape::DeadFirst).then_some(0);
    await_deliveries(&receiver, &sent, skip, lanes, args.drain_timeout).await;
    let cpu = CpuTimes::now(server.pid(), postgres).since(&cpu_before);
    let measured = measure(&receiver, &sent, skip, lanes, began);
    let mut extra = vec![
        ("apiRefused", sent.refused as f64),
        ("peakOutboxLagMs", peak_lag.as_secs_f64() * 1_000.0),
    ];
    extra.extend(cpu.per_event(measured.delivered));
    if let Some(duration) = args.sustain {
        extra.extend(second_half(&receiver, &sent, skip, began, duration));
    }
    if lanes > 1 {
        extra.push(("endpointsPerEvent", f64::from(lanes)));
    }
    let run = (&server, &receiver);
    Ok(report(args, "healthy", mode, &sent, measured, run, extra))
}

/// The second half of a sustained run, when the outbox has reached its steady state:
/// changes accepted and events delivered per second within it, their ratio, and the p99
/// of the changes made within it.
fn second_half(
    receiver: &Receiver,
    sent: &Sent,
    skip_org: Option<usize>,
    began: Instant,
    duration: Duration,
) -> Vec<(&'static str, f64)> {
    let (from, to) = (began + duration / 2, began + duration);
    let window = duration / 2;
    receiver.snapshot(|a| {
        let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
            .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
        let (mut accepted, mut delivered) = (0u64, 0u64);
        for (index, (start, org)) in &sent.accepted {
            if Some(*org) == skip_org {
                continue;
            }
            let arrived = a.first.get(&(*index, 0));
            if arrived.is_some_and(|t| *t >= from && *t < to) {
                delivered += 1;
            }
            if *start >= from && *start < to {
                accepted += 1;
                if let Some(t) = arrived {
                    let us = t.saturating_duration_since(*start).as_micros();
                    let _ = latency.record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
                }
            }
        }
        let p99 = Percentiles::of(&latency).p99;
        vec![
            ("acceptedPerSecSecondHalf", per_sec(accepted, window)),
            ("deliveredPerSecSecondHalf", per_sec(delivered, window)),
            (
                "deliveredOverAccepted",
                delivered as f64 / accepted.max(1) as f64,
            ),
            ("p99SecondHalfMs", p99),
        ]
    })
}

/// Polls the server's outbox lag while the load runs, keeping the highest.
struct LagWatch {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Duration>,
}

impl LagWatch {
    fn start(api: Arc<Api>) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut peak = Duration::ZERO;
            loop {
                if let Some(lag) = api.outbox_lag().await {
                    peak = peak.max(lag);
                }
                tokio::select! {
                    _ = &mut stopped => return peak,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> Duration {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// Changes pile up while the organizations have no reachable endpoint (their webhook URL
/// is set only afterwards, so every event waits in the outbox); then the URLs are set and
/// the backlog drains.
async fn backlog(args: &BenchArgs) -> Result<Report, String> {
    let (receiver, server, api) = set_up(args).await?;
    let orgs =
        Arc::new(organizations(&api, &receiver, args.organizations, Shape::Plain, false).await?);
    let (sent, mode) = send(args, api.clone(), orgs.clone(), 200_000).await;
    let drain_began = Instant::now();
    for org in orgs.iter() {
        let secret = api.webhook(org, &format!("{}/hook", receiver.base)).await?;
        receiver.trust(&org.id, 0, &secret, Scheme::Verihook);
    }
    await_deliveries(&receiver, &sent, None, 1, args.drain_timeout).await;
    let measured = measure(&receiver, &sent, None, 1, drain_began);
    let extra = vec![
        ("drainPerSec", measured.delivered_per_sec),
        ("apiRefused", sent.refused as f64),
    ];
    let run = (&server, &receiver);
    Ok(report(args, "backlog", mode, &sent, measured, run, extra))
}

/// The receiver goes down for `--outage` under an open loop, then comes back; every event
/// failed meanwhile comes back by itself (`autoRecover`), paced.
async fn outage(args: &BenchArgs) -> Result<Report, String> {
    // Each event failed in the outage is logged as a warning: thousands of lines.
    let (receiver, server, api) = set_up_with(args, &[("RUST_LOG", "error".into())]).await?;
    let orgs =
        Arc::new(organizations(&api, &receiver, args.organizations, Shape::Plain, true).await?);
    let rate = args.rate.unwrap_or(500);
    let duration = args.duration.unwrap_or(Duration::from_secs(60));
    let down_after = duration / 6;
    let receiver = Arc::new(receiver);
    let switch = {
        let (receiver, outage) = (receiver.clone(), args.outage);
        tokio::spawn(async move {
            tokio::time::sleep(down_after).await;
            receiver.set_down(true);
            tokio::time::sleep(outage).await;
            receiver.set_down(false);
            Instant::now()
        })
    };
    let began = Instant::now();
    let bar = progress((rate as f64 * duration.as_secs_f64()) as u64, "sending");
    let sent = load::open_loop(api, orgs, rate, duration, bar.clone()).await;
    bar.finish_and_clear();
    let up_at = switch.await.map_err(|e| e.to_string())?;
    await_deliveries(&receiver, &sent, None, 1, args.drain_timeout).await;
    let measured = measure(&receiver, &sent, None, 1, began);
    // The last arrival of an event made before the receiver came back.
    let (recovered_after, alerts) = receiver.snapshot(|a| {
        let last = sent
            .accepted
            .iter()
            .filter(|(_, (start, _))| *start < up_at)
            .filter_map(|(index, _)| a.first.get(&(*index, 0)))
            .max()
            .copied()
            .unwrap_or(up_at);
        (last.saturating_duration_since(up_at), a.alerts.clone())
    });
    let count = |kind: &str| alerts.get(kind).copied().unwrap_or(0) as f64;
    let mode = format!(
        "open loop, {rate}/s for {} s, receiver down {} s from {} s",
        duration.as_secs(),
        args.outage.as_secs(),
        down_after.as_secs()
    );
    let extra = vec![
        ("outageSecs", args.outage.as_secs_f64()),
        (
            "lastRecoveredAfterReturnSecs",
            recovered_after.as_secs_f64(),
        ),
        ("alertsFailing", count("webhook.endpoint_failing")),
        ("alertsRecovered", count("webhook.endpoint_recovered")),
        ("alertsReminder", count("reminder")),
        ("apiRefused", sent.refused as f64),
    ];
    Ok(report(
        args,
        "outage",
        mode,
        &sent,
        measured,
        (&server, &receiver),
        extra,
    ))
}
