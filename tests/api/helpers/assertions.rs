//! Assertions that read like the contract: a `{"detail": ...}` answer with its headers, cookies
//! expired or absent.

use super::reply::Reply;

/// Asserts a `{"detail": ...}` answer, with the headers every JSON answer carries.
#[track_caller]
pub fn assert_detail(reply: &Reply, status: u16, detail: &str) {
    assert_eq!(
        reply.status, status,
        "unexpected status; body: {}",
        reply.text
    );
    assert_eq!(
        reply.json,
        serde_json::json!({ "detail": detail }),
        "body: {}",
        reply.text
    );
    assert_json_headers(reply);
}

#[track_caller]
pub fn assert_json_headers(reply: &Reply) {
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

/// Asserts that both auth cookies are expired, with the attributes they are set with.
#[track_caller]
pub fn assert_cookies_expired(reply: &Reply) {
    for name in ["access_token", "refresh_token"] {
        let c = reply
            .cookie(name)
            .unwrap_or_else(|| panic!("{name} is not expired: {:?}", reply.set_cookies()));
        assert_eq!(c.value, "", "{}", c.raw);
        assert_eq!(c.attr("Max-Age"), Some("0"), "{}", c.raw);
        assert_eq!(c.attr("Path"), Some("/"), "{}", c.raw);
        assert_eq!(c.attr("SameSite"), Some("Lax"), "{}", c.raw);
        assert!(c.has("HttpOnly"), "{}", c.raw);
    }
}

#[track_caller]
pub fn assert_no_cookies(reply: &Reply) {
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
}
