//! The hot-path read: everything per-person one evaluation needs, on one connection.

use std::collections::HashMap;

use sqlx::Row;

use super::{cohorts, json, overrides, Db};
use crate::{EvalInputs, ProjectId, Properties, Result};

pub(super) async fn inputs(
    db: &Db,
    project: ProjectId,
    distinct_id: &str,
    groups: &[(i64, &str)],
    want_hash_keys: bool,
    anon_distinct_id: Option<&str>,
) -> Result<EvalInputs> {
    let mut conn = db.acquire().await?;

    // 1. The person and their properties.
    let person = sqlx::query(
        "SELECT p.id, p.properties
         FROM person_distinct_ids d JOIN persons p ON p.id = d.person_id
         WHERE d.project_id = $1 AND d.distinct_id = $2",
    )
    .bind(project.0)
    .bind(distinct_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (person_id, person_properties) = match person {
        Some(row) => {
            let id: i64 = row.try_get("id")?;
            let props: Properties = json(row.try_get("properties")?, "person properties")?;
            (Some(id), Some(props))
        }
        None => (None, None),
    };

    // 2. Static cohorts through any of the person's distinct ids.
    let static_cohorts =
        cohorts::static_memberships(&mut conn, project, distinct_id, person_id).await?;

    // 3. The requested groups, in one query.
    let mut group_properties = HashMap::new();
    if !groups.is_empty() {
        let (indexes, keys): (Vec<i64>, Vec<&str>) = groups.iter().copied().unzip();
        let rows = sqlx::query(
            "SELECT g.group_type_index, g.properties
             FROM project_groups g
             JOIN UNNEST($2::bigint[], $3::text[]) AS r (group_type_index, group_key)
               ON g.group_type_index = r.group_type_index AND g.group_key = r.group_key
             WHERE g.project_id = $1",
        )
        .bind(project.0)
        .bind(&indexes)
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let index: i64 = row.try_get("group_type_index")?;
            let props: Properties = json(row.try_get("properties")?, "group properties")?;
            group_properties.insert(index, props);
        }
    }

    // 4. Continuity hash keys, the request's own distinct id first.
    let hash_key_overrides = if want_hash_keys {
        let mut ids = vec![distinct_id];
        ids.extend(anon_distinct_id.filter(|a| *a != distinct_id));
        overrides::get(&mut conn, project, &ids).await?
    } else {
        HashMap::new()
    };

    Ok(EvalInputs {
        person_properties,
        static_cohorts,
        group_properties,
        hash_key_overrides,
    })
}
