//! JSON request bodies read exactly as openapi.yaml describes them (SPEC §5): a body that is not
//! JSON, or holds a value of the wrong JSON type (`null` included, where a field is not
//! nullable), is 400 `malformed_request`; an unknown field is 422 `invalid_request` naming it.
//! Missing required fields are left to the handlers, which report every one at once.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, DeserializeOwned, Deserializer, MapAccess, Visitor};

use crate::error::ApiError;

/// A JSON body of type `T`, read strictly (see the module). Request types pair it with
/// `#[serde(deny_unknown_fields)]` and [`non_null`] on their optional fields.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // The body limit is the app's `PayloadConfig` (16 KiB).
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes
                .await
                .map_err(|err| match err.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => ApiError::PayloadTooLarge,
                    _ => ApiError::MalformedRequest(format!("The body could not be read: {err}")),
                })?;
            parse(&bytes).map(Body)
        })
    }
}

/// Parses a whole body (trailing data refused).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let Object(value) = serde_path_to_error::deserialize(&mut json).map_err(refusal)?;
    json.end()
        .map_err(|e| ApiError::MalformedRequest(format!("The body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The answer to a body serde refused. The path names the field, an unknown one included
/// (`media.colour`); "." is the body itself.
fn refusal(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_data() && inner.to_string().starts_with("unknown field `") {
        ApiError::invalid(&path, "is not a known field")
    } else if path == "." {
        ApiError::MalformedRequest(format!(
            "The body is not valid JSON of the expected shape: {inner}"
        ))
    } else {
        ApiError::MalformedRequest(format!("{path}: {inner}"))
    }
}

/// For optional fields that are not nullable: absent is `None` (with `#[serde(default)]`), a
/// value is `Some`, and `null` is refused like any value of the wrong type.
pub fn non_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// For optional integer fields: a JSON number with no fraction, as JSON Schema's `integer`
/// (`60` and `60.0` alike; `60.5` is 400). One beyond `i64` saturates, so the handler's range
/// check answers 422 "out of range" rather than 400.
pub fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    struct Whole;
    impl Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            Ok(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() == 0.0 {
                // `as` saturates at the bounds of i64.
                Ok(v as i64)
            } else {
                Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
            }
        }
    }
    deserializer.deserialize_any(Whole).map(Some)
}

/// For optional fields holding an object: like [`non_null`], and an array is refused too (serde
/// would otherwise read `["1_abc", "room"]` as a struct, field by field).
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Object::deserialize(deserializer).map(|Object(value)| Some(value))
}

/// A `T` read only from a JSON object.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Only<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Only<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(Only(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default, deserialize_with = "non_null")]
        name: Option<String>,
        #[serde(default, deserialize_with = "object")]
        inner: Option<Inner>,
        #[serde(default, deserialize_with = "integer")]
        count: Option<i64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default, deserialize_with = "non_null")]
        id: Option<String>,
    }

    fn answer(body: &str) -> (ErrorCode, String) {
        let err = parse::<Outer>(body.as_bytes()).unwrap_err();
        let field = match &err {
            ApiError::InvalidRequest(errors) => errors[0].field.clone(),
            other => format!("{other:?}"),
        };
        (err.error_code(), field)
    }

    #[test]
    fn bodies_are_read_exactly() {
        let ok = parse::<Outer>(br#"{"inner": {"id": "a"}}"#).unwrap();
        assert_eq!(ok.inner.unwrap().id.as_deref(), Some("a"));
        assert!(parse::<Outer>(b"{}").unwrap().name.is_none());
        for (body, code, field) in [
            (r#"{"nme": "x"}"#, ErrorCode::InvalidRequest, "nme"),
            (
                r#"{"inner": {"idd": "x"}}"#,
                ErrorCode::InvalidRequest,
                "inner.idd",
            ),
        ] {
            assert_eq!(answer(body), (code, field.to_owned()), "{body}");
        }
        for body in [
            r#"{"name": null}"#,
            r#"{"inner": null}"#,
            r#"{"inner": {"id": null}}"#,
            r#"{"name": 1}"#,
            r#"{"inner": ["a"]}"#,
            r#"["a", null]"#,
            r#"{"name": "x"} trailing"#,
            "",
            "[]",
        ] {
            assert_eq!(answer(body).0, ErrorCode::MalformedRequest, "{body}");
        }
        for (body, count) in [
            (r#"{"count": 60}"#, 60),
            (r#"{"count": 60.0}"#, 60),
            (r#"{"count": -1}"#, -1),
            (r#"{"count": 1e300}"#, i64::MAX),
            (r#"{"count": 18446744073709551615}"#, i64::MAX),
        ] {
            assert_eq!(
                parse::<Outer>(body.as_bytes()).unwrap().count,
                Some(count),
                "{body}"
            );
        }
        for body in [
            r#"{"count": 60.5}"#,
            r#"{"count": "60"}"#,
            r#"{"count": null}"#,
        ] {
            assert_eq!(answer(body).0, ErrorCode::MalformedRequest, "{body}");
        }
        let (_, detail) = answer(r#"{"inner": {"id": 5}}"#);
        assert!(detail.contains("inner.id"), "{detail}");
    }
}
