//! The SimpleJWT-compatible JSON API (TOKEN_API_PREFIX, `/api/token/` by default): the same
//! `auth` flows as the cookie API, with tokens in JSON bodies and no cookies, answering as
//! djangorestframework-simplejwt's views do. Its handlers return `TokenApiError`, so a flow's
//! outcome can only be worded as SimpleJWT words it. Depends on `state`, `body`, `extract`,
//! `outcomes` and `error`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::body::{credentials, read_fields, required_field};
use super::error::{self, TokenApiError};
use super::extract::{normalize_token, requester};
use super::outcomes::{login_outcome, refresh_outcome};
use super::state::AppState;
use crate::metrics::RefreshOutcome;

// `{"refresh": "<token>"}`, for refresh and blacklist. "Blank" is Python's `str.strip()` leaving
// nothing (see `body::Credentials`).
#[derive(Serialize, ToSchema)]
pub struct RefreshField {
    #[schema(
        min_length = 1,
        pattern = r"[^\t\n\v\f\r \u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub refresh: String,
}

// `{"token": "<token>"}`, for verify.
#[derive(Serialize, ToSchema)]
pub struct TokenField {
    #[schema(
        min_length = 1,
        pattern = r"[^\t\n\v\f\r \u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub token: String,
}

// The pair `obtain` answers, its fields in the order serde_json has always written them: by name.
#[derive(Serialize, ToSchema)]
pub struct TokenPair<'a> {
    pub access: &'a str,
    pub refresh: &'a str,
}

/// `refresh` is present when ROTATE_REFRESH_TOKENS is on.
#[derive(Serialize, ToSchema)]
pub struct Refreshed<'a> {
    pub access: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<&'a str>,
}

// `{}`: verify's and blacklist's success.
#[derive(Serialize, ToSchema)]
pub struct Empty {}

/// A token field: `Bearer ` and quotes are tolerated as in the cookie API.
fn token_field(object: &Map<String, Value>, name: &str) -> Result<String, TokenApiError> {
    let raw = required_field(object, name)?;
    Ok(normalize_token(&raw).unwrap_or(raw))
}

pub async fn obtain(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TokenApiError> {
    let login = credentials(&read_fields(&req, payload).await?)?;
    let result = state
        .auth
        .login(
            &login.username,
            &login.password,
            true,
            &requester(&req, &state.browser.trusted_proxies),
        )
        .await;
    state.metrics.login(login_outcome(&result));
    let tokens = result?;
    Ok(error::json(
        StatusCode::OK,
        &TokenPair {
            access: &tokens.access,
            refresh: &tokens.refresh,
        },
    ))
}

pub async fn refresh(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TokenApiError> {
    let object = read_fields(&req, payload).await?;
    let token = token_field(&object, "refresh").inspect_err(|_| {
        state.metrics.refresh(RefreshOutcome::Missing);
    })?;
    let result = state
        .auth
        .refresh(&token, &requester(&req, &state.browser.trusted_proxies))
        .await;
    state.metrics.refresh(refresh_outcome(&result));
    let refreshed = result?;
    let tokens = &refreshed.tokens;
    Ok(error::json(
        StatusCode::OK,
        &Refreshed {
            access: &tokens.access,
            // With rotation off SimpleJWT answers the access token alone.
            refresh: refreshed.rotated().then_some(tokens.refresh.as_str()),
        },
    ))
}

pub async fn verify(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TokenApiError> {
    let object = read_fields(&req, payload).await?;
    let token = token_field(&object, "token")?;
    state.auth.verify(&token).await?;
    Ok(error::json(StatusCode::OK, &Empty {}))
}

pub async fn blacklist(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, TokenApiError> {
    let object = read_fields(&req, payload).await?;
    let token = token_field(&object, "refresh")?;
    state.auth.blacklist(&token).await?;
    Ok(error::json(StatusCode::OK, &Empty {}))
}
