//! The event stream's reads (CONTRACT §10).

use super::{customer, organization, Backend};
use std::time::{Duration, Instant};
use verihook_core::{Event, Organization};
use verihook_store::{Storage, StreamPosition};

/// The organization's events after `after` once `n` are settled. (On PostgreSQL an event
/// settles once every older transaction of the server has ended: other tests' too.)
pub(crate) async fn settled(
    store: &Storage,
    org: &Organization,
    after: StreamPosition,
    n: usize,
) -> Vec<(StreamPosition, Event)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let read = store
            .stream
            .stream_events(&org.id, after, 100)
            .await
            .expect("read");
        if read.len() >= n {
            return read;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} settled in 15 s",
            read.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ids_after(
    store: &Storage,
    org: &verihook_core::Organization,
    after: verihook_store::StreamPosition,
) -> Vec<String> {
    store
        .stream
        .stream_events(&org.id, after, 100)
        .await
        .expect("read")
        .into_iter()
        .map(|(_, e)| e.id.as_str().to_owned())
        .collect()
}

/// A stream opened now sees only later events, the organization's own, in the order they
/// were stored; it resumes after any event it was given; it is told that events came.
pub async fn the_stream_reads_later_events_in_order_and_resumes<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let org = organization(&store).await;
    let other = organization(&store).await;
    let before = customer(&store, &org).await;
    let (start, already) = store.stream.stream_start(&org.id).await.expect("start");
    let mut signal = store.stream.stored_signal();
    signal.mark_unchanged();
    let mut made = Vec::new();
    for _ in 0..3 {
        let c = customer(&store, &org).await;
        customer(&store, &other).await;
        made.push(c.id);
    }
    assert!(signal.has_changed().expect("open"), "told that events came");
    let read: Vec<_> = settled(&store, &org, start, already.len() + 3)
        .await
        .into_iter()
        .filter(|(_, e)| !already.contains(&e.id))
        .collect();
    assert!(
        read.iter().all(|(_, e)| e.customer_id != before.id),
        "none from before"
    );
    let customers: Vec<_> = read.iter().map(|(_, e)| e.customer_id.clone()).collect();
    assert_eq!(customers, made, "later events only, its own, in order");
    let second = read[1].1.id.clone();
    let resumed = store
        .stream
        .stream_position(&org.id, &second)
        .await
        .expect("read")
        .expect("its event");
    assert_eq!(resumed, read[1].0);
    assert_eq!(
        ids_after(&store, &org, resumed).await,
        [read[2].1.id.as_str()]
    );
    assert_eq!(
        store
            .stream
            .stream_position(&other.id, &second)
            .await
            .expect("read"),
        None,
        "another organization's event is no position"
    );
}
