//! The one place where outcomes become statuses and bodies. Every response string the contract
//! names is a constant here, beside the match that uses it. Each API has its own error type, so a
//! handler can only answer in its own API's words: `CookieApiError` for the cookie API,
//! `TokenApiError` for the SimpleJWT-compatible one, both wrapping the `RequestError`s they answer
//! alike. 5xx bodies are fixed text; the cause goes to the log only. Depends on `auth` only.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;

// Both APIs.
pub const BAD_CREDENTIALS: &str = "No active account found with the given credentials";
pub const TOO_MANY_LOGINS: &str = "Too many login attempts. Try again later.";
pub const BODY_TOO_LARGE: &str = "Request body too large.";
pub const BODY_TIMED_OUT: &str = "Request body timed out.";
pub const MALFORMED_BODY: &str = "Malformed request body.";
pub const UNAVAILABLE: &str = "Service temporarily unavailable.";
pub const INTERNAL: &str = "Internal server error.";
pub const NOT_FOUND: &str = "Not found.";
pub const FIELD_REQUIRED: &str = "This field is required.";
pub const FIELD_NULL: &str = "This field may not be null.";
pub const FIELD_BLANK: &str = "This field may not be blank.";
pub const FIELD_NOT_STRING: &str = "Not a valid string.";
// The cookie API's own wording.
pub const REFRESHED: &str = "Token refreshed.";
pub const LOGGED_IN: &str = "Login successful.";
pub const LOGGED_OUT: &str = "Logged out.";
pub const SESSION_ENDED: &str = "Session ended.";
pub const REFRESH_NOT_PROVIDED: &str = "Refresh token not provided.";
pub const INVALID_REFRESH: &str = "Invalid or expired refresh token.";
pub const INVALID_TOKEN_USER: &str = "Invalid token user.";
pub const ACCESS_NOT_PROVIDED: &str = "Authentication credentials were not provided.";
pub const INVALID_ACCESS: &str = "Invalid or expired access token.";
pub const CSRF_FAILED: &str = "CSRF check failed.";
// The SimpleJWT-compatible API's own wording.
pub const TOKEN_NOT_VALID: &str = "Token is invalid or expired";
pub const TOKEN_BLACKLISTED: &str = "Token is blacklisted";
pub const TOKEN_NOT_VALID_CODE: &str = "token_not_valid";
pub const NO_ACTIVE_ACCOUNT_FOR_TOKEN: &str = "No active account found for the given token.";

// `{"detail": "..."}`: every message, success or failure, that is not a field error.
#[derive(Serialize, ToSchema)]
pub struct Detail<'a> {
    pub detail: &'a str,
}

/// SimpleJWT's token errors carry `"code": "token_not_valid"`.
// Fields in the order serde_json has always written them: by name.
#[derive(Serialize, ToSchema)]
pub struct TokenError<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
    pub detail: &'a str,
}

/// Django REST framework's field errors: `{"field": ["message"]}`, or `{"detail": "..."}` for a
/// body that is not JSON.
// In field-name order, as serde_json has always written them.
#[derive(Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct FieldErrors(pub BTreeMap<String, FieldError>);

#[derive(Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum FieldError {
    Messages(Vec<String>),
    Detail(String),
}

impl FieldErrors {
    /// One message for `field`.
    pub fn add(&mut self, field: &str, message: &str) {
        self.0.insert(
            field.to_owned(),
            FieldError::Messages(vec![message.to_owned()]),
        );
    }

    /// The errors of a body that could not be parsed at all.
    pub fn detail(text: String) -> Self {
        Self(BTreeMap::from([(
            "detail".to_owned(),
            FieldError::Detail(text),
        )]))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A JSON answer with the headers every JSON answer carries.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    json_bytes(status, Bytes::from(bytes))
}

/// A JSON answer serialised before (the OpenAPI document, built once).
pub fn json_bytes(status: StatusCode, body: Bytes) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(body)
}

/// `{"detail": "..."}`.
pub fn detail(status: StatusCode, text: &str) -> HttpResponse {
    json(status, &Detail { detail: text })
}

/// The body of every successful refresh, serialised once: it is the same bytes each time.
pub fn refreshed() -> HttpResponse {
    static BODY: std::sync::LazyLock<Bytes> = std::sync::LazyLock::new(|| {
        Bytes::from(serde_json::to_vec(&Detail { detail: REFRESHED }).unwrap_or_default())
    });
    json_bytes(StatusCode::OK, BODY.clone())
}

/// What can be wrong with a request itself, before a flow runs. Both APIs answer these alike.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("body too large")]
    BodyTooLarge,
    /// The body did not arrive within REQUEST_BODY_TIMEOUT: 408, and the connection is closed.
    #[error("body timed out")]
    BodyTimedOut,
    #[error("body could not be read")]
    MalformedBody,
    /// Django REST framework style field errors.
    #[error("bad request")]
    BadRequest(FieldErrors),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed(String),
}

