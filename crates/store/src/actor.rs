//! Who made a change: the actor a flag write is made on behalf of, stored with its activity
//! entry so the log can name the user and the key.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::UserId;

/// A user's personal key as the activity log names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// The key's id (see [`crate::UserKey`]).
    pub id: i64,
    /// The label its user gave it.
    pub label: String,
    /// Its visible part (`phx_...abcd`).
    pub mask: String,
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A user signed in to the web UI.
    User {
        /// The user.
        id: UserId,
        /// Their e-mail when the change was made.
        email: String,
    },
    /// A user's personal API key.
    UserKey {
        /// The key's owner.
        user: UserId,
        /// The owner's e-mail when the change was made.
        email: String,
        /// Which of their keys.
        key: KeyRef,
    },
    /// The project's own personal key (`vexil project create`), named by its visible prefix.
    ProjectKey {
        /// The key's first characters (`phx_abcd`).
        prefix: String,
    },
    /// A label stored before actors were typed (or written by a tool that has only a name).
    Named {
        /// The label.
        label: String,
    },
}

/// The columns an actor is stored in, next to each activity entry.
#[derive(Debug, Default)]
pub(crate) struct ActorColumns {
    pub label: Option<String>,
    pub user_id: Option<i64>,
    pub key_id: Option<i64>,
    pub key_label: Option<String>,
    pub key_mask: Option<String>,
}

/// How the label of a project key starts (`personal key phx_abcd…`).
const PROJECT_KEY_LABEL: &str = "personal key ";

impl Actor {
    /// The text kept as a flag's `created_by` / `last_modified_by`: the user's e-mail, or the
    /// project key's `personal key phx_abcd…`.
    pub fn label(&self) -> String {
        match self {
            Actor::User { email, .. } | Actor::UserKey { email, .. } => email.clone(),
            Actor::ProjectKey { prefix } => format!("{PROJECT_KEY_LABEL}{prefix}…"),
            Actor::Named { label } => label.clone(),
        }
    }

    /// The user behind the change, if a user made it.
    pub fn user(&self) -> Option<(UserId, &str)> {
        match self {
            Actor::User { id, email }
            | Actor::UserKey {
                user: id, email, ..
            } => Some((*id, email)),
            Actor::ProjectKey { .. } | Actor::Named { .. } => None,
        }
    }

    /// The user key used, if one was.
    pub fn key(&self) -> Option<&KeyRef> {
        match self {
            Actor::UserKey { key, .. } => Some(key),
            _ => None,
        }
    }

    pub(crate) fn columns(actor: Option<&Actor>) -> ActorColumns {
        let Some(actor) = actor else {
            return ActorColumns::default();
        };
        let key = actor.key();
        ActorColumns {
            label: Some(actor.label()),
            user_id: actor.user().map(|(id, _)| id.0),
            key_id: key.map(|k| k.id),
            key_label: key.map(|k| k.label.clone()),
            key_mask: match actor {
                Actor::ProjectKey { prefix } => Some(prefix.clone()),
                _ => key.map(|k| k.mask.clone()),
            },
        }
    }

    pub(crate) fn from_columns(c: ActorColumns) -> Option<Actor> {
        let label = c.label?;
        Some(match (c.user_id, c.key_id) {
            (Some(user), Some(id)) => Actor::UserKey {
                user: UserId(user),
                email: label,
                key: KeyRef {
                    id,
                    label: c.key_label.unwrap_or_default(),
                    mask: c.key_mask.unwrap_or_default(),
                },
            },
            (Some(user), None) => Actor::User {
                id: UserId(user),
                email: label,
            },
            (None, _) => match c.key_mask {
                Some(prefix) => Actor::ProjectKey { prefix },
                None => Actor::Named { label },
            },
        })
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::UserKey { email, key, .. } => {
                write!(f, "{email} (key \"{}\" {})", key.label, key.mask)
            }
            other => f.write_str(&other.label()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip() {
        let actors = [
            Actor::User {
                id: UserId(3),
                email: "a@b.c".into(),
            },
            Actor::UserKey {
                user: UserId(3),
                email: "a@b.c".into(),
                key: KeyRef {
                    id: 9,
                    label: "ci".into(),
                    mask: "phx_...abcd".into(),
                },
            },
            Actor::ProjectKey {
                prefix: "phx_abcd".into(),
            },
            Actor::Named {
                label: "someone".into(),
            },
        ];
        for actor in actors {
            assert_eq!(
                Actor::from_columns(Actor::columns(Some(&actor))),
                Some(actor)
            );
        }
        assert_eq!(Actor::from_columns(Actor::columns(None)), None);
    }
}
