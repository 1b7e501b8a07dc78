//! A capture body's token, found by one pass over its text that builds nothing else, so that a
//! body without a known token is refused before its events are parsed ([`token_of`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{CaptureError, EventPath, Place, TOKEN_FIELDS};
use crate::decode::JsonText;
use crate::field::FieldError;
use crate::scan::{Fields, KeySeed, ObjectFields, Scalar};

/// Where an event's properties name the token.
const PROPERTY_TOKEN_FIELDS: [&str; 2] = ["token", "$token"];

/// Top-level keys a skim reads: the token fields (in [`TOKEN_FIELDS`] order), then `batch` and
/// `properties`.
const TOP_KEYS: [&str; 5] = ["api_key", "token", "$token", "batch", "properties"];

/// Event keys a skim reads: the token fields, then `properties`.
const EVENT_KEYS: [&str; 4] = ["api_key", "token", "$token", "properties"];

/// What [`super::parse`] settles on for the token, or an error it would report too, read
/// without parsing the body (one pass, no allocation unless the token has escapes).
///
/// `Ok(None)` means [`super::parse`] fails; with [`CaptureError::MissingToken`] unless another
/// field is wrong as well. A body this accepts may still fail to parse for a reason that has
/// nothing to do with its token.
pub fn token_of<'t>(text: &'t JsonText<'_>) -> Result<Option<Cow<'t, str>>, CaptureError> {
    text.read_seed(Top)
        .unwrap_or(Err(CaptureError::InvalidShape))
}

type Found<'a> = Result<Option<Cow<'a, str>>, CaptureError>;

/// The token fields of one object: a non-empty string, nothing (absent, `null`, empty), or a
/// value of the wrong type (the error names the field, prefixed by `path`).
fn own_token(fields: Fields<'_, 3>, path: EventPath) -> Found<'_> {
    match fields.into_first_present() {
        None => Ok(None),
        Some((_, Scalar::Str(token))) => Ok(Some(token).filter(|t| !t.is_empty())),
        Some((i, _)) => Err(FieldError::new(path.field(TOKEN_FIELDS[i]), "a string").into()),
    }
}

/// The whole body: a batch object, one event, or an array of events.
struct Top;

impl<'de> DeserializeSeed<'de> for Top {
    type Value = Found<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a capture body")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::<'de, 3>::new();
        let mut batch = None;
        let mut properties = None;
        while let Some(key) = map.next_key_seed(KeySeed(&TOP_KEYS))? {
            match key {
                Some(i @ 0..=2) => fields.values[i] = Some(map.next_value::<Scalar<'de>>()?),
                Some(3) => batch = Some(map.next_value_seed(Batch)?),
                Some(_) => {
                    properties = map.next_value_seed(ObjectFields(&PROPERTY_TOKEN_FIELDS))?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let path = EventPath(Place::Single, 0);
        let top = own_token(fields, path);
        Ok(match batch.flatten() {
            // A batch: its own token, else the one its events agree on.
            Some(events) => match top {
                Ok(None) => events,
                found => found,
            },
            // One event: its token, else its properties'.
            None => match top {
                Ok(None) => Ok(properties.and_then(Fields::into_first_string)),
                found => found,
            },
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Events(Place::Array).visit_seq(seq)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(CaptureError::InvalidShape))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(CaptureError::InvalidShape))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(CaptureError::InvalidShape))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(CaptureError::InvalidShape))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(CaptureError::InvalidShape))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(CaptureError::InvalidShape))
    }
}

/// A `batch` value: `None` for `null` (the body is then one event, as [`super::parse`] reads
/// it), else the token its events agree on.
struct Batch;

impl<'de> DeserializeSeed<'de> for Batch {
    type Value = Option<Found<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Batch {
    fn not_an_array<'a>() -> Option<Found<'a>> {
        Some(Err(FieldError::new("batch", "an array").into()))
    }
}

impl<'de> Visitor<'de> for Batch {
    type Value = Option<Found<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Events(Place::Batch).visit_seq(seq).map(Some)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Batch::not_an_array())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Batch::not_an_array())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Batch::not_an_array())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Batch::not_an_array())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Batch::not_an_array())
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Batch::not_an_array())
    }
}

/// An array of events: the token they agree on. The first event that is not an object, holds a
/// token of the wrong type or names another token ends the search with that error (the rest is
/// skipped).
struct Events(Place);

impl Events {
    fn visit_seq<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found<'de>, A::Error> {
        let mut token: Option<Cow<'de, str>> = None;
        let mut error = None;
        let mut index = 0;
        loop {
            if error.is_some() {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
                continue;
            }
            let path = EventPath(self.0, index);
            let Some(event) = seq.next_element_seed(Event(path))? else {
                break;
            };
            index += 1;
            match (event, &token) {
                (Err(e), _) => error = Some(e),
                (Ok(None), _) => {}
                (Ok(Some(t)), None) => token = Some(t),
                (Ok(Some(t)), Some(seen)) if t != *seen => {
                    error = Some(CaptureError::MultipleTokens);
                }
                (Ok(Some(_)), Some(_)) => {}
            }
        }
        Ok(match error {
            Some(e) => Err(e),
            None if index == 0 => Err(CaptureError::EmptyBatch),
            None => Ok(token),
        })
    }
}

/// One event: its own token, else its properties'.
struct Event(EventPath);

impl<'de> DeserializeSeed<'de> for Event {
    type Value = Found<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Event {
    fn not_an_object<'a>(&self) -> Found<'a> {
        let prefix = self.0.to_string();
        let name = prefix.strip_suffix('.').unwrap_or("event").to_owned();
        Err(FieldError::new(name, "an object").into())
    }
}

impl<'de> Visitor<'de> for Event {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::<'de, 3>::new();
        let mut properties = None;
        while let Some(key) = map.next_key_seed(KeySeed(&EVENT_KEYS))? {
            match key {
                Some(i @ 0..=2) => fields.values[i] = Some(map.next_value::<Scalar<'de>>()?),
                Some(_) => {
                    properties = map.next_value_seed(ObjectFields(&PROPERTY_TOKEN_FIELDS))?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match own_token(fields, self.0) {
            Ok(None) => Ok(properties.and_then(Fields::into_first_string)),
            found => found,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.not_an_object())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(self.not_an_object())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(self.not_an_object())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(self.not_an_object())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(self.not_an_object())
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(self.not_an_object())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.not_an_object())
    }
}
