//! Sign-in and sign-out, and `/ui/` itself (the first project's flags, or the sign-in page).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::html;

use super::page::{csrf_input, see_other, shell, visible_projects, UiError};
use super::session::{
    cookie, same, set_cookie, Fields, UiForm, Viewer, CSRF_FIELD, SESSION_COOKIE, SESSION_TTL,
    SIGNIN_CSRF_COOKIE,
};
use crate::state::AppState;

/// `GET /ui/`: the first of the viewer's projects.
pub async fn home(State(state): State<AppState>, viewer: Viewer) -> Result<Response, UiError> {
    let projects = visible_projects(&state, &viewer.session.user.access).await?;
    match projects.first() {
        Some(p) => Ok(see_other(&format!("/ui/projects/{}/flags", p.id))),
        None => {
            let frame = super::page::Frame::load(&state, viewer, None).await?;
            Ok(frame
                .page(
                    "No projects",
                    html! {
                        h1 { "No projects" }
                        p { "You are not a member of any project yet. Ask an administrator to add you (" code { "vexil user create --project ID" } ")." }
                    },
                )
                .into_response())
        }
    }
}

/// `GET /ui/signin`: the form, with a fresh double-submit token.
pub async fn form(headers: HeaderMap) -> Response {
    render(&headers, None, "", StatusCode::OK)
}

fn render(headers: &HeaderMap, error: Option<&str>, email: &str, status: StatusCode) -> Response {
    let token = vexil_store::generate_password();
    let body = shell(
        "Sign in",
        None,
        html! {
            div class="signin" {
                h1 { "Sign in to Vexil" }
                @if let Some(error) = error {
                    p class="error" role="alert" id="signin-error" { (error) }
                }
                form method="post" action="/ui/signin" {
                    (csrf_input(&token))
                    label for="email" { "E-mail" }
                    input id="email" name="email" type="email" autocomplete="username" required
                        value=(email) aria-describedby=[error.map(|_| "signin-error")];
                    label for="password" { "Password" }
                    input id="password" name="password" type="password"
                        autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
            }
        },
    );
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(headers, SIGNIN_CSRF_COOKIE, &token, 3_600),
        )],
        Html(body.into_string()),
    )
        .into_response()
}

/// `POST /ui/signin`: checks the password (argon2id, off the async threads) and opens a
/// session. A wrong e-mail and a wrong password get the same answer.
pub async fn submit(State(state): State<AppState>, request: Request) -> Result<Response, UiError> {
    let (parts, body) = request.into_parts();
    let fields = Fields::read(body).await?;
    let expected = cookie(&parts.headers, SIGNIN_CSRF_COOKIE).unwrap_or_default();
    if !same(fields.text(CSRF_FIELD), &expected) {
        return Err(UiError::Csrf);
    }
    let email = fields.text("email").to_owned();
    let password = fields.get("password").unwrap_or_default().to_owned();
    let found = state.store.user_for_sign_in(&email).await?;
    let user = match found {
        Some((user, hash)) => {
            let ok = tokio::task::spawn_blocking(move || hash.verify(&password))
                .await
                .unwrap_or(false);
            ok.then_some(user)
        }
        None => None,
    };
    let Some(user) = user else {
        return Ok(render(
            &parts.headers,
            Some("The e-mail or the password is wrong."),
            &email,
            StatusCode::UNAUTHORIZED,
        ));
    };
    let expires = state.settings.clock.now() + SESSION_TTL;
    let session = state.store.create_session(user.id, expires).await?;
    let mut response = see_other("/ui/");
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(
            &parts.headers,
            SESSION_COOKIE,
            &session.id,
            SESSION_TTL.num_seconds(),
        ),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&parts.headers, SIGNIN_CSRF_COOKIE, "", 0),
    );
    Ok(response)
}

/// `POST /ui/signout`: ends the session in the store (the cookie no longer opens anything,
/// wherever it was copied) and clears the cookie.
pub async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: UiForm,
) -> Result<Response, UiError> {
    state.store.delete_session(&form.viewer.session_id).await?;
    let mut response = see_other("/ui/signin");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, "", 0),
    );
    Ok(response)
}
