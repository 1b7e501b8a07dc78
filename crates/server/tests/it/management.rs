//! Management API against a live server: flags (CRUD, listing, versions, validation, activity,
//! dependencies, evaluation reasons), cohorts, persons, auth and project isolation, the OpenAPI
//! document.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::TestApp;

const FLAGS: &str = "/api/projects/@current/feature_flags/";

fn everyone() -> Value {
    json!({"groups": [{"properties": [], "rollout_percentage": 100}]})
}

fn flag_path(id: &Value) -> String {
    format!("{FLAGS}{id}/")
}

/// Creates a flag through the API and returns its id.
async fn create(app: &TestApp, key: &str, filters: Value) -> Value {
    let (status, body) = app
        .api(
            Method::POST,
            FLAGS,
            Some(&json!({"key": key, "filters": filters})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].clone()
}

/// `/flags` v2 for `distinct_id`: the `flags` map.
async fn evaluate(app: &TestApp, distinct_id: &str) -> Value {
    let (status, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": distinct_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["flags"].clone()
}

/// The write rules read a typed model of `filters`, but the flag stores and returns exactly
/// what the client sent: unknown fields, integer percentages, explicit nulls.
#[tokio::test]
async fn filters_round_trip_unchanged() {
    let app = TestApp::spawn().await;
    let filters = json!({
        "groups": [{"properties": [{"key": "email", "type": "person", "operator": "icontains",
            "value": "@x.com", "custom": {"a": [1, 2]}}], "rollout_percentage": 50,
            "variant": null, "description": "beta users"}],
        "aggregation_group_type_index": null,
        "future_setting": {"nested": true},
        "payloads": {}
    });
    let id = create(&app, "kept", filters.clone()).await;
    let (status, body) = app.api(Method::GET, &flag_path(&id), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["filters"], filters);
    app.stop().await;
}

#[tokio::test]
async fn create_list_search_and_follow_next_links() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .api(
            Method::POST,
            FLAGS,
            Some(
                &json!({"key": "alpha", "name": "First flag", "filters": everyone(),
                         "description": "ignored", "unknown_field": 1}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for field in [
        "id",
        "key",
        "name",
        "filters",
        "active",
        "deleted",
        "version",
        "ensure_experience_continuity",
        "created_at",
        "updated_at",
        "created_by",
        "last_modified_by",
        "tags",
        "evaluation_runtime",
        "bucketing_identifier",
        "status",
        "is_remote_configuration",
        "has_encrypted_payloads",
        "last_called_at",
        "experiment_set",
        "surveys",
        "features",
        "analytics_dashboards",
    ] {
        assert!(body.get(field).is_some(), "missing {field}");
    }
    assert_eq!(body["version"], 1);
    assert_eq!(body["active"], true);
    assert_eq!(body["deleted"], false);
    assert_eq!(body["evaluation_runtime"], "all");
    assert_eq!(body["status"], "ACTIVE");
    assert!(body["created_by"]["first_name"]
        .as_str()
        .unwrap()
        .starts_with("personal key phx_"));
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));

    create(&app, "beta", everyone()).await;
    create(&app, "gamma-beta", everyone()).await;

    let (status, list) = app.api(Method::GET, FLAGS, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["count"], 3);
    let keys: Vec<&str> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["gamma-beta", "beta", "alpha"], "newest first");
    assert!(list["next"].is_null() && list["previous"].is_null());

    let (_, found) = app
        .api(Method::GET, &format!("{FLAGS}?search=BETA"), None)
        .await;
    assert_eq!(found["count"], 2);
    let (_, found) = app
        .api(Method::GET, &format!("{FLAGS}?search=first"), None)
        .await;
    assert_eq!(
        found["results"][0]["key"], "alpha",
        "search covers the name"
    );

    // Paging: `next` is absolute, keeps the filters, and walks to the end.
    let (_, page1) = app
        .api(Method::GET, &format!("{FLAGS}?search=a&limit=2"), None)
        .await;
    assert_eq!(page1["count"], 3);
    assert_eq!(page1["results"].as_array().unwrap().len(), 2);
    let next = page1["next"].as_str().unwrap().to_owned();
    assert!(
        next.starts_with(&format!(
            "http://{}/api/projects/@current/feature_flags/",
            app.addr
        )),
        "{next}"
    );
    assert!(
        next.contains("search=a") && next.contains("offset=2"),
        "{next}"
    );
    let page2: Value = app
        .client
        .get(&next)
        .bearer_auth(app.personal_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2["results"][0]["key"], "alpha");
    assert!(page2["next"].is_null());
    assert!(page2["previous"].as_str().unwrap().contains("offset=0"));

    // Filters applied in memory: type, order, excluded keys, active.
    let (_, ordered) = app
        .api(
            Method::GET,
            &format!("{FLAGS}?order=key&excluded_properties=%5B%22beta%22%5D"),
            None,
        )
        .await;
    let keys: Vec<&str> = ordered["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["alpha", "gamma-beta"]);
    let (_, stale) = app
        .api(Method::GET, &format!("{FLAGS}?active=STALE"), None)
        .await;
    assert_eq!(stale["count"], 0, "new flags are not stale");
    app.stop().await;
}

#[tokio::test]
async fn both_mount_points_trailing_slash_optional_and_key_in_body() {
    let app = TestApp::spawn().await;
    let id = create(&app, "mounted", everyone()).await;
    let project = app.project.project.id;
    for path in [
        format!("/api/projects/{project}/feature_flags/{id}"),
        format!("/api/environments/{project}/feature_flags/{id}/"),
        format!("/api/environments/@current/feature_flags/{id}"),
    ] {
        let (status, body) = app.api(Method::GET, &path, None).await;
        assert_eq!(
            (status, body["key"].clone()),
            (200, json!("mounted")),
            "{path}"
        );
    }
    // The key as a JSON body field (never in the query string: see keys.rs).
    let resp = app
        .client
        .patch(app.url(&flag_path(&id)))
        .json(&json!({"name": "renamed", "personal_api_key": app.personal_key()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn patch_bumps_version_and_a_stale_version_conflicts() {
    let app = TestApp::spawn().await;
    let id = create(&app, "versioned", everyone()).await;
    let path = flag_path(&id);
    let (status, v2) = app
        .api(
            Method::PATCH,
            &path,
            Some(&json!({"name": "Second", "version": 1})),
        )
        .await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(
        (v2["version"].clone(), v2["name"].clone()),
        (json!(2), json!("Second"))
    );

    // Stale version without original_flag: 409, nothing changes.
    let (status, err) = app
        .api(
            Method::PATCH,
            &path,
            Some(&json!({"name": "Lost", "version": 1})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        (err["type"].clone(), err["code"].clone()),
        (json!("invalid_request"), json!("conflict"))
    );
    let (_, now) = app.api(Method::GET, &path, None).await;
    assert_eq!(
        (now["version"].clone(), now["name"].clone()),
        (json!(2), json!("Second"))
    );

    // With original_flag: changing a field nobody else touched goes through...
    let original = json!({"name": "", "active": true});
    let (status, v3) = app
        .api(
            Method::PATCH,
            &path,
            Some(&json!({"active": false, "version": 1, "original_flag": original})),
        )
        .await;
    assert_eq!(status, 200, "{v3}");
    assert_eq!(v3["version"], 3);
    // ...while changing one someone else changed to another value is a conflict.
    let (status, _) = app
        .api(
            Method::PATCH,
            &path,
            Some(&json!({"name": "Mine", "version": 1, "original_flag": original})),
        )
        .await;
    assert_eq!(status, 409);

    // PUT needs the key; a filters object without groups is ignored on update.
    let (status, err) = app
        .api(Method::PUT, &path, Some(&json!({"name": "x"})))
        .await;
    assert_eq!((status, err["attr"].clone()), (400, json!("key")));
    let (status, put) = app
        .api(
            Method::PUT,
            &path,
            Some(&json!({"key": "versioned", "filters": {"payloads": {}}, "tags": ["t"]})),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["filters"], everyone());
    assert_eq!(put["tags"], json!(["t"]));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_patches_never_lose_a_version_bump() {
    let app = TestApp::spawn().await;
    let id = create(&app, "busy", everyone()).await;
    let path = flag_path(&id);
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let request = app
                .client
                .patch(app.url(&path))
                .bearer_auth(app.personal_key())
                .json(&json!({"name": format!("writer {i}")}));
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for writer in writers {
        assert_eq!(writer.await.unwrap().unwrap(), 200);
    }
    let (_, flag) = app.api(Method::GET, &path, None).await;
    assert_eq!(flag["version"], 9);
    app.stop().await;
}

/// 20 concurrent PATCHes of one flag without `version` all apply (PostHog semantics: no
/// spurious "changed since you read it"); 20 carrying the same `version` conflict except one.
#[tokio::test]
async fn concurrent_unversioned_patches_all_apply_and_stale_versions_conflict() {
    const WRITERS: usize = 20;
    let app = TestApp::spawn().await;
    let id = create(&app, "contended", everyone()).await;
    let path = flag_path(&id);
    let send_all = |body: fn(usize) -> Value| {
        let requests: Vec<_> = (0..WRITERS)
            .map(|i| {
                let request = app
                    .client
                    .patch(app.url(&path))
                    .bearer_auth(app.personal_key())
                    .json(&body(i));
                tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
            })
            .collect();
        async move {
            let mut statuses = Vec::new();
            for r in requests {
                statuses.push(r.await.unwrap().unwrap());
            }
            statuses
        }
    };
    let statuses = send_all(
        |i| json!({"filters": {"groups": [{"properties": [], "rollout_percentage": i * 5}]}}),
    )
    .await;
    assert_eq!(
        statuses,
        vec![200; WRITERS],
        "no PATCH without version conflicts"
    );
    let (_, flag) = app.api(Method::GET, &path, None).await;
    assert_eq!(flag["version"], 1 + WRITERS as u64);
    let (_, log) = app
        .api(Method::GET, &format!("{path}activity/"), None)
        .await;
    assert_eq!(
        log["total_count"],
        1 + WRITERS as u64,
        "one entry per write"
    );

    let statuses = send_all(|i| json!({"version": 21, "name": format!("writer {i}")})).await;
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|&&s| s == 409).count(), WRITERS - 1);
    let (_, flag) = app.api(Method::GET, &path, None).await;
    assert_eq!(flag["version"], 2 + WRITERS as u64);
    app.stop().await;
}

/// Every answered write is already what `/flags` and the definitions feed serve.
#[tokio::test]
async fn writes_are_visible_as_soon_as_answered() {
    let app = TestApp::spawn().await;
    let id = create(&app, "seen", everyone()).await;
    assert_eq!(evaluate(&app, "u").await["seen"]["enabled"], true);
    for active in [false, true] {
        let (status, _) = app
            .api(
                Method::PATCH,
                &flag_path(&id),
                Some(&json!({"active": active})),
            )
            .await;
        assert_eq!(status, 200);
        // Inactive flags are left out of `/flags`.
        let flags = evaluate(&app, "u").await;
        assert_eq!(flags.get("seen").is_some(), active, "{flags}");
    }
    let (status, _) = app
        .api(
            Method::PATCH,
            &flag_path(&id),
            Some(&json!({"key": "renamed"})),
        )
        .await;
    assert_eq!(status, 200);
    let flags = evaluate(&app, "u").await;
    assert!(
        flags.get("seen").is_none() && flags["renamed"]["enabled"] == true,
        "{flags}"
    );
    let (status, body) = app
        .api(Method::GET, &format!("{FLAGS}local_evaluation/"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["flags"][0]["key"], "renamed", "{body}");
    let (status, _) = app
        .api(
            Method::PATCH,
            &flag_path(&id),
            Some(&json!({"deleted": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(evaluate(&app, "u").await.get("renamed").is_none());
    app.stop().await;
}

#[tokio::test]
async fn soft_delete_hides_from_list_and_evaluation_and_delete_is_refused() {
    let app = TestApp::spawn().await;
    let id = create(&app, "doomed", everyone()).await;
    create(&app, "kept", everyone()).await;
    assert_eq!(evaluate(&app, "u1").await["doomed"]["enabled"], true);

    let resp = app
        .client
        .delete(app.url(&flag_path(&id)))
        .bearer_auth(app.personal_key())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert!(resp.headers()["allow"].to_str().unwrap().contains("PATCH"));
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "method_not_allowed");

    let (status, body) = app
        .api(
            Method::PATCH,
            &flag_path(&id),
            Some(&json!({"deleted": true})),
        )
        .await;
    assert_eq!((status, body["deleted"].clone()), (200, json!(true)));
    let (_, list) = app.api(Method::GET, FLAGS, None).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["key"], "kept");
    let flags = evaluate(&app, "u1").await;
    assert!(flags.get("doomed").is_none(), "{flags}");
    assert_eq!(flags["kept"]["enabled"], true);
    // The row stays readable, and its key may be reused.
    let (status, row) = app.api(Method::GET, &flag_path(&id), None).await;
    assert_eq!((status, row["status"].clone()), (200, json!("DELETED")));
    create(&app, "doomed", everyone()).await;
    app.stop().await;
}

/// One validation case: `body` POSTed to create a flag must fail with `code` on `attr`.
async fn check_invalid(app: &TestApp, body: Value, code: &str, attr: &str) {
    let (status, err) = app.api(Method::POST, FLAGS, Some(&body)).await;
    assert_eq!(status, 400, "{body} → {err}");
    assert_eq!(err["type"], "validation_error", "{err}");
    assert_eq!(err["code"], code, "{body} → {err}");
    assert_eq!(err["attr"], attr, "{body} → {err}");
    assert!(err["detail"].is_string());
}

fn with_property(property: Value) -> Value {
    json!({"groups": [{"properties": [property], "rollout_percentage": 100}]})
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = TestApp::spawn().await;
    let dep = create(&app, "dep", everyone()).await;
    let mv = |variants: Value| json!({"groups": [{"rollout_percentage": 100}], "multivariate": {"variants": variants}});
    let cases = [
        (json!({"filters": everyone()}), "required", "key"),
        (json!({"key": "x"}), "required", "filters"),
        (
            json!({"key": "bad key!", "filters": everyone()}),
            "invalid_key",
            "key",
        ),
        (
            json!({"key": "dep", "filters": everyone()}),
            "unique",
            "key",
        ),
        (
            json!({"key": "x", "filters": {"groups": []}}),
            "invalid_input",
            "filters",
        ),
        (
            json!({"key": "x", "filters": "nope"}),
            "invalid_input",
            "filters",
        ),
        (
            json!({"key": "x", "active": "yes", "filters": everyone()}),
            "invalid_input",
            "active",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": "a", "type": "group", "group_type_index": 0, "value": "b"}))}),
            "invalid_input",
            "filters.groups[0].properties[0].type",
        ),
        (
            json!({"key": "x", "filters": {"aggregation_group_type_index": 0,
                "groups": [{"properties": [{"key": "a", "type": "person", "value": "b"}]}]}}),
            "invalid_input",
            "filters.groups[0].properties[0].type",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": "dep", "type": "flag", "operator": "flag_evaluates_to", "value": true}))}),
            "invalid_input",
            "filters.groups[0].properties[0].key",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": "999999", "type": "flag", "operator": "flag_evaluates_to", "value": true}))}),
            "invalid_input",
            "filters.groups[0].properties[0].key",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": dep.to_string(), "type": "flag", "operator": "exact", "value": true}))}),
            "invalid_input",
            "filters.groups[0].properties[0].operator",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": "id", "type": "cohort", "value": 424242}))}),
            "cohort_does_not_exist",
            "filters.groups[0].properties[0].value",
        ),
        (
            json!({"key": "x", "filters": mv(json!([{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 40}]))}),
            "invalid_input",
            "filters.multivariate.variants",
        ),
        (
            json!({"key": "x", "filters": {"groups": [{"rollout_percentage": 100, "variant": "c"}],
                "multivariate": {"variants": [{"key": "a", "rollout_percentage": 100}]}}}),
            "invalid_input",
            "filters.groups[0].variant",
        ),
        (
            json!({"key": "x", "filters": {"groups": [{"rollout_percentage": 100}], "payloads": {"control": "1"}}}),
            "invalid_input",
            "filters.payloads",
        ),
        (
            json!({"key": "x", "filters": {"groups": [{"rollout_percentage": 100}], "payloads": {"true": "{not json"}}}),
            "invalid_input",
            "filters.payloads",
        ),
        (
            json!({"key": "x", "filters": {"groups": [{"rollout_percentage": 120}]}}),
            "invalid_input",
            "filters.groups[0].rollout_percentage",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": "n", "type": "person", "operator": "gt", "value": 5}))}),
            "invalid_value",
            "filters.groups[0].properties[0].value",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": "e", "type": "person", "operator": "regex", "value": "(unclosed"}))}),
            "invalid_regex",
            "filters.groups[0].properties[0].value",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": "d", "type": "person", "operator": "is_date_before", "value": "not a date"}))}),
            "invalid_date",
            "filters.groups[0].properties[0].value",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": "e", "type": "person", "operator": "in", "value": ["a"]}))}),
            "invalid_input",
            "filters.groups[0].properties[0].operator",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": "e", "type": "person", "operator": "frobnicates", "value": "a"}))}),
            "invalid_input",
            "filters.groups[0].properties[0].operator",
        ),
        (
            json!({"key": "x", "filters": with_property(json!({"key": "e", "type": "person", "operator": "exact",
                "value": (0..1001).map(|i| i.to_string()).collect::<Vec<_>>()}))}),
            "invalid_input",
            "filters.groups[0].properties[0].value",
        ),
        (
            json!({"key": "x", "filters": {"groups": [{"rollout_percentage": 100}], "version": 2}}),
            "invalid_input",
            "filters.version",
        ),
    ];
    for (body, code, attr) in cases {
        check_invalid(&app, body, code, attr).await;
    }
    // Valid counterparts pass: a flag dependency by id, a date, a string bound, an object payload.
    let (status, ok) = app
        .api(
            Method::POST,
            FLAGS,
            Some(&json!({"key": "valid", "filters": {
                "groups": [{"properties": [
                    {"key": dep.to_string(), "type": "flag", "operator": "flag_evaluates_to", "value": true},
                    {"key": "d", "type": "person", "operator": "is_date_after", "value": "-30d"},
                    {"key": "n", "type": "person", "operator": "gt", "value": "5"},
                    {"key": "e", "type": "person", "operator": "regex", "value": "^a.*@x\\.com$"}
                ], "rollout_percentage": 100}],
                "payloads": {"true": {"a": 1}}}})),
        )
        .await;
    assert_eq!(status, 201, "{ok}");
    assert_eq!(ok["filters"]["payloads"]["true"], "{\"a\":1}");

    // Malformed JSON is a parse error; a non-object body too.
    let resp = app
        .client
        .post(app.url(FLAGS))
        .bearer_auth(app.personal_key())
        .header("content-type", "application/json")
        .body("{\"key\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "parse_error");
    let (status, err) = app.api(Method::POST, FLAGS, Some(&json!([1]))).await;
    assert_eq!((status, err["code"].clone()), (400, json!("parse_error")));
    app.stop().await;
}

#[tokio::test]
async fn dependencies_cycles_and_lifecycle_rules() {
    let app = TestApp::spawn().await;
    let a = create(&app, "a", everyone()).await;
    let depends_on = |id: &Value| {
        with_property(
            json!({"key": id.to_string(), "type": "flag", "operator": "flag_evaluates_to", "value": true}),
        )
    };
    let b = create(&app, "b", depends_on(&a)).await;

    let (status, dependents) = app
        .api(
            Method::GET,
            &format!("{}dependent_flags/", flag_path(&a)),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(dependents, json!([{"id": b, "key": "b", "name": ""}]));

    // a → b → a closes a cycle; a → a is self-dependency.
    let (status, err) = app
        .api(
            Method::PATCH,
            &flag_path(&a),
            Some(&json!({"filters": depends_on(&b)})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["detail"], "Circular dependency detected: a → b → a");
    let (status, err) = app
        .api(
            Method::PATCH,
            &flag_path(&a),
            Some(&json!({"filters": depends_on(&a)})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(err["detail"].as_str().unwrap().contains("itself"), "{err}");

    // Deleting or disabling a flag others depend on is refused, naming them.
    for (body, attr) in [
        (json!({"deleted": true}), "deleted"),
        (json!({"active": false}), "active"),
    ] {
        let (status, err) = app.api(Method::PATCH, &flag_path(&a), Some(&body)).await;
        assert_eq!((status, err["attr"].clone()), (400, json!(attr)), "{err}");
        assert!(err["detail"].as_str().unwrap().contains('b'), "{err}");
    }
    // Once b is disabled, a may be disabled; enabling b again is then refused.
    let (status, _) = app
        .api(
            Method::PATCH,
            &flag_path(&b),
            Some(&json!({"active": false})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .api(
            Method::PATCH,
            &flag_path(&a),
            Some(&json!({"active": false})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, err) = app
        .api(
            Method::PATCH,
            &flag_path(&b),
            Some(&json!({"active": true})),
        )
        .await;
    assert_eq!(
        (status, err["attr"].clone()),
        (400, json!("active")),
        "{err}"
    );
    // A disabled dependency is refused in new filters too.
    check_invalid(
        &app,
        json!({"key": "c", "filters": depends_on(&a)}),
        "invalid_input",
        "filters.groups[0].properties[0].key",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn activity_log_records_before_and_after() {
    let app = TestApp::spawn().await;
    let id = create(&app, "logged", everyone()).await;
    create(&app, "other", everyone()).await;
    app.api(
        Method::PATCH,
        &flag_path(&id),
        Some(&json!({"name": "Renamed", "active": false})),
    )
    .await;
    app.api(
        Method::PATCH,
        &flag_path(&id),
        Some(&json!({"deleted": true})),
    )
    .await;

    let (status, log) = app
        .api(Method::GET, &format!("{}activity/", flag_path(&id)), None)
        .await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["total_count"], 3);
    let entries = log["results"].as_array().unwrap();
    let activities: Vec<&str> = entries
        .iter()
        .map(|e| e["activity"].as_str().unwrap())
        .collect();
    assert_eq!(activities, ["deleted", "updated", "created"]);
    let updated = &entries[1];
    assert_eq!(updated["scope"], "FeatureFlag");
    assert_eq!(updated["item_id"], id.to_string());
    assert_eq!(updated["detail"]["name"], "logged");
    assert_eq!(updated["is_system"], false);
    assert!(updated["user"]["first_name"].is_string());
    let changes = updated["detail"]["changes"].as_array().unwrap();
    let name_change = changes.iter().find(|c| c["field"] == "name").unwrap();
    assert_eq!(
        (
            name_change["action"].clone(),
            name_change["before"].clone(),
            name_change["after"].clone()
        ),
        (json!("changed"), json!(""), json!("Renamed"))
    );
    assert!(changes.iter().any(|c| c["field"] == "active"));
    assert_eq!(entries[0]["detail"]["changes"][0]["action"], "deleted");
    assert_eq!(entries[2]["detail"]["changes"][0]["action"], "created");

    // Paging with limit/page; the project-wide log holds both flags.
    let (_, page) = app
        .api(
            Method::GET,
            &format!("{FLAGS}activity/?limit=2&page=1"),
            None,
        )
        .await;
    assert_eq!(page["total_count"], 4);
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert!(page["next"].as_str().unwrap().contains("page=2"));
    assert!(page["previous"].is_null());
    let (_, page2) = app
        .api(
            Method::GET,
            &format!("{FLAGS}activity/?limit=2&page=2"),
            None,
        )
        .await;
    assert_eq!(page2["results"][1]["item_id"], id.to_string());
    assert!(page2["next"].is_null());
    app.stop().await;
}

#[tokio::test]
async fn evaluation_reasons_use_stored_properties() {
    let app = TestApp::spawn().await;
    create(
        &app,
        "pro-only",
        with_property(json!({"key": "plan", "type": "person", "value": "pro"})),
    )
    .await;
    let off = create(&app, "off", everyone()).await;
    app.api(
        Method::PATCH,
        &flag_path(&off),
        Some(&json!({"active": false})),
    )
    .await;
    let update = vexil_store::PersonUpdate {
        set: json!({"plan": "pro"}).as_object().unwrap().clone(),
        ..Default::default()
    };
    app.store
        .apply_person_update(app.project.project.id, "ada", &update)
        .await
        .unwrap();

    let path = format!("{FLAGS}evaluation_reasons/?distinct_id=ada&groups=%7B%7D");
    let (status, reasons) = app.api(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{reasons}");
    assert_eq!(reasons["pro-only"]["value"], true);
    assert_eq!(
        reasons["pro-only"]["evaluation"]["reason"],
        "condition_match"
    );
    assert_eq!(reasons["pro-only"]["evaluation"]["condition_index"], 0);
    assert_eq!(reasons["off"]["value"], false);
    assert_eq!(reasons["off"]["evaluation"]["reason"], "disabled");
    let (_, reasons) = app
        .api(
            Method::GET,
            &format!("{FLAGS}evaluation_reasons/?distinct_id=bob"),
            None,
        )
        .await;
    assert_eq!(
        reasons["pro-only"]["evaluation"]["reason"],
        "no_condition_match"
    );
    let (status, err) = app
        .api(Method::GET, &format!("{FLAGS}evaluation_reasons/"), None)
        .await;
    assert_eq!((status, err["attr"].clone()), (400, json!("distinct_id")));
    let (status, err) = app
        .api(
            Method::GET,
            &format!("{FLAGS}evaluation_reasons/?distinct_id=a&groups=nope"),
            None,
        )
        .await;
    assert_eq!((status, err["attr"].clone()), (400, json!("groups")));
    app.stop().await;
}

#[tokio::test]
async fn bulk_keys_and_local_evaluation() {
    let app = TestApp::spawn().await;
    let a = create(&app, "one", everyone()).await;
    let b = create(&app, "two", everyone()).await;
    let (status, body) = app
        .api(
            Method::POST,
            &format!("{FLAGS}bulk_keys/"),
            Some(&json!({"ids": [a, b.to_string(), 987654]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"keys": {a.to_string(): "one", b.to_string(): "two"}})
    );
    let (status, defs) = app
        .api(Method::GET, &format!("{FLAGS}local_evaluation/"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(defs["flags"].as_array().unwrap().len(), 2);
    app.stop().await;
}

const COHORTS: &str = "/api/projects/@current/cohorts/";

#[tokio::test]
async fn cohorts_static_csv_and_json_members_target_flags() {
    let app = TestApp::spawn().await;
    // Static cohort from a CSV upload (multipart), with a header row.
    let form = reqwest::multipart::Form::new()
        .text("name", "Beta testers")
        .text("is_static", "true")
        .part(
            "csv",
            reqwest::multipart::Part::bytes(b"distinct_id\nada\ngrace\n".to_vec())
                .file_name("members.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
    let resp = app
        .client
        .post(app.url(COHORTS))
        .bearer_auth(app.personal_key())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let csv_cohort: Value = resp.json().await.unwrap();
    assert_eq!(csv_cohort["is_static"], true);
    assert_eq!(csv_cohort["count"], 2);
    let csv_id = csv_cohort["id"].clone();

    // Static cohort from JSON `distinct_ids`; more members added by PATCH.
    let (status, json_cohort) = app
        .api(
            Method::POST,
            COHORTS,
            Some(&json!({"name": "VIPs", "is_static": true, "distinct_ids": ["vip-1"]})),
        )
        .await;
    assert_eq!(status, 201, "{json_cohort}");
    let json_id = json_cohort["id"].clone();
    let (status, patched) = app
        .api(
            Method::PATCH,
            &format!("{COHORTS}{json_id}/"),
            Some(&json!({"distinct_ids": ["vip-2", "vip-1"]})),
        )
        .await;
    assert_eq!((status, patched["count"].clone()), (200, json!(2)));

    // A new CSV on PATCH adds its ids (no header row this time).
    let form = reqwest::multipart::Form::new().part(
        "csv",
        reqwest::multipart::Part::bytes(b"linus\n".to_vec()).file_name("more.csv"),
    );
    let resp = app
        .client
        .patch(app.url(&format!("{COHORTS}{csv_id}/")))
        .bearer_auth(app.personal_key())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["count"], 3);

    let (status, members) = app
        .api(
            Method::GET,
            &format!("{COHORTS}{csv_id}/persons/?limit=2"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{members}");
    assert_eq!(members["count"], 3);
    assert!(members["next"].as_str().unwrap().contains("offset=2"));
    assert_eq!(members["results"][0]["distinct_ids"], json!(["ada"]));

    // A flag targeting the static cohort is true for a member, false for others.
    create(
        &app,
        "for-testers",
        with_property(json!({"key": "id", "type": "cohort", "value": csv_id})),
    )
    .await;
    assert_eq!(
        evaluate(&app, "grace").await["for-testers"]["enabled"],
        true
    );
    assert_eq!(evaluate(&app, "eve").await["for-testers"]["enabled"], false);

    // Listing, retrieving, soft delete.
    let (_, list) = app.api(Method::GET, COHORTS, None).await;
    assert_eq!(list["count"], 2);
    let (status, gone) = app
        .api(
            Method::PATCH,
            &format!("{COHORTS}{json_id}/"),
            Some(&json!({"deleted": true})),
        )
        .await;
    assert_eq!((status, gone["deleted"].clone()), (200, json!(true)));
    let (_, list) = app.api(Method::GET, COHORTS, None).await;
    assert_eq!(list["count"], 1);
    app.stop().await;
}

#[tokio::test]
async fn dynamic_cohorts_validate_references() {
    let app = TestApp::spawn().await;
    let pro = json!({"properties": {"type": "AND", "values": [
        {"type": "AND", "values": [{"key": "plan", "type": "person", "operator": "exact", "value": "pro"}]}]}});
    let (status, first) = app
        .api(
            Method::POST,
            COHORTS,
            Some(&json!({"name": "Pro", "filters": pro})),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["count"], Value::Null);
    let first_id = first["id"].clone();
    let refers = |id: &Value| json!({"properties": {"type": "OR", "values": [{"key": "id", "type": "cohort", "value": id}]}});
    let (status, second) = app
        .api(
            Method::POST,
            COHORTS,
            Some(&json!({"name": "Pro too", "filters": refers(&first_id)})),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let second_id = second["id"].clone();

    // A flag on the dynamic cohort evaluates from stored person properties.
    create(
        &app,
        "pro-cohort",
        with_property(json!({"key": "id", "type": "cohort", "value": second_id})),
    )
    .await;
    let update = vexil_store::PersonUpdate {
        set: json!({"plan": "pro"}).as_object().unwrap().clone(),
        ..Default::default()
    };
    app.store
        .apply_person_update(app.project.project.id, "payer", &update)
        .await
        .unwrap();
    assert_eq!(evaluate(&app, "payer").await["pro-cohort"]["enabled"], true);

    let cases = [
        (
            json!({"name": "x", "filters": refers(&json!(555_555))}),
            "cohort_does_not_exist",
        ),
        (
            json!({"name": "x", "filters": {"properties": {"type": "AND", "values": [
                {"key": "e", "type": "person", "operator": "regex", "value": "("}]}}}),
            "invalid_regex",
        ),
        (json!({"filters": pro}), "required"),
        (json!({"name": "x", "distinct_ids": ["a"]}), "invalid_input"),
    ];
    for (body, code) in cases {
        let (status, err) = app.api(Method::POST, COHORTS, Some(&body)).await;
        assert_eq!(
            (status, err["code"].clone()),
            (400, json!(code)),
            "{body} → {err}"
        );
    }
    // Self reference and a cycle through the other cohort.
    for filters in [refers(&first_id), refers(&second_id)] {
        let (status, err) = app
            .api(
                Method::PATCH,
                &format!("{COHORTS}{first_id}/"),
                Some(&json!({"filters": filters})),
            )
            .await;
        assert_eq!(
            (status, err["attr"].clone()),
            (400, json!("filters")),
            "{err}"
        );
    }
    let (status, err) = app
        .api(Method::GET, &format!("{COHORTS}{first_id}/persons/"), None)
        .await;
    assert_eq!(status, 400, "{err}");
    app.stop().await;
}

#[tokio::test]
async fn persons_lookup_and_delete() {
    let app = TestApp::spawn().await;
    let update = vexil_store::PersonUpdate {
        set: json!({"email": "ada@example.com"})
            .as_object()
            .unwrap()
            .clone(),
        ..Default::default()
    };
    app.store
        .apply_person_update(app.project.project.id, "ada", &update)
        .await
        .unwrap();
    let (status, found) = app
        .api(
            Method::GET,
            "/api/projects/@current/persons/?distinct_id=ada",
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    let person = &found["results"][0];
    assert_eq!(person["distinct_ids"], json!(["ada"]));
    assert_eq!(person["properties"]["email"], "ada@example.com");
    assert_eq!(person["name"], "ada@example.com");
    for field in ["id", "uuid", "created_at", "is_identified"] {
        assert!(person.get(field).is_some(), "missing {field}");
    }
    assert!(found["next"].is_null() && found["previous"].is_null());
    let (_, none) = app
        .api(
            Method::GET,
            "/api/projects/@current/persons/?distinct_id=nobody",
            None,
        )
        .await;
    assert_eq!(none["results"], json!([]));

    let uuid = person["uuid"].as_str().unwrap().to_owned();
    let path = format!("/api/projects/@current/persons/{uuid}/");
    let (status, _) = app.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 202);
    let (status, _) = app.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
    let (_, gone) = app
        .api(
            Method::GET,
            "/api/projects/@current/persons/?distinct_id=ada",
            None,
        )
        .await;
    assert_eq!(gone["results"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn auth_and_project_isolation() {
    let app = TestApp::spawn().await;
    let id = create(&app, "private", everyone()).await;

    // No key, a project token, an unknown personal key: 401.
    let resp = app.client.get(app.url(FLAGS)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "not_authenticated");
    for key in [app.token().to_owned(), "phx_not_a_real_key".to_owned()] {
        let resp = app
            .client
            .get(app.url(FLAGS))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{key}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["type"], "authentication_error");
    }

    // Another project's key sees nothing of this one, not even whether an id exists.
    let other = app.store.create_project("Other").await.unwrap();
    let as_other = |method: Method, path: String| {
        app.client
            .request(method, app.url(&path))
            .bearer_auth(&other.personal_key)
            .send()
    };
    let mine = app.project.project.id;
    for path in [
        flag_path(&id),
        format!("/api/projects/{mine}/feature_flags/{id}/"),
        format!("/api/projects/{mine}/feature_flags/"),
        format!("{}activity/", flag_path(&id)),
        format!("{}dependent_flags/", flag_path(&id)),
    ] {
        let resp = as_other(Method::GET, path.clone()).await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }
    let resp = app
        .client
        .patch(app.url(&flag_path(&id)))
        .bearer_auth(&other.personal_key)
        .json(&json!({"deleted": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let list: Value = as_other(Method::GET, FLAGS.to_owned())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 0);
    let (_, still) = app.api(Method::GET, &flag_path(&id), None).await;
    assert_eq!(still["deleted"], false);
    app.stop().await;
}

#[tokio::test]
async fn current_key_and_me_describe_the_project() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id.0;
    let (status, key) = app
        .api(Method::GET, "/api/personal_api_keys/@current", None)
        .await;
    assert_eq!(status, 200, "{key}");
    assert_eq!(key["scoped_teams"], json!([project]));
    assert_eq!(key["scopes"], json!(["*"]));
    let org = key["scoped_organizations"][0].as_str().unwrap().to_owned();
    let (status, me) = app.api(Method::GET, "/api/users/@me/", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["team"]["id"], project);
    assert_eq!(me["team"]["organization"], org.as_str());
    assert_eq!(me["organization"]["id"], org.as_str());
    assert_eq!(me["organizations"][0]["id"], org.as_str());
    assert!(me["distinct_id"].is_string());
    let resp = app
        .client
        .get(app.url("/api/users/@me/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    app.stop().await;
}

#[tokio::test]
async fn schema_documents_the_routes() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(app.url("/api/schema/?format=json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/projects/{project_id}/feature_flags/",
        "/api/projects/{project_id}/feature_flags/{id}/",
        "/api/environments/{project_id}/feature_flags/",
        "/api/projects/{project_id}/cohorts/",
        "/api/projects/{project_id}/persons/",
        "/api/projects/{project_id}/early_access_feature/{id}/",
        "/api/personal_api_keys/@current/",
        "/api/projects/{project_id}/keys/{kind}/rotate/",
        "/api/environments/{project_id}/keys/{kind}/revoke/",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
    assert!(doc["components"]["schemas"]["Error"].is_object());
    let resp = app
        .client
        .get(app.url("/api/schema/"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/vnd.oai.openapi"));
    let yaml = resp.text().await.unwrap();
    assert!(yaml.contains("openapi:") && yaml.contains("feature_flags"));
    app.stop().await;
}

#[tokio::test]
async fn remote_config_payload_by_id_or_key_with_personal_or_secret_key() {
    let app = TestApp::spawn().await;
    let (status, flag) = app
        .api(
            Method::POST,
            "/api/projects/@current/feature_flags/",
            Some(&json!({"key": "settings", "is_remote_configuration": true,
                         "filters": {"groups": [{"properties": [], "rollout_percentage": 100}],
                                     "payloads": {"true": "{\"theme\":\"dark\"}"}}})),
        )
        .await;
    assert_eq!(status, 201, "{flag}");
    create(&app, "plain", everyone()).await;
    let by_key = format!(
        "/api/projects/@current/feature_flags/settings/remote_config?token={}",
        app.token()
    );
    let (status, body) = app.api(Method::GET, &by_key, None).await;
    assert_eq!((status, body), (200, json!("{\"theme\":\"dark\"}")));
    let by_id = format!(
        "/api/projects/@current/feature_flags/{}/remote_config?token={}",
        flag["id"],
        app.token()
    );
    let resp = app
        .client
        .get(app.url(&by_id))
        .bearer_auth(&app.project.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Not a remote-configuration flag, a wrong secret, a public token: refused.
    let (status, _) = app
        .api(
            Method::GET,
            "/api/projects/@current/feature_flags/plain/remote_config",
            None,
        )
        .await;
    assert_eq!(status, 404);
    for key in ["phs_wrong", app.token()] {
        let resp = app
            .client
            .get(app.url(&by_id))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_cohort_a_flag_uses_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let pro = json!({"properties": {"type": "AND", "values": [
        {"type": "AND", "values": [{"key": "plan", "type": "person", "operator": "exact", "value": "pro"}]}]}});
    let (status, cohort) = app
        .api(
            Method::POST,
            COHORTS,
            Some(&json!({"name": "Pro", "filters": pro})),
        )
        .await;
    assert_eq!(status, 201, "{cohort}");
    let cohort_id = cohort["id"].clone();
    let flag = create(
        &app,
        "pro-only",
        with_property(json!({"key": "id", "type": "cohort", "value": cohort_id})),
    )
    .await;
    let cohort_path = format!("{COHORTS}{cohort_id}/");
    let deleted = json!({"deleted": true});
    let delete = || app.api(Method::PATCH, &cohort_path, Some(&deleted));
    let (status, err) = delete().await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["attr"], "deleted");
    assert!(
        err["detail"].as_str().unwrap().contains("pro-only"),
        "{err}"
    );
    let (_, list) = app.api(Method::GET, COHORTS, None).await;
    assert_eq!(list["count"], 1, "still there");

    // Once no live flag uses it, it goes.
    let (status, _) = app
        .api(
            Method::PATCH,
            &flag_path(&flag),
            Some(&json!({"deleted": true})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, gone) = delete().await;
    assert_eq!(
        (status, gone["deleted"].clone()),
        (200, json!(true)),
        "{gone}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_stale_filter_lists_exactly_the_flags_whose_status_is_stale() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let everyone = json!({"groups": [{"properties": [], "rollout_percentage": 100}]});
    let half = json!({"groups": [{"rollout_percentage": 50}]});
    let one_variant = json!({"groups": [{"rollout_percentage": 100}],
        "multivariate": {"variants": [{"key": "a", "rollout_percentage": 100}]}});
    let flags = [
        ("old-everyone", &everyone),
        ("old-half", &half),
        ("old-one-variant", &one_variant),
        ("old-deleted", &everyone),
        ("new-everyone", &everyone),
        ("evaluated-today", &everyone),
        ("old-disabled", &everyone),
    ];
    for (key, filters) in flags {
        let mut new = vexil_store::NewFlag::new(key, filters.clone());
        new.active = key != "old-disabled";
        let flag = app.store.create_flag(project, &new).await.unwrap();
        if key == "old-deleted" {
            app.store
                .update_flag(
                    project,
                    flag.id,
                    &vexil_store::FlagUpdate::delete(),
                    None,
                    None,
                )
                .await
                .unwrap();
        }
    }
    app.state
        .catalog
        .refresh(app.store.as_ref(), project)
        .await
        .unwrap();
    // Last evaluated 40 days ago (all but the new flag), and today for one of them.
    let long_ago = chrono::Utc::now() - chrono::Duration::days(40);
    let counts = |keys: &[&str], at| {
        keys.iter()
            .map(|k| vexil_store::EvaluationCount {
                flag_key: (*k).to_owned(),
                day: vexil_store::Day::of(at),
                count: 1,
            })
            .collect::<Vec<_>>()
    };
    let old: Vec<&str> = flags
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| *k != "new-everyone")
        .collect();
    app.store
        .add_flag_evaluations(project, &counts(&old, long_ago), long_ago)
        .await
        .unwrap();
    let today = chrono::Utc::now();
    app.store
        .add_flag_evaluations(project, &counts(&["evaluated-today"], today), today)
        .await
        .unwrap();

    let keys = |page: &Value| -> Vec<String> {
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["key"].as_str().unwrap().to_owned())
            .collect()
    };
    // The filter's set is the set whose `status` says STALE (one rule for both).
    let (_, all) = app
        .api(Method::GET, &format!("{FLAGS}?order=key"), None)
        .await;
    let by_status: Vec<String> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "STALE")
        .map(|f| f["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        by_status,
        ["old-disabled", "old-everyone", "old-one-variant"]
    );
    let (_, stale) = app
        .api(
            Method::GET,
            &format!("{FLAGS}?active=STALE&order=key"),
            None,
        )
        .await;
    assert_eq!(keys(&stale), by_status);
    assert_eq!(stale["count"], 3);
    // Ordered and paged like any list, and with the filters applied in memory.
    let (_, page) = app
        .api(
            Method::GET,
            &format!("{FLAGS}?active=STALE&order=-key&limit=1&offset=1"),
            None,
        )
        .await;
    assert_eq!(keys(&page), ["old-everyone"]);
    assert_eq!(page["count"], 3);
    let (_, variants) = app
        .api(
            Method::GET,
            &format!("{FLAGS}?active=STALE&type=multivariant"),
            None,
        )
        .await;
    assert_eq!(keys(&variants), ["old-one-variant"]);
    let (_, searched) = app
        .api(
            Method::GET,
            &format!("{FLAGS}?active=stale&search=everyone"),
            None,
        )
        .await;
    assert_eq!(keys(&searched), ["old-everyone"]);
    app.stop().await;
}
