//! Key safety against a live server: rotation and revocation (the old key refused on the next
//! request, here and on a second server sharing the database) and keys refused in URLs.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use vexil_server::{AppState, Settings};

use crate::support::TestApp;

const FLAGS: &str = "/api/projects/@current/feature_flags/";

/// GET `path` with `key` as the bearer credential; the status.
async fn status_with(app: &TestApp, base: &str, path: &str, key: &str) -> u16 {
    app.client
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn definitions(app: &TestApp) -> String {
    format!("/flags/definitions?token={}&send_cohorts", app.token())
}

/// A second server process on the same database file (another node behind a load balancer).
struct Node {
    base: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn second_node(app: &TestApp) -> Node {
    let store = vexil_store::open_data_dir(app.data_dir()).await.unwrap();
    let state = AppState::new(Arc::clone(&store), Settings::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(vexil_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    Node { base, stop, task }
}

impl Node {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn rotation_refuses_the_old_key_at_once_on_every_node() {
    let app = TestApp::spawn().await;
    let here = app.url("");
    let other = second_node(&app).await;
    let old_personal = app.personal_key().to_owned();
    let old_secret = app.project.secret_key.clone();
    for base in [&here, &other.base] {
        assert_eq!(status_with(&app, base, FLAGS, &old_personal).await, 200);
        assert_eq!(
            status_with(&app, base, &definitions(&app), &old_secret).await,
            200
        );
    }

    // Rotate the secret key through the API: answered once, never cached.
    let resp = app
        .client
        .post(app.url("/api/projects/@current/keys/secret/rotate/"))
        .bearer_auth(&old_personal)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["project_id"], app.project.project.id.0);
    assert_eq!(body["kind"], "secret");
    let new_secret = body["key"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("phs_") && new_secret != old_secret);
    for base in [&here, &other.base] {
        let feed = definitions(&app);
        assert_eq!(
            status_with(&app, base, &feed, &old_secret).await,
            401,
            "{base}"
        );
        assert_eq!(
            status_with(&app, base, &feed, &new_secret).await,
            200,
            "{base}"
        );
        let remote = format!(
            "/api/projects/@current/feature_flags/x/remote_config?token={}",
            app.token()
        );
        assert_eq!(
            status_with(&app, base, &remote, &old_secret).await,
            401,
            "{base}"
        );
    }

    // Rotate the personal key on the other node: this node refuses the old one.
    let resp = app
        .client
        .post(format!(
            "{}/api/environments/@current/keys/personal/rotate",
            other.base
        ))
        .bearer_auth(&old_personal)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["kind"], "personal");
    let new_personal = body["key"].as_str().unwrap().to_owned();
    assert!(new_personal.starts_with("phx_") && new_personal != old_personal);
    for base in [&here, &other.base] {
        assert_eq!(
            status_with(&app, base, FLAGS, &old_personal).await,
            401,
            "{base}"
        );
        assert_eq!(
            status_with(&app, base, &definitions(&app), &old_personal).await,
            401,
            "{base}"
        );
        assert_eq!(
            status_with(&app, base, FLAGS, &new_personal).await,
            200,
            "{base}"
        );
        assert_eq!(
            status_with(&app, base, &definitions(&app), &new_personal).await,
            200,
            "{base}"
        );
    }
    // The secret key was not touched by the personal rotation.
    assert_eq!(
        status_with(&app, &here, &definitions(&app), &new_secret).await,
        200
    );
    other.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn revoked_keys_are_refused_until_a_rotation() {
    let app = TestApp::spawn().await;
    let here = app.url("");
    let secret = app.project.secret_key.clone();
    let (status, body) = app
        .api(
            Method::POST,
            "/api/projects/@current/keys/secret/revoke/",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"project_id": app.project.project.id.0, "kind": "secret", "revoked": true})
    );
    assert_eq!(
        status_with(&app, &here, &definitions(&app), &secret).await,
        401
    );
    // The personal key still works, for the feed and the API.
    assert_eq!(
        status_with(&app, &here, &definitions(&app), app.personal_key()).await,
        200
    );

    let project = app.project.project.id;
    let (status, _) = app
        .api(
            Method::POST,
            &format!("/api/projects/{project}/keys/personal/revoke"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        status_with(&app, &here, FLAGS, app.personal_key()).await,
        401
    );
    assert_eq!(
        status_with(&app, &here, &definitions(&app), app.personal_key()).await,
        401
    );

    // The way back is offline (what `vexil project rotate-key` does): a new key works at once.
    let issued = app
        .store
        .rotate_key(project, vexil_store::KeyKind::Personal)
        .await
        .unwrap();
    assert_eq!(status_with(&app, &here, FLAGS, &issued.key).await, 200);
    assert_eq!(
        status_with(&app, &here, FLAGS, app.personal_key()).await,
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn key_routes_check_kind_method_and_project() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .api(
            Method::POST,
            "/api/projects/@current/keys/token/rotate/",
            None,
        )
        .await;
    assert_eq!(
        (status, body["attr"].clone()),
        (400, json!("kind")),
        "{body}"
    );
    let (status, _) = app
        .api(
            Method::GET,
            "/api/projects/@current/keys/secret/rotate/",
            None,
        )
        .await;
    assert_eq!(status, 405);
    // Another project's key cannot rotate this project's keys.
    let other = app.store.create_project("Other").await.unwrap();
    let mine = app.project.project.id;
    let resp = app
        .client
        .post(app.url(&format!("/api/projects/{mine}/keys/secret/rotate/")))
        .bearer_auth(&other.personal_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // Nor can the public token or the secret key.
    for key in [app.token(), app.project.secret_key.as_str()] {
        let resp = app
            .client
            .post(app.url("/api/projects/@current/keys/secret/rotate/"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{key}");
    }
    assert_eq!(
        status_with(
            &app,
            &app.url(""),
            &definitions(&app),
            &app.project.secret_key
        )
        .await,
        200,
        "nothing was rotated"
    );
    app.stop().await;
}

#[tokio::test]
async fn keys_in_the_query_string_are_refused() {
    let app = TestApp::spawn().await;
    let personal = app.personal_key().to_owned();
    let secret = app.project.secret_key.clone();
    let token = app.token().to_owned();
    let refused = [
        // PostHog's query parameter, alone or next to a valid header.
        (format!("{FLAGS}?personal_api_key={personal}"), None),
        (format!("{FLAGS}?personal_api_key={personal}"), Some(&personal)),
        (format!("/api/users/@me/?personal_api_key={personal}"), None),
        // The feed and remote config: a key in any parameter.
        (format!("/flags/definitions?token={token}&personal_api_key={personal}"), None),
        (format!("/flags/definitions?token={token}&secret_api_key={secret}"), Some(&secret)),
        (format!("/api/feature_flag/local_evaluation?token={secret}"), None),
        (format!("/flags/definitions?token={token}&key={personal}"), Some(&personal)),
        (
            format!("/api/projects/@current/feature_flags/x/remote_config?token={token}&personal_api_key={personal}"),
            None,
        ),
    ];
    for (path, header) in refused {
        let mut req = app.client.get(app.url(&path));
        if let Some(key) = header {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["type"], "authentication_error", "{path}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("Authorization: Bearer"), "{path}: {detail}");
    }
    // What the SDKs send: the public token in the query, the key in the header.
    let feed = format!("/flags/definitions?token={token}&send_cohorts");
    assert_eq!(status_with(&app, &app.url(""), &feed, &secret).await, 200);
    let legacy = format!("/api/feature_flag/local_evaluation?token={token}&send_cohorts");
    assert_eq!(
        status_with(&app, &app.url(""), &legacy, &personal).await,
        200
    );
    // An ordinary value that merely starts like a key is not one.
    let search = format!("{FLAGS}?search=phx_checkout");
    assert_eq!(
        status_with(&app, &app.url(""), &search, &personal).await,
        200
    );
    app.stop().await;
}
