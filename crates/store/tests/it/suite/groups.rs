//! Groups (`$groupidentify`).

use serde_json::json;
use vexil_store::{ProjectId, StoreError};

use super::{props, TestDb};

pub async fn upsert_merges_properties(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    assert_eq!(s.get_group(p, 0, "acme").await.unwrap(), None);
    let g = s
        .upsert_group(p, 0, "acme", &props(json!({"plan": "free", "seats": 3})))
        .await
        .unwrap();
    assert_eq!((g.group_type_index, g.group_key.as_str()), (0, "acme"));
    assert_eq!(g.properties, props(json!({"plan": "free", "seats": 3})));
    let g2 = s
        .upsert_group(p, 0, "acme", &props(json!({"plan": "pro"})))
        .await
        .unwrap();
    assert_eq!(g2.properties, props(json!({"plan": "pro", "seats": 3})));
    assert_eq!(g2.created_at, g.created_at);
    assert!(g2.updated_at >= g.updated_at);
    assert_eq!(s.get_group(p, 0, "acme").await.unwrap(), Some(g2));
    // Same key, other type or other project: other groups.
    assert_eq!(s.get_group(p, 1, "acme").await.unwrap(), None);
    assert_eq!(s.get_group(q, 0, "acme").await.unwrap(), None);
}

pub async fn group_input_is_checked(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let empty = props(json!({}));
    for index in [-1, 5, i64::MAX] {
        assert!(matches!(
            s.upsert_group(p, index, "acme", &empty).await,
            Err(StoreError::Invalid {
                field: "group_type_index",
                ..
            })
        ));
    }
    assert!(matches!(
        s.upsert_group(p, 0, "", &empty).await,
        Err(StoreError::Invalid {
            field: "group_key",
            ..
        })
    ));
    assert!(matches!(
        s.upsert_group(ProjectId(999_999), 0, "acme", &empty).await,
        Err(StoreError::NotFound { entity: "project" })
    ));
}
