//! The operations routes: liveness, readiness, metrics, the public keys and the OpenAPI document.
//! Each is a thin skin over `auth` or `metrics`. Depends on `state` and `error`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Bytes};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{self, detail};
use super::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Status<'a> {
    pub status: &'a str,
}

/// A JWK Set: `{"keys": [{"kty", "kid", "alg", "use", ...}]}`.
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<serde_json::Value>,
}

/// The OpenAPI document of the public listener, serialised once when the routes are mounted.
pub struct OpenApiJson(pub Bytes);

pub async fn healthz() -> HttpResponse {
    error::json(StatusCode::OK, &Status { status: "ok" })
}

/// Ready: the store answers and is fit (SPEC 8: not evicting, replicas as required). The reason
/// goes to the log.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.auth.readiness().await {
        Ok(()) => error::json(StatusCode::OK, &Status { status: "ready" }),
        Err(why) => {
            log::warn!("not ready: {why}");
            detail(StatusCode::SERVICE_UNAVAILABLE, error::UNAVAILABLE)
        }
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render(&[(
            "refreshd_password_checks_total",
            "Password verifications run by logins (unknown users included).",
            state.auth.password_checks(),
        )]))
}

/// The public keys that verify this server's tokens; caches may keep them for five minutes.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let mut resp = error::json(
        StatusCode::OK,
        &Jwks {
            keys: state.auth.public_keys(),
        },
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

pub async fn openapi(document: web::Data<OpenApiJson>) -> HttpResponse {
    error::json_bytes(StatusCode::OK, document.0.clone())
}
