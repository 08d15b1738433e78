//! Reading request bodies, for both APIs: the bounded reader, Django REST framework's parsing of
//! JSON objects and forms with its field errors, and the lenient readers of the cookie API's
//! optional body. Depends on `error` (and `deadline` for the body timeout), nothing else in `http`.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::{self, FieldErrors, RequestError};

/// Bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// `{"username", "password"}`; a blank value is a 400, as in Django REST framework. "Blank" is
/// Python's `str.strip()` leaving nothing, so the patterns ask for one character outside the
/// set it strips (`body::drf_trim` strips the same set).
#[derive(Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Credentials {
    #[schema(
        min_length = 1,
        pattern = r"[^\t\n\v\f\r \u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub username: String,
    #[schema(
        min_length = 1,
        pattern = r"[^\t\n\v\f\r \u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub password: String,
}

/// Reads the whole body, refusing more than `MAX_BODY_BYTES` as soon as it is seen (from the
/// Content-Length header or while streaming), so a huge body is never buffered. A body that has
/// not arrived within REQUEST_BODY_TIMEOUT (see `deadline`) is a 408.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Bytes, RequestError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(RequestError::BodyTooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            if super::deadline::is_timeout(&e) {
                return RequestError::BodyTimedOut;
            }
            log::debug!("request body unreadable: {e}");
            RequestError::MalformedBody
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(RequestError::BodyTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The body's fields, from JSON or (as Django REST framework also accepts) a urlencoded form.
pub async fn read_fields(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Map<String, Value>, RequestError> {
    let body = read_body(req, payload).await?;
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return form_object(&body);
    }
    json_object(&body)
}

/// `body["field"]` when the body is a JSON object and that member is a string.
pub fn json_string_field(body: &[u8], field: &str) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    match value.get(field)? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `body["field"] == true` when the body is a JSON object.
pub fn json_flag(body: &[u8], field: &str) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get(field).and_then(Value::as_bool))
        .unwrap_or(false)
}

/// The body as a JSON object; an empty body is an empty object, as in Django REST framework.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, RequestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        RequestError::BadRequest(FieldErrors::detail(format!("JSON parse error - {e}")))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => {
            let got = match other {
                Value::Array(_) => "list",
                Value::String(_) => "str",
                Value::Bool(_) => "bool",
                Value::Null => "NoneType",
                Value::Number(n) if n.is_f64() => "float",
                _ => "int",
            };
            let mut errors = FieldErrors::default();
            errors.add(
                "non_field_errors",
                &format!("Invalid data. Expected a dictionary, but got {got}."),
            );
            Err(RequestError::BadRequest(errors))
        }
    }
}

/// A urlencoded form as the fields of an object; every value is a string, as in Django.
pub fn form_object(body: &[u8]) -> Result<Map<String, Value>, RequestError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|e| {
        RequestError::BadRequest(FieldErrors::detail(format!("Form parse error - {e}")))
    })?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect())
}

/// `username` and `password`, with Django REST framework's field errors.
pub fn credentials(object: &Map<String, Value>) -> Result<Credentials, RequestError> {
    let mut errors = FieldErrors::default();
    let username = string_field(object, "username", &mut errors);
    let password = string_field(object, "password", &mut errors);
    match (username, password) {
        (Some(username), Some(password)) if errors.is_empty() => {
            Ok(Credentials { username, password })
        }
        _ => Err(RequestError::BadRequest(errors)),
    }
}

/// One required string field, or Django REST framework's 400 naming it.
pub fn required_field(object: &Map<String, Value>, name: &str) -> Result<String, RequestError> {
    let mut errors = FieldErrors::default();
    string_field(object, name, &mut errors).ok_or(RequestError::BadRequest(errors))
}

