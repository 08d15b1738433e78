//! CSRF defence for requests authenticated by a cookie on an unsafe method: the request's
//! Origin (or, without one, its Referer's origin) must be this server's own origin or one of
//! CORS_ALLOWED_ORIGINS; with neither header, `Sec-Fetch-Site: cross-site` is refused. Requests
//! that carry their token in the body need no check: a forged request cannot know the token.
//! The cookie login always gets the check (it sets cookies: login CSRF).

use actix_web::HttpRequest;
use actix_web::http::header;
use ipnet::IpNet;

use crate::config::{BrowserSettings, canonical_origin as canonical};

/// Whether the request may go on, by the browser settings: PUBLIC_ORIGIN (without it, the
/// request's own scheme and Host), CORS_ALLOWED_ORIGINS, and TRUSTED_PROXIES (only they may name
/// the server's own origin through Forwarded / X-Forwarded-* headers).
pub fn allows(browser: &BrowserSettings, req: &HttpRequest) -> bool {
    let headers = req.headers();
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let claimed = match (get(header::ORIGIN), get(header::REFERER)) {
        (Some(origin), _) => Some(origin.to_owned()),
        (None, Some(referer)) => match origin_of_url(referer) {
            Some(origin) => Some(origin),
            None => return false,
        },
        (None, None) => None,
    };
    let Some(claimed) = claimed else {
        // No Origin and no Referer: a non-browser client, or a browser that says where the
        // request came from only through Fetch Metadata.
        return get(header::HeaderName::from_static("sec-fetch-site")) != Some("cross-site");
    };
    let claimed = canonical(&claimed);
    let own = match &browser.public_origin {
        Some(o) => canonical(o),
        None => canonical(&request_origin(&browser.trusted_proxies, req)),
    };
    claimed == own
        || browser
            .allowed_origins
            .iter()
            .any(|a| canonical(a) == claimed)
}

/// The origin the request was addressed to: its Host and scheme, or what a trusted proxy says
/// they were. Forwarding headers from anyone else are ignored.
fn request_origin(trusted_proxies: &[IpNet], req: &HttpRequest) -> String {
    let from_proxy = req
        .peer_addr()
        .is_some_and(|p| trusted_proxies.iter().any(|net| net.contains(&p.ip())));
    if from_proxy {
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    format!("{scheme}://{host}")
}

/// `scheme://host[:port]` of a URL, or `None` when it has no such part.
fn origin_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty() && matches!(scheme, "http" | "https")).then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn policy() -> BrowserSettings {
        BrowserSettings {
            public_origin: None,
            allowed_origins: vec!["https://app.example.com".into()],
            trusted_proxies: vec![],
        }
    }

    fn req(headers: &[(&str, &str)]) -> HttpRequest {
        let mut r = TestRequest::post().insert_header(("host", "auth.example.com:8000"));
        for h in headers {
            r = r.insert_header(*h);
        }
        r.to_http_request()
    }

    #[test]
    fn own_and_listed_origins_pass_others_fail() {
        let p = policy();
        assert!(allows(
            &p,
            &req(&[("origin", "http://auth.example.com:8000")])
        ));
        assert!(allows(&p, &req(&[("origin", "https://app.example.com")])));
        assert!(allows(
            &p,
            &req(&[("origin", "https://APP.example.com:443")])
        ));
        assert!(!allows(&p, &req(&[("origin", "https://evil.example")])));
        assert!(!allows(&p, &req(&[("origin", "null")])));
        assert!(!allows(
            &p,
            &req(&[("origin", "https://app.example.com.evil.example")])
        ));
    }

    #[test]
    fn referer_counts_when_origin_is_absent() {
        let p = policy();
        assert!(allows(
            &p,
            &req(&[("referer", "https://app.example.com/page?x=1")])
        ));
        assert!(!allows(
            &p,
            &req(&[("referer", "https://evil.example/app.example.com")])
        ));
        assert!(!allows(&p, &req(&[("referer", "not a url")])));
        // Origin wins over Referer.
        assert!(!allows(
            &p,
            &req(&[
                ("origin", "https://evil.example"),
                ("referer", "https://app.example.com/")
            ])
        ));
    }

    #[test]
    fn without_either_header_only_cross_site_fetch_metadata_is_refused() {
        let p = policy();
        assert!(allows(&p, &req(&[])));
        assert!(allows(&p, &req(&[("sec-fetch-site", "same-origin")])));
        assert!(!allows(&p, &req(&[("sec-fetch-site", "cross-site")])));
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let forged = |peer: &str| {
            TestRequest::post()
                .peer_addr(peer.parse().unwrap())
                .insert_header(("host", "auth.example.com"))
                .insert_header(("x-forwarded-host", "evil.example"))
                .insert_header(("x-forwarded-proto", "https"))
                .insert_header(("origin", "https://evil.example"))
                .to_http_request()
        };
        let mut p = policy();
        assert!(!allows(&p, &forged("192.0.2.1:4000")));
        p.trusted_proxies = vec!["192.0.2.1/32".parse().unwrap()];
        assert!(
            allows(&p, &forged("192.0.2.1:4000")),
            "a trusted proxy names the origin"
        );
    }

    #[test]
    fn public_origin_replaces_the_host_header() {
        let p = BrowserSettings {
            public_origin: Some("https://auth.example.com".into()),
            allowed_origins: vec![],
            trusted_proxies: vec![],
        };
        assert!(allows(&p, &req(&[("origin", "https://auth.example.com")])));
        assert!(!allows(
            &p,
            &req(&[("origin", "http://auth.example.com:8000")])
        ));
    }
}
