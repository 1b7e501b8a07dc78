//! Users' personal API keys against a live server: `/api/personal_api_keys/` (created with the
//! value once, listed without it, revoked at once), the projects a user's key reaches (its
//! user's; an administrator's: all), and the activity log naming the user and the key.

use reqwest::Method;
use serde_json::{json, Value};
use vexil_store::{hash_password, NewUser, ProjectId, User};

use crate::support::TestApp;

async fn user(app: &TestApp, email: &str, projects: Vec<ProjectId>) -> User {
    app.store
        .create_user(&NewUser {
            email: email.to_owned(),
            password_hash: hash_password("correct horse").unwrap(),
            projects,
        })
        .await
        .unwrap()
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_users_key_is_managed_by_its_user_and_reaches_only_their_projects() {
    let app = TestApp::spawn().await;
    let a = app.project.project.id;
    let b = app.store.create_project("B").await.unwrap().project.id;
    let ann = user(&app, "ann@example.com", vec![a]).await;
    let root = user(&app, "root@example.com", vec![]).await;
    let first = app
        .store
        .create_user_key(ann.id, "laptop")
        .await
        .unwrap()
        .value;
    let admin_key = app
        .store
        .create_user_key(root.id, "admin")
        .await
        .unwrap()
        .value;

    // Created through the API: the value once, PostHog's fields, never cached.
    let resp = app
        .client
        .post(app.url("/api/personal_api_keys/"))
        .bearer_auth(&first)
        .json(&json!({"label": "ci", "scopes": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap(),
        "no-store"
    );
    let created: Value = resp.json().await.unwrap();
    let ci = created["value"].as_str().unwrap().to_owned();
    assert!(ci.starts_with("phx_"));
    assert_eq!(created["label"], "ci");
    assert_eq!(
        created["mask_value"],
        format!("phx_...{}", &ci[ci.len() - 4..])
    );
    assert_eq!(created["user_id"], ann.id.0);
    assert_eq!(created["scoped_teams"], json!([a.0]));

    let (status, listed) = call(&app, Method::GET, "/api/personal_api_keys/", &ci, None).await;
    assert_eq!(status, 200);
    let labels: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, vec!["ci", "laptop"], "only ann's, newest first");
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k.get("value").is_none()));
    let (status, current) = call(
        &app,
        Method::GET,
        "/api/personal_api_keys/@current",
        &ci,
        None,
    )
    .await;
    assert_eq!((status, current["label"].as_str()), (200, Some("ci")));

    // Bad input: 400 naming the field.
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/personal_api_keys/",
        &ci,
        Some(json!({})),
    )
    .await;
    assert_eq!((status, body["attr"].as_str()), (400, Some("label")));
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/personal_api_keys/",
        &ci,
        Some(json!({"label": "x".repeat(41)})),
    )
    .await;
    assert_eq!((status, body["attr"].as_str()), (400, Some("label")));
    // A project's own key has no user whose keys it could manage.
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/personal_api_keys/",
        app.personal_key(),
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Reach: ann's projects only; the administrator's key every project.
    let flags = |p: ProjectId| format!("/api/projects/{p}/feature_flags/");
    assert_eq!(call(&app, Method::GET, &flags(a), &ci, None).await.0, 200);
    assert_eq!(call(&app, Method::GET, &flags(b), &ci, None).await.0, 404);
    assert_eq!(
        call(&app, Method::GET, &flags(b), &admin_key, None).await.0,
        200
    );
    let (_, me) = call(&app, Method::GET, "/api/users/@me/", &ci, None).await;
    assert_eq!(
        (me["email"].as_str(), me["team"]["id"].as_i64()),
        (Some("ann@example.com"), Some(a.0))
    );
    let feed = format!("/flags/definitions?token={}", app.token());
    assert_eq!(
        call(&app, Method::GET, &feed, &ci, None).await.0,
        200,
        "the feed of ann's project"
    );

    // The activity log names the user and the key.
    let (status, flag) = call(
        &app,
        Method::POST,
        "/api/projects/@current/feature_flags/",
        &ci,
        Some(json!({"key": "by-key", "filters": {"groups": [{"rollout_percentage": 100}]}})),
    )
    .await;
    assert_eq!(status, 201, "{flag}");
    let (_, log) = app
        .api(
            Method::GET,
            &format!(
                "/api/projects/@current/feature_flags/{}/activity/",
                flag["id"]
            ),
            None,
        )
        .await;
    let entry = &log["results"][0];
    assert_eq!(entry["user"]["email"], "ann@example.com");
    assert_eq!(entry["user"]["id"], ann.id.0);
    assert_eq!(entry["actor"]["type"], "user_key");
    assert_eq!(entry["actor"]["key"]["label"], "ci");
    assert_eq!(entry["actor"]["key"]["mask"], created["mask_value"]);

    // Revoked: refused from the next request; another user's key id is not found.
    let laptop_id = listed[1]["id"].as_i64().unwrap();
    let path = format!("/api/personal_api_keys/{laptop_id}/");
    assert_eq!(
        call(&app, Method::DELETE, &path, &admin_key, None).await.0,
        404,
        "not root's key"
    );
    assert_eq!(call(&app, Method::DELETE, &path, &ci, None).await.0, 204);
    assert_eq!(
        call(&app, Method::GET, &flags(a), &first, None).await.0,
        401
    );
    assert_eq!(call(&app, Method::GET, &feed, &first, None).await.0, 401);
    assert_eq!(call(&app, Method::DELETE, &path, &ci, None).await.0, 404);
    assert_eq!(
        call(&app, Method::GET, "/api/personal_api_keys/nope/", &ci, None)
            .await
            .0,
        404
    );
    // The project's own key keeps working unchanged.
    assert_eq!(
        call(&app, Method::GET, &flags(a), app.personal_key(), None)
            .await
            .0,
        200
    );
}
