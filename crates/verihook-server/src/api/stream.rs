//! `GET /v1/events/stream` (CONTRACT §10): the organization's events as Server-Sent
//! Events, each the exact webhook request its default endpoint would get (every header,
//! signed now with that endpoint's secret, and the stored body), so that `verihook listen`
//! can forward it to a local receiver with no tunnel. A client that reconnects with
//! `Last-Event-ID` (or `?after=`) first gets every later event: a dropped connection loses
//! nothing. The stream only reads: no endpoint's delivery changes.

use super::at_once::Place;
use super::error::{ApiError, ErrorBody};
use super::extract::OrgAuth;
use super::AppState;
use crate::delivery::sender::{webhook_headers, Outgoing};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::watch;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use verihook_core::{Event, EventId, OrganizationId, Timestamp};
use verihook_store::{StoreError, StreamPosition};

/// A comment line this often keeps proxies from closing an idle stream (the contract
/// promises one at least every 15 s).
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Events read at once.
const READ_AT_ONCE: u32 = 100;
/// The longest wait between reads when no signal comes (on PostgreSQL an event is settled
/// only once every older transaction has ended, which signals nothing).
const POLL: Duration = Duration::from_millis(500);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StreamQuery {
    /// Resume after this event (as the `Last-Event-ID` header does).
    after: Option<String>,
}

/// `GET /v1/events/stream`: Server-Sent Events, one per event of the organization as soon
/// as it is stored: `id: <eventId>`, `data: {"headers":{…},"body":"…"}`.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events",
    security(("organizationKey" = [])),
    params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event: every later one is sent first")),
    responses(
        (status = 200, description = "`text/event-stream`: each message `id: <eventId>` and `data: {\"headers\":{…every header of the webhook request, signed now with the default endpoint's secret},\"body\":\"<the exact body>\"}`; a comment line every 10 s", content_type = "text/event-stream", body = String),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 409, description = "The organization has no webhook URL yet: its secret signs the stream", body = ErrorBody),
        (status = 422, description = "`Last-Event-ID` (or `after`) is not an event of the organization", body = ErrorBody),
        (status = 429, description = "The organization has 5 streams open", body = ErrorBody),
    ))]
async fn stream(
    OrgAuth(org): OrgAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let resume = match headers.get("last-event-id") {
        Some(value) => Some((
            "Last-Event-ID",
            value.to_str().unwrap_or_default().to_owned(),
        )),
        None => query.after.map(|after| ("after", after)),
    };
    let (position, already) = match resume {
        Some((field, id)) => (resume_after(&state, &org.id, field, &id).await?, Vec::new()),
        None => state.store.stream.stream_start(&org.id).await?,
    };
    signing_endpoint(&state, &org.id).await?;
    let place = state.streams.start(&org.id)?;
    let reader = Reader {
        signal: state.store.stream.stored_signal(),
        state,
        organization: org.id,
        position,
        already: already.into_iter().collect(),
        pending: VecDeque::new(),
        _place: place,
    };
    let events = futures_util::stream::unfold(reader, Reader::next);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

async fn resume_after(
    state: &AppState,
    organization: &OrganizationId,
    field: &str,
    id: &str,
) -> Result<StreamPosition, ApiError> {
    let unknown = || ApiError::invalid(field, "not an event of this organization");
    let id = EventId::parse(id).map_err(|_| unknown())?;
    state
        .store
        .stream
        .stream_position(organization, &id)
        .await?
        .ok_or_else(unknown)
}

/// The default endpoint's URL and secrets (read again for each batch of the stream: a
/// rotation applies at once).
async fn signing_endpoint(
    state: &AppState,
    organization: &OrganizationId,
) -> Result<verihook_store::WebhookEndpoint, ApiError> {
    let webhook = state.store.organizations.webhook(organization).await?;
    match webhook {
        Some(w) if w.url.is_some() && w.secret.is_some() => Ok(w),
        _ => Err(ApiError::conflict(
            "webhook_not_configured",
            "set the webhook URL first (PUT /v1/webhook): its secret signs the stream's events",
        )),
    }
}

/// One stream's state between messages.
struct Reader {
    state: AppState,
    organization: OrganizationId,
    position: StreamPosition,
    /// Events committed before the stream opened that its start does not pass yet (see
    /// `EventStream::stream_start`): skipped when reached.
    already: HashSet<EventId>,
    pending: VecDeque<SseEvent>,
    signal: watch::Receiver<u64>,
    /// Held for the stream's life: one of the organization's few.
    _place: Place,
}

impl Reader {
    /// The next message; `None` ends the stream (the server is stopping).
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, Self)> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                return Some((Ok(message), self));
            }
            // Marked before the read: whatever is stored after it signals again.
            self.signal.mark_unchanged();
            match self.read().await {
                Ok(true) => continue,
                Ok(false) => {}
                // The database may be back in a moment; the client keeps its place.
                Err(e) => tracing::warn!(error = %e, "reading the event stream failed"),
            }
            let stopping = self.state.stopping.clone();
            tokio::select! {
                changed = self.signal.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(POLL).await;
                    }
                }
                () = tokio::time::sleep(POLL) => {}
                () = stopping.cancelled() => return None,
            }
        }
    }

    /// Reads the next events into `pending`; whether there were any. Without a signing
    /// endpoint (none set since), the stream waits where it is.
    async fn read(&mut self) -> Result<bool, StoreError> {
        let store = &self.state.store;
        let events = store
            .stream
            .stream_events(&self.organization, self.position, READ_AT_ONCE)
            .await?;
        if events.is_empty() {
            return Ok(false);
        }
        let Some(endpoint) = store.organizations.webhook(&self.organization).await? else {
            return Ok(false);
        };
        for (position, event) in events {
            if self.already.remove(&event.id) {
                self.position = position;
                continue;
            }
            let Some(message) = message(&event, &endpoint) else {
                return Ok(!self.pending.is_empty());
            };
            self.pending.push_back(message);
            self.position = position;
        }
        Ok(true)
    }
}

/// The event as its webhook request, signed now.
fn message(event: &Event, endpoint: &verihook_store::WebhookEndpoint) -> Option<SseEvent> {
    let (Some(url), Some(secret)) = (&endpoint.url, &endpoint.secret) else {
        return None;
    };
    let outgoing = Outgoing {
        event_id: event.id.as_str(),
        event_type: event.event_type.as_str(),
        body: &event.body,
        url,
        secret,
        previous: endpoint.previous_secret.as_ref(),
        scheme: endpoint.scheme,
        attempt: 1,
        sequence: event.sequence,
    };
    let headers: serde_json::Map<String, serde_json::Value> =
        webhook_headers(&outgoing, Timestamp::now().unix_seconds())
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into()))
            .collect();
    let data = serde_json::json!({ "headers": headers, "body": event.body });
    Some(
        SseEvent::default()
            .id(event.id.as_str())
            .data(data.to_string()),
    )
}
