//! The `/flags` and `/decide` request (spec §1.2, §1.4): the body as [`FlagsRequest`], the query
//! string as [`FlagsQuery`], which response shape they ask for ([`ResponseShape`]) and which
//! flags the request may see ([`FlagFilter`]).

mod body;
mod query;
mod runtime;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use vexil_engine::{Context, Properties};

use crate::decode::JsonText;
use crate::distinct_id;
use crate::field::{self, FieldError};
use crate::scan::{ObjectFields, Scalar};

pub use body::FlagsBody;
pub use query::{EffectiveQuery, FlagsQuery, ResponseShape};
pub use runtime::{EvaluationRuntime, FlagFilter, RuntimeHints};

/// The body fields that carry the project token, in order of preference.
const TOKEN_FIELDS: [&str; 3] = ["token", "api_key", "$token"];

/// Why a decoded body is not a usable flags request (a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is JSON but not an object.
    #[error("request body must be a JSON object")]
    NotAnObject,
    /// A known field has the wrong type.
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// A `/flags` (or `/decide`) request body, with aliases resolved and types checked.
///
/// All fields are optional on the wire; unknown fields are ignored and `null` means absent.
/// Whether a missing token or distinct id is an error is the server's decision (401, and 400
/// unless `disable_flags`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagsRequest {
    /// Project API key (`token`, `api_key` or `$token`), as sent (possibly empty).
    pub token: Option<String>,
    /// `distinct_id` / `$distinct_id`, numbers stringified, truncated to 200 characters.
    pub distinct_id: Option<String>,
    /// `groups` / `$groups`: `{group type: key}` with only string and number keys kept.
    pub groups: Option<Properties>,
    /// `person_properties` / `$properties`: overrides over stored person properties.
    pub person_properties: Option<Properties>,
    /// `group_properties` / `$group_properties`: `{group type: {prop: value}}`.
    pub group_properties: Option<Properties>,
    /// `$anon_distinct_id` / `anon_distinct_id` (experience continuity).
    pub anon_distinct_id: Option<String>,
    /// `$device_id` / `device_id` (device bucketing).
    pub device_id: Option<String>,
    /// `flag_keys` / `flag_keys_to_evaluate`: evaluate only these flags.
    pub flag_keys: Option<Vec<String>>,
    /// `disable_flags`: return no flags (config only).
    pub disable_flags: bool,
    /// `geoip_disable` (or `disable_geoip`, which posthog-rs's older calls send and PostHog
    /// ignores): skip GeoIP enrichment of person properties.
    pub geoip_disable: bool,
    /// `evaluation_contexts` / `evaluation_environments`: flag tag filter.
    pub evaluation_contexts: Option<Vec<String>>,
    /// `evaluation_runtime`, when given explicitly.
    pub evaluation_runtime: Option<EvaluationRuntime>,
    /// `timezone`: the client's IANA zone (cookieless hashing).
    pub timezone: Option<String>,
    /// `cookieless_hash_extra` (cookieless hashing).
    pub cookieless_hash_extra: Option<String>,
    /// `ip_address`: accepted, unused for evaluation.
    pub ip_address: Option<String>,
}

impl FlagsRequest {
    /// Reads a request from a decoded body and applies the group-key rule
    /// ([`FlagsRequest::apply_group_key_overrides`]), so the result is what PostHog evaluates.
    pub fn from_json(body: Value) -> Result<Self, RequestError> {
        Self::from_body(FlagsBody::from_value(body))
    }

    /// Like [`FlagsRequest::from_json`], from the body's object.
    pub fn from_map(map: Map<String, Value>) -> Result<Self, RequestError> {
        Self::from_body(FlagsBody::from_map(map))
    }

    /// Like [`FlagsRequest::from_json`], from the body's known fields (parsed from the text
    /// with [`JsonText::parse`], or taken from a decoded body).
    pub fn from_body(mut body: FlagsBody) -> Result<Self, RequestError> {
        if !body.is_object() {
            return Err(RequestError::NotAnObject);
        }
        use body::Known::*;
        let m = &mut body;
        let mut request = FlagsRequest {
            token: m.optional(&[Token, ApiKey, DollarToken], field::string)?,
            distinct_id: m.optional(&[DistinctId, DollarDistinctId], distinct_id::from_value)?,
            groups: m.optional(&[Groups, DollarGroups], groups)?,
            person_properties: m.optional(&[PersonProperties, DollarProperties], field::object)?,
            group_properties: m
                .optional(&[GroupProperties, DollarGroupProperties], group_properties)?,
            anon_distinct_id: m.optional(&[DollarAnonDistinctId, AnonDistinctId], field::string)?,
            device_id: m.optional(&[DollarDeviceId, DeviceId], field::string)?,
            flag_keys: m.optional(&[FlagKeys, FlagKeysToEvaluate], field::string_list)?,
            disable_flags: m
                .optional(&[DisableFlags], field::boolean)?
                .unwrap_or(false),
            geoip_disable: m
                .optional(&[GeoipDisable, DisableGeoip], field::boolean)?
                .unwrap_or(false),
            evaluation_contexts: m.optional(
                &[EvaluationContexts, EvaluationEnvironments],
                field::string_list,
            )?,
            evaluation_runtime: m.optional(&[EvaluationRuntime], |name, v| {
                field::string(name, v).map(|s| runtime::EvaluationRuntime::lenient(&s))
            })?,
            timezone: m.optional(&[Timezone], field::string)?,
            cookieless_hash_extra: m.optional(&[CookielessHashExtra], field::string)?,
            ip_address: m.optional(&[IpAddress], field::string)?,
        };
        request.apply_group_key_overrides();
        Ok(request)
    }

