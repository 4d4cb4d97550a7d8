//! [`EventStream`], over each backend's notion of a settled event.

use super::{Backend, Database};
use crate::rows::{self, Row, Value};
use crate::stream::{EventStream, StreamPosition};
use crate::StoreError;
use async_trait::async_trait;
use tokio::sync::watch;
use verihook_core::{Event, EventId, OrganizationId};

fn position(row: &Row) -> Result<StreamPosition, StoreError> {
    Ok(StreamPosition {
        txid: row.int("txid")?,
        seq: row.int("seq")?,
    })
}

#[async_trait]
impl<B: Backend> EventStream for Database<B> {
    async fn stream_start(
        &self,
        organization: &OrganizationId,
    ) -> Result<(StreamPosition, Vec<EventId>), StoreError> {
        let params = vec![Value::text(organization.as_str()).into_owned()];
        let rows = self
            .backend
            .read(B::STREAM_START.into(), rows::owned(params))
            .await?;
        let start = rows.first().map(position).transpose()?;
        let already = rows
            .iter()
            .filter_map(|row| row.opt_string("id").transpose())
            .map(|id| EventId::parse(&id?).map_err(StoreError::corrupt))
            .collect::<Result<_, _>>()?;
        Ok((start.ok_or(StoreError::NotFound)?, already))
    }

    async fn stream_position(
        &self,
        organization: &OrganizationId,
        id: &EventId,
    ) -> Result<Option<StreamPosition>, StoreError> {
        let params = vec![
            Value::text(id.as_str()).into_owned(),
            Value::text(organization.as_str()).into_owned(),
        ];
        self.read_one(B::STREAM_POSITION, params, position).await
    }

    async fn stream_events(
        &self,
        organization: &OrganizationId,
        after: StreamPosition,
        limit: u32,
    ) -> Result<Vec<(StreamPosition, Event)>, StoreError> {
        let params = vec![
            Value::text(organization.as_str()).into_owned(),
            Value::int(after.txid),
            Value::int(after.seq),
            Value::int(i64::from(limit)),
        ];
        let rows = self
            .backend
            .read(B::STREAM_EVENTS.into(), rows::owned(params))
            .await?;
        rows.iter()
            .map(|row| Ok((position(row)?, rows::event(row)?)))
            .collect()
    }

    fn stored_signal(&self) -> watch::Receiver<u64> {
        self.stored.subscribe()
    }
}
