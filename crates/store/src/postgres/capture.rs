//! Capture on PostgreSQL: one transaction per batch, under the project's person lock,
//! with the rules of [`crate::changes`] and the row operations they need on this database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{events, groups, lock_persons, persons, Db};
use crate::changes::{self, Rows};
use crate::{CaptureOutcome, CapturedEvent, NewEvent, ProjectId, Properties, Result};

pub(super) async fn write(
    db: &Db,
    project: ProjectId,
    batch: &[CapturedEvent],
) -> Result<CaptureOutcome> {
    if batch.is_empty() {
        return Ok(CaptureOutcome::default());
    }
    let mut tx = db.write().await?;
    // Taken before the first read: another node's batch touching the same persons either
    // committed before this one reads them, or waits until this one commits.
    lock_persons(&mut tx, project).await?;
    let outcome = changes::apply(&mut *tx, project, batch).await?;
    tx.commit().await?;
    Ok(outcome)
}

#[async_trait]
impl Rows for PgConnection {
    async fn insert_event(
        &mut self,
        project: ProjectId,
        event: &NewEvent,
        inserted_at: DateTime<Utc>,
    ) -> Result<bool> {
        events::insert_one(self, project, event, inserted_at).await
    }

    async fn person_id(&mut self, project: ProjectId, distinct_id: &str) -> Result<Option<i64>> {
        persons::person_id(self, project, distinct_id).await
    }

    async fn person_row(
        &mut self,
        person: i64,
    ) -> Result<Option<(Properties, bool, DateTime<Utc>)>> {
        persons::row(self, person).await
    }

    async fn create_person(
        &mut self,
        project: ProjectId,
        properties: &Properties,
        is_identified: bool,
        created_at: DateTime<Utc>,
        distinct_ids: &[&str],
    ) -> Result<i64> {
        persons::create(
            self,
            project,
            properties,
            is_identified,
            created_at,
            distinct_ids,
        )
        .await
    }

    async fn attach(&mut self, project: ProjectId, person: i64, distinct_id: &str) -> Result<()> {
        persons::attach(self, project, person, distinct_id).await
    }

    async fn merge_persons(&mut self, kept: i64, merged: i64) -> Result<()> {
        persons::merge_rows(self, kept, merged).await
    }

    async fn save_person(
        &mut self,
        person: i64,
        properties: &Properties,
        is_identified: bool,
        created_at: DateTime<Utc>,
    ) -> Result<()> {
        persons::save(self, person, properties, is_identified, created_at).await
    }

    async fn group_properties(
        &mut self,
        project: ProjectId,
        group_type_index: i64,
        group_key: &str,
    ) -> Result<Option<Properties>> {
        let group = groups::get(self, project, group_type_index, group_key).await?;
        Ok(group.map(|g| g.properties))
    }

    async fn save_group(
        &mut self,
        project: ProjectId,
        group_type_index: i64,
        group_key: &str,
        properties: &Properties,
        now: DateTime<Utc>,
    ) -> Result<()> {
        groups::save(self, project, group_type_index, group_key, properties, now).await
    }
}
