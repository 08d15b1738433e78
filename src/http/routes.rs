//! The route table, the cookie API (`/api/auth/...` by default) and the health route. Each
//! handler is a thin skin over an `auth` flow: read the request, call the flow, turn the outcome
//! into cookies and a body. The SimpleJWT-compatible skin is in `simplejwt`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::{self, ApiError, detail};
use super::extract::{
    bearer_token, cookie_token, json_flag, json_string_field, read_body, requester,
};
use crate::auth::{AuthError, IssuedTokens};
use crate::config::RouteSettings;
use crate::domain::SessionId;
use crate::store::{Eviction, SessionInfo};

/// The name of every route, as the router, the logs and the metrics know it.
pub const ROUTE_NAMES: &[&str] = &[
    "cookie.login",
    "cookie.refresh",
    "cookie.logout",
    "cookie.me",
    "cookie.sessions",
    "cookie.session",
    "token.obtain",
    "token.refresh",
    "token.verify",
    "token.blacklist",
    "healthz",
    "readyz",
    "metrics",
    "openapi",
    "jwks",
    "page",
    "static",
];

/// Registers `path` under `name`, with and without its trailing slash, as two plain resources
/// (a resource with two patterns is matched by a regex set on every request; two single-pattern
/// resources are plain string compares). Other methods get a JSON 405.
pub(super) fn add<F, Args>(
    cfg: &mut web::ServiceConfig,
    name: &'static str,
    method: Method,
    path: &str,
    handler: F,
) where
    F: actix_web::Handler<Args> + Clone + 'static,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    debug_assert!(
        ROUTE_NAMES.contains(&name),
        "{name} is missing from ROUTE_NAMES"
    );
    let bare = path.trim_end_matches('/');
    let mut patterns = vec![format!("{bare}/")];
    if !bare.is_empty() {
        patterns.push(bare.to_owned());
    }
    for pattern in patterns {
        let allow = method.clone();
        cfg.service(
            web::resource(pattern)
                .name(name)
                .default_service(web::to(move |req: HttpRequest| {
                    let allow = allow.clone();
                    async move { method_not_allowed(&req, &allow) }
                }))
                .route(web::route().method(method.clone()).to(handler.clone())),
        );
    }
}

/// Every route of both APIs, under their configured prefixes. The hot routes come first: the
/// router tries resources in order.
/// With `public_metrics` false (METRICS_ADDR is set), /metrics is left to the private listener.
pub fn configure(cfg: &mut web::ServiceConfig, prefixes: &RouteSettings, public_metrics: bool) {
    let c = &prefixes.cookie_api;
    let (get, post, delete) = (Method::GET, Method::POST, Method::DELETE);
    add(
        cfg,
        "cookie.refresh",
        post.clone(),
        &format!("{c}token/refresh/"),
        refresh,
    );
    super::simplejwt::configure(cfg, &prefixes.token_api);
    add(cfg, "cookie.me", get.clone(), &format!("{c}me/"), me);
    add(
        cfg,
        "cookie.login",
        post.clone(),
        &format!("{c}login/"),
        login,
    );
    add(cfg, "cookie.logout", post, &format!("{c}logout/"), logout);
    add(
        cfg,
        "cookie.sessions",
        get.clone(),
        &format!("{c}sessions/"),
        sessions,
    );
    add(
        cfg,
        "cookie.session",
        delete,
        &format!("{c}sessions/{{id}}/"),
        end_session,
    );
    add(cfg, "healthz", get.clone(), "/healthz", healthz);
    add(cfg, "readyz", get.clone(), "/readyz", readyz);
    if public_metrics {
        add(cfg, "metrics", get.clone(), "/metrics", metrics);
    }
    add(cfg, "openapi", get.clone(), "/openapi.json", openapi);
    add(cfg, "jwks", get.clone(), "/.well-known/jwks.json", jwks);
    add(cfg, "page", get.clone(), "/", super::pages::index);
    add(cfg, "static", get, "/static/{file}", super::pages::asset);
}

/// The private listener of METRICS_ADDR: what a scraper and an orchestrator ask, nothing else.
pub fn configure_private(cfg: &mut web::ServiceConfig) {
    add(cfg, "metrics", Method::GET, "/metrics", metrics);
    add(cfg, "readyz", Method::GET, "/readyz", readyz);
    add(cfg, "healthz", Method::GET, "/healthz", healthz);
}

/// 405, with the `Allow` header RFC 9110 asks for.
fn method_not_allowed(req: &HttpRequest, allow: &Method) -> HttpResponse {
    let mut resp = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed(
        req.method().to_string(),
    ));
    if let Ok(v) = HeaderValue::from_str(allow.as_str()) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

