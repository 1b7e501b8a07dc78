//! Early access features, each linked to one flag.

use serde_json::json;
use vexil_store::{
    EarlyAccessFeatureUpdate, EarlyAccessStage, NewEarlyAccessFeature, NewFlag, StoreError,
};

use super::{everyone, TestDb};

fn feature(flag_id: i64, name: &str) -> NewEarlyAccessFeature {
    NewEarlyAccessFeature {
        flag_id,
        name: name.into(),
        description: "try it".into(),
        stage: EarlyAccessStage::Beta,
        documentation_url: "https://example.com/docs".into(),
        payload: json!({"icon": "star"}),
    }
}

pub async fn crud_scoped_by_project(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    let flag = s
        .create_flag(p, &NewFlag::new("beta-ui", everyone()))
        .await
        .unwrap();
    let other = s
        .create_flag(q, &NewFlag::new("beta-ui", everyone()))
        .await
        .unwrap();
    let created = s
        .create_early_access_feature(p, &feature(flag.id, "Beta UI"))
        .await
        .unwrap();
    assert_eq!(created.flag_key, "beta-ui");
    assert_eq!(created.stage, EarlyAccessStage::Beta);
    assert_eq!(created.payload, json!({"icon": "star"}));
    // A flag links to one feature; a flag of another project is not found.
    assert!(matches!(
        s.create_early_access_feature(p, &feature(flag.id, "Again"))
            .await,
        Err(StoreError::Duplicate {
            field: "feature_flag_id"
        })
    ));
    assert!(matches!(
        s.create_early_access_feature(p, &feature(other.id, "Theirs"))
            .await,
        Err(StoreError::NotFound { entity: "flag" })
    ));
    assert_eq!(
        s.early_access_features(p).await.unwrap(),
        vec![created.clone()]
    );
    assert!(s.early_access_features(q).await.unwrap().is_empty());
    assert_eq!(s.early_access_feature(q, created.id).await.unwrap(), None);

    let update = EarlyAccessFeatureUpdate {
        stage: Some(EarlyAccessStage::GeneralAvailability),
        name: Some("Beta UI 2".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.update_early_access_feature(q, created.id, &update).await,
        Err(StoreError::NotFound { .. })
    ));
    let updated = s
        .update_early_access_feature(p, created.id, &update)
        .await
        .unwrap();
    assert_eq!(updated.stage, EarlyAccessStage::GeneralAvailability);
    assert_eq!(updated.name, "Beta UI 2");
    assert_eq!(updated.description, "try it");
    assert_eq!(
        s.early_access_feature(p, created.id).await.unwrap(),
        Some(updated)
    );

    db.reopen().await;
    let s = &*db.store;
    assert_eq!(s.early_access_features(p).await.unwrap().len(), 1);
    assert!(!s.delete_early_access_feature(q, created.id).await.unwrap());
    assert!(s.delete_early_access_feature(p, created.id).await.unwrap());
    assert!(!s.delete_early_access_feature(p, created.id).await.unwrap());
    assert!(s.early_access_features(p).await.unwrap().is_empty());
    // The flag stays, and may be linked again.
    s.create_early_access_feature(p, &feature(flag.id, "Beta UI"))
        .await
        .unwrap();
}
