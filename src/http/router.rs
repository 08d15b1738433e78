//! What a route is: one entry of the route table (name, method, path, handler and its
//! documentation), and how an entry is mounted on the actix router. The table itself is in
//! `routes`; `openapi` writes the document from the same entries. Depends on `error` and
//! `config` (the API prefixes) only.

use std::borrow::Cow;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;

use super::error::RequestError;
use crate::config::RouteSettings;

/// The API a route belongs to. Its path is relative to that API's prefix (COOKIE_API_PREFIX,
/// TOKEN_API_PREFIX); the operations' paths are absolute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Cookie,
    Token,
    Ops,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Delete => Method::DELETE,
        }
    }
}

/// Which listener serves a route: BIND_ADDR, or also the private METRICS_ADDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Public,
    /// Both listeners: what an orchestrator asks.
    Both,
    /// The private listener when METRICS_ADDR is set, else the public one.
    PrivateWhenSet,
}

impl Listener {
    /// Whether the public listener serves it; `public_metrics` is false with METRICS_ADDR.
    pub fn on_public(self, public_metrics: bool) -> bool {
        self != Listener::PrivateWhenSet || public_metrics
    }

    pub fn on_private(self) -> bool {
        self != Listener::Public
    }
}

/// Mounts a route's handler at its full path: `handler!(module::function)` writes one.
pub type Mount = fn(&mut web::ServiceConfig, &Route, &str);

/// The `Mount` of a handler function.
macro_rules! handler {
    ($handler:path) => {
        |cfg, route, path| route.mount(cfg, path, $handler)
    };
}
pub(super) use handler;

/// One route: everything the router, the logs and metrics, and the OpenAPI document know of it.
pub struct Route {
    /// As the router, the logs and the metrics (`route` label) know it, and the operationId.
    pub name: &'static str,
    pub api: Api,
    pub verb: Verb,
    /// Relative to the API's prefix (may be empty: the prefix itself).
    pub path: &'static str,
    pub listener: Listener,
    pub handler: Mount,
    pub doc: Doc,
}

/// A route's documentation.
pub struct Doc {
    pub summary: &'static str,
    /// The JSON body it reads, and whether the body is required.
    pub request: Option<(Schema, bool)>,
    /// Every status it can answer, what it means and what the body is.
    pub responses: &'static [Answer],
    /// The values the path's parameter may take, when they are few and known (`{file}`).
    pub path_values: Option<fn() -> Vec<&'static str>>,
}

/// A status, what it means, and its body.
pub type Answer = (u16, &'static str, Body);

#[derive(Clone, Copy)]
pub enum Body {
    /// JSON of a type the handler serialises.
    Json(Schema),
    /// A JSON array of it.
    JsonList(Schema),
    /// These media types, with no schema.
    Untyped(fn() -> Vec<&'static str>),
}

/// A serialised type, as the OpenAPI document names and describes it (see `utoipa::ToSchema`).
#[derive(Clone, Copy)]
pub struct Schema {
    pub name: fn() -> Cow<'static, str>,
    /// Pushes its schema and those it refers to.
    pub collect: fn(&mut Vec<(String, RefOr<utoipa::openapi::Schema>)>),
}

pub const fn schema<T: ToSchema>() -> Schema {
    Schema {
        name: T::name,
        collect: collect::<T>,
    }
}

fn collect<T: ToSchema>(out: &mut Vec<(String, RefOr<utoipa::openapi::Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

/// A body of JSON of type `T`.
pub const fn json<T: ToSchema>() -> Body {
    Body::Json(schema::<T>())
}

/// A JSON array of `T`.
pub const fn json_list<T: ToSchema>() -> Body {
    Body::JsonList(schema::<T>())
}

/// A request that must have a body of JSON of type `T`.
pub const fn required<T: ToSchema>() -> Option<(Schema, bool)> {
    Some((schema::<T>(), true))
}

/// A request that may have a body of JSON of type `T`.
pub const fn optional<T: ToSchema>() -> Option<(Schema, bool)> {
    Some((schema::<T>(), false))
}

impl Route {
    /// Where the route is served, under the API prefixes of `routes`.
    pub fn full_path(&self, routes: &RouteSettings) -> String {
        match self.api {
            Api::Cookie => format!("{}{}", routes.cookie_api, self.path),
            Api::Token => format!("{}{}", routes.token_api, self.path),
            Api::Ops => self.path.to_owned(),
        }
    }

    /// Registers `handler` at `path` under the route's name, with and without its trailing
    /// slash, as two plain resources (a resource with two patterns is matched by a regex set on
    /// every request; two single-pattern resources are plain string compares). Other methods get
    /// a JSON 405.
    pub fn mount<F, Args>(&self, cfg: &mut web::ServiceConfig, path: &str, handler: F)
    where
        F: actix_web::Handler<Args> + Clone + 'static,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        let method = self.verb.method();
        let bare = path.trim_end_matches('/');
        let mut patterns = vec![format!("{bare}/")];
        if !bare.is_empty() {
            patterns.push(bare.to_owned());
        }
        for pattern in patterns {
            let allow = method.clone();
            cfg.service(
                web::resource(pattern)
                    .name(self.name)
                    .default_service(web::to(move |req: HttpRequest| {
                        let allow = allow.clone();
                        async move { method_not_allowed(&req, &allow) }
                    }))
                    .route(web::route().method(method.clone()).to(handler.clone())),
            );
        }
    }
}

/// 405, with the `Allow` header RFC 9110 asks for.
fn method_not_allowed(req: &HttpRequest, allow: &Method) -> HttpResponse {
    let mut resp = RequestError::MethodNotAllowed(req.method().to_string()).error_response();
    if let Ok(v) = HeaderValue::from_str(allow.as_str()) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

/// What no route matched.
pub async fn not_found() -> HttpResponse {
    RequestError::NotFound.error_response()
}
