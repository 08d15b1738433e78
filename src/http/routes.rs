//! The route table: every route of both APIs and of operations, each declared once with its
//! name, method, path, handler and documentation. The actix router (`configure`,
//! `configure_private`), the route names of the logs and metrics (`names`) and `/openapi.json`
//! are all made from it; adding a route is a handler and one entry here. Depends on the handler
//! modules, `router` and `openapi`.

use actix_web::web;

use super::body::Credentials;
use super::cookie_api::{self, Me, OptionalRefresh, SessionView};
use super::error::{Detail, FieldErrors, TokenError};
use super::ops::{self, Jwks, OpenApiJson, Status};
use super::pages;
use super::router::{
    Answer, Api, Body, Doc, Listener, Route, Verb, handler, json, json_list, optional, required,
};
use super::token_api::{self, Empty, RefreshField, Refreshed, TokenField, TokenPair};
use crate::config::RouteSettings;

const UNAVAILABLE: Answer = (
    503,
    "The store cannot be reached (fails closed)",
    json::<Detail>(),
);
const TOO_LARGE: Answer = (413, "Body over 16 KiB", json::<Detail>());
const TIMED_OUT: Answer = (
    408,
    "The body did not arrive within REQUEST_BODY_TIMEOUT; the connection is closed",
    json::<Detail>(),
);
const NOT_SIGNED_IN: &str = "Not provided, or invalid, expired or revoked";
// The answers of both login routes (the cookie login and SimpleJWT's obtain) beyond the above.
const BAD_FIELDS: Answer = (
    400,
    "A field is missing or malformed",
    json::<FieldErrors>(),
);
const BAD_CREDENTIALS: Answer = (
    401,
    "No active account found with the given credentials",
    json::<Detail>(),
);
const THROTTLED: Answer = (
    429,
    "Too many failed logins; see Retry-After",
    json::<Detail>(),
);

