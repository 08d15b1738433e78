//! The cookie API (COOKIE_API_PREFIX, `/api/auth/` by default): tokens travel in HttpOnly cookies
//! and every answer is in this API's words (`CookieApiError`). Each handler is a thin skin over an
//! `auth` flow: read the request, call the flow, turn the outcome into cookies and a body.
//! Depends on `state`, `body`, `cookies`, `csrf`, `device`, `extract`, `outcomes` and `error`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use serde_json::Value;
use time::Duration;
use utoipa::ToSchema;

use super::body::{credentials, json_flag, json_object, json_string_field, read_body};
use super::error::{self, CookieApiError, detail};
use super::extract::{bearer_token, normalize_token, requester};
use super::outcomes::{login_outcome, refresh_outcome};
use super::state::AppState;
use crate::auth::{AuthError, IssuedTokens, SessionInfo};
use crate::domain::SessionId;

/// The optional body of the cookie API's refresh and logout: `{"refresh": "<token>"}` for
/// clients without cookies, and `{"all": true}` to log out everywhere. Any other body, JSON or
/// not, counts as no body, so every value is accepted here.
#[derive(Serialize, ToSchema)]
pub struct OptionalRefresh(pub serde_json::Value);

/// The body of `me`, in the contract's field order.
#[derive(Serialize, ToSchema)]
pub struct Me<'a> {
    id: &'a str,
    username: &'a str,
    is_active: bool,
}

/// One entry of the session list.
#[derive(Serialize, ToSchema)]
pub struct SessionView<'a> {
    id: &'a str,
    created: String,
    last_refreshed: Option<String>,
    user_agent: &'a str,
    /// The browser and system of `user_agent`, as a person recognises them ("Chrome 156 on
    /// Linux", "Safari on iPhone"); derived when the list is read, from the stored user agent.
    device: String,
    client_address: &'a str,
    /// The absolute end, when SESSION_MAX_LIFETIME is set.
    ends_at: Option<String>,
    current: bool,
}

impl<'a> SessionView<'a> {
    fn new(s: &'a SessionInfo, current: &SessionId) -> Self {
        let at = |ms: u64| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
            )
            .to_string()
        };
        Self {
            id: s.id.as_str(),
            created: at(s.created_ms),
            last_refreshed: s.last_refreshed_ms.map(at),
            user_agent: &s.user_agent,
            device: super::device::describe(&s.user_agent),
            client_address: &s.client_address,
            ends_at: s.ends_at.map(|e| at(e * 1000)),
            current: s.id == *current,
        }
    }
}

