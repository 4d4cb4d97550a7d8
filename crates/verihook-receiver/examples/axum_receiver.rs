//! A production-shaped receiver: verify, answer 200 at once, process from a bounded queue.
//!
//! ```sh
//! WEBHOOK_SECRET=whsec_... cargo run -p verihook-receiver --features axum --example axum_receiver
//! ```
//!
//! As the product document advises, the handler does no work beyond verifying and queueing:
//! it answers within milliseconds, so verihook's 10 s timeout is never at risk. When the
//! queue is full it answers 503, and verihook retries later: back-pressure without loss.
//! A worker takes events off the queue, drops duplicates by `eventId`, and applies a
//! customer's state only from an event newer than the last one applied for that customer
//! (`X-Webhook-Sequence`): requests can arrive out of order, the latest change wins.

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::sync::mpsc;
use verihook_receiver::axum::{Sequence, VerifiedEvent};
use verihook_receiver::dedup::{Deduplicator, MemoryDeduplicator};
use verihook_receiver::sequence::{Freshness, SequenceGuard};
use verihook_receiver::{Event, Verifier};

#[derive(Clone)]
struct AppState {
    verifier: Verifier,
    queue: mpsc::Sender<(Event, Option<u64>)>,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Verifier {
        state.verifier.clone()
    }
}

async fn receive(
    State(state): State<AppState>,
    Sequence(sequence): Sequence,
    VerifiedEvent(event): VerifiedEvent,
) -> StatusCode {
    match state.queue.try_send((event, sequence)) {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn process(mut queue: mpsc::Receiver<(Event, Option<u64>)>) {
    let seen = MemoryDeduplicator::default();
    // In production, keep the last sequence beside the customer's state, in one transaction.
    let latest = SequenceGuard::new();
    while let Some((event, sequence)) = queue.recv().await {
        let id = event.event_id().unwrap_or_default().to_owned();
        if !seen.first_sighting(&id).await.unwrap_or(true) {
            println!("duplicate {id}, skipped");
            continue;
        }
        if let (Some(customer), Some(sequence)) = (event.customer_id(), sequence) {
            if latest.check_and_record(customer, sequence) != Freshness::Newer {
                println!(
                    "{id} (sequence {sequence}) is older than {customer}'s state, not applied"
                );
                continue;
            }
        }
        match &event {
            Event::VerificationCompleted { payload, .. } => {
                println!(
                    "{} verification completed: {}",
                    payload.customer_id, payload.new_status
                );
            }
            Event::VerificationRfiRequired { payload, .. } => {
                println!(
                    "{} needs information: {}",
                    payload.customer_id,
                    payload.reason.as_deref().unwrap_or("(erased)")
                );
            }
            Event::CustomerDeleted { payload, .. } => {
                // Its sequence is the customer's last: the guard keeps any late event of
                // theirs from being applied again.
                println!(
                    "{} deleted: erase what you keep of them",
                    payload.customer_id
                );
            }
            other => println!("{} {id}", other.event_type()),
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let secret = std::env::var("WEBHOOK_SECRET").unwrap_or_else(|_| {
        eprintln!("set WEBHOOK_SECRET to the organization's webhook secret");
        std::process::exit(2);
    });
    let (queue, events) = mpsc::channel(1_024);
    tokio::spawn(process(events));
    let state = AppState {
        verifier: Verifier::new(secret),
        queue,
    };
    let app = Router::new()
        .route("/webhooks/verification", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