/// Every route. The router tries resources in this order, so the hot routes come first.
pub static ROUTES: &[Route] = &[
    Route {
        name: "cookie.refresh",
        api: Api::Cookie,
        verb: Verb::Post,
        path: "token/refresh/",
        listener: Listener::Public,
        handler: handler!(cookie_api::refresh),
        doc: Doc {
            summary: "Rotate the refresh token from the cookie (or the body); new cookies",
            request: optional::<OptionalRefresh>(),
            responses: &[
                (
                    200,
                    "Token refreshed; both cookies replaced",
                    json::<Detail>(),
                ),
                (
                    401,
                    "Not provided, invalid, expired, revoked or user inactive; cookies expired",
                    json::<Detail>(),
                ),
                (403, "CSRF check failed", json::<Detail>()),
                TIMED_OUT,
                TOO_LARGE,
                UNAVAILABLE,
            ],
            path_values: None,
        },
    },
    Route {
        name: "token.refresh",
        api: Api::Token,
        verb: Verb::Post,
        path: "refresh/",
        listener: Listener::Public,
        handler: handler!(token_api::refresh),
        doc: Doc {
            summary: "SimpleJWT: refresh (and rotate) a refresh token",
            request: required::<RefreshField>(),
            responses: &[
                (
                    200,
                    "A new access token, and a new refresh token when rotating",
                    json::<Refreshed>(),
                ),
                (
                    400,
                    "The field is missing or malformed",
                    json::<FieldErrors>(),
                ),
                (
                    401,
                    "token_not_valid (invalid, expired or blacklisted) or no active account",
                    json::<TokenError>(),
                ),
                TIMED_OUT,
                TOO_LARGE,
                UNAVAILABLE,
            ],
            path_values: None,
        },
    },
    Route {
        name: "token.obtain",
        api: Api::Token,
        verb: Verb::Post,
        path: "",
        listener: Listener::Public,
        handler: handler!(token_api::obtain),
        doc: Doc {
            summary: "SimpleJWT: obtain a token pair",
            request: required::<Credentials>(),
            responses: &[
                (200, "The pair", json::<TokenPair>()),
                BAD_FIELDS,
                BAD_CREDENTIALS,
                TIMED_OUT,
                TOO_LARGE,
                THROTTLED,
                UNAVAILABLE,
            ],
            path_values: None,
        },
    },
    Route {
        name: "token.verify",
        api: Api::Token,
        verb: Verb::Post,
        path: "verify/",
        listener: Listener::Public,
        handler: handler!(token_api::verify),
        doc: Doc {
            summary: "SimpleJWT: verify a token of any type (access, refresh, sliding, or none)",
            request: required::<TokenField>(),
            responses: &[
                (200, "Valid", json::<Empty>()),
                (
                    400,
                    "The field is missing or malformed",
                    json::<FieldErrors>(),
                ),
                (
                    401,
                    "token_not_valid or no active account",
                    json::<TokenError>(),
                ),
                TIMED_OUT,
                TOO_LARGE,
                UNAVAILABLE,
            ],
            path_values: None,
        },
    },
    Route {
        name: "token.blacklist",
        api: Api::Token,
        verb: Verb::Post,
        path: "blacklist/",
        listener: Listener::Public,
        handler: handler!(token_api::blacklist),
        doc: Doc {
            summary: "SimpleJWT: blacklist a refresh token (revokes its session)",
            request: required::<RefreshField>(),
            responses: &[
                (200, "Blacklisted", json::<Empty>()),
                (
                    400,
                    "The field is missing or malformed",
                    json::<FieldErrors>(),
                ),
                (401, "token_not_valid", json::<TokenError>()),
                TIMED_OUT,
                TOO_LARGE,
                UNAVAILABLE,
            ],
            path_values: None,
        },
    },
    Route {
        name: "cookie.me",
        api: Api::Cookie,
        verb: Verb::Get,
        path: "me/",
        listener: Listener::Public,
        handler: handler!(cookie_api::me),
        doc: Doc {
            summary: "The user of the access token (cookie or Authorization: Bearer)",
            request: None,
            responses: &[
                (200, "The user", json::<Me>()),
                (401, NOT_SIGNED_IN, json::<Detail>()),
                UNAVAILABLE,
            ],
            path_values: None,
        },
    },
    Route {
        name: "cookie.login",
        api: Api::Cookie,
        verb: Verb::Post,
        path: "login/",
        listener: Listener::Public,
        handler: handler!(cookie_api::login),
        doc: Doc {
            summary: "Log in: sets the access and refresh cookies",
            request: required::<Credentials>(),
            responses: &[
                (200, "Logged in; both cookies set", json::<Detail>()),
                BAD_FIELDS,
                BAD_CREDENTIALS,
                (
                    403,
                    "CSRF check failed: posted from a foreign origin (login CSRF)",
                    json::<Detail>(),
                ),
                TIMED_OUT,
                TOO_LARGE,
                THROTTLED,
                UNAVAILABLE,
            ],
            path_values: None,
        },
    },
    Route {
        name: "cookie.logout",
        api: Api::Cookie,
        verb: Verb::Post,
        path: "logout/",
        listener: Listener::Public,
        handler: handler!(cookie_api::logout),
        doc: Doc {
            summary: "Revoke the session (or all sessions with {\"all\": true}); cookies expired",
            request: optional::<OptionalRefresh>(),
            responses: &[
                (
                    200,
                    "Logged out (also when there was nothing to revoke)",
                    json::<Detail>(),
                ),
                (403, "CSRF check failed", json::<Detail>()),
                TIMED_OUT,
                TOO_LARGE,
                UNAVAILABLE,
            ],
            path_values: None,
        },
    },
    Route {
        name: "cookie.sessions",
        api: Api::Cookie,
        verb: Verb::Get,
        path: "sessions/",
        listener: Listener::Public,
        handler: handler!(cookie_api::sessions),
        doc: Doc {
            summary: "The caller's live sessions, the current one marked",
            request: None,
            responses: &[
                (
                    200,
                    "The sessions, oldest first",
                    json_list::<SessionView>(),
                ),
                (401, NOT_SIGNED_IN, json::<Detail>()),
                UNAVAILABLE,
            ],
            path_values: None,
        },
    },
    Route {
        name: "cookie.session",
        api: Api::Cookie,
        verb: Verb::Delete,
        path: "sessions/{id}/",
        listener: Listener::Public,
        handler: handler!(cookie_api::end_session),
        doc: Doc {
            summary: "End one of the caller's sessions",
            request: None,
            responses: &[
                (200, "Session ended", json::<Detail>()),
                (401, NOT_SIGNED_IN, json::<Detail>()),
                (403, "CSRF check failed", json::<Detail>()),
                (404, "No such session of the caller's", json::<Detail>()),
                UNAVAILABLE,
            ],
            path_values: None,
        },
    },
    Route {
        name: "healthz",
        api: Api::Ops,
        verb: Verb::Get,
        path: "/healthz",
        listener: Listener::Both,
        handler: handler!(ops::healthz),
        doc: Doc {
            summary: "The process is alive",
            request: None,
            responses: &[(200, "Alive", json::<Status>())],
            path_values: None,
        },
    },
    Route {
        name: "readyz",
        api: Api::Ops,
        verb: Verb::Get,
        path: "/readyz",
        listener: Listener::Both,
        handler: handler!(ops::readyz),
        doc: Doc {
            summary: "The store answers",
            request: None,
            responses: &[(200, "Ready", json::<Status>()), UNAVAILABLE],
            path_values: None,
        },
    },
    Route {
        name: "metrics",
        api: Api::Ops,
        verb: Verb::Get,
        path: "/metrics",
        listener: Listener::PrivateWhenSet,
        handler: handler!(ops::metrics),
        doc: Doc {
            summary: "Prometheus metrics (text exposition format)",
            request: None,
            responses: &[(200, "Prometheus text", Body::Untyped(|| vec!["text/plain"]))],
            path_values: None,
        },
    },
    Route {
        name: "openapi",
        api: Api::Ops,
        verb: Verb::Get,
        path: "/openapi.json",
        listener: Listener::Public,
        handler: handler!(ops::openapi),
        doc: Doc {
            summary: "This document",
            request: None,
            responses: &[(
                200,
                "OpenAPI 3.1",
                Body::Untyped(|| vec!["application/json"]),
            )],
            path_values: None,
        },
    },
    Route {
        name: "jwks",
        api: Api::Ops,
        verb: Verb::Get,
        path: "/.well-known/jwks.json",
        listener: Listener::Public,
        handler: handler!(ops::jwks),
        doc: Doc {
            summary: "The public keys that verify tokens (empty for HS*), current and retired",
            request: None,
            responses: &[(200, "A JWK Set", json::<Jwks>())],
            path_values: None,
        },
    },
    Route {
        name: "page",
        api: Api::Ops,
        verb: Verb::Get,
        path: "/",
        listener: Listener::Public,
        handler: handler!(pages::index),
        doc: Doc {
            summary: "The demo page",
            request: None,
            responses: &[(200, "HTML", Body::Untyped(|| vec!["text/html"]))],
            path_values: None,
        },
    },
    Route {
        name: "static",
        api: Api::Ops,
        verb: Verb::Get,
        path: "/static/{file}",
        listener: Listener::Public,
        handler: handler!(pages::asset),
        doc: Doc {
            summary: "The demo page's assets and the browser client module (refreshd-client.js)",
            request: None,
            responses: &[
                (200, "The file", Body::Untyped(pages::asset_media_types)),
                (404, "No such file", json::<Detail>()),
            ],
            path_values: Some(pages::asset_names),
        },
    },
];

