//! CORS: exactly the listed origins, with credentials, never `*`; preflights answered.

use crate::helpers::*;

#[tokio::test]
async fn preflights_from_listed_origins_are_allowed_with_credentials() {
    let app = spawn_app_with(
        Backend::Memory,
        &[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com, http://localhost:5173",
        )],
    )
    .await;
    for origin in ["https://app.example.com", "http://localhost:5173"] {
        let resp = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/api/auth/login/"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{origin}");
        let h = resp.headers();
        assert_eq!(h["access-control-allow-origin"], origin);
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
        assert!(
            h["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .to_ascii_lowercase()
                .contains("content-type")
        );
    }
    // The actual request carries the same grant.
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(resp.headers()["vary"].to_str().unwrap().contains("Origin"));
}

#[tokio::test]
async fn other_origins_get_no_grant_and_never_a_wildcard() {
    let app = spawn_app_with(
        Backend::Memory,
        &[("CORS_ALLOWED_ORIGINS", "https://app.example.com")],
    )
    .await;
    for origin in [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "null",
    ] {
        let preflight = app
            .client
            .request(
                reqwest::Method::OPTIONS,
                app.url("/api/auth/token/refresh/"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(
            preflight
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origin}"
        );
        let simple = app
            .client
            .post(app.url("/api/auth/token/refresh/"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert!(
            simple
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origin}"
        );
    }
    // With no list at all, nobody is granted anything.
    let closed = spawn_app(Backend::Memory).await;
    let resp = closed
        .client
        .get(closed.url("/healthz"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    let acao = resp.headers().get("access-control-allow-origin");
    assert!(acao.is_none_or(|v| v != "*"), "{acao:?}");
    assert!(acao.is_none(), "{acao:?}");
}