pub async fn login(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CookieApiError> {
    // Login CSRF: a login sets the session cookies, so a cross-site form or text/plain post
    // could log the victim's browser into the attacker's account. It passes the same check as
    // a cookie-authenticated request, before anything is read or counted. Clients that send
    // neither Origin nor Referer (mobile apps, curl) are not browsers on another site.
    check_csrf(&req, &state)?;
    let body = read_body(&req, payload).await?;
    let object = json_object(&body)?;
    let login = credentials(&object)?;
    // "Remember me" is on unless the client says `"remember": false`.
    let remember = object.get("remember") != Some(&Value::Bool(false));
    let result = state
        .auth
        .login(
            &login.username,
            &login.password,
            remember,
            &requester(&req, &state.browser.trusted_proxies),
        )
        .await;
    state.metrics.login(login_outcome(&result));
    let tokens = result?;
    Ok(set_cookies(
        detail(StatusCode::OK, error::LOGGED_IN),
        issued_cookies(&state, &tokens),
    ))
}

pub async fn refresh(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CookieApiError> {
    let (token, _) = presented_refresh(&req, payload, &state).await?;
    let outcome = match token {
        None => Err(AuthError::MissingRefreshToken),
        Some(token) => {
            state
                .auth
                .refresh(&token, &requester(&req, &state.browser.trusted_proxies))
                .await
        }
    };
    state.metrics.refresh(refresh_outcome(&outcome));
    match outcome {
        Ok(refreshed) => Ok(set_cookies(
            error::refreshed(),
            issued_cookies(&state, &refreshed.tokens),
        )),
        Err(e) => {
            let resp = CookieApiError::from(e).error_response();
            // A 401 tells the browser to stop sending dead cookies; a 503 must not log anyone out.
            Ok(if resp.status() == StatusCode::UNAUTHORIZED {
                set_cookies(resp, state.cookies.expire_both())
            } else {
                resp
            })
        }
    }
}

pub async fn logout(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CookieApiError> {
    let (token, body) = presented_refresh(&req, payload, &state).await?;
    if json_flag(&body, "all") {
        state.auth.logout_all(token.as_deref()).await?;
    } else {
        state.auth.logout(token.as_deref()).await?;
    }
    Ok(set_cookies(
        detail(StatusCode::OK, error::LOGGED_OUT),
        state.cookies.expire_both(),
    ))
}

pub async fn me(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CookieApiError> {
    let (token, _) = access_token_of(&req, &state);
    let user = state.auth.authenticate(token.as_deref()).await?;
    Ok(error::json(
        StatusCode::OK,
        &Me {
            id: user.id.as_str(),
            username: user.username.as_str(),
            is_active: user.is_active,
        },
    ))
}

pub async fn sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CookieApiError> {
    let (token, _) = access_token_of(&req, &state);
    let (user, current) = state.auth.authenticate_session(token.as_deref()).await?;
    let list = state.auth.sessions(&user).await?;
    let body: Vec<SessionView<'_>> = list.iter().map(|s| SessionView::new(s, &current)).collect();
    Ok(error::json(StatusCode::OK, &body))
}

pub async fn end_session(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CookieApiError> {
    let (token, from_cookie) = access_token_of(&req, &state);
    if from_cookie && token.is_some() {
        check_csrf(&req, &state)?;
    }
    let (user, current) = state.auth.authenticate_session(token.as_deref()).await?;
    let sid = req
        .match_info()
        .get("id")
        .and_then(SessionId::parse)
        .ok_or(CookieApiError::NoSuchSession)?;
    if !state.auth.end_session(&user, &sid).await? {
        return Err(CookieApiError::NoSuchSession);
    }
    let resp = detail(StatusCode::OK, error::SESSION_ENDED);
    Ok(if sid == current {
        set_cookies(resp, state.cookies.expire_both())
    } else {
        resp
    })
}

fn set_cookies(
    mut resp: HttpResponse,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> HttpResponse {
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// Both cookies of a pair: persistent (`Max-Age`) unless the session is a browser-session one.
fn issued_cookies(state: &AppState, tokens: &IssuedTokens) -> [HeaderValue; 2] {
    let age = |secs: u64| {
        tokens
            .persistent
            .then(|| Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)))
    };
    [
        state
            .cookies
            .access(&tokens.access, age(tokens.access_max_age)),
        state
            .cookies
            .refresh(&tokens.refresh, age(tokens.refresh_max_age)),
    ]
}

/// Refuses (and counts) a cookie-authenticated request from a foreign origin.
fn check_csrf(req: &HttpRequest, state: &AppState) -> Result<(), CookieApiError> {
    if super::csrf::allows(&state.browser, req) {
        Ok(())
    } else {
        state.metrics.csrf_refused();
        Err(CookieApiError::Csrf)
    }
}

/// The body, and the refresh token from the refresh cookie (preferred, and then CSRF-checked) or
/// from the body's `refresh` field: what refresh and logout both read first.
async fn presented_refresh(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Option<String>, web::Bytes), CookieApiError> {
    let body = read_body(req, payload).await?;
    let token = match state.cookies.refresh_token(req) {
        Some(token) => {
            check_csrf(req, state)?;
            Some(token)
        }
        None => json_string_field(&body, "refresh").and_then(|v| normalize_token(&v)),
    };
    Ok((token, body))
}

/// The access token from `Authorization: Bearer` or, failing that, the access cookie; and
/// whether it came from the cookie (and so needs the CSRF check on unsafe methods).
fn access_token_of(req: &HttpRequest, state: &AppState) -> (Option<String>, bool) {
    match bearer_token(req) {
        Some(token) => (Some(token), false),
        None => (state.cookies.access_token(req), true),
    }
}