pub async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}

async fn healthz() -> HttpResponse {
    error::json(StatusCode::OK, &json!({ "status": "ok" }))
}

/// Ready when the store answers a PING within STORE_TIMEOUT.
/// Ready: the store answers and is fit (SPEC 8: not evicting, replicas as required). The reason
/// goes to the log.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.auth.store();
    let unfit = match store.ping().await {
        Err(e) => Some(e.to_string()),
        Ok(()) => match store.fitness().await {
            Err(e) => Some(e.to_string()),
            Ok(fitness) => match (fitness.eviction, fitness.replicas) {
                (Eviction::Evicts { policy, maxmemory }, _) => Some(format!(
                    "Redis evicts keys (maxmemory {maxmemory} bytes, maxmemory-policy {policy}); set maxmemory-policy noeviction"
                )),
                (_, Some((online, needed))) if online < needed => Some(format!(
                    "{online} Redis replica(s) online, REDIS_MIN_REPLICAS={needed}: writes answer 503"
                )),
                _ => None,
            },
        },
    };
    match unfit {
        None => error::json(StatusCode::OK, &json!({ "status": "ready" })),
        Some(why) => {
            log::warn!("not ready: {why}");
            detail(StatusCode::SERVICE_UNAVAILABLE, error::UNAVAILABLE)
        }
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
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
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let mut resp = error::json(StatusCode::OK, &state.auth.codec().jwks());
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    error::json(
        StatusCode::OK,
        &super::openapi::document(&state.routes, state.public_metrics),
    )
}

/// The metrics outcome of a refresh.
pub(super) fn refresh_outcome(
    result: &Result<crate::auth::Refreshed, AuthError>,
) -> crate::metrics::RefreshOutcome {
    use crate::metrics::RefreshOutcome as O;
    use crate::store::AnswerKind;
    match result {
        // Answered with a token issued before: a lost response, a race, a slow tab.
        Ok(r) if matches!(r.kind, AnswerKind::Repeated | AnswerKind::Forgiven) => O::GraceReplay,
        Ok(_) => O::Ok,
        Err(AuthError::MissingRefreshToken) => O::Missing,
        Err(AuthError::RefreshTokenReused) => O::ReuseRevoked,
        Err(AuthError::InvalidTokenUser) => O::InvalidUser,
        Err(AuthError::StoreUnavailable(_)) => O::StoreUnavailable,
        Err(AuthError::Internal(_)) => O::Error,
        Err(_) => O::Invalid,
    }
}

/// The metrics outcome of a login.
pub(super) fn login_outcome<T>(result: &Result<T, AuthError>) -> crate::metrics::LoginOutcome {
    use crate::metrics::LoginOutcome as O;
    match result {
        Ok(_) => O::Ok,
        Err(AuthError::InvalidCredentials) => O::InvalidCredentials,
        Err(AuthError::TooManyLoginAttempts { .. }) => O::Throttled,
        Err(AuthError::StoreUnavailable(_)) => O::StoreUnavailable,
        Err(_) => O::Error,
    }
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
    let age = |max_age: u64| tokens.persistent.then_some(max_age);
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
fn check_csrf(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    if super::csrf::allows(&state.browser, req) {
        Ok(())
    } else {
        state.metrics.csrf_refused();
        Err(ApiError::Csrf)
    }
}

/// A refresh token from the refresh cookie (preferred) or the JSON body, and whether it came from
/// the cookie (and so needs the CSRF check).
fn refresh_token_of(req: &HttpRequest, body: &[u8], state: &AppState) -> (Option<String>, bool) {
    match cookie_token(req, state.cookies.refresh_name()) {
        Some(token) => (Some(token), true),
        None => (
            json_string_field(body, "refresh").and_then(|v| super::extract::normalize_token(&v)),
            false,
        ),
    }
}

async fn login(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // Login CSRF: a login sets the session cookies, so a cross-site form or text/plain post
    // could log the victim's browser into the attacker's account. It passes the same check as
    // a cookie-authenticated request, before anything is read or counted. Clients that send
    // neither Origin nor Referer (mobile apps, curl) are not browsers on another site.
    check_csrf(&req, &state)?;
    let body = read_body(&req, payload).await?;
    let object = json_object(&body)?;
    let (username, password) = credentials(&object)?;
    // "Remember me" is on unless the client says `"remember": false`.
    let remember = object.get("remember") != Some(&Value::Bool(false));
    let result = state
        .auth
        .login(
            &username,
            &password,
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

async fn refresh(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload).await?;
    let (token, from_cookie) = refresh_token_of(&req, &body, &state);
    if from_cookie {
        check_csrf(&req, &state)?;
    }
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
            detail(StatusCode::OK, error::REFRESHED),
            issued_cookies(&state, &refreshed.tokens),
        )),
        Err(e) => {
            let e = ApiError::from(e);
            let resp = actix_web::ResponseError::error_response(&e);
            // A 401 tells the browser to stop sending dead cookies; a 503 must not log anyone out.
            Ok(if resp.status() == StatusCode::UNAUTHORIZED {
                set_cookies(resp, state.cookies.expire_both())
            } else {
                resp
            })
        }
    }
}

