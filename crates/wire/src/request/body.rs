//! A `/flags` body's known fields, parsed straight from the text: [`FlagsBody`].

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::field::{self, FieldError};

/// A body field a [`FlagsRequest`](super::FlagsRequest) reads (aliases are fields of their
/// own): the slots of a [`FlagsBody`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    Token,
    ApiKey,
    DollarToken,
    DistinctId,
    DollarDistinctId,
    Groups,
    DollarGroups,
    PersonProperties,
    DollarProperties,
    GroupProperties,
    DollarGroupProperties,
    DollarAnonDistinctId,
    AnonDistinctId,
    DollarDeviceId,
    DeviceId,
    FlagKeys,
    FlagKeysToEvaluate,
    DisableFlags,
    GeoipDisable,
    DisableGeoip,
    EvaluationContexts,
    EvaluationEnvironments,
    EvaluationRuntime,
    Timezone,
    CookielessHashExtra,
    IpAddress,
}

impl Known {
    /// Every known field, each at its own position (`Known::X as usize`).
    const ALL: [Known; 26] = [
        Known::Token,
        Known::ApiKey,
        Known::DollarToken,
        Known::DistinctId,
        Known::DollarDistinctId,
        Known::Groups,
        Known::DollarGroups,
        Known::PersonProperties,
        Known::DollarProperties,
        Known::GroupProperties,
        Known::DollarGroupProperties,
        Known::DollarAnonDistinctId,
        Known::AnonDistinctId,
        Known::DollarDeviceId,
        Known::DeviceId,
        Known::FlagKeys,
        Known::FlagKeysToEvaluate,
        Known::DisableFlags,
        Known::GeoipDisable,
        Known::DisableGeoip,
        Known::EvaluationContexts,
        Known::EvaluationEnvironments,
        Known::EvaluationRuntime,
        Known::Timezone,
        Known::CookielessHashExtra,
        Known::IpAddress,
    ];

    /// The field's name on the wire.
    fn name(self) -> &'static str {
        match self {
            Known::Token => "token",
            Known::ApiKey => "api_key",
            Known::DollarToken => "$token",
            Known::DistinctId => "distinct_id",
            Known::DollarDistinctId => "$distinct_id",
            Known::Groups => "groups",
            Known::DollarGroups => "$groups",
            Known::PersonProperties => "person_properties",
            Known::DollarProperties => "$properties",
            Known::GroupProperties => "group_properties",
            Known::DollarGroupProperties => "$group_properties",
            Known::DollarAnonDistinctId => "$anon_distinct_id",
            Known::AnonDistinctId => "anon_distinct_id",
            Known::DollarDeviceId => "$device_id",
            Known::DeviceId => "device_id",
            Known::FlagKeys => "flag_keys",
            Known::FlagKeysToEvaluate => "flag_keys_to_evaluate",
            Known::DisableFlags => "disable_flags",
            Known::GeoipDisable => "geoip_disable",
            Known::DisableGeoip => "disable_geoip",
            Known::EvaluationContexts => "evaluation_contexts",
            Known::EvaluationEnvironments => "evaluation_environments",
            Known::EvaluationRuntime => "evaluation_runtime",
            Known::Timezone => "timezone",
            Known::CookielessHashExtra => "cookieless_hash_extra",
            Known::IpAddress => "ip_address",
        }
    }

    /// The known field named `name`.
    fn of(name: &str) -> Option<Known> {
        Some(match name {
            "token" => Known::Token,
            "api_key" => Known::ApiKey,
            "$token" => Known::DollarToken,
            "distinct_id" => Known::DistinctId,
            "$distinct_id" => Known::DollarDistinctId,
            "groups" => Known::Groups,
            "$groups" => Known::DollarGroups,
            "person_properties" => Known::PersonProperties,
            "$properties" => Known::DollarProperties,
            "group_properties" => Known::GroupProperties,
            "$group_properties" => Known::DollarGroupProperties,
            "$anon_distinct_id" => Known::DollarAnonDistinctId,
            "anon_distinct_id" => Known::AnonDistinctId,
            "$device_id" => Known::DollarDeviceId,
            "device_id" => Known::DeviceId,
            "flag_keys" => Known::FlagKeys,
            "flag_keys_to_evaluate" => Known::FlagKeysToEvaluate,
            "disable_flags" => Known::DisableFlags,
            "geoip_disable" => Known::GeoipDisable,
            "disable_geoip" => Known::DisableGeoip,
            "evaluation_contexts" => Known::EvaluationContexts,
            "evaluation_environments" => Known::EvaluationEnvironments,
            "evaluation_runtime" => Known::EvaluationRuntime,
            "timezone" => Known::Timezone,
            "cookieless_hash_extra" => Known::CookielessHashExtra,
            "ip_address" => Known::IpAddress,
            _ => return None,
        })
    }
}

