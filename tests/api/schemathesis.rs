//! Schemathesis (pinned in tests/interop/requirements.txt) against GET /openapi.json: every
//! operation, with the cases it generates from the schema (valid and invalid), answers within its
//! documented statuses and schemas, never a 5xx, and 405s carry `Allow`. Ignored by a plain
//! `cargo test`; ./scripts/test runs it in the virtualenv it creates.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::*;

#[test]
#[ignore = "needs the virtualenv that ./scripts/test creates"]
fn every_operation_answers_within_its_documented_statuses() {
    let st = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-interop/bin/st");
    assert!(
        st.exists(),
        "{} is missing: ./scripts/test creates it",
        st.display()
    );
    let server = ServerProcess::start(&[
        ("WORKERS", "2"),
        ("LOGIN_MAX_FAILURES", "0"),
        ("RUST_LOG", "warn"),
    ]);
    let out = Command::new(st)
        .args([
            "run",
            &server.url("/openapi.json"),
            "--checks",
            "all",
            "--max-examples",
            "60",
        ])
        .args([
            "--request-timeout",
            "10",
            "--seed",
            "20261122",
            "--no-color",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("16 passed") || report.contains("passed"),
        "{report}"
    );
}
