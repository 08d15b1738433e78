//! The SimpleJWT-compatible JSON API (`/api/token/...` by default): the same `auth` flows as the
//! cookie API, with tokens in JSON bodies and no cookies, answering as djangorestframework-
//! simplejwt's views do (Django REST framework field errors, `"code": "token_not_valid"`).

use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::{self, ApiError};
use super::extract::{normalize_token, read_body, requester};
use super::routes::{add, credentials, json_object, login_outcome, refresh_outcome, string_field};
use crate::store::AnswerKind;

pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    add(
        cfg,
        "token.refresh",
        Method::POST,
        &format!("{prefix}refresh/"),
        refresh,
    );
    add(cfg, "token.obtain", Method::POST, prefix, obtain);
    add(
        cfg,
        "token.verify",
        Method::POST,
        &format!("{prefix}verify/"),
        verify,
    );
    add(
        cfg,
        "token.blacklist",
        Method::POST,
        &format!("{prefix}blacklist/"),
        blacklist,
    );
}

/// The body's fields, from JSON or (as Django REST framework also accepts) a urlencoded form.
async fn fields(req: &HttpRequest, payload: web::Payload) -> Result<Map<String, Value>, ApiError> {
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

/// A urlencoded form as the fields of an object; every value is a string, as in Django.
pub fn form_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|e| {
        ApiError::BadRequest(json!({ "detail": format!("Form parse error - {e}") }))
    })?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect())
}

/// One required string field, or Django REST framework's 400 naming it.
fn required(object: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    let mut errors = Map::new();
    string_field(object, name, &mut errors).ok_or(ApiError::BadRequest(Value::Object(errors)))
}

/// A token field: `Bearer ` and quotes are tolerated as in the cookie API.
fn token_field(object: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    let raw = required(object, name)?;
    Ok(normalize_token(&raw).unwrap_or(raw))
}

async fn obtain(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (username, password) = credentials(&fields(&req, payload).await?)?;
    let result = state
        .auth
        .login(
            &username,
            &password,
            true,
            &requester(&req, &state.browser.trusted_proxies),
        )
        .await;
    state.metrics.login(login_outcome(&result));
    let tokens = result.map_err(ApiError::Token)?;
    Ok(error::json(
        StatusCode::OK,
        &json!({ "refresh": tokens.refresh, "access": tokens.access }),
    ))
}

async fn refresh(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let object = fields(&req, payload).await?;
    let token = token_field(&object, "refresh").inspect_err(|_| {
        state
            .metrics
            .refresh(crate::metrics::RefreshOutcome::Missing);
    })?;
    let result = state
        .auth
        .refresh(&token, &requester(&req, &state.browser.trusted_proxies))
        .await;
    state.metrics.refresh(refresh_outcome(&result));
    let refreshed = result.map_err(ApiError::Token)?;
    let body = match refreshed.kind {
        // With rotation off SimpleJWT answers the access token alone.
        AnswerKind::Kept => json!({ "access": refreshed.tokens.access }),
        _ => json!({
            "access": refreshed.tokens.access,
            "refresh": refreshed.tokens.refresh,
        }),
    };
    Ok(error::json(StatusCode::OK, &body))
}

async fn verify(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let object = fields(&req, payload).await?;
    let token = token_field(&object, "token")?;
    state.auth.verify(&token).await.map_err(ApiError::Token)?;
    Ok(error::json(StatusCode::OK, &json!({})))
}

async fn blacklist(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let object = fields(&req, payload).await?;
    let token = token_field(&object, "refresh")?;
    state
        .auth
        .blacklist(&token)
        .await
        .map_err(ApiError::Token)?;
    Ok(error::json(StatusCode::OK, &json!({})))
}
