//! The one cookie builder and the one reader of the Cookie header, both on the `cookie` crate.
//! Every Set-Cookie this server sends, setting or expiring, comes from here, so the attributes can
//! never drift between routes. Trap: a cookie expired with another Path, Domain or SameSite than
//! it was set with is a different cookie and is not removed. Depends on `extract` (token
//! normalisation) and `config`, nothing else in `http`.

use std::fmt::Write;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::BytesMut;
use cookie::{Cookie, SameSite};
use time::Duration;

use super::extract::normalize_token;
use crate::config::{self, Settings};

#[derive(Clone, Debug)]
pub struct CookieJar {
    access_name: String,
    refresh_name: String,
    refresh_path: String,
    domain: Option<String>,
    secure: bool,
    same_site: SameSite,
}

impl CookieJar {
    pub fn new(settings: &Settings) -> Self {
        Self {
            access_name: settings.access_cookie_name.clone(),
            refresh_name: settings.refresh_cookie_name.clone(),
            refresh_path: settings.refresh_cookie_path.clone(),
            domain: settings.cookie_domain.clone(),
            secure: settings.cookie_secure,
            same_site: match settings.cookie_samesite {
                config::SameSite::Lax => SameSite::Lax,
                config::SameSite::Strict => SameSite::Strict,
                config::SameSite::None => SameSite::None,
            },
        }
    }

    /// REFRESH_COOKIE_PATH: where the browser sends the refresh cookie.
    pub fn refresh_path(&self) -> &str {
        &self.refresh_path
    }

    /// The access token of the access cookie, if the request has one.
    pub fn access_token(&self, req: &HttpRequest) -> Option<String> {
        cookie_token(req, &self.access_name)
    }

    /// The refresh token of the refresh cookie, if the request has one.
    pub fn refresh_token(&self, req: &HttpRequest) -> Option<String> {
        cookie_token(req, &self.refresh_name)
    }

    pub fn access(&self, token: &str, max_age: Option<u64>) -> HeaderValue {
        set_cookie(&self.cookie(&self.access_name, token, "/", max_age))
    }

    pub fn refresh(&self, token: &str, max_age: Option<u64>) -> HeaderValue {
        set_cookie(&self.cookie(&self.refresh_name, token, &self.refresh_path, max_age))
    }

    /// Both cookies with `Max-Age=0` and the attributes they were set with.
    pub fn expire_both(&self) -> [HeaderValue; 2] {
        [self.access("", Some(0)), self.refresh("", Some(0))]
    }

    /// One of our cookies, borrowing every string (nothing is allocated). Without `max_age`, a
    /// browser-session cookie: no Max-Age, no Expires.
    fn cookie<'a>(
        &'a self,
        name: &'a str,
        value: &'a str,
        path: &'a str,
        max_age: Option<u64>,
    ) -> Cookie<'a> {
        let mut cookie = Cookie::build((name, value))
            .http_only(true)
            .path(path)
            .same_site(self.same_site)
            .secure(self.secure);
        if let Some(domain) = &self.domain {
            cookie = cookie.domain(domain.as_str());
        }
        if let Some(secs) = max_age {
            cookie = cookie.max_age(Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)));
        }
        cookie.build()
    }
}

