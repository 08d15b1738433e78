//! The one place where outcomes become statuses and bodies. Every response string the contract
//! names is a constant here. 5xx bodies are fixed text; the cause goes to the log only.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::auth::AuthError;

pub const REFRESHED: &str = "Token refreshed.";
pub const LOGGED_IN: &str = "Login successful.";
pub const LOGGED_OUT: &str = "Logged out.";
pub const SESSION_ENDED: &str = "Session ended.";
pub const REFRESH_NOT_PROVIDED: &str = "Refresh token not provided.";
pub const INVALID_REFRESH: &str = "Invalid or expired refresh token.";
pub const INVALID_TOKEN_USER: &str = "Invalid token user.";
pub const BAD_CREDENTIALS: &str = "No active account found with the given credentials";
pub const TOO_MANY_LOGINS: &str = "Too many login attempts. Try again later.";
pub const ACCESS_NOT_PROVIDED: &str = "Authentication credentials were not provided.";
pub const INVALID_ACCESS: &str = "Invalid or expired access token.";
pub const CSRF_FAILED: &str = "CSRF check failed.";
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
// The SimpleJWT-compatible API's own wording.
pub const TOKEN_NOT_VALID: &str = "Token is invalid or expired";
pub const TOKEN_BLACKLISTED: &str = "Token is blacklisted";
pub const TOKEN_NOT_VALID_CODE: &str = "token_not_valid";
pub const NO_ACTIVE_ACCOUNT_FOR_TOKEN: &str = "No active account found for the given token.";

/// A JSON answer with the headers every JSON answer carries.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(bytes)
}

/// `{"detail": "..."}`.
pub fn detail(status: StatusCode, text: &str) -> HttpResponse {
    json(status, &serde_json::json!({ "detail": text }))
}

/// Everything a route can answer other than its success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A flow's outcome, worded for the cookie API.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A flow's outcome, worded as djangorestframework-simplejwt words it.
    #[error(transparent)]
    Token(AuthError),
    #[error("CSRF check failed")]
    Csrf,
    #[error("body too large")]
    BodyTooLarge,
    /// The body did not arrive within REQUEST_BODY_TIMEOUT: 408, and the connection is closed.
    #[error("body timed out")]
    BodyTimedOut,
    #[error("body could not be read")]
    MalformedBody,
    /// Django REST framework style field errors: `{"field": ["message"]}` or `{"detail": ...}`.
    #[error("bad request")]
    BadRequest(serde_json::Value),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed(String),
}

/// The cookie API's text for each outcome; 5xx causes go to the log only.
fn cookie_api_text(e: &AuthError) -> &'static str {
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
        AuthError::StoreUnavailable(why) => {
            log::error!("store unavailable: {why}");
            UNAVAILABLE
        }
        AuthError::Internal(why) => {
            log::error!("internal error: {why}");
            INTERNAL
        }
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

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Auth(e) | ApiError::Token(e) => match e {
                AuthError::TooManyLoginAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
                AuthError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                AuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNAUTHORIZED,
            },
            ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimedOut => StatusCode::REQUEST_TIMEOUT,
            ApiError::MalformedBody | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            ApiError::Auth(e) => with_retry_after(detail(status, cookie_api_text(e)), e),
            ApiError::Token(e) => {
                let body = match e {
                    AuthError::InvalidRefreshToken
                    | AuthError::InvalidAccessToken
                    | AuthError::MissingRefreshToken
                    | AuthError::MissingAccessToken => {
                        serde_json::json!({ "detail": TOKEN_NOT_VALID, "code": TOKEN_NOT_VALID_CODE })
                    }
                    AuthError::BlacklistedToken | AuthError::RefreshTokenReused => {
                        serde_json::json!({ "detail": TOKEN_BLACKLISTED, "code": TOKEN_NOT_VALID_CODE })
                    }
                    AuthError::InvalidTokenUser => {
                        serde_json::json!({ "detail": NO_ACTIVE_ACCOUNT_FOR_TOKEN })
                    }
                    other => serde_json::json!({ "detail": cookie_api_text(other) }),
                };
                with_retry_after(json(status, &body), e)
            }
            ApiError::Csrf => detail(status, CSRF_FAILED),
            ApiError::BodyTooLarge => detail(status, BODY_TOO_LARGE),
            ApiError::BodyTimedOut => {
                let mut resp = detail(status, BODY_TIMED_OUT);
                // The rest of the body may still come: the connection cannot be reused.
                resp.head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
                resp
            }
            ApiError::MalformedBody => detail(status, MALFORMED_BODY),
            ApiError::BadRequest(body) => json(status, body),
            ApiError::NotFound => detail(status, NOT_FOUND),
            ApiError::MethodNotAllowed(method) => {
                detail(status, &format!("Method \"{method}\" not allowed."))
            }
        }
    }
}