async fn logout(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload).await?;
    let (token, from_cookie) = refresh_token_of(&req, &body, &state);
    if from_cookie {
        check_csrf(&req, &state)?;
    }
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

/// The access token from `Authorization: Bearer` or, failing that, the access cookie; and
/// whether it came from the cookie (and so needs the CSRF check on unsafe methods).
fn access_token_of(req: &HttpRequest, state: &AppState) -> (Option<String>, bool) {
    match bearer_token(req) {
        Some(token) => (Some(token), false),
        None => (cookie_token(req, state.cookies.access_name()), true),
    }
}

async fn me(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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

async fn sessions(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (token, _) = access_token_of(&req, &state);
    let (user, current) = state.auth.authenticate_session(token.as_deref()).await?;
    let list = state.auth.sessions(&user).await?;
    let body: Vec<SessionView<'_>> = list.iter().map(|s| SessionView::new(s, &current)).collect();
    Ok(error::json(StatusCode::OK, &body))
}

async fn end_session(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (token, from_cookie) = access_token_of(&req, &state);
    if from_cookie && token.is_some() {
        check_csrf(&req, &state)?;
    }
    let (user, current) = state.auth.authenticate_session(token.as_deref()).await?;
    // Someone else's session id answers exactly as an unknown one.
    let sid = req
        .match_info()
        .get("id")
        .and_then(SessionId::parse)
        .ok_or(ApiError::NotFound)?;
    if !state.auth.end_session(&user, &sid).await? {
        return Err(ApiError::NotFound);
    }
    let resp = detail(StatusCode::OK, error::SESSION_ENDED);
    Ok(if sid == current {
        set_cookies(resp, state.cookies.expire_both())
    } else {
        resp
    })
}

/// One entry of the session list.
#[derive(serde::Serialize, utoipa::ToSchema)]
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

/// The body of `me`, in the contract's field order.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Me<'a> {
    id: &'a str,
    username: &'a str,
    is_active: bool,
}

/// `username` and `password`, with Django REST framework's field errors.
pub fn credentials(object: &Map<String, Value>) -> Result<(String, String), ApiError> {
    let mut errors = Map::new();
    let username = string_field(object, "username", &mut errors);
    let password = string_field(object, "password", &mut errors);
    match (username, password) {
        (Some(u), Some(p)) if errors.is_empty() => Ok((u, p)),
        _ => Err(ApiError::BadRequest(Value::Object(errors))),
    }
}

/// The body as a JSON object; an empty body is an empty object, as in Django REST framework.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(json!({ "detail": format!("JSON parse error - {e}") }))
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
            Err(ApiError::BadRequest(json!({
                "non_field_errors": [format!("Invalid data. Expected a dictionary, but got {got}.")]
            })))
        }
    }
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
    errors: &mut Map<String, Value>,
) -> Option<String> {
    let problem = match object.get(name) {
        None => error::FIELD_REQUIRED,
        Some(Value::Null) => error::FIELD_NULL,
        Some(Value::String(s)) if drf_trim(s).is_empty() => error::FIELD_BLANK,
        Some(Value::String(s)) => return Some(drf_trim(s).to_owned()),
        Some(Value::Number(n)) => return Some(n.to_string()),
        Some(_) => error::FIELD_NOT_STRING,
    };
    errors.insert(name.to_owned(), json!([problem]));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_request(body: &[u8]) -> Value {
        match json_object(body).and_then(|o| credentials(&o)) {
            Err(ApiError::BadRequest(v)) => v,
            other => panic!("expected a 400, got {other:?}"),
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
            ("42".into(), "pw".into())
        );
        // As SimpleJWT's serializer (both of its fields are trimming CharFields).
        assert_eq!(
            credentials(&json_object(br#"{"username":" alice\n","password":" pw "}"#).unwrap())
                .unwrap(),
            ("alice".into(), "pw".into())
        );
    }
}
