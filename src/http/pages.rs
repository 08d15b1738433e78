//! The demo page (GET /, rendered from templates/index.html) and its assets from static/, built
//! into the binary so that it runs without files beside it. Depends on `state` and `error`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::error::{RequestError, detail};
use super::state::AppState;
use crate::domain::Username;

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    cookie_api: &'a str,
    /// "access", "refresh" or "none": which cookies came with the request, so that the page
    /// asks `me` only when it may be logged in (no 401 in the console of a logged-out visitor),
    /// and refreshes first when only the refresh cookie is left.
    session: &'static str,
    demo_user: bool,
    /// ACCESS_TOKEN_LIFETIME as people read it ("15m"), outside production; else empty.
    access_lifetime: String,
}

/// The page may load only its own scripts and styles, talk only to its own origin, and never be
/// framed.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let page = IndexPage {
        cookie_api: &state.routes.cookie_api,
        session: session_hint(&req, &state),
        demo_user: demo_user_exists(&state).await,
        access_lifetime: if state.demo_hint {
            humantime::format_duration(state.auth.settings().access_lifetime).to_string()
        } else {
            String::new()
        },
    };
    match page.render() {
        Ok(html) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::REFERRER_POLICY, "same-origin"))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(html),
        Err(e) => {
            log::error!("demo page: {e}");
            detail(StatusCode::INTERNAL_SERVER_ERROR, super::error::INTERNAL)
        }
    }
}

/// Which of the session's cookies the browser sent with the page. A refresh cookie confined to
/// another path (REFRESH_COOKIE_PATH) never comes with the page, so then it may be there.
fn session_hint(req: &HttpRequest, state: &AppState) -> &'static str {
    if state.cookies.access_token(req).is_some() {
        "access"
    } else if state.cookies.refresh_token(req).is_some() || state.cookies.refresh_path() != "/" {
        "refresh"
    } else {
        "none"
    }
}

/// Outside production, whether an active user `demo` exists, whichever store holds it. A store
/// that does not answer only hides the hint: the page itself needs no store.
async fn demo_user_exists(state: &AppState) -> bool {
    if !state.demo_hint {
        return false;
    }
    let demo = Username::parse("demo").expect("a valid username");
    matches!(state.auth.is_active_user(&demo).await, Ok(true))
}

/// The files under static/, with their content types.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "refreshd-client.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/refreshd-client.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
];

/// The names of the files under static/ (for the OpenAPI document).
pub fn asset_names() -> Vec<&'static str> {
    ASSETS.iter().map(|(name, _, _)| *name).collect()
}

/// Their media types, each once, without parameters.
pub fn asset_media_types() -> Vec<&'static str> {
    let mut types: Vec<&'static str> = ASSETS
        .iter()
        .map(|(_, content_type, _)| content_type.split(';').next().unwrap_or(content_type))
        .collect();
    types.sort_unstable();
    types.dedup();
    types
}

pub async fn asset(req: HttpRequest) -> HttpResponse {
    let name = req.match_info().get("file").unwrap_or("");
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(*body),
        None => actix_web::ResponseError::error_response(&RequestError::NotFound),
    }
}
