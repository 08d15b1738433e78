//! The documents hold to the code: the README's curl walk-through runs as written (against a
//! server on a free port instead of 8000), and every test SECURITY.md cites exists.

use crate::helpers::*;

fn walk_through() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## A walk through with curl")
        .nth(1)
        .expect("the README has its curl walk-through");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a sh block in the walk-through");
    block.to_owned()
}

#[test]
fn the_curl_walk_through_works() {
    assert!(
        std::path::Path::new("/usr/bin/curl").exists(),
        "curl is missing: apt-get install curl (./scripts/test does)"
    );
    let server = ServerProcess::start(&[]);
    let script = walk_through().replace("http://127.0.0.1:8000", &server.url(""));
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
        r#"{"detail":"Token refreshed."}"#,
        r#"{"detail":"Token refreshed."}"#,
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
