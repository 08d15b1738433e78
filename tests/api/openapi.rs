//! GET /openapi.json: generated from the route table; every route of the app is in it, and every
//! operation in it is a route of the app.

use refreshd::config::RouteSettings;
use refreshd::http::openapi::document;
use refreshd::http::routes::{ROUTES, names};
use serde_json::Value;

use crate::helpers::*;

#[test]
fn every_route_is_documented_once_under_its_own_name() {
    let prefixes = RouteSettings {
        cookie_api: "/api/auth/".into(),
        token_api: "/api/token/".into(),
    };
    let doc = serde_json::to_value(document(ROUTES, &prefixes)).unwrap();
    let mut documented: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap().to_owned())
        .collect();
    let mut routes = names();
    documented.sort_unstable();
    routes.sort_unstable();
    assert_eq!(documented, routes);
    routes.dedup();
    assert_eq!(routes.len(), ROUTES.len(), "two routes share a name");
}

/// The document's operations as (method, path, operation).
pub async fn operations(app: &TestApp) -> Vec<(String, String, Value)> {
    let reply = Reply::read(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_json_headers(&reply);
    assert!(
        reply.json["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        reply.json["openapi"]
    );
    let mut ops = Vec::new();
    for (path, item) in reply.json["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    ops
}

#[tokio::test]
async fn every_documented_operation_is_served_by_the_app() {
    let app = spawn_app_with(Backend::Memory, &[("TOKEN_API_PREFIX", "/api/user/token/")]).await;
    let ops = operations(&app).await;
    let names = names();
    assert_eq!(ops.len(), names.len());
    let ids: Vec<&str> = ops
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap())
        .collect();
    for name in &names {
        assert!(ids.contains(name), "{name} is not in the document");
    }
    assert!(
        ops.iter()
            .any(|(_, path, _)| path == "/api/user/token/refresh/"),
        "prefixes are applied"
    );
    for (method, path, op) in &ops {
        let url = app.url(
            &path
                .replace("{id}", "0123456789abcdef0123456789abcdef")
                .replace("{file}", "refreshd-client.js"),
        );
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let status = app
            .client
            .request(method.clone(), url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(
            status != 404 || path.contains("{id}"),
            "{method} {path} is not served: {status}"
        );
        assert_ne!(status, 405, "{method} {path}");
        let documented: Vec<u16> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        assert!(
            documented.contains(&status),
            "{method} {path} answered {status}, documented {documented:?}"
        );
    }
}

#[tokio::test]
async fn the_schemas_the_operations_name_exist() {
    let app = spawn_app(Backend::Memory).await;
    let doc = Reply::read(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .json;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "{name} is referenced but not defined"
        );
    }
    assert!(schemas.contains_key("Me") && schemas.contains_key("SessionView"));
    // The session list names each device beside the raw user agent.
    let session = &schemas["SessionView"];
    for field in ["user_agent", "device"] {
        assert_eq!(session["properties"][field]["type"], "string", "{session}");
        assert!(
            session["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == field),
            "{session}"
        );
    }
}