impl ResponseError for RequestError {
    fn status_code(&self) -> StatusCode {
        match self {
            RequestError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::BodyTimedOut => StatusCode::REQUEST_TIMEOUT,
            RequestError::MalformedBody | RequestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RequestError::NotFound => StatusCode::NOT_FOUND,
            RequestError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            RequestError::BodyTooLarge => detail(status, BODY_TOO_LARGE),
            RequestError::BodyTimedOut => {
                let mut resp = detail(status, BODY_TIMED_OUT);
                // The rest of the body may still come: the connection cannot be reused.
                resp.head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
                resp
            }
            RequestError::MalformedBody => detail(status, MALFORMED_BODY),
            RequestError::BadRequest(errors) => json(status, errors),
            RequestError::NotFound => detail(status, NOT_FOUND),
            RequestError::MethodNotAllowed(method) => {
                detail(status, &format!("Method \"{method}\" not allowed."))
            }
        }
    }
}

/// The status of a flow's outcome; the same in both APIs.
fn auth_status(e: &AuthError) -> StatusCode {
    match e {
        AuthError::TooManyLoginAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        AuthError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// The fixed text of a 5xx; its cause goes to the log.
fn fault_text(e: &AuthError) -> Option<&'static str> {
    match e {
        AuthError::StoreUnavailable(why) => {
            log::error!("store unavailable: {why}");
            Some(UNAVAILABLE)
        }
        AuthError::Internal(why) => {
            log::error!("internal error: {why}");
            Some(INTERNAL)
        }
        _ => None,
    }
}

/// Adds `Retry-After` (whole seconds, rounded up, never 0) to a login-limit answer.
fn with_retry_after(mut resp: HttpResponse, e: &AuthError) -> HttpResponse {
    if let AuthError::TooManyLoginAttempts { retry_after } = e {
        let secs = retry_after.as_millis().div_ceil(1000).max(1);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// Everything a cookie API route can answer other than its success.
#[derive(Debug, thiserror::Error)]
pub enum CookieApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("CSRF check failed")]
    Csrf,
    /// No such session of the caller's: someone else's answers exactly as an unknown one.
    #[error("no such session")]
    NoSuchSession,
}

impl CookieApiError {
    /// The cookie API's text for each flow outcome.
    fn auth_text(e: &AuthError) -> &'static str {
        match e {
            AuthError::MissingRefreshToken => REFRESH_NOT_PROVIDED,
            AuthError::InvalidRefreshToken
            | AuthError::BlacklistedToken
            | AuthError::RefreshTokenReused => INVALID_REFRESH,
            AuthError::InvalidTokenUser => INVALID_TOKEN_USER,
            AuthError::InvalidCredentials => BAD_CREDENTIALS,
            AuthError::TooManyLoginAttempts { .. } => TOO_MANY_LOGINS,
            AuthError::MissingAccessToken => ACCESS_NOT_PROVIDED,
            AuthError::InvalidAccessToken => INVALID_ACCESS,
            AuthError::StoreUnavailable(_) | AuthError::Internal(_) => {
                fault_text(e).unwrap_or(INTERNAL)
            }
        }
    }
}

impl ResponseError for CookieApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            CookieApiError::Auth(e) => auth_status(e),
            CookieApiError::Request(e) => e.status_code(),
            CookieApiError::Csrf => StatusCode::FORBIDDEN,
            CookieApiError::NoSuchSession => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            CookieApiError::Auth(e) => with_retry_after(detail(status, Self::auth_text(e)), e),
            CookieApiError::Request(e) => e.error_response(),
            CookieApiError::Csrf => detail(status, CSRF_FAILED),
            CookieApiError::NoSuchSession => detail(status, NOT_FOUND),
        }
    }
}

/// Everything a SimpleJWT-compatible route can answer other than its success, worded as
/// djangorestframework-simplejwt words it.
#[derive(Debug, thiserror::Error)]
pub enum TokenApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl TokenApiError {
    /// SimpleJWT's body for each flow outcome.
    fn auth_body(e: &AuthError) -> TokenError<'static> {
        let (detail, code) = match e {
            AuthError::InvalidRefreshToken
            | AuthError::InvalidAccessToken
            | AuthError::MissingRefreshToken
            | AuthError::MissingAccessToken => (TOKEN_NOT_VALID, Some(TOKEN_NOT_VALID_CODE)),
            AuthError::BlacklistedToken | AuthError::RefreshTokenReused => {
                (TOKEN_BLACKLISTED, Some(TOKEN_NOT_VALID_CODE))
            }
            AuthError::InvalidTokenUser => (NO_ACTIVE_ACCOUNT_FOR_TOKEN, None),
            AuthError::InvalidCredentials => (BAD_CREDENTIALS, None),
            AuthError::TooManyLoginAttempts { .. } => (TOO_MANY_LOGINS, None),
            AuthError::StoreUnavailable(_) | AuthError::Internal(_) => {
                (fault_text(e).unwrap_or(INTERNAL), None)
            }
        };
        TokenError { code, detail }
    }
}

impl ResponseError for TokenApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            TokenApiError::Auth(e) => auth_status(e),
            TokenApiError::Request(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            TokenApiError::Auth(e) => {
                with_retry_after(json(self.status_code(), &Self::auth_body(e)), e)
            }
            TokenApiError::Request(e) => e.error_response(),
        }
    }
}