/// The Set-Cookie value of `cookie`, written in the contract's order (SPEC 1, and what clients
/// and tests compare): `name=value; HttpOnly; Path=..; Max-Age=..; SameSite=..[; Secure][; Domain=..]`.
/// The crate's own `Display` puts SameSite and Secure before Path, so the attributes are written
/// here, from the crate's accessors, into one buffer that becomes the header without a copy.
fn set_cookie(cookie: &Cookie<'_>) -> HeaderValue {
    let (name, value) = (cookie.name(), cookie.value());
    let path = cookie.path().unwrap_or("");
    let domain = cookie.domain().unwrap_or("");
    let mut out =
        BytesMut::with_capacity(name.len() + value.len() + path.len() + domain.len() + 80);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=");
    out.extend_from_slice(value.as_bytes());
    if cookie.http_only() == Some(true) {
        out.extend_from_slice(b"; HttpOnly");
    }
    if cookie.path().is_some() {
        out.extend_from_slice(b"; Path=");
        out.extend_from_slice(path.as_bytes());
    }
    if let Some(max_age) = cookie.max_age() {
        let _ = write!(out, "; Max-Age={}", max_age.whole_seconds());
    }
    if let Some(same_site) = cookie.same_site() {
        let _ = write!(out, "; SameSite={same_site}");
    }
    if cookie.secure() == Some(true) {
        out.extend_from_slice(b"; Secure");
    }
    if cookie.domain().is_some() {
        out.extend_from_slice(b"; Domain=");
        out.extend_from_slice(domain.as_bytes());
    }
    // Names, paths and domains are validated at start and tokens are base64url text, so this
    // cannot fail; an empty value (an expiring cookie) is safe in any case.
    HeaderValue::from_maybe_shared(out.freeze())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The first non-empty (after normalisation) cookie of that name, across every Cookie header.
/// Pairs that are not `name=value` are skipped, as are values that are not UTF-8.
fn cookie_token(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|cookie| cookie.name() == name)
        .find_map(|cookie| normalize_token(cookie.value()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use std::collections::HashMap;

    fn jar(pairs: &[(&str, &str)]) -> CookieJar {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CookieJar::new(&Settings::from_lookup(|k| map.get(k).cloned()).unwrap())
    }

    #[test]
    fn defaults_match_the_contract() {
        let j = jar(&[]);
        assert_eq!(
            j.access("abc", Some(900)),
            "access_token=abc; HttpOnly; Path=/; Max-Age=900; SameSite=Lax"
        );
        assert_eq!(
            j.refresh("def", Some(2592000)),
            "refresh_token=def; HttpOnly; Path=/; Max-Age=2592000; SameSite=Lax"
        );
        assert_eq!(
            j.refresh("def", None),
            "refresh_token=def; HttpOnly; Path=/; SameSite=Lax"
        );
    }

    #[test]
    fn expiry_keeps_path_domain_and_samesite() {
        let j = jar(&[
            ("REFRESH_COOKIE_PATH", "/api/auth/"),
            ("COOKIE_DOMAIN", "example.com"),
            ("COOKIE_SAMESITE", "Strict"),
            ("COOKIE_SECURE", "true"),
        ]);
        let [a, r] = j.expire_both();
        assert_eq!(
            a,
            "access_token=; HttpOnly; Path=/; Max-Age=0; SameSite=Strict; Secure; Domain=example.com"
        );
        assert_eq!(
            r,
            "refresh_token=; HttpOnly; Path=/api/auth/; Max-Age=0; SameSite=Strict; Secure; Domain=example.com"
        );
    }

    #[test]
    fn the_first_non_empty_cookie_of_the_name_wins() {
        let req = TestRequest::default()
            .insert_header((
                "cookie",
                "other=1; refresh_token=; refresh_token=\"Bearer t1\"",
            ))
            .append_header(("cookie", "refresh_token=t2"))
            .to_http_request();
        assert_eq!(cookie_token(&req, "refresh_token").as_deref(), Some("t1"));
        assert_eq!(cookie_token(&req, "access_token"), None);
        assert_eq!(cookie_token(&req, "other").as_deref(), Some("1"));
    }

    #[test]
    fn malformed_pairs_are_skipped() {
        let req = TestRequest::default()
            .insert_header((
                "cookie",
                "junk; =x; ;; refresh_token ; refresh_token = a=b ; access_token=%20",
            ))
            .to_http_request();
        assert_eq!(cookie_token(&req, "refresh_token").as_deref(), Some("a=b"));
        assert_eq!(cookie_token(&req, "access_token"), None);
        assert_eq!(cookie_token(&req, ""), None);
    }
}