/// The name of every route, in table order, as the logs and metrics know them.
pub fn names() -> Vec<&'static str> {
    ROUTES.iter().map(|r| r.name).collect()
}

/// The routes the public listener serves; `public_metrics` is false with METRICS_ADDR.
pub fn public(public_metrics: bool) -> impl Iterator<Item = &'static Route> {
    ROUTES
        .iter()
        .filter(move |r| r.listener.on_public(public_metrics))
}

/// Every route of the public listener under its prefix, and the OpenAPI document of exactly
/// those routes (serialised once per worker, served as is).
pub fn configure(cfg: &mut web::ServiceConfig, routes: &RouteSettings, public_metrics: bool) {
    let document = super::openapi::document(public(public_metrics), routes);
    let bytes = serde_json::to_vec(&document).unwrap_or_else(|_| b"{}".to_vec());
    cfg.app_data(web::Data::new(OpenApiJson(bytes.into())));
    for route in public(public_metrics) {
        (route.handler)(cfg, route, &route.full_path(routes));
    }
}

/// The private listener of METRICS_ADDR: what a scraper and an orchestrator ask, nothing else.
pub fn configure_private(cfg: &mut web::ServiceConfig) {
    for route in ROUTES.iter().filter(|r| r.listener.on_private()) {
        debug_assert_eq!(
            route.api,
            Api::Ops,
            "{}: private routes have absolute paths",
            route.name
        );
        (route.handler)(cfg, route, route.path);
    }
}
