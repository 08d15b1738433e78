//! The only module that speaks HTTP: the route table, the two APIs' handlers, the cookie builder,
//! token extraction, CSRF, CORS and the mapping of outcomes to statuses and bodies. Handlers call
//! `auth` and nothing deeper: nothing here imports `store` or `tokens`.
//!
//! Inside, dependencies point one way (a test below keeps it so): `routes` (the table) ->
//! `openapi` -> `router` -> `error`, and `routes` -> the handlers (`cookie_api`, `token_api`,
//! `ops`, `pages`) -> `state`, `body`, `cookies`, `csrf`, `extract`, `outcomes` -> `error`.

pub mod body;
pub mod cookie_api;
pub mod cookies;
pub mod csrf;
pub mod deadline;
pub mod device;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod ops;
pub mod outcomes;
pub mod pages;
pub mod router;
pub mod routes;
pub mod state;
pub mod token_api;

use actix_cors::Cors;
use actix_web::http::{Method, header};

use crate::config::BrowserSettings;

pub use self::state::AppState;

/// CORS for exactly the listed origins, with credentials. With no list, no cross-origin
/// request is allowed.
pub fn cors(browser: &BrowserSettings) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allowed_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
        .supports_credentials()
        .max_age(600);
    for origin in &browser.allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    /// Each module of src/http and the sibling modules it names (`super::name`).
    fn uses() -> BTreeMap<String, Vec<String>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        let modules: BTreeMap<String, String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.file_name().is_some_and(|n| n != "mod.rs"))
            .map(|path| {
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        modules
            .iter()
            .map(|(name, code)| {
                let mut named: Vec<String> = code
                    .split("super::")
                    .skip(1)
                    .map(|rest| {
                        rest.chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect::<String>()
                    })
                    .filter(|m| m != name && modules.contains_key(m))
                    .collect();
                named.sort();
                named.dedup();
                (name.clone(), named)
            })
            .collect()
    }

    #[test]
    fn no_module_of_http_depends_on_itself_through_others() {
        let uses = uses();
        assert!(
            uses["routes"].contains(&"cookie_api".to_owned()),
            "{uses:?}"
        );
        // Depth-first from each module: meeting a module still on the path is a cycle.
        fn visit<'a>(
            module: &'a str,
            uses: &'a BTreeMap<String, Vec<String>>,
            path: &mut Vec<&'a str>,
            done: &mut Vec<&'a str>,
        ) {
            if let Some(at) = path.iter().position(|m| *m == module) {
                panic!(
                    "import cycle in src/http: {} -> {module}",
                    path[at..].join(" -> ")
                );
            }
            if done.contains(&module) {
                return;
            }
            path.push(module);
            for next in &uses[module] {
                visit(next, uses, path, done);
            }
            path.pop();
            done.push(module);
        }
        let mut done = Vec::new();
        for module in uses.keys() {
            visit(module, &uses, &mut Vec::new(), &mut done);
        }
    }
}
