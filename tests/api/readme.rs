//! The README's curl walk-through, run as written (against a server on a free port instead of
//! 8000), so that what a newcomer copies keeps working.

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
