//! The documents hold to the code: the README's curl walk-through runs as written (against a
//! server on a free port instead of 8000), and every test SECURITY.md cites exists.

use crate::helpers::*;

/// The walk-through's script, and the variables its start command sets
/// (`REFRESH_TOKEN_REUSE_INTERVAL=2s cargo run --release`).
fn walk_through() -> (String, Vec<(String, String)>) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## A walk through with curl")
        .nth(1)
        .expect("the README has its curl walk-through");
    let (intro, rest) = section
        .split_once("```sh\n")
        .expect("a sh block in the walk-through");
    let block = rest.split("\n```").next().unwrap();
    let start = intro
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|code| code.contains("cargo run"))
        .expect("the walk-through says how to start the server");
    let vars = start
        .split_whitespace()
        .map_while(|word| word.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (block.to_owned(), vars)
}

#[test]
fn the_curl_walk_through_works() {
    assert!(
        std::path::Path::new("/usr/bin/curl").exists(),
        "curl is missing: apt-get install curl (./scripts/test does)"
    );
    let (script, vars) = walk_through();
    assert!(
        vars.iter()
            .any(|(k, v)| k == "REFRESH_TOKEN_REUSE_INTERVAL" && v == "2s"),
        "a short reuse interval keeps the theft step quick: {vars:?}"
    );
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ServerProcess::start(&vars);
    let script = script.replace("http://127.0.0.1:8000", &server.url(""));
    let dir = std::env::temp_dir().join(unique("refreshd-readme"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = std::process::Command::new("sh")
        .args(["-eu", "-c", &script])
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the comments promise, in order.
    let mut rest: &str = &text;
    for expected in [
        r#"{"detail":"Login successful."}"#,
        r#""username":"demo","is_active":true}"#,
        // Refresh by cookie, twice: A, then B.
        "HTTP/1.1 200 OK",
        r#"{"detail":"Token refreshed."}"#,
        "HTTP/1.1 200 OK",
        r#"{"detail":"Token refreshed."}"#,
        // The mobile app's refresh through the JSON API: tokens in the body.
        r#"{"access":""#,
        r#""refresh":""#,
        // Reuse detection: A, retired, after the interval.
        "HTTP/1.1 401 Unauthorized",
        r#"{"detail":"Invalid or expired refresh token."}"#,
        // The session is revoked: its access token and its newest refresh token.
        r#"{"detail":"Invalid or expired access token."}"#,
        "HTTP/1.1 401 Unauthorized",
        r#"{"detail":"Invalid or expired refresh token."}"#,
        // A new session, logged out; its access token is refused.
        r#"{"detail":"Login successful."}"#,
        r#"{"detail":"Logged out."}"#,
        r#"{"detail":"Invalid or expired access token."}"#,
    ] {
        let at = rest
            .find(expected)
            .unwrap_or_else(|| panic!("{expected} is missing from what is left of:\n{text}"));
        rest = &rest[at + expected.len()..];
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SECURITY.md's "shown by" column names tests: each of them exists.
#[test]
fn every_test_security_md_names_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("SECURITY.md")).unwrap();
    let defines = |path: std::path::PathBuf, name: &str| {
        std::fs::read_to_string(&path)
            .map(|code| {
                code.contains(&format!("fn {name}(")) || code.contains(&format!("    {name},"))
            })
            .unwrap_or(false)
    };
    let mut checked = 0;
    for quoted in text.split('`').skip(1).step_by(2) {
        if quoted.contains('<') {
            continue; // the pattern the page explains, not a name
        }
        let parts: Vec<&str> = quoted.split("::").collect();
        let is_name = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        let found = match parts.as_slice() {
            // tests/api/<file>.rs::<name>
            [file, name] if is_name(file) && is_name(name) => {
                defines(root.join(format!("tests/api/{file}.rs")), name)
            }
            // src/<module path>::tests::<name>
            [module @ .., "tests", name]
                if module.first().is_some_and(|m| m.starts_with("src/")) =>
            {
                let path = module.join("/");
                defines(root.join(format!("{path}.rs")), name)
                    || defines(root.join(format!("{path}/mod.rs")), name)
            }
            _ => continue,
        };
        assert!(found, "SECURITY.md names {quoted}, which does not exist");
        checked += 1;
    }
    assert!(checked > 40, "only {checked} test names found");
}
