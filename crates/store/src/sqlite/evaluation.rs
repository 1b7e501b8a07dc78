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
    let mut conn = db.reader.acquire().await?;

    // 1. The person and their properties.
    let person = sqlx::query(
        "SELECT p.id, p.properties
         FROM person_distinct_ids d JOIN persons p ON p.id = d.person_id
         WHERE d.project_id = ? AND d.distinct_id = ?",
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
        let mut sql = String::from(
            "SELECT group_type_index, properties FROM project_groups WHERE project_id = ? AND (",
        );
        for i in 0..groups.len() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str("(group_type_index = ? AND group_key = ?)");
        }
        sql.push(')');
        let mut q = sqlx::query(&sql).bind(project.0);
        for (index, key) in groups {
            q = q.bind(*index).bind(*key);
        }
        for row in q.fetch_all(&mut *conn).await? {
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
