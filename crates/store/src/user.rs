//! Users of the web UI, their project memberships and their sign-in sessions.
//!
//! Passwords are stored as argon2id PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$…`, the
//! `argon2` crate's defaults, OWASP's minimum). A session is a random value the browser holds in
//! a cookie; the store keeps only its SHA-256 (like API keys), with an expiry and the
//! per-session CSRF token every form must echo.

use std::fmt;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};

use crate::{ProjectId, Result, StoreError};

/// Shortest password `vexil user create` and the store accept.
pub const MIN_PASSWORD_LEN: usize = 8;

/// A user's id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which projects a user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// An administrator: every project, present and future.
    Admin,
    /// Only these projects (ascending ids).
    Projects(Vec<ProjectId>),
}

impl Access {
    /// Whether this access covers `project`.
    pub fn allows(&self, project: ProjectId) -> bool {
        match self {
            Access::Admin => true,
            Access::Projects(ids) => ids.contains(&project),
        }
    }
}

/// A stored user (never with the password hash: see [`Store::user_for_sign_in`](crate::Store)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Normalised e-mail (trimmed, lower case): the sign-in name.
    pub email: String,
    /// Which projects the user sees.
    pub access: Access,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
}

/// A user to create: `projects` empty makes an administrator.
#[derive(Clone)]
pub struct NewUser {
    /// E-mail, normalised by [`normalise_email`] on the way in.
    pub email: String,
    /// The argon2id hash of the password ([`hash_password`]).
    pub password_hash: PasswordHash,
    /// Projects the user belongs to; none: an administrator.
    pub projects: Vec<ProjectId>,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("projects", &self.projects)
            .finish_non_exhaustive()
    }
}

/// An argon2id password hash in PHC string form.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The PHC string, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stored PHC string.
    pub(crate) fn from_stored(stored: String) -> Self {
        PasswordHash(stored)
    }

    /// Whether `password` is the one hashed here (argon2's verification: constant time in the
    /// password, and deliberately slow — run it off the async executor).
    pub fn verify(&self, password: &str) -> bool {
        argon2::PasswordHash::new(&self.0).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(…)")
    }
}

/// Hashes a password with argon2id and a fresh random salt. Refuses passwords shorter than
/// [`MIN_PASSWORD_LEN`] characters. Deliberately slow (tens of milliseconds).
pub fn hash_password(password: &str) -> Result<PasswordHash> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(StoreError::invalid(
            "password",
            format!("The password must have at least {MIN_PASSWORD_LEN} characters."),
        ));
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::invalid("password", e.to_string()))?;
    Ok(PasswordHash(hash.to_string()))
}

/// The stored form of an e-mail: trimmed and lower-cased; refused unless it looks like
/// `local@domain` (one `@`, both sides non-empty, no spaces).
pub fn normalise_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(StoreError::invalid(
            "email",
            "Enter a valid e-mail address.",
        ))
    }
}

/// A session just opened: the only moment its id exists in clear (it goes into the cookie).
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedSession {
    /// The session id, for the cookie.
    pub id: String,
    /// The token forms of this session must carry.
    pub csrf_token: String,
    /// When the session stops working.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedSession")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A live session: its user and its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who signed in.
    pub user: User,
    /// The token forms of this session must carry.
    pub csrf_token: String,
    /// When the session stops working.
    pub expires_at: DateTime<Utc>,
}

/// A random password for a generated account: 24 alphanumerics (≈ 143 bits).
pub fn generate_password() -> String {
    let mut password = crate::keys::generate("");
    password.truncate(24);
    password
}

/// Random characters of a session id or CSRF token (≈ 256 bits).
pub(crate) fn session_secret() -> String {
    crate::keys::generate("")
}
