//! The OpenAPI 3.1 document of both APIs, served at GET /openapi.json. It is built from
//! `ROUTE_DOCS`, one entry per named route of the router, under the configured prefixes, with the
//! request and response schemas derived from the types the handlers use; a test checks that every
//! route of the app is in it and every path in it is a route of the app.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{
    ArrayBuilder, ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi,
    OpenApiBuilder, PathItem, PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Schema, Type,
};

use super::routes::{Me, SessionView};
use crate::config::RouteSettings;

/// `{"username", "password"}`; a blank value is a 400, as in Django REST framework. "Blank" is
/// Python's `str.strip()` leaving nothing, so the patterns ask for one character outside the
/// set it strips (`routes::drf_trim` strips the same set).
#[derive(Serialize, ToSchema)]
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

/// The optional body of the cookie API's refresh and logout: `{"refresh": "<token>"}` for
/// clients without cookies, and `{"all": true}` to log out everywhere. Any other body, JSON or
/// not, counts as no body, so every value is accepted here.
#[derive(Serialize, ToSchema)]
pub struct OptionalRefresh(pub serde_json::Value);

#[derive(Serialize, ToSchema)]
pub struct RefreshField {
    #[schema(
        min_length = 1,
        pattern = r"[^\t\n\v\f\r \u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub refresh: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenField {
    #[schema(
        min_length = 1,
        pattern = r"[^\t\n\v\f\r \u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

/// `refresh` is present when ROTATE_REFRESH_TOKENS is on.
#[derive(Serialize, ToSchema)]
pub struct Refreshed {
    pub access: String,
    pub refresh: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Detail {
    pub detail: String,
}

/// SimpleJWT's token errors carry `"code": "token_not_valid"`.
#[derive(Serialize, ToSchema)]
pub struct TokenError {
    pub detail: String,
    pub code: Option<String>,
}

/// Django REST framework's field errors: `{"field": ["message"]}`, or `{"detail": "..."}` for a
/// body that is not JSON.
#[derive(Serialize, ToSchema)]
pub struct FieldErrors(pub BTreeMap<String, FieldError>);

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum FieldError {
    Messages(Vec<String>),
    Detail(String),
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Empty {}

/// A JWK Set: `{"keys": [{"kty", "kid", "alg", "use", ...}]}`.
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<serde_json::Value>,
}

#[derive(Clone, Copy)]
enum Api {
    Cookie,
    Token,
    Ops,
}

/// One route as documented. `path` is relative to its API's prefix (`Ops` routes are absolute).
struct RouteDoc {
    name: &'static str,
    method: HttpMethod,
    api: Api,
    path: &'static str,
    summary: &'static str,
    request: Option<(&'static str, bool)>,
    responses: &'static [(u16, &'static str, Option<&'static str>)],
}

/// A named schema, or with a `[]` suffix an array of it.
fn schema_ref(name: &str) -> RefOr<Schema> {
    match name.strip_suffix("[]") {
        Some(item) => ArrayBuilder::new()
            .items(Ref::from_schema_name(item))
            .build()
            .into(),
        None => Ref::from_schema_name(name).into(),
    }
}

const UNAVAILABLE: (u16, &str, Option<&str>) = (
    503,
    "The store cannot be reached (fails closed)",
    Some("Detail"),
);
const TOO_LARGE: (u16, &str, Option<&str>) = (413, "Body over 16 KiB", Some("Detail"));
const TIMED_OUT: (u16, &str, Option<&str>) = (
    408,
    "The body did not arrive within REQUEST_BODY_TIMEOUT; the connection is closed",
    Some("Detail"),
);

const ROUTE_DOCS: &[RouteDoc] = &[
    RouteDoc {
        name: "cookie.login",
        method: HttpMethod::Post,
        api: Api::Cookie,
        path: "login/",
        summary: "Log in: sets the access and refresh cookies",
        request: Some(("Credentials", true)),
        responses: &[
            (200, "Logged in; both cookies set", Some("Detail")),
            (400, "A field is missing or malformed", Some("FieldErrors")),
            (
                401,
                "No active account found with the given credentials",
                Some("Detail"),
            ),
            (
                403,
                "CSRF check failed: posted from a foreign origin (login CSRF)",
                Some("Detail"),
            ),
            TIMED_OUT,
            (413, TOO_LARGE.1, TOO_LARGE.2),
            (
                429,
                "Too many failed logins; see Retry-After",
                Some("Detail"),
            ),
            UNAVAILABLE,
        ],
    },
    RouteDoc {
        name: "cookie.refresh",
        method: HttpMethod::Post,
        api: Api::Cookie,
        path: "token/refresh/",
        summary: "Rotate the refresh token from the cookie (or the body); new cookies",
        request: Some(("OptionalRefresh", false)),
        responses: &[
            (
                200,
                "Token refreshed; both cookies replaced",
                Some("Detail"),
            ),
            (
                401,
                "Not provided, invalid, expired, revoked or user inactive; cookies expired",
                Some("Detail"),
            ),
            (403, "CSRF check failed", Some("Detail")),
            TIMED_OUT,
            (413, TOO_LARGE.1, TOO_LARGE.2),
            UNAVAILABLE,
        ],
    },
    RouteDoc {
        name: "cookie.logout",
        method: HttpMethod::Post,
        api: Api::Cookie,
        path: "logout/",
        summary: "Revoke the session (or all sessions with {\"all\": true}); cookies expired",
        request: Some(("OptionalRefresh", false)),
        responses: &[
            (
                200,
                "Logged out (also when there was nothing to revoke)",
                Some("Detail"),
            ),
            (403, "CSRF check failed", Some("Detail")),
            TIMED_OUT,
            (413, TOO_LARGE.1, TOO_LARGE.2),
            UNAVAILABLE,
        ],
    },
    RouteDoc {
        name: "cookie.me",
        method: HttpMethod::Get,
        api: Api::Cookie,
        path: "me/",
        summary: "The user of the access token (cookie or Authorization: Bearer)",
        request: None,
        responses: &[
            (200, "The user", Some("Me")),
            (
                401,
                "Not provided, or invalid, expired or revoked",
                Some("Detail"),
            ),
            UNAVAILABLE,
        ],
    },
    RouteDoc {
        name: "cookie.sessions",
        method: HttpMethod::Get,
        api: Api::Cookie,
        path: "sessions/",
        summary: "The caller's live sessions, the current one marked",
        request: None,
        responses: &[
            (200, "The sessions, oldest first", Some("SessionView[]")),
            (
                401,
                "Not provided, or invalid, expired or revoked",
                Some("Detail"),
            ),
            UNAVAILABLE,
        ],
    },
    RouteDoc {
        name: "cookie.session",
        method: HttpMethod::Delete,
        api: Api::Cookie,
        path: "sessions/{id}/",
        summary: "End one of the caller's sessions",
        request: None,
        responses: &[
            (200, "Session ended", Some("Detail")),
            (
                401,
                "Not provided, or invalid, expired or revoked",
                Some("Detail"),
            ),
            (403, "CSRF check failed", Some("Detail")),
            (404, "No such session of the caller's", Some("Detail")),
            UNAVAILABLE,
        ],
    },
    RouteDoc {
        name: "token.obtain",
        method: HttpMethod::Post,
        api: Api::Token,
        path: "",
        summary: "SimpleJWT: obtain a token pair",
        request: Some(("Credentials", true)),
        responses: &[
            (200, "The pair", Some("TokenPair")),
            (400, "A field is missing or malformed", Some("FieldErrors")),
            (
                401,
                "No active account found with the given credentials",
                Some("Detail"),
            ),
            TIMED_OUT,
            (413, TOO_LARGE.1, TOO_LARGE.2),
            (
                429,
                "Too many failed logins; see Retry-After",
                Some("Detail"),
            ),
            UNAVAILABLE,
        ],
    },
    RouteDoc {
        name: "token.refresh",
        method: HttpMethod::Post,
        api: Api::Token,
        path: "refresh/",
        summary: "SimpleJWT: refresh (and rotate) a refresh token",
        request: Some(("RefreshField", true)),
        responses: &[
            (
                200,
                "A new access token, and a new refresh token when rotating",
                Some("Refreshed"),
            ),
            (
                400,
                "The field is missing or malformed",
                Some("FieldErrors"),
            ),
            (
                401,
                "token_not_valid (invalid, expired or blacklisted) or no active account",
                Some("TokenError"),
            ),
            TIMED_OUT,
            (413, TOO_LARGE.1, TOO_LARGE.2),
            UNAVAILABLE,
        ],
    },
    RouteDoc {
        name: "token.verify",
        method: HttpMethod::Post,
        api: Api::Token,
        path: "verify/",
        summary: "SimpleJWT: verify a token of any type (access, refresh, sliding, or none)",
        request: Some(("TokenField", true)),
        responses: &[
            (200, "Valid", Some("Empty")),
            (
                400,
                "The field is missing or malformed",
                Some("FieldErrors"),
            ),
            (
                401,
                "token_not_valid or no active account",
                Some("TokenError"),
            ),
            TIMED_OUT,
            (413, TOO_LARGE.1, TOO_LARGE.2),
            UNAVAILABLE,
        ],
    },
    RouteDoc {
        name: "token.blacklist",
        method: HttpMethod::Post,
        api: Api::Token,
        path: "blacklist/",
        summary: "SimpleJWT: blacklist a refresh token (revokes its session)",
        request: Some(("RefreshField", true)),
        responses: &[
            (200, "Blacklisted", Some("Empty")),
            (
                400,
                "The field is missing or malformed",
                Some("FieldErrors"),
            ),
            (401, "token_not_valid", Some("TokenError")),
            TIMED_OUT,
            (413, TOO_LARGE.1, TOO_LARGE.2),
            UNAVAILABLE,
        ],
    },
    RouteDoc {
        name: "healthz",
        method: HttpMethod::Get,
        api: Api::Ops,
        path: "/healthz",
        summary: "The process is alive",
        request: None,
        responses: &[(200, "Alive", Some("Status"))],
    },
    RouteDoc {
        name: "readyz",
        method: HttpMethod::Get,
        api: Api::Ops,
        path: "/readyz",
        summary: "The store answers",
        request: None,
        responses: &[(200, "Ready", Some("Status")), UNAVAILABLE],
    },
    RouteDoc {
        name: "metrics",
        method: HttpMethod::Get,
        api: Api::Ops,
        path: "/metrics",
        summary: "Prometheus metrics (text exposition format)",
        request: None,
        responses: &[(200, "Prometheus text", None)],
    },
    RouteDoc {
        name: "jwks",
        method: HttpMethod::Get,
        api: Api::Ops,
        path: "/.well-known/jwks.json",
        summary: "The public keys that verify tokens (empty for HS*), current and retired",
        request: None,
        responses: &[(200, "A JWK Set", Some("Jwks"))],
    },
    RouteDoc {
        name: "page",
        method: HttpMethod::Get,
        api: Api::Ops,
        path: "/",
        summary: "The demo page",
        request: None,
        responses: &[(200, "HTML", None)],
    },
    RouteDoc {
        name: "static",
        method: HttpMethod::Get,
        api: Api::Ops,
        path: "/static/{file}",
        summary: "The demo page's assets and the browser client module (refreshd-client.js)",
        request: None,
        responses: &[
            (200, "The file", None),
            (404, "No such file", Some("Detail")),
        ],
    },
    RouteDoc {
        name: "openapi",
        method: HttpMethod::Get,
        api: Api::Ops,
        path: "/openapi.json",
        summary: "This document",
        request: None,
        responses: &[(200, "OpenAPI 3.1", None)],
    },
];

/// The document for these prefixes.
/// With `public_metrics` false (METRICS_ADDR), /metrics is on another listener and left out.
pub fn document(prefixes: &RouteSettings, public_metrics: bool) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for route in ROUTE_DOCS {
        if route.name == "metrics" && !public_metrics {
            continue;
        }
        let path = match route.api {
            Api::Cookie => format!("{}{}", prefixes.cookie_api, route.path),
            Api::Token => format!("{}{}", prefixes.token_api, route.path),
            Api::Ops => route.path.to_owned(),
        };
        let tag = match route.api {
            Api::Cookie => "cookie API",
            Api::Token => "SimpleJWT-compatible API",
            Api::Ops => "operations",
        };
        let mut op = OperationBuilder::new()
            .operation_id(Some(route.name))
            .summary(Some(route.summary))
            .tag(tag);
        if let Some(param) = ["id", "file"]
            .into_iter()
            .find(|p| path.contains(&format!("{{{p}}}")))
        {
            let mut schema = ObjectBuilder::new().schema_type(Type::String);
            if param == "file" {
                // The files there are, so that clients and test generators can name them.
                schema = schema.enum_values(Some(super::pages::asset_names()));
            }
            op = op.parameter(
                ParameterBuilder::new()
                    .name(param)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(schema)),
            );
        }
        if let Some((schema, required)) = route.request {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build();
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", content)
                    .required(Some(if required {
                        Required::True
                    } else {
                        Required::False
                    }))
                    .build(),
            ));
        }
        for (status, description, schema) in route.responses {
            let mut response = ResponseBuilder::new().description(*description);
            match schema {
                Some(schema) => {
                    let content = ContentBuilder::new()
                        .schema(Some(schema_ref(schema)))
                        .build();
                    response = response.content("application/json", content);
                }
                None => {
                    let content_types = match route.name {
                        "metrics" => vec!["text/plain"],
                        "page" => vec!["text/html"],
                        "static" => super::pages::asset_media_types(),
                        _ => vec!["application/json"],
                    };
                    for content_type in content_types {
                        response = response.content(content_type, ContentBuilder::new().build());
                    }
                }
            }
            op = op.response(status.to_string(), response.build());
        }
        paths = paths.path(path, PathItem::new(route.method.clone(), op.build()));
    }
    let components = ComponentsBuilder::new()
        .schema_from::<Credentials>()
        .schema_from::<OptionalRefresh>()
        .schema_from::<RefreshField>()
        .schema_from::<TokenField>()
        .schema_from::<TokenPair>()
        .schema_from::<Refreshed>()
        .schema_from::<Detail>()
        .schema_from::<TokenError>()
        .schema_from::<FieldErrors>()
        .schema_from::<FieldError>()
        .schema_from::<Status>()
        .schema_from::<Empty>()
        .schema_from::<Jwks>()
        .schema_from::<Me>()
        .schema_from::<SessionView>()
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("refreshd")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Session server: HttpOnly cookie refresh with rotation and reuse detection, and a djangorestframework-simplejwt-compatible JSON API.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}

/// The names of the routes the document covers.
pub fn documented_route_names() -> Vec<&'static str> {
    ROUTE_DOCS.iter().map(|r| r.name).collect()
}
