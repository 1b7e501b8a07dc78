//! A capture batch's changes to persons and groups, held in memory and written once.
//!
//! Each event of a batch is inserted (skipped with its effects when its uuid is already
//! stored), then its effects are applied to persons and groups held in memory, each loaded
//! once; every person or group the batch changed is written once, at the end. A person touched
//! a hundred times in a batch is one `UPDATE`, and the batch one commit.
//!
//! The rules (PostHog's merge guard, the property cap, `$set` / `$set_once` / `$unset`) live
//! here once; each backend supplies the row operations ([`Rows`]) on its open transaction,
//! and takes whatever lock its database needs before the first read. The single-operation
//! writes (`apply_person_update`, `identify`, `upsert_group`) are batches of one change, so
//! capture and the management API share one implementation of the rules.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::person::merge_properties;
use crate::{
    is_illegal_merge_id, CaptureOutcome, CapturedEvent, Effect, NewEvent, PersonUpdate, ProjectId,
    Properties, Result, StoreError, MAX_PERSON_PROPERTIES,
};

/// The row operations a batch needs, on a backend's open transaction.
#[async_trait]
pub(crate) trait Rows: Send {
    /// Inserts one event (and its flag call); `false` when its uuid is already stored.
    async fn insert_event(
        &mut self,
        project: ProjectId,
        event: &NewEvent,
        inserted_at: DateTime<Utc>,
    ) -> Result<bool>;
    /// The person id a distinct id points at.
    async fn person_id(&mut self, project: ProjectId, distinct_id: &str) -> Result<Option<i64>>;
    /// A person's properties, identified flag and creation time.
    async fn person_row(
        &mut self,
        person: i64,
    ) -> Result<Option<(Properties, bool, DateTime<Utc>)>>;
    /// Creates a person owning `distinct_ids`; its id.
    async fn create_person(
        &mut self,
        project: ProjectId,
        properties: &Properties,
        is_identified: bool,
        created_at: DateTime<Utc>,
        distinct_ids: &[&str],
    ) -> Result<i64>;
    /// Points `distinct_id` at `person`.
    async fn attach(&mut self, project: ProjectId, person: i64, distinct_id: &str) -> Result<()>;
    /// Moves person `merged`'s distinct ids and hash keys to `kept` and deletes `merged`.
    async fn merge_persons(&mut self, kept: i64, merged: i64) -> Result<()>;
    /// Writes a person's properties, identified flag and creation time.
    async fn save_person(
        &mut self,
        person: i64,
        properties: &Properties,
        is_identified: bool,
        created_at: DateTime<Utc>,
    ) -> Result<()>;
    /// A group's stored properties.
    async fn group_properties(
        &mut self,
        project: ProjectId,
        group_type_index: i64,
        group_key: &str,
    ) -> Result<Option<Properties>>;
    /// Writes a group's properties (created at `now` if new).
    async fn save_group(
        &mut self,
        project: ProjectId,
        group_type_index: i64,
        group_key: &str,
        properties: &Properties,
        now: DateTime<Utc>,
    ) -> Result<()>;
}

