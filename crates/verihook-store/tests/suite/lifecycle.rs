//! The lifecycle of a customer's data: sequence numbers, retention, erasure (CONTRACT §11).

use super::{customer, events_of, organization, Backend};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use verihook_core::customer::Text;
use verihook_core::{Customer, CustomerId, CustomerPatch, Timestamp};
use verihook_store::{Mutation, Scope, Storage};

/// A change that renames the customer: one `customer.updated` each.
fn rename(name: String) -> Mutation {
    Box::new(move |c: &Customer| {
        let patch = CustomerPatch {
            first_name: Some(Text::parse(&name).expect("valid")),
            ..Default::default()
        };
        c.apply_patch(&patch, Timestamp::now())
    })
}

/// The customer's events' sequence numbers, in the order they were stored.
async fn sequences_in_store_order(store: &Storage, id: &CustomerId) -> Vec<u64> {
    let events = events_of(store, id).await;
    events.into_iter().map(|e| e.sequence).collect()
}

/// 1,000 changes to 10 customers from 32 concurrent clients, split over two nodes where the
/// backend has them: each customer's events are numbered 1..n, without gap or repeat, in
/// the order they were stored (the order of the commits, since each change holds the
/// customer's row until it commits).
pub async fn sequences_run_per_customer_without_gap_or_repeat_in_commit_order<B: Backend>() {
    let b = B::fresh().await;
    let nodes = [b.store(), b.another_node().await];
    let org = organization(&nodes[0]).await;
    let mut customers = Vec::new();
    for _ in 0..10 {
        customers.push(customer(&nodes[0], &org).await.id);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let clients = (0..32).map(|client| {
        let (next, store) = (next.clone(), nodes[client % 2].clone());
        let customers = customers.clone();
        tokio::spawn(async move {
            let mut made = HashMap::<CustomerId, u64>::new();
            loop {
                let change = next.fetch_add(1, Ordering::Relaxed);
                if change >= 1_000 {
                    break;
                }
                let id = &customers[change % customers.len()];
                let name = format!("Name{change}");
                store
                    .customers
                    .modify_customer(Scope::All, id, rename(name))
                    .await
                    .expect("changed");
                *made.entry(id.clone()).or_default() += 1;
            }
            made
        })
    });
    let mut made = HashMap::<CustomerId, u64>::new();
    for client in clients.collect::<Vec<_>>() {
        for (id, n) in client.await.expect("joined") {
            *made.entry(id).or_default() += n;
        }
    }
    for id in &customers {
        let expected: Vec<u64> = (1..=1 + made[id]).collect();
        let stored = sequences_in_store_order(&nodes[0], id).await;
        assert_eq!(stored, expected, "{id}: 1..n in the order stored");
        let latest = nodes[1].customers.customer(Scope::All, id).await;
        let latest = latest.expect("read").expect("exists").last_sequence;
        assert_eq!(latest, 1 + made[id], "{id}: the customer's last sequence");
    }
}