    /// The token of a decoded body, read without parsing the rest: what
    /// [`FlagsRequest::token`] of the parsed body returns, or the error parsing would report for
    /// a non-object body or a token that is not a string. Costs one pass over the text and no
    /// allocation (unless the token has escapes), so an unknown token is refused before the
    /// body's tree is built.
    pub fn token_of<'t>(text: &'t JsonText<'_>) -> Result<Option<Cow<'t, str>>, RequestError> {
        let fields = text
            .read_seed(ObjectFields(&TOKEN_FIELDS))
            .map_err(|_| RequestError::NotAnObject)?
            .ok_or(RequestError::NotAnObject)?;
        let token = match fields.into_first_present() {
            None => None,
            Some((_, Scalar::Str(token))) => Some(token).filter(|t| !t.is_empty()),
            Some((i, _)) => return Err(FieldError::new(TOKEN_FIELDS[i], "a string").into()),
        };
        Ok(token)
    }

    /// [`FlagsRequest::token_of`] as a skim for [`Decoder::decode_text_skimmed`]: the token
    /// (owned) or the token's type error, which `token_of` can only report once it has read the
    /// whole document; `None` where `token_of` fails otherwise — a syntax error or a body that
    /// is not an object — so that the caller takes the decoder's checked path and asks
    /// `token_of` of its text.
    ///
    /// [`Decoder::decode_text_skimmed`]: crate::decode::Decoder::decode_text_skimmed
    pub fn skim_token(text: &JsonText<'_>) -> Option<Result<Option<String>, RequestError>> {
        match Self::token_of(text) {
            Ok(token) => Some(Ok(token.map(Cow::into_owned))),
            Err(RequestError::Field(e)) => Some(Err(e.into())),
            Err(RequestError::NotAnObject) => None,
        }
    }

    /// The token, if one was sent and is non-empty.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
    }

    /// Spec §1.5 step 9: for every entry of `groups`, sets
    /// `group_properties[type]["$group_key"] = key`, creating the maps as needed.
    /// Idempotent; [`FlagsRequest::from_json`] has already applied it.
    pub fn apply_group_key_overrides(&mut self) {
        let Some(groups) = self.groups.as_ref().filter(|g| !g.is_empty()) else {
            return;
        };
        let group_properties = self.group_properties.get_or_insert_with(Map::new);
        for (group_type, key) in groups {
            let entry = group_properties
                .entry(group_type.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(props) = entry {
                props.insert("$group_key".to_owned(), key.clone());
            }
        }
    }

    /// The experience-continuity hash key: `$anon_distinct_id`, else the person property of that
    /// name (as PostHog reads it).
    pub fn effective_anon_distinct_id(&self) -> Option<&str> {
        self.anon_distinct_id.as_deref().or_else(|| {
            self.person_properties
                .as_ref()?
                .get("$anon_distinct_id")?
                .as_str()
        })
    }

    /// The engine context for this request at `now`, borrowing from the request.
    ///
    /// An absent distinct id becomes `""`: callers reject such requests (400) before
    /// evaluating, unless `disable_flags`, in which case nothing is evaluated. Stored
    /// properties, hash-key overrides, static cohorts and behavioural data are left for the
    /// caller to fill in, as is `include` (see [`FlagFilter`]); the `$device_id`
    /// person-property fallback is the engine's.
    pub fn context(&self, now: DateTime<Utc>) -> Context<'_> {
        let mut ctx = Context::new(self.distinct_id.as_deref().unwrap_or(""), now);
        ctx.device_id = self.device_id.as_deref();
        ctx.anon_distinct_id = self.effective_anon_distinct_id();
        ctx.groups = self.groups.as_ref();
        ctx.person_properties = self.person_properties.as_ref();
        ctx.group_properties = self.group_properties.as_ref();
        ctx.flag_keys = self.flag_keys.as_deref();
        ctx
    }
}

/// `{type: key}` keeping string and number keys; other values count as "no group".
fn groups(name: &'static str, value: Value) -> Result<Properties, FieldError> {
    let mut map = field::object(name, value)?;
    map.retain(|_, key| matches!(key, Value::String(_) | Value::Number(_)));
    Ok(map)
}

/// `{type: {prop: value}}`; `null` entries are dropped, other non-objects rejected.
fn group_properties(name: &'static str, value: Value) -> Result<Properties, FieldError> {
    let mut map = field::object(name, value)?;
    map.retain(|_, props| !props.is_null());
    if let Some(group_type) = map.iter().find_map(|(k, v)| (!v.is_object()).then_some(k)) {
        return Err(FieldError::new(format!("{name}.{group_type}"), "an object"));
    }
    Ok(map)
}