/// A `/flags` body's known fields as sent, before their types are checked
/// ([`FlagsRequest::from_body`](super::FlagsRequest::from_body) checks them).
///
/// Parsed from the text ([`JsonText::parse`](crate::decode::JsonText::parse)) without building
/// the body's top-level map. It refuses exactly the texts a [`Value`] parse refuses: unknown
/// fields are parsed into values too (and dropped), so a lone surrogate or an out-of-range
/// number anywhere fails the parse; a repeated field keeps its last value, as a map does; and
/// nesting is counted from the top.
#[derive(Debug, Default)]
pub struct FlagsBody {
    /// Each known field's value, at its position in [`Known::ALL`]; `None` when the body is
    /// not an object.
    fields: Option<[Option<Value>; Known::ALL.len()]>,
}

impl FlagsBody {
    /// The known fields of an object, taken out of it; `None` for any other value.
    pub fn from_value(body: Value) -> Self {
        match body {
            Value::Object(map) => Self::from_map(map),
            _ => FlagsBody { fields: None },
        }
    }

    /// The known fields of `map`, taken out of it.
    pub fn from_map(mut map: Map<String, Value>) -> Self {
        FlagsBody {
            fields: Some(Known::ALL.map(|field| map.remove(field.name()))),
        }
    }

    /// Whether the body was a JSON object.
    pub fn is_object(&self) -> bool {
        self.fields.is_some()
    }
}

impl FlagsBody {
    /// The first of `aliases` present with a non-null value, converted, in order of preference;
    /// later aliases of a field already found are ignored, like unknown fields. Errors name the
    /// alias used.
    pub(crate) fn optional<T>(
        &mut self,
        aliases: &[Known],
        convert: impl FnOnce(&'static str, Value) -> Result<T, FieldError>,
    ) -> Result<Option<T>, FieldError> {
        let Some(fields) = self.fields.as_mut() else {
            return Ok(None);
        };
        let found = aliases.iter().find_map(|&alias| {
            Some((alias.name(), field::present(fields[alias as usize].take())?))
        });
        found.map(|(name, value)| convert(name, value)).transpose()
    }
}

impl<'de> Deserialize<'de> for FlagsBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = FlagsBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlagsBody, A::Error> {
        let mut fields: [Option<Value>; Known::ALL.len()] = Default::default();
        while let Some(Key(at)) = map.next_key()? {
            let value: Value = map.next_value()?;
            if let Some(field) = at {
                fields[field as usize] = Some(value);
            }
        }
        Ok(FlagsBody {
            fields: Some(fields),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FlagsBody, A::Error> {
        while seq.next_element::<Value>()?.is_some() {}
        Ok(FlagsBody::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<FlagsBody, E> {
        Ok(FlagsBody::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<FlagsBody, E> {
        Ok(FlagsBody::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<FlagsBody, E> {
        Ok(FlagsBody::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<FlagsBody, E> {
        Ok(FlagsBody::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<FlagsBody, E> {
        Ok(FlagsBody::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<FlagsBody, E> {
        Ok(FlagsBody::default())
    }
}

/// An object key: a known field, `None` for any other.
struct Key(Option<Known>);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
                Ok(Key(Known::of(name)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::Known;

    #[test]
    fn every_known_field_has_its_own_slot_and_name() {
        for (i, field) in Known::ALL.into_iter().enumerate() {
            assert_eq!(field as usize, i, "{field:?}");
            assert_eq!(Known::of(field.name()), Some(field), "{field:?}");
        }
        assert_eq!(Known::of("Token"), None);
    }
}
