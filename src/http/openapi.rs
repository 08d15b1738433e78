//! The OpenAPI 3.1 document of both APIs, served at GET /openapi.json: written from the route
//! table's entries (the ones a listener serves), under the configured prefixes, with the
//! schemas of the types the handlers read and serialise. Depends on `router` (and `config` for
//! the prefixes) only.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{
    ArrayBuilder, ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi,
    OpenApiBuilder, PathItem, PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Type,
};

use super::router::{Api, Body, Route, Schema, Verb};
use crate::config::RouteSettings;

/// The document of these routes, served under these prefixes.
pub fn document<'a>(
    routes: impl IntoIterator<Item = &'a Route>,
    routes_settings: &RouteSettings,
) -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut schemas = Vec::new();
    for route in routes {
        let path = route.full_path(routes_settings);
        let mut op = OperationBuilder::new()
            .operation_id(Some(route.name))
            .summary(Some(route.doc.summary))
            .tag(tag(route.api));
        if let Some(param) = parameter(&path) {
            let mut schema = ObjectBuilder::new().schema_type(Type::String);
            if let Some(values) = route.doc.path_values {
                // The values there are, so that clients and test generators can name them.
                schema = schema.enum_values(Some(values()));
            }
            op = op.parameter(
                ParameterBuilder::new()
                    .name(param)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(schema)),
            );
        }
        if let Some((schema, required)) = route.doc.request {
            (schema.collect)(&mut schemas);
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name((schema.name)())))
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
        for (status, description, body) in route.doc.responses {
            let mut response = ResponseBuilder::new().description(*description);
            match body {
                Body::Json(schema) | Body::JsonList(schema) => {
                    (schema.collect)(&mut schemas);
                    let content = ContentBuilder::new()
                        .schema(Some(body_schema(schema, matches!(body, Body::JsonList(_)))))
                        .build();
                    response = response.content("application/json", content);
                }
                Body::Untyped(media_types) => {
                    for media_type in media_types() {
                        response = response.content(media_type, ContentBuilder::new().build());
                    }
                }
            }
            op = op.response(status.to_string(), response.build());
        }
        paths = paths.path(path, PathItem::new(http_method(route.verb), op.build()));
    }
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
        .components(Some(
            ComponentsBuilder::new().schemas_from_iter(schemas).build(),
        ))
        .build()
}

fn tag(api: Api) -> &'static str {
    match api {
        Api::Cookie => "cookie API",
        Api::Token => "SimpleJWT-compatible API",
        Api::Ops => "operations",
    }
}

fn http_method(verb: Verb) -> HttpMethod {
    match verb {
        Verb::Get => HttpMethod::Get,
        Verb::Post => HttpMethod::Post,
        Verb::Delete => HttpMethod::Delete,
    }
}

/// The name of the path's parameter (`{id}`), if it has one.
fn parameter(path: &str) -> Option<&str> {
    let (_, rest) = path.split_once('{')?;
    rest.split_once('}').map(|(name, _)| name)
}

/// A reference to a named schema, or an array of them.
fn body_schema(schema: &Schema, list: bool) -> RefOr<utoipa::openapi::Schema> {
    let item = Ref::from_schema_name((schema.name)());
    if list {
        ArrayBuilder::new().items(item).build().into()
    } else {
        item.into()
    }
}