/// Trims as Python's `str.strip()` does (Django REST framework trims with it): Unicode white
/// space, and the separators U+001C to U+001F that Python also counts as space.
pub fn drf_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// A CharField as Django REST framework reads one: surrounding whitespace trimmed
/// (`trim_whitespace=True`, the default, which SimpleJWT's username and password fields keep:
/// it logs `" alice"` in as `alice`), numbers become text, other types, null, blank and missing
/// values are field errors.
pub fn string_field(
    object: &Map<String, Value>,
    name: &str,
    errors: &mut FieldErrors,
) -> Option<String> {
    let problem = match object.get(name) {
        None => error::FIELD_REQUIRED,
        Some(Value::Null) => error::FIELD_NULL,
        Some(Value::String(s)) if drf_trim(s).is_empty() => error::FIELD_BLANK,
        Some(Value::String(s)) => return Some(drf_trim(s).to_owned()),
        Some(Value::Number(n)) => return Some(n.to_string()),
        Some(_) => error::FIELD_NOT_STRING,
    };
    errors.add(name, problem);
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bad_request(body: &[u8]) -> Value {
        match json_object(body).and_then(|o| credentials(&o)) {
            Err(RequestError::BadRequest(v)) => serde_json::to_value(v).unwrap(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    fn both(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    #[test]
    fn missing_fields_are_named() {
        assert_eq!(
            bad_request(b"{}"),
            json!({"username": ["This field is required."], "password": ["This field is required."]})
        );
        assert_eq!(bad_request(b""), bad_request(b"{}"));
        assert_eq!(
            bad_request(br#"{"username":"a"}"#),
            json!({"password": ["This field is required."]})
        );
    }

    #[test]
    fn wrong_shapes_get_django_rest_framework_messages() {
        assert_eq!(
            bad_request(br#"{"username":null,"password":" "}"#),
            json!({"username": ["This field may not be null."], "password": ["This field may not be blank."]})
        );
        assert_eq!(
            bad_request(br#"{"username":" ","password":"pw"}"#),
            json!({"username": ["This field may not be blank."]})
        );
        // Python's strip() takes NEL and the information separators too.
        assert_eq!(
            bad_request(br#"{"username":"\u0085\u001f","password":"pw"}"#),
            json!({"username": ["This field may not be blank."]})
        );
        assert_eq!(drf_trim("\u{feff}x\u{3000}"), "\u{feff}x");
        assert_eq!(
            bad_request(br#"{"username":["a"],"password":{}}"#),
            json!({"username": ["Not a valid string."], "password": ["Not a valid string."]})
        );
        assert_eq!(
            bad_request(b"[1]"),
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        );
        let parse = bad_request(b"{nope");
        assert!(
            parse["detail"]
                .as_str()
                .unwrap()
                .starts_with("JSON parse error - ")
        );
        assert_eq!(
            credentials(&json_object(br#"{"username":42,"password":"pw"}"#).unwrap()).unwrap(),
            both("42", "pw")
        );
        // As SimpleJWT's serializer (both of its fields are trimming CharFields).
        assert_eq!(
            credentials(&json_object(br#"{"username":" alice\n","password":" pw "}"#).unwrap())
                .unwrap(),
            both("alice", "pw")
        );
    }

    #[test]
    fn field_errors_are_written_by_field_name() {
        let reply = actix_web::ResponseError::error_response(
            &json_object(b"{}")
                .and_then(|o| credentials(&o))
                .unwrap_err(),
        );
        let body = actix_web::body::to_bytes(reply.into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap();
        assert_eq!(
            &body[..],
            br#"{"password":["This field is required."],"username":["This field is required."]}"#
        );
    }

    #[test]
    fn a_body_field_must_be_a_string_in_a_json_object() {
        assert_eq!(
            json_string_field(br#"{"refresh":"x"}"#, "refresh").as_deref(),
            Some("x")
        );
        for body in [
            &b""[..],
            b"{}",
            b"[]",
            b"null",
            b"not json",
            br#"{"refresh":1}"#,
            br#"{"refresh":null}"#,
            b"\xff\xfe",
        ] {
            assert_eq!(json_string_field(body, "refresh"), None, "{body:?}");
        }
    }
}