/// Applies a capture batch inside the caller's transaction: events inserted, effects applied,
/// changed persons and groups written. The caller commits.
pub(crate) async fn apply(
    conn: &mut dyn Rows,
    project: ProjectId,
    batch: &[CapturedEvent],
) -> Result<CaptureOutcome> {
    let mut outcome = CaptureOutcome::default();
    let inserted_at = crate::now();
    let mut changes = Changes::new(project);
    for (i, captured) in batch.iter().enumerate() {
        if !conn
            .insert_event(project, &captured.event, inserted_at)
            .await?
        {
            outcome.duplicates += 1;
            continue; // a retried delivery: its effects were applied with it
        }
        outcome.new_events += 1;
        outcome.stored.push(i);
        let distinct_id = captured.event.distinct_id.as_str();
        for effect in &captured.effects {
            let applied = match effect {
                Effect::Merge { other } => {
                    changes.identify(conn, distinct_id, other).await.map(drop)
                }
                Effect::Person(update) => changes.update(conn, distinct_id, update).await.map(drop),
                Effect::Group {
                    group_type_index,
                    group_key,
                    set,
                } => changes.group(conn, *group_type_index, group_key, set).await,
            };
            match applied {
                Ok(()) => {}
                Err(StoreError::Invalid { field, message }) => {
                    outcome.skipped.push((i, format!("{field}: {message}")));
                }
                Err(StoreError::LimitExceeded { limit, max, .. }) => {
                    return Err(StoreError::LimitExceeded {
                        limit,
                        max,
                        event: i,
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }
    changes.flush(conn).await?;
    Ok(outcome)
}

/// A person as the batch sees it.
struct PersonState {
    properties: Properties,
    is_identified: bool,
    created_at: DateTime<Utc>,
    dirty: bool,
}

/// A group as the batch sees it.
struct GroupState {
    properties: Properties,
    dirty: bool,
}

/// The persons and groups one transaction has read and changed, not yet written.
pub(crate) struct Changes {
    project: ProjectId,
    /// Distinct id → person id (`None`: no person), as far as looked up.
    ids: HashMap<String, Option<i64>>,
    persons: HashMap<i64, PersonState>,
    groups: HashMap<(i64, String), GroupState>,
}

impl Changes {
    pub(crate) fn new(project: ProjectId) -> Self {
        Changes {
            project,
            ids: HashMap::new(),
            persons: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    async fn person_of(&mut self, conn: &mut dyn Rows, distinct_id: &str) -> Result<Option<i64>> {
        if let Some(&id) = self.ids.get(distinct_id) {
            return Ok(id);
        }
        let id = conn.person_id(self.project, distinct_id).await?;
        self.ids.insert(distinct_id.to_owned(), id);
        Ok(id)
    }

    /// The person `id`, loaded into the batch if needed.
    async fn person(&mut self, conn: &mut dyn Rows, id: i64) -> Result<&mut PersonState> {
        match self.persons.entry(id) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                let (properties, is_identified, created_at) = conn
                    .person_row(id)
                    .await?
                    .ok_or(StoreError::NotFound { entity: "person" })?;
                Ok(e.insert(PersonState {
                    properties,
                    is_identified,
                    created_at,
                    dirty: false,
                }))
            }
        }
    }

    async fn create(
        &mut self,
        conn: &mut dyn Rows,
        is_identified: bool,
        distinct_ids: &[&str],
    ) -> Result<i64> {
        let created_at = crate::now();
        let id = conn
            .create_person(
                self.project,
                &Properties::new(),
                is_identified,
                created_at,
                distinct_ids,
            )
            .await?;
        for d in distinct_ids {
            self.ids.insert((*d).to_owned(), Some(id));
        }
        self.persons.insert(
            id,
            PersonState {
                properties: Properties::new(),
                is_identified,
                created_at,
                dirty: false,
            },
        );
        Ok(id)
    }

    /// `$set` / `$set_once` / `$unset` on `distinct_id`'s person (created if needed).
    pub(crate) async fn update(
        &mut self,
        conn: &mut dyn Rows,
        distinct_id: &str,
        update: &PersonUpdate,
    ) -> Result<i64> {
        let id = match self.person_of(conn, distinct_id).await? {
            Some(id) => id,
            None => self.create(conn, false, &[distinct_id]).await?,
        };
        let person = self.person(conn, id).await?;
        let before = person.properties.len();
        if update.apply(&mut person.properties) {
            let after = person.properties.len();
            if after > MAX_PERSON_PROPERTIES && after > before {
                return Err(StoreError::LimitExceeded {
                    limit: "MAX_PERSON_PROPERTIES",
                    max: MAX_PERSON_PROPERTIES,
                    event: 0,
                });
            }
            person.dirty = true;
        }
        Ok(id)
    }

    /// Marks the person identified (written even when it already was: the version moves).
    async fn mark_identified(&mut self, conn: &mut dyn Rows, id: i64) -> Result<()> {
        let person = self.person(conn, id).await?;
        person.is_identified = true;
        person.dirty = true;
        Ok(())
    }

    /// `$identify` / `$create_alias` (see [`crate::Store::identify`]); returns the person id of
    /// `distinct_id`.
    pub(crate) async fn identify(
        &mut self,
        conn: &mut dyn Rows,
        distinct_id: &str,
        other_id: &str,
    ) -> Result<i64> {
        let kept = self.person_of(conn, distinct_id).await?;
        let legal = !is_illegal_merge_id(distinct_id) && !is_illegal_merge_id(other_id);
        if !legal || distinct_id == other_id {
            // Nothing to join: make sure the event's own person exists.
            return match kept {
                Some(id) => {
                    if legal && !self.person(conn, id).await?.is_identified {
                        self.mark_identified(conn, id).await?;
                    }
                    Ok(id)
                }
                None => self.create(conn, legal, &[distinct_id]).await,
            };
        }
        let other = self.person_of(conn, other_id).await?;
        match (kept, other) {
            (None, None) => self.create(conn, true, &[distinct_id, other_id]).await,
            (Some(p), None) => {
                conn.attach(self.project, p, other_id).await?;
                self.ids.insert(other_id.to_owned(), Some(p));
                self.mark_identified(conn, p).await?;
                Ok(p)
            }
            (None, Some(o)) => {
                conn.attach(self.project, o, distinct_id).await?;
                self.ids.insert(distinct_id.to_owned(), Some(o));
                self.mark_identified(conn, o).await?;
                Ok(o)
            }
            (Some(p), Some(o)) if p == o || self.person(conn, o).await?.is_identified => {
                // Same person already, or PostHog's guard: an identified person is never
                // merged away (two known users must not fuse).
                self.mark_identified(conn, p).await?;
                Ok(p)
            }
            (Some(p), Some(o)) => {
                self.person(conn, o).await?;
                let merged = self
                    .persons
                    .remove(&o)
                    .ok_or(StoreError::NotFound { entity: "person" })?;
                let person = self.person(conn, p).await?;
                merge_properties(&mut person.properties, merged.properties);
                person.created_at = person.created_at.min(merged.created_at);
                person.is_identified = true;
                person.dirty = true;
                conn.merge_persons(p, o).await?;
                for id in self.ids.values_mut() {
                    if *id == Some(o) {
                        *id = Some(p);
                    }
                }
                Ok(p)
            }
        }
    }

    /// `$groupidentify`: overwrites `set` on the group (created if needed).
    pub(crate) async fn group(
        &mut self,
        conn: &mut dyn Rows,
        group_type_index: i64,
        group_key: &str,
        set: &Properties,
    ) -> Result<()> {
        crate::group::check(group_type_index, group_key)?;
        let key = (group_type_index, group_key.to_owned());
        if !self.groups.contains_key(&key) {
            let properties = conn
                .group_properties(self.project, group_type_index, group_key)
                .await?
                .unwrap_or_default();
            self.groups.insert(
                key.clone(),
                GroupState {
                    properties,
                    dirty: false,
                },
            );
        }
        if let Some(group) = self.groups.get_mut(&key) {
            group
                .properties
                .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            group.dirty = true;
        }
        Ok(())
    }

    /// Writes every person and group the batch changed.
    pub(crate) async fn flush(&mut self, conn: &mut dyn Rows) -> Result<()> {
        for (&id, person) in &self.persons {
            if person.dirty {
                conn.save_person(
                    id,
                    &person.properties,
                    person.is_identified,
                    person.created_at,
                )
                .await?;
            }
        }
        let now = crate::now();
        for ((index, key), group) in &self.groups {
            if group.dirty {
                conn.save_group(self.project, *index, key, &group.properties, now)
                    .await?;
            }
        }
        self.persons.values_mut().for_each(|p| p.dirty = false);
        self.groups.values_mut().for_each(|g| g.dirty = false);
        Ok(())
    }
}
