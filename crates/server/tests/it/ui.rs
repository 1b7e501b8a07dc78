//! The web UI over HTTP, as a browser without JavaScript uses it: sign-in and sessions, CSRF on
//! every form, project membership, the flag list, the kill switch, the editor, "test a user".
//! (`tests/ui/` drives the same pages in headless Chromium.)

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use vexil_store::{hash_password, NewCohort, NewUser, ProjectId};

use crate::support::TestApp;

const PASSWORD: &str = "correct horse battery";

/// A cookie-keeping client that does not follow redirects.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    session: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

impl Page {
    /// The first CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// The version an edit form carries (its optimistic-concurrency token).
    fn version(&self) -> String {
        let at = self
            .body
            .find("name=\"version\" value=\"")
            .expect("an edit form with a version");
        let rest = &self.body[at + "name=\"version\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .cloned()
    }
}

impl<'a> Browser<'a> {
    /// A browser signed in as `email`, a new member of the app's project.
    async fn member(app: &'a TestApp, email: &str) -> Browser<'a> {
        add_user(app, email, vec![app.project.project.id]).await;
        let mut browser = Browser::new(app);
        browser.sign_in(email, PASSWORD).await;
        browser
    }

    fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            session: None,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, extra_cookie: Option<&str>) -> Page {
        let cookies: Vec<String> = self
            .session
            .iter()
            .map(|s| format!("vexil_session={s}"))
            .chain(extra_cookie.map(str::to_owned))
            .collect();
        let req = if cookies.is_empty() {
            req
        } else {
            req.header(COOKIE, cookies.join("; "))
        };
        let resp = req.send().await.unwrap();
        Page {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get(LOCATION)
                .map(|v| v.to_str().unwrap().to_owned()),
            set_cookies: resp
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect(),
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(self.app.url(path)), None).await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form(fields);
        let req = self
            .client
            .post(self.app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req, None).await
    }

