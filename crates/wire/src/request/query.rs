//! Query parameters of `/flags` and `/decide` (spec §1.2) and the response shape they select
//! (spec §1.6).

use std::borrow::Cow;

use percent_encoding::percent_decode;

use crate::decode::{BodyEncoding, Compression};

/// The query parameters of a `/flags` or `/decide` request.
///
/// Empty values count as absent; unknown parameters are ignored. When a parameter appears more
/// than once (or under both its name and its alias), the first non-empty value wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagsQuery {
    /// `v` / `version`: response version; a non-numeric value reads as 1.
    pub version: Option<i32>,
    /// `compression`, as sent (see [`Compression::from_param`]).
    pub compression: Option<String>,
    /// `ver` / `lib_version`: SDK version, for logging only.
    pub lib_version: Option<String>,
    /// `_` / `sent_at`: client timestamp in ms (cookieless hashing); unparsable values are dropped.
    pub sent_at: Option<i64>,
    /// `config`: include the remote-config fields.
    pub config: Option<bool>,
    /// `only_evaluate_survey_feature_flags`: only flags whose key starts with `survey-targeting-`.
    pub only_evaluate_survey_feature_flags: Option<bool>,
    /// `detailed_analysis`: per-condition analysis (internal UI; not produced by Vexil).
    pub detailed_analysis: Option<bool>,
    /// `only_use_override_person_properties`: ignore stored person properties.
    pub only_use_override_person_properties: Option<bool>,
}

/// `v` and `config` after PostHog's defaulting rule (see [`FlagsQuery::effective`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveQuery {
    /// The response version used for shape selection.
    pub version: Option<i32>,
    /// Whether to include the remote-config fields.
    pub config: bool,
}

impl FlagsQuery {
    /// Parses a raw query string (without the `?`), `application/x-www-form-urlencoded` style.
    pub fn parse(query: &str) -> Self {
        let pairs = query.split('&').filter(|p| !p.is_empty()).map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        });
        let mut q = FlagsQuery::default();
        for (k, v) in pairs {
            q.set(&k, &v);
        }
        q
    }

    /// Builds the query from already-decoded `(name, value)` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut q = FlagsQuery::default();
        for (k, v) in pairs {
            q.set(k, v);
        }
        q
    }

    fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let owned = || Some(value.to_owned());
        match name {
            "v" | "version" => {
                self.version = self.version.or(Some(value.trim().parse().unwrap_or(1)));
            }
            "compression" => self.compression = self.compression.take().or_else(owned),
            "ver" | "lib_version" => self.lib_version = self.lib_version.take().or_else(owned),
            "_" | "sent_at" => self.sent_at = self.sent_at.or(value.trim().parse().ok()),
            "config" => self.config = self.config.or(Some(truthy(value))),
            "only_evaluate_survey_feature_flags" => {
                self.only_evaluate_survey_feature_flags = self
                    .only_evaluate_survey_feature_flags
                    .or(Some(truthy(value)));
            }
            "detailed_analysis" => {
                self.detailed_analysis = self.detailed_analysis.or(Some(truthy(value)));
            }
            "only_use_override_person_properties" => {
                self.only_use_override_person_properties = self
                    .only_use_override_person_properties
                    .or(Some(truthy(value)));
            }
            _ => {}
        }
    }

    /// The interpreted `compression` parameter.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
            .as_deref()
            .and_then(Compression::from_param)
    }

    /// The decoder input for a body sent with these parameters and headers.
    pub fn body_encoding<'a>(
        &'a self,
        content_type: Option<&'a str>,
        content_encoding: Option<&'a str>,
    ) -> BodyEncoding<'a> {
        BodyEncoding {
            content_type,
            content_encoding,
            compression: self.compression.as_deref(),
        }
    }

    /// `v` and `config` after PostHog's defaulting rule for a POST: a `/decide` request without
    /// `config` gets `config=true`; then, if both `v` and `config` are absent, `v=2` and
    /// `config=true` (so `/decide` without `v` stays decide v1).
    pub fn effective(&self, path_is_decide: bool) -> EffectiveQuery {
        let mut config = self.config;
        if path_is_decide && config.is_none() {
            config = Some(true);
        }
        match (self.version, config) {
            (None, None) => EffectiveQuery {
                version: Some(2),
                config: true,
            },
            (version, config) => EffectiveQuery {
                version,
                config: config.unwrap_or(false),
            },
        }
    }
}

/// The five response shapes of `/flags` and `/decide` (spec §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseShape {
    /// `flags: {key: record}` with typed `value`s (PostHog's `FlagsResponseV3`): what
    /// posthog-python 7.9x asks for with `/flags?v=4` (spec §1.6.5).
    FlagsV3,
    /// `flags: {key: record}` with reasons and metadata.
    FlagsV2,
    /// Legacy `featureFlags` + `featureFlagPayloads` maps.
    FlagsV1,
    /// `/decide?v=2`: `featureFlags` map of enabled flags.
    DecideV2,
    /// `/decide?v=1`: `featureFlags` list of enabled keys.
    DecideV1,
}

impl ResponseShape {
    /// The shape a POST asks for, after the defaulting rule of [`FlagsQuery::effective`].
    pub fn select(path_is_decide: bool, query: &FlagsQuery) -> Self {
        Self::for_version(path_is_decide, query.effective(path_is_decide).version)
    }

    /// The selection table for an already-defaulted version. PostHog's GET (minimal) response
    /// applies it to the raw `v`, without the defaulting rule.
    pub fn for_version(path_is_decide: bool, version: Option<i32>) -> Self {
        match (path_is_decide, version) {
            (false, Some(v)) if v >= 4 => ResponseShape::FlagsV3,
            (false, Some(v)) if v >= 2 => ResponseShape::FlagsV2,
            (false, _) => ResponseShape::FlagsV1,
            (true, Some(2)) => ResponseShape::DecideV2,
            (true, Some(3)) => ResponseShape::FlagsV1,
            (true, Some(v)) if v >= 4 => ResponseShape::FlagsV2,
            (true, _) => ResponseShape::DecideV1,
        }
    }

    /// Whether the shape carries `errorsWhileComputingFlags`.
    pub fn has_errors_field(self) -> bool {
        matches!(
            self,
            ResponseShape::FlagsV3 | ResponseShape::FlagsV2 | ResponseShape::FlagsV1
        )
    }

    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseShape::FlagsV3 => "flags_v3",
            ResponseShape::FlagsV2 => "flags_v2",
            ResponseShape::FlagsV1 => "flags_v1",
            ResponseShape::DecideV2 => "decide_v2",
            ResponseShape::DecideV1 => "decide_v1",
        }
    }
}

/// Query booleans: `true`, `1`, `yes`, `on` (any case) are true; any other value is false.
fn truthy(value: &str) -> bool {
    let v = value.trim();
    ["true", "1", "yes", "on"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
}

/// `+` as space, then percent-decoding (lossy UTF-8).
fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['+', '%']) {
        return Cow::Borrowed(s);
    }
    let spaced = s.replace('+', " ");
    Cow::Owned(
        percent_decode(spaced.as_bytes())
            .decode_utf8_lossy()
            .into_owned(),
    )
}
