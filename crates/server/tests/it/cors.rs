//! CORS headers: the public SDK endpoints answer every origin without credentials; credentials,
//! and the management API, only for configured origins.

use reqwest::{Method, Response};
use serde_json::json;
use vexil_server::Settings;

use crate::support::TestApp;

const ADMIN: &str = "https://admin.example";
const SHOP: &str = "https://shop.example";
const FLAGS_API: &str = "/api/projects/@current/feature_flags/";

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

/// (Access-Control-Allow-Origin, Access-Control-Allow-Credentials) of a response.
fn cors(resp: &Response) -> (Option<&str>, Option<&str>) {
    (
        header(resp, "access-control-allow-origin"),
        header(resp, "access-control-allow-credentials"),
    )
}

async fn flags_from(app: &TestApp, origin: &str) -> Response {
    app.client
        .post(app.url("/flags/?v=2"))
        .header("origin", origin)
        .json(&json!({"token": app.token(), "distinct_id": "u"}))
        .send()
        .await
        .unwrap()
}

async fn preflight(app: &TestApp, path: &str, origin: &str) -> Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
        .await
        .unwrap()
}

async fn management_from(app: &TestApp, origin: &str) -> Response {
    app.client
        .get(app.url(FLAGS_API))
        .header("origin", origin)
        .bearer_auth(app.personal_key())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn by_default_sdk_endpoints_answer_any_origin_without_credentials() {
    let app = TestApp::spawn().await;
    let resp = flags_from(&app, SHOP).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(cors(&resp), (Some(SHOP), None));
    assert!(header(&resp, "vary").unwrap().contains("origin"));
    assert_eq!(
        header(&resp, "access-control-expose-headers"),
        Some("x-posthog-rate-limit-warning")
    );
    for path in [
        "/flags/?v=2",
        "/decide/?v=3",
        "/batch/",
        "/i/v0/e/",
        "/flags/definitions",
    ] {
        let resp = preflight(&app, path, SHOP).await;
        assert!(resp.status().is_success(), "{path}");
        assert_eq!(cors(&resp), (Some(SHOP), None), "{path}");
        assert!(header(&resp, "access-control-allow-methods")
            .unwrap()
            .contains("POST"));
        assert!(header(&resp, "access-control-allow-headers")
            .unwrap()
            .contains("content-type"));
    }
    // The management API is not open cross-origin: no CORS headers at all.
    let resp = management_from(&app, SHOP).await;
    assert_eq!(
        resp.status().as_u16(),
        200,
        "the key still works server to server"
    );
    assert_eq!(cors(&resp), (None, None));
    let resp = preflight(&app, FLAGS_API, SHOP).await;
    assert_eq!(cors(&resp), (None, None));
    app.stop().await;
}

#[tokio::test]
async fn credentials_only_for_configured_origins() {
    let app = TestApp::spawn_with(Settings {
        cors_allowed_origins: vec![ADMIN.parse().unwrap()],
        ..Settings::default()
    })
    .await;
    // SDK endpoints: every origin, credentials for the configured one only.
    let resp = flags_from(&app, ADMIN).await;
    assert_eq!(cors(&resp), (Some(ADMIN), Some("true")));
    let resp = flags_from(&app, SHOP).await;
    assert_eq!(cors(&resp), (Some(SHOP), None));
    let resp = preflight(&app, "/batch/", ADMIN).await;
    assert_eq!(cors(&resp), (Some(ADMIN), Some("true")));
    let resp = preflight(&app, "/batch/", SHOP).await;
    assert_eq!(cors(&resp), (Some(SHOP), None));
    // Management API: the configured origin only.
    let resp = management_from(&app, ADMIN).await;
    assert_eq!(cors(&resp), (Some(ADMIN), Some("true")));
    let resp = preflight(&app, FLAGS_API, ADMIN).await;
    assert_eq!(cors(&resp), (Some(ADMIN), Some("true")));
    assert!(header(&resp, "access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    for origin in [SHOP, "https://admin.example.evil", "null"] {
        let resp = management_from(&app, origin).await;
        assert_eq!(cors(&resp), (None, None), "{origin}");
        let resp = preflight(&app, FLAGS_API, origin).await;
        assert_eq!(cors(&resp), (None, None), "{origin}");
    }
    app.stop().await;
}