    /// Signs in through the form; panics unless it works.
    async fn sign_in(&mut self, email: &str, password: &str) {
        let form_page = self.get("/ui/signin").await;
        let token = form_page.csrf();
        let cookie = format!("vexil_signin_csrf={token}");
        let req = self
            .client
            .post(self.app.url("/ui/signin"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("csrf", &token),
                ("email", email),
                ("password", password),
            ]));
        let done = self.send(req, Some(&cookie)).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let set = done.cookie("vexil_session").expect("a session cookie");
        let value = set["vexil_session=".len()..set.find(';').unwrap()].to_owned();
        self.session = Some(value);
    }
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn add_user(app: &TestApp, email: &str, projects: Vec<ProjectId>) {
    app.store
        .create_user(&NewUser {
            email: email.to_owned(),
            password_hash: hash_password(PASSWORD).unwrap(),
            projects,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn sign_in_sets_a_guarded_session_cookie_and_sign_out_ends_it() {
    let app = TestApp::spawn().await;
    add_user(&app, "root@example.com", vec![]).await;
    let mut browser = Browser::new(&app);

    for path in ["/", "/ui/"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 303, "{path}");
    }
    let home = browser.get("/ui/").await;
    assert_eq!(home.location.as_deref(), Some("/ui/signin"));
    let flags = browser
        .get(&format!("/ui/projects/{}/flags", app.project.project.id))
        .await;
    assert_eq!(
        flags.location.as_deref(),
        Some("/ui/signin"),
        "pages need a session"
    );

    // The sign-in form is itself CSRF-protected (double-submit cookie).
    let signin = browser.get("/ui/signin").await;
    assert_eq!(signin.status, 200);
    let token = signin.csrf();
    assert!(signin.cookie("vexil_signin_csrf").unwrap().contains(&token));
    let no_token = browser
        .post(
            "/ui/signin",
            &[("email", "root@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        no_token.status, 403,
        "a sign-in without the token is refused"
    );
    assert!(no_token.cookie("vexil_session").is_none());

    let cookie = format!("vexil_signin_csrf={token}");
    let attempt = |password: &'static str, proto: &'static str| {
        let req = browser
            .client
            .post(app.url("/ui/signin"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-proto", proto)
            .body(form(&[
                ("csrf", &token),
                ("email", "ROOT@example.com "),
                ("password", password),
            ]));
        browser.send(req, Some(&cookie))
    };
    let wrong = attempt("wrong password!", "http").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("The e-mail or the password is wrong."));
    assert!(wrong.cookie("vexil_session").is_none());

    let ok = attempt(PASSWORD, "http").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let set = ok.cookie("vexil_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/ui", "Max-Age=43200"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert!(!set.contains("Secure"), "plain http: no Secure attribute");
    let behind_tls = attempt(PASSWORD, "https").await;
    assert!(behind_tls
        .cookie("vexil_session")
        .unwrap()
        .contains("; Secure"));

    browser.sign_in("root@example.com", PASSWORD).await;
    let home = browser.get("/ui/").await;
    assert_eq!(
        home.location,
        Some(format!("/ui/projects/{}/flags", app.project.project.id))
    );
    let flags = browser.get(home.location.as_deref().unwrap()).await;
    assert_eq!(flags.status, 200);
    assert!(flags.body.contains("Feature flags") && flags.body.contains("root@example.com"));

    // Sign-out is a form like any other: refused without the session's token.
    let forged = browser.post("/ui/signout", &[("csrf", "forged")]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(browser.get("/ui/").await.status, 303);
    assert_ne!(
        browser.get("/ui/").await.location.as_deref(),
        Some("/ui/signin")
    );
    let out = browser
        .post("/ui/signout", &[("csrf", &flags.csrf())])
        .await;
    assert_eq!(out.status, 303);
    assert!(out.cookie("vexil_session").unwrap().contains("Max-Age=0"));
    assert_eq!(
        browser.get("/ui/").await.location.as_deref(),
        Some("/ui/signin"),
        "the old cookie no longer opens a session"
    );
    app.stop().await;
}

#[tokio::test]
async fn members_see_only_their_projects() {
    let app = TestApp::spawn().await;
    let mine = app.project.project.id;
    let other = app
        .store
        .create_project("Other team")
        .await
        .unwrap()
        .project
        .id;
    app.state
        .catalog
        .refresh(app.store.as_ref(), other)
        .await
        .unwrap();
    let theirs = app
        .store
        .create_flag(
            other,
            &vexil_store::NewFlag::new("their-flag", json!({"groups": []})),
        )
        .await
        .unwrap();
    add_user(&app, "ann@example.com", vec![mine]).await;
    let mut browser = Browser::new(&app);
    browser.sign_in("ann@example.com", PASSWORD).await;

    let list = browser.get(&format!("/ui/projects/{mine}/flags")).await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("Test project"));
    assert!(
        !list.body.contains("Other team"),
        "the switcher lists only her projects"
    );
    for path in [
        format!("/ui/projects/{other}/flags"),
        format!("/ui/projects/{other}/flags/{}", theirs.id),
        format!("/ui/projects/{other}/flags/new"),
        format!("/ui/projects/{mine}/flags/{}", theirs.id),
    ] {
        assert_eq!(browser.get(&path).await.status, 404, "{path}");
    }
    let csrf = list.csrf();
    let kill = browser
        .post(
            &format!("/ui/projects/{other}/flags/{}/disable", theirs.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(kill.status, 404);
    assert!(
        app.store
            .get_flag(other, theirs.id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    app.stop().await;
}

#[tokio::test]
async fn the_list_searches_filters_sorts_and_pages_on_the_server() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    for i in 0..120 {
        let mut flag = vexil_store::NewFlag::new(
            format!("flag-{i:03}"),
            json!({"groups": [{"properties": [], "rollout_percentage": 100}]}),
        );
        flag.active = i % 10 != 0;
        flag.name = format!("Flag number {i}");
        app.store.create_flag(project, &flag).await.unwrap();
    }
    app.state
        .catalog
        .refresh(app.store.as_ref(), project)
        .await
        .unwrap();
    add_user(&app, "root@example.com", vec![]).await;
    let mut browser = Browser::new(&app);
    browser.sign_in("root@example.com", PASSWORD).await;
    let base = format!("/ui/projects/{project}/flags");

    let first = browser.get(&base).await;
    assert!(
        first.body.contains("Showing 1–50 of 120 flags"),
        "{}",
        first.body
    );
    assert!(first.body.contains("rel=\"next\""));
    let second = browser.get(&format!("{base}?offset=50")).await;
    assert!(second.body.contains("Showing 51–100 of 120 flags"));
    let last = browser.get(&format!("{base}?offset=100")).await;
    assert!(last.body.contains("Showing 101–120 of 120 flags"));
    assert!(!last.body.contains("rel=\"next\"") && last.body.contains("rel=\"prev\""));

    let search = browser.get(&format!("{base}?search=flag-11")).await;
    assert!(search.body.contains("of 10 flags"), "flag-110 … flag-119");
    let disabled = browser.get(&format!("{base}?active=false")).await;
    assert!(disabled.body.contains("of 12 flags"));
    assert!(!disabled.body.contains("badge on"));
    let sorted = browser.get(&format!("{base}?order=key")).await;
    let a = sorted.body.find("flag-000").unwrap();
    let b = sorted.body.find("flag-001").unwrap();
    assert!(a < b);
    let reversed = browser.get(&format!("{base}?order=-key")).await;
    assert!(reversed.body.contains("flag-119") && !reversed.body.contains("flag-000"));
    app.stop().await;
}

async fn flags_value(app: &TestApp, key: &str, distinct_id: &str, props: Value) -> Value {
    let (status, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": distinct_id, "person_properties": props}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Disabled flags are left out of the response: `false` to the SDKs.
    body["flags"][key]["variant"]
        .as_str()
        .map(|v| json!(v))
        .unwrap_or_else(|| json!(body["flags"][key]["enabled"].as_bool().unwrap_or(false)))
}

#[tokio::test]
async fn the_kill_switch_confirms_then_disables_and_names_the_user() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let id = app
        .put_flag(
            "checkout",
            json!({"groups": [{"properties": [], "rollout_percentage": 100}]}),
        )
        .await;
    let browser = Browser::member(&app, "ops@example.com").await;
    let page = format!("/ui/projects/{project}/flags/{id}");

    let detail = browser.get(&page).await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains("Evaluable locally"));
    assert!(detail.body.contains(&format!("href=\"{page}/disable\"")));
    let confirm = browser.get(&format!("{page}/disable")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Disable <code>checkout</code>?"));
    assert_eq!(
        flags_value(&app, "checkout", "u1", json!({})).await,
        json!(true)
    );

    let forged = browser
        .post(&format!("{page}/disable"), &[("csrf", "nope")])
        .await;
    assert_eq!(forged.status, 403);
    let missing = browser.post(&format!("{page}/disable"), &[]).await;
    assert_eq!(missing.status, 403);
    assert!(
        app.store
            .get_flag(project, id)
            .await
            .unwrap()
            .unwrap()
            .active
    );

    let done = browser
        .post(&format!("{page}/disable"), &[("csrf", &confirm.csrf())])
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some(page.as_str()));
    let stored = app.store.get_flag(project, id).await.unwrap().unwrap();
    assert!(!stored.active);
    assert_eq!(stored.last_modified_by.as_deref(), Some("ops@example.com"));
    let activity = app
        .store
        .flag_activity(project, Some(id), vexil_store::Page::new(10, 0))
        .await
        .unwrap();
    assert!(
        matches!(&activity.items[0].actor, Some(vexil_store::Actor::User { email, .. }) if email == "ops@example.com"),
        "{:?}",
        activity.items[0].actor
    );
    assert_eq!(
        flags_value(&app, "checkout", "u1", json!({})).await,
        json!(false),
        "live at once"
    );
    assert!(browser.get(&page).await.body.contains("Disabled"));

    let enabled = browser
        .post(&format!("{page}/enable"), &[("csrf", &confirm.csrf())])
        .await;
    assert_eq!(enabled.status, 303);
    assert_eq!(
        flags_value(&app, "checkout", "u1", json!({})).await,
        json!(true)
    );
    app.stop().await;
}

#[tokio::test]
async fn the_editor_creates_what_flags_serves_and_shows_400s_at_their_field() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let browser = Browser::member(&app, "dev@example.com").await;
    let new = format!("/ui/projects/{project}/flags/new");
    let csrf = browser.get(&new).await.csrf();
    // What the structured form submits: one condition set with one filter (its spare row and
    // the spare condition set left blank), two variants (then two blank rows).
    let fields = |key: &'static str, second: &'static str| {
        let mut fields: Vec<(&'static str, String)> = vec![
            ("csrf", csrf.clone()),
            ("key", key.to_owned()),
            ("name", "Checkout test".to_owned()),
            ("active", "on".to_owned()),
            ("mode", "form".to_owned()),
            ("aggregation", String::new()),
        ];
        for (group, key, operator, value) in [
            ("0", "email", "icontains", "@example.com"),
            ("0", "", "exact", ""),
            ("1", "", "exact", ""),
        ] {
            fields.extend([
                ("row_group", group.to_owned()),
                ("row_shape", String::new()),
                ("row_type", "person".to_owned()),
                ("row_key", key.to_owned()),
                ("row_operator", operator.to_owned()),
                ("row_value", value.to_owned()),
                ("row_group_type", String::new()),
                ("row_cohort", String::new()),
            ]);
        }
        for (rollout, spare) in [("100", "0"), ("", "1")] {
            fields.extend([
                ("group_rollout", rollout.to_owned()),
                ("group_variant", String::new()),
                ("group_spare", spare.to_owned()),
            ]);
        }
        for (key, rollout, payload) in [
            ("control", "50", "{\"theme\": \"dark\"}"),
            ("test", second, ""),
            ("", "", ""),
            ("", "", ""),
        ] {
            fields.extend([
                ("variant_key", key.to_owned()),
                ("variant_name", String::new()),
                ("variant_rollout", rollout.to_owned()),
                ("variant_payload", payload.to_owned()),
            ]);
        }
        fields.extend([
            ("payload", String::new()),
            ("holdout_id", String::new()),
            ("holdout_exclusion", String::new()),
        ]);
        fields
    };
    let set = |mut fields: Vec<(&'static str, String)>, name: &str, value: &str| {
        let at = fields
            .iter()
            .position(|(k, v)| *k == name && (name != "variant_payload" || !v.is_empty()))
            .unwrap();
        fields[at].1 = value.to_owned();
        fields
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = form(&pairs);
        let req = browser
            .client
            .post(app.url(&new))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        browser.send(req, None)
    };

    let bad_sum = post(fields("checkout-test", "40")).await;
    assert_eq!(bad_sum.status, 400);
    assert!(
        bad_sum.body.contains("id=\"variants-error\""),
        "{}",
        bad_sum.body
    );
    assert!(
        bad_sum.body.contains("value=\"checkout-test\""),
        "the form keeps what was typed"
    );
    let bad_key = post(fields("not a key!", "50")).await;
    assert_eq!(bad_key.status, 400);
    assert!(
        bad_key.body.contains("id=\"key-error\""),
        "{}",
        bad_key.body
    );
    assert!(bad_key.body.contains("aria-invalid=\"true\""));
    let bad_json = set(fields("checkout-test", "50"), "variant_payload", "{oops");
    let bad_json = post(bad_json).await;
    assert_eq!(bad_json.status, 400, "{:?}", bad_json.location);
    assert!(
        bad_json.body.contains("id=\"variants-error\""),
        "{}",
        bad_json.body
    );
    let both = post(set(fields("checkout-test", "50"), "payload", "1")).await;
    assert!(both.body.contains("id=\"payload-error\""), "{}", both.body);
    assert_eq!(
        post(set(fields("checkout-test", "50"), "csrf", "forged"))
            .await
            .status,
        403
    );
    assert!(app
        .store
        .get_flag_by_key(project, "checkout-test")
        .await
        .unwrap()
        .is_none());

    let created = post(fields("checkout-test", "50")).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let flag = app
        .store
        .get_flag_by_key(project, "checkout-test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        created.location,
        Some(format!("/ui/projects/{project}/flags/{}", flag.id))
    );
    assert_eq!(flag.created_by.as_deref(), Some("dev@example.com"));
    assert_eq!(flag.filters["multivariate"]["variants"][1]["key"], "test");
    assert_eq!(flag.filters["payloads"]["control"], "{\"theme\": \"dark\"}");
    let value = flags_value(
        &app,
        "checkout-test",
        "alice",
        json!({"email": "alice@example.com"}),
    )
    .await;
    assert!(
        value == json!("control") || value == json!("test"),
        "{value}"
    );
    assert_eq!(
        flags_value(
            &app,
            "checkout-test",
            "bob",
            json!({"email": "bob@elsewhere.org"})
        )
        .await,
        json!(false)
    );
    let duplicate = post(fields("checkout-test", "50")).await;
    assert_eq!(duplicate.status, 400);
    assert!(duplicate
        .body
        .contains("There is already a feature flag with this key."));
    app.stop().await;
}

#[tokio::test]
async fn test_a_user_explains_a_match_and_a_non_match() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let id = app
        .put_flag(
            "pro-beta",
            json!({"groups": [{"properties": [
                {"key": "plan", "type": "person", "operator": "exact", "value": ["pro"]}
            ], "rollout_percentage": 100}]}),
        )
        .await;
    // A stored property counts, as on /flags.
    app.store
        .apply_person_update(
            project,
            "carol",
            &vexil_store::PersonUpdate {
                set: json!({"plan": "pro"}).as_object().unwrap().clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let browser = Browser::member(&app, "support@example.com").await;
    let page = format!("/ui/projects/{project}/flags/{id}");

    let typed = browser
        .get(&format!(
            "{page}?distinct_id=alice&properties=%7B%22plan%22%3A%22pro%22%7D"
        ))
        .await;
    assert_eq!(typed.status, 200);
    assert!(typed.body.contains("condition_match"), "{}", typed.body);
    assert!(typed.body.contains("matched ✓"));
    assert!(
        typed.body.contains("<code>&quot;pro&quot;</code>"),
        "the value used is shown"
    );
    assert!(typed.body.contains("Rollout bucket"));

    let stored = browser.get(&format!("{page}?distinct_id=carol")).await;
    assert!(stored.body.contains("condition_match") && stored.body.contains("matched ✓"));

    let other = browser
        .get(&format!(
            "{page}?distinct_id=bob&properties=%7B%22plan%22%3A%22free%22%7D"
        ))
        .await;
    assert!(other.body.contains("no_condition_match"));
    assert!(other.body.contains("did not match ✗"));
    assert!(other.body.contains("<code>&quot;free&quot;</code>"));

    let bad = browser
        .get(&format!("{page}?distinct_id=bob&properties=%7Bnope"))
        .await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains("id=\"test-properties-error\""));
    app.stop().await;
}

#[tokio::test]
async fn the_badge_says_why_a_flag_needs_the_server() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let cohort = app
        .store
        .create_cohort(project, &NewCohort::static_list("Beta testers"))
        .await
        .unwrap();
    let id = app
        .put_flag(
            "beta",
            json!({"groups": [{"properties": [
                {"key": "id", "type": "cohort", "value": cohort.id}
            ], "rollout_percentage": 100}]}),
        )
        .await;
    add_user(&app, "root@example.com", vec![]).await;
    let mut browser = Browser::new(&app);
    browser.sign_in("root@example.com", PASSWORD).await;
    let detail = browser
        .get(&format!("/ui/projects/{project}/flags/{id}"))
        .await;
    assert!(detail.body.contains("Needs the server"), "{}", detail.body);
    assert!(detail
        .body
        .contains(&format!("cohort {} is static", cohort.id)));
    let list = browser.get(&format!("/ui/projects/{project}/flags")).await;
    assert!(list.body.contains("Needs the server"));
    app.stop().await;
}

#[tokio::test]
async fn assets_are_embedded_and_cached() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    let signin = browser.get("/ui/signin").await;
    let css = signin
        .body
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(css.starts_with("/ui/assets/style-"));
    let resp = browser.client.get(app.url(&css)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    assert_eq!(browser.get("/ui/assets/other.css").await.status, 404);
    // No page refers to anything outside the server.
    assert!(!signin.body.contains("http://") && !signin.body.contains("https://"));
    app.stop().await;
}

/// Saves the edit form of `page` (its CSRF token and version) with `name` and `filters`.
async fn save_edit(
    browser: &Browser<'_>,
    edit: &str,
    page: &Page,
    name: &str,
    filters: &str,
) -> Page {
    save_edit_as(browser, edit, page, "pricing", name, filters).await
}

async fn save_edit_as(
    browser: &Browser<'_>,
    edit: &str,
    page: &Page,
    key: &str,
    name: &str,
    filters: &str,
) -> Page {
    let version = page.version();
    let csrf = page.csrf();
    browser
        .post(
            edit,
            &[
                ("csrf", &csrf),
                ("version", &version),
                ("key", key),
                ("name", name),
                ("active", "on"),
                ("evaluation_runtime", "all"),
                ("evaluation_tags", ""),
                ("filters", filters),
            ],
        )
        .await
}

/// The edit form carries the fields beside the filters: experience continuity, evaluation
/// runtime and evaluation tags are stored as sent, and what the form shows is what is stored.
#[tokio::test]
async fn the_edit_form_sets_continuity_runtime_and_tags() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let id = app
        .put_flag(
            "pricing",
            json!({"groups": [{"properties": [], "rollout_percentage": 100}]}),
        )
        .await;
    let ann = Browser::member(&app, "ann@example.com").await;
    let edit = format!("/ui/projects/{project}/flags/{id}/edit");
    let page = ann.get(&format!("{edit}?mode=json")).await;
    let (csrf, version) = (page.csrf(), page.version());
    let saved = ann
        .post(
            &edit,
            &[
                ("csrf", &csrf),
                ("version", &version),
                ("key", "pricing"),
                ("name", "Pricing"),
                ("active", "on"),
                ("ensure_experience_continuity", "on"),
                ("evaluation_runtime", "server"),
                ("evaluation_tags", " web, checkout ,"),
                (
                    "filters",
                    r#"{"groups": [{"properties": [], "rollout_percentage": 100}]}"#,
                ),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let stored = app.store.get_flag(project, id).await.unwrap().unwrap();
    assert!(stored.ensure_experience_continuity);
    assert_eq!(stored.evaluation_runtime.as_str(), "server");
    assert_eq!(stored.evaluation_tags, ["web", "checkout"]);
    let shown = ann.get(&edit).await;
    assert!(
        shown
            .body
            .contains("name=\"evaluation_tags\" value=\"web, checkout\""),
        "{}",
        shown.body
    );
}

#[tokio::test]
async fn a_stale_edit_shows_the_conflict_and_can_be_re_applied() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let id = app
        .put_flag(
            "pricing",
            json!({"groups": [{"properties": [], "rollout_percentage": 100}]}),
        )
        .await;
    add_user(&app, "ann@example.com", vec![project]).await;
    add_user(&app, "bob@example.com", vec![project]).await;
    let mut ann = Browser::new(&app);
    ann.sign_in("ann@example.com", PASSWORD).await;
    let mut bob = Browser::new(&app);
    bob.sign_in("bob@example.com", PASSWORD).await;
    let edit = format!("/ui/projects/{project}/flags/{id}/edit");
    let everyone = r#"{"groups": [{"properties": [], "rollout_percentage": 100}]}"#;
    let half = r#"{"groups": [{"properties": [], "rollout_percentage": 50}]}"#;

    // The JSON mode (the structured form has its own test).
    let ann_page = ann.get(&format!("{edit}?mode=json")).await;
    assert_eq!(ann_page.status, 200);
    assert!(
        ann_page
            .body
            .contains("&quot;rollout_percentage&quot;: 100"),
        "the stored filters"
    );
    let bob_page = bob.get(&edit).await;
    let bob_saved = save_edit(&bob, &edit, &bob_page, "Bob's name", everyone).await;
    assert_eq!(bob_saved.status, 303, "{}", bob_saved.body);

    let stale = save_edit(&ann, &edit, &ann_page, "Ann's name", half).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale
        .body
        .contains("This flag changed while you were editing it"));
    assert!(stale
        .body
        .contains("Last changed by bob@example.com (version 2)"));
    assert!(stale.body.contains("Bob&#39;s name") || stale.body.contains("Bob's name"));
    assert!(stale.body.contains("Reload (discard my edit)"));
    let stored = app.store.get_flag(project, id).await.unwrap().unwrap();
    assert_eq!(
        stored.name, "Bob's name",
        "nothing of the stale edit was written"
    );

    // Re-apply: the conflict page's form carries the stored version.
    let reapplied = save_edit(&ann, &edit, &stale, "Ann's name", half).await;
    assert_eq!(reapplied.status, 303, "{}", reapplied.body);
    let stored = app.store.get_flag(project, id).await.unwrap().unwrap();
    assert_eq!(stored.name, "Ann's name");
    assert_eq!(stored.filters["groups"][0]["rollout_percentage"], 50.0);
    assert_eq!(stored.last_modified_by.as_deref(), Some("ann@example.com"));

    // Errors at their field: JSON that does not parse, and the API's own 400 on filters.
    let page = ann.get(&format!("{edit}?mode=json")).await;
    let broken = save_edit(&ann, &edit, &page, "x", "{nope").await;
    assert_eq!(broken.status, 400);
    assert!(broken.body.contains("id=\"filters-error\""));
    let over = save_edit(
        &ann,
        &edit,
        &page,
        "x",
        r#"{"groups": [{"properties": [], "rollout_percentage": 150}]}"#,
    )
    .await;
    assert_eq!(over.status, 400, "{}", over.body);
    assert!(over.body.contains("id=\"filters-error\""), "{}", over.body);
    app.stop().await;
}

#[tokio::test]
async fn the_list_and_the_flag_page_show_use_per_day() {
    let settings = || vexil_server::Settings {
        usage_flush_interval: std::time::Duration::from_secs(3_600),
        ..Default::default()
    };
    let app = TestApp::spawn_with(settings()).await;
    let project = app.project.clone();
    let id = app
        .put_flag(
            "used",
            json!({"groups": [{"properties": [], "rollout_percentage": 100}]}),
        )
        .await;
    for user in ["a", "b", "c"] {
        flags_value(&app, "used", user, json!({})).await;
    }
    app.put_flag(
        "unused",
        json!({"groups": [{"properties": [], "rollout_percentage": 100}]}),
    )
    .await;
    // Two SDK-reported calls (an SDK evaluating locally), through capture.
    let called = |uuid: &str| {
        json!({"event": "$feature_flag_called", "distinct_id": "a", "uuid": uuid,
               "properties": {"$feature_flag": "used", "$feature_flag_response": true}})
    };
    let (status, body) = app
        .post(
            "/batch/",
            &json!({"api_key": app.token(), "batch": [
                called("0190a1b2-0000-7000-8000-000000000001"),
                called("0190a1b2-0000-7000-8000-000000000002"),
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    add_user(&app, "pm@example.com", vec![project.project.id]).await;
    // The node writes its counts when it stops; the next one shows them.
    let dir = app.stop_keeping_data().await;
    let app = TestApp::respawn(dir, project.clone(), settings()).await;
    let mut browser = Browser::new(&app);
    browser.sign_in("pm@example.com", PASSWORD).await;
    let base = format!("/ui/projects/{}/flags", project.project.id);

    let page = browser.get(&format!("{base}/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<td id=\"usage-evaluations\">3</td><td id=\"usage-calls\">2</td>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Last evaluated: <strong id=\"last-evaluated\">just now</strong>"),
        "{}",
        page.body
    );
    let list = browser.get(&format!("{base}?order=key")).await;
    assert!(
        list.body.contains("3 evaluated · 2 reported"),
        "{}",
        list.body
    );
    assert!(
        list.body.contains("0 evaluated · 0 reported"),
        "the unused flag"
    );
    app.stop().await;
}

/// The fields of the structured form for `rows` (`(group, type, key, operator, value)`, each
/// row stored without a value shape) and `groups` (`(rollout, variant)`), plus `extra`.
fn structured(
    page: &Page,
    rows: &[(&str, &str, &str, &str, &str)],
    groups: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> String {
    let version = page.version();
    let csrf = page.csrf();
    let mut fields: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("version", &version),
        ("mode", "form"),
        ("key", "checkout"),
        ("name", "Checkout"),
        ("active", "on"),
        ("evaluation_runtime", "all"),
        ("evaluation_tags", ""),
        ("aggregation", ""),
    ];
    for (group, kind, key, operator, value) in rows {
        fields.extend([
            ("row_group", *group),
            ("row_shape", ""),
            ("row_type", *kind),
            ("row_key", *key),
            ("row_operator", *operator),
            ("row_value", *value),
            ("row_group_type", ""),
            ("row_cohort", ""),
        ]);
    }
    for (rollout, variant) in groups {
        fields.extend([("group_rollout", *rollout), ("group_variant", *variant)]);
    }
    fields.extend(extra.iter().copied());
    form(&fields)
}

#[tokio::test]
async fn the_structured_form_edits_conditions_and_keeps_what_it_cannot_show() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let id = app
        .put_flag(
            "checkout",
            json!({"groups": [{"properties": [
                {"key": "email", "type": "person", "operator": "icontains", "value": "@example.com"}
            ], "rollout_percentage": 100}]}),
        )
        .await;
    let browser = Browser::member(&app, "pm@example.com").await;
    let edit = format!("/ui/projects/{project}/flags/{id}/edit");
    let post = |body: String| {
        browser.send(
            browser
                .client
                .post(app.url(&edit))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
            None,
        )
    };

    let page = browser.get(&edit).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Condition 1 filter 1 key"),
        "the form is shown"
    );
    assert!(
        page.body.contains("value=\"@example.com\""),
        "{}",
        page.body
    );

    assert!(
        page.body.contains("Condition set 2 (new"),
        "a spare condition set"
    );

    // The first set's filter replaced (a list value), and the spare set filled in: added.
    let saved = post(structured(
        &page,
        &[
            ("0", "person", "plan", "exact", "pro, team"),
            ("1", "person", "email", "is_set", ""),
        ],
        &[("100", ""), ("0", "")],
        &[("group_spare", "0"), ("group_spare", "1")],
    ))
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let stored = app.store.get_flag(project, id).await.unwrap().unwrap();
    assert_eq!(
        stored.filters,
        json!({"groups": [
            {"properties": [{"key": "plan", "type": "person", "operator": "exact", "value": ["pro", "team"]}], "rollout_percentage": 100},
            {"properties": [{"key": "email", "type": "person", "operator": "is_set", "value": "is_set"}], "rollout_percentage": 0},
        ]})
    );
    assert_eq!(
        flags_value(&app, "checkout", "a", json!({"plan": "team"})).await,
        json!(true)
    );
    assert_eq!(
        flags_value(
            &app,
            "checkout",
            "b",
            json!({"plan": "free", "email": "b@x.org"})
        )
        .await,
        json!(false)
    );

    // The API's 400 is shown at the condition set it names.
    let page = browser.get(&edit).await;
    let over = post(structured(
        &page,
        &[],
        &[("150", "")],
        &[("group_spare", "0")],
    ))
    .await;
    assert_eq!(over.status, 400, "{}", over.body);
    assert!(
        over.body.contains("id=\"cond-0-rollout-error\""),
        "{}",
        over.body
    );

    // Filters the form cannot show are edited as JSON, and saving another field keeps them.
    let negated = json!({"groups": [{"properties": [
        {"key": "plan", "type": "person", "operator": "exact", "value": ["pro"], "negation": true}
    ], "rollout_percentage": 100, "aggregation_group_type_index": null}]});
    let (status, body) = app
        .api(
            reqwest::Method::PATCH,
            &format!("/api/projects/@current/feature_flags/{id}/"),
            Some(&json!({"filters": negated})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let before = app
        .store
        .get_flag(project, id)
        .await
        .unwrap()
        .unwrap()
        .filters;
    let page = browser.get(&edit).await;
    assert!(page.body.contains("id=\"json-only\""), "{}", page.body);
    assert!(!page.body.contains("Condition 1 filter 1 key"));
    let filters_text = serde_json::to_string(&before).unwrap();
    let renamed = save_edit_as(&browser, &edit, &page, "checkout", "Renamed", &filters_text).await;
    assert_eq!(renamed.status, 303, "{}", renamed.body);
    let after = app.store.get_flag(project, id).await.unwrap().unwrap();
    assert_eq!(after.name, "Renamed");
    assert_eq!(
        after.filters, before,
        "nothing the form cannot show was dropped"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_person_page_pages_and_searches_every_flag() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let mut first_id = 0;
    for i in 0..120 {
        let mut flag = vexil_store::NewFlag::new(
            format!("flag-{i:03}"),
            json!({"groups": [{"properties": [], "rollout_percentage": 100}]}),
        );
        flag.active = i != 115;
        let id = app.store.create_flag(project, &flag).await.unwrap().id;
        if i == 0 {
            first_id = id;
        }
    }
    // On the last page, depending on a flag of the first: evaluated with its dependency.
    app.put_flag(
        "zz-needs-flag-000",
        json!({"groups": [{"properties": [{"key": first_id.to_string(), "type": "flag",
            "operator": "flag_evaluates_to", "value": true}]}]}),
    )
    .await;
    add_user(&app, "root@example.com", vec![]).await;
    let mut browser = Browser::new(&app);
    browser.sign_in("root@example.com", PASSWORD).await;
    let base = format!("/ui/projects/{project}/persons/view?distinct_id=alice");
    let on = "<code class=\"value\">true</code>";

    let first = browser.get(&base).await;
    assert_eq!(first.status, 404, "alice is not stored");
    assert!(
        first.body.contains("Showing 1–100 of 121 flags"),
        "{}",
        first.body
    );
    assert!(first.body.contains("<code>flag-099</code>"));
    assert!(!first.body.contains("<code>flag-100</code>"));
    assert_eq!(first.body.matches(on).count(), 100);
    assert!(first.body.contains("rel=\"next\"") && !first.body.contains("rel=\"prev\""));

    let last = browser.get(&format!("{base}&offset=100")).await;
    assert!(last.body.contains("Showing 101–121 of 121 flags"));
    assert!(last.body.contains("<code>zz-needs-flag-000</code>"));
    // flag-115 is disabled; the rest, the dependent flag included, are on.
    assert_eq!(last.body.matches(on).count(), 20);
    assert!(last.body.contains("rel=\"prev\"") && !last.body.contains("rel=\"next\""));

    let search = browser.get(&format!("{base}&search=FLAG-11")).await;
    assert!(search.body.contains("Showing 1–10 of 10 flags"));
    assert_eq!(search.body.matches(on).count(), 9);
    let none = browser.get(&format!("{base}&search=nope")).await;
    assert!(none.body.contains("No flag matches."));
    app.stop().await;
}

/// The entry ids an activity page shows, in its order.
fn entry_ids(page: &Page) -> Vec<i64> {
    page.body
        .split("id=\"entry-")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The `href` of the page's link with `rel`.
fn rel_link(page: &Page, rel: &str) -> Option<String> {
    let at = page.body.find(&format!("rel=\"{rel}\""))?;
    let start = page.body[..at].rfind("href=\"")? + "href=\"".len();
    let end = start + page.body[start..].find('"')?;
    Some(page.body[start..end].replace("&amp;", "&"))
}

#[tokio::test]
async fn the_activity_log_pages_by_entry_id_both_ways() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let everyone = json!({"groups": [{"properties": [], "rollout_percentage": 100}]});
    let flag = app
        .store
        .create_flag(
            project,
            &vexil_store::NewFlag::new("paged", everyone.clone()),
        )
        .await
        .unwrap();
    for i in 0..45 {
        let rename = vexil_store::FlagUpdate {
            name: Some(format!("name {i}")),
            ..Default::default()
        };
        app.store
            .update_flag(project, flag.id, &rename, None, None)
            .await
            .unwrap();
        if i == 10 {
            app.store
                .create_flag(
                    project,
                    &vexil_store::NewFlag::new("other", everyone.clone()),
                )
                .await
                .unwrap();
        }
    }
    add_user(&app, "root@example.com", vec![]).await;
    let mut browser = Browser::new(&app);
    browser.sign_in("root@example.com", PASSWORD).await;

    for (base, count) in [
        (
            format!("/ui/projects/{project}/flags/{}/activity", flag.id),
            46,
        ),
        (format!("/ui/projects/{project}/activity"), 47),
    ] {
        let all: Vec<i64> = app
            .store
            .flag_activity(
                project,
                base.contains("/flags/").then_some(flag.id),
                vexil_store::Page::new(100, 0),
            )
            .await
            .unwrap()
            .items
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(all.len(), count);
        // Older, page after page, to the end: every entry once, newest first.
        let first = browser.get(&base).await;
        assert_eq!(first.status, 200);
        assert!(
            first.body.contains(&format!("{count} changes")),
            "{}",
            first.body
        );
        assert!(rel_link(&first, "prev").is_none());
        let mut walked = entry_ids(&first);
        let mut page = first;
        let mut pages = vec![walked.clone()];
        while let Some(older) = rel_link(&page, "next") {
            assert!(pages.len() < 3, "{base}: more pages than entries");
            page = browser.get(&older).await;
            assert!(rel_link(&page, "prev").is_some(), "a later page links back");
            pages.push(entry_ids(&page));
            walked.extend(entry_ids(&page));
        }
        assert_eq!(walked, all, "{base}");
        assert_eq!(pages.len(), 3);
        // Newer from the last page gives the middle page again, then the first.
        let newer = browser.get(&rel_link(&page, "prev").unwrap()).await;
        assert_eq!(entry_ids(&newer), pages[1]);
        let newest = browser.get(&rel_link(&newer, "prev").unwrap()).await;
        assert_eq!(entry_ids(&newest), pages[0]);
        assert!(rel_link(&newest, "prev").is_none());
        // The oldest page: the 20 oldest entries, newest first, nothing older.
        let oldest = browser.get(&format!("{base}?after=0")).await;
        assert_eq!(entry_ids(&oldest), all[count - 20..].to_vec());
        assert!(rel_link(&oldest, "next").is_none() && rel_link(&oldest, "prev").is_some());
    }
    app.stop().await;
}
