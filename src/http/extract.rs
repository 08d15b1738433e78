//! Getting credentials and the client out of requests, for both APIs: token normalisation, the
//! Authorization header and the client's address. (Cookies are read in `cookies`, bodies in
//! `body`.) Depends on nothing else in `http`.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;
use ipnet::IpNet;

use crate::auth::Requester;

/// Reduces `Bearer <token>` (any case, any run of spaces), a double-quoted value and
/// `Bearer%20<token>` to the bare token. `None` when nothing is left.
pub fn normalize_token(raw: &str) -> Option<String> {
    let mut s = unquote(raw.trim());
    let decoded;
    if s.contains('%') {
        decoded = percent_decode(s);
        s = unquote(decoded.trim());
    }
    if let Some(prefix) = s.get(..6)
        && prefix.eq_ignore_ascii_case("bearer")
        && s[6..].starts_with([' ', '\t'])
    {
        s = unquote(s[6..].trim_start_matches([' ', '\t']));
    }
    let s = s.trim();
    // A scheme with nothing after it ("Bearer ", trimmed above) carries no token.
    (!s.is_empty() && !s.eq_ignore_ascii_case("bearer")).then(|| s.to_owned())
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s)
}

/// Decodes `%XX` escapes; anything else (including a malformed escape) is kept as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The token of an `Authorization: Bearer <token>` header; other schemes are not ours.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    normalize_token(value)
}

/// The longest user agent kept with a session.
const MAX_USER_AGENT_CHARS: usize = 256;

/// Who sent the request, for login limiting and the session list.
pub fn requester(req: &HttpRequest, trusted: &[IpNet]) -> Requester {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(MAX_USER_AGENT_CHARS)
                .collect()
        })
        .unwrap_or_default();
    Requester {
        addr: client_addr(req, trusted),
        user_agent,
    }
}

/// The client's address: the peer, or when the peer is a trusted proxy, the right-most address
/// in X-Forwarded-For that is not itself a trusted proxy.
///
/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a dual-stack socket reports an IPv4 peer)
/// is the IPv4 address it names, so that it matches TRUSTED_PROXIES and reads as IPv4 in the
/// session list.
pub fn client_addr(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    for hop in forwarded.rsplit(',') {
        match hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn every_spelling_of_bearer_is_reduced_to_the_token() {
        for raw in [
            "abc.def.ghi",
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER    abc.def.ghi",
            "BeArEr \t abc.def.ghi",
            "\"Bearer abc.def.ghi\"",
            "\"abc.def.ghi\"",
            "Bearer%20abc.def.ghi",
            "bearer%20%20abc.def.ghi",
            "\"Bearer%20abc.def.ghi\"",
            "  abc.def.ghi  ",
            "Bearer \"abc.def.ghi\"",
        ] {
            assert_eq!(
                normalize_token(raw).as_deref(),
                Some("abc.def.ghi"),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn empty_values_are_no_token() {
        for raw in [
            "",
            "   ",
            "\"\"",
            "Bearer ",
            "bearer\t",
            "Bearer%20",
            "\" \"",
            "\"Bearer \"",
        ] {
            assert_eq!(normalize_token(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn only_a_separated_bearer_prefix_is_stripped() {
        // A token that merely starts with the letters "bearer" is left alone.
        assert_eq!(normalize_token("bearerabc").as_deref(), Some("bearerabc"));
        assert_eq!(normalize_token("Bearer"), None);
        // Malformed escapes are kept, not dropped or panicked on.
        assert_eq!(normalize_token("%zz%2").as_deref(), Some("%zz%2"));
        assert_eq!(normalize_token("%").as_deref(), Some("%"));
        assert_eq!(normalize_token("%e2%82").as_deref(), Some("\u{fffd}"));
    }

    #[test]
    fn authorization_must_use_the_bearer_scheme() {
        let bearer = TestRequest::default()
            .insert_header(("authorization", "Bearer  tok"))
            .to_http_request();
        assert_eq!(bearer_token(&bearer).as_deref(), Some("tok"));
        let basic = TestRequest::default()
            .insert_header(("authorization", "Basic dXNlcjpwYXNz"))
            .to_http_request();
        assert_eq!(bearer_token(&basic), None);
        let short = TestRequest::default()
            .insert_header(("authorization", "tok"))
            .to_http_request();
        assert_eq!(bearer_token(&short), None);
    }

    #[test]
    fn forwarded_for_is_honoured_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let direct = TestRequest::default()
            .peer_addr("192.0.2.7:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "203.0.113.9"))
            .to_http_request();
        assert_eq!(
            client_addr(&direct, &trusted),
            Some("192.0.2.7".parse().unwrap())
        );
        let proxied = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.3"))
            .to_http_request();
        assert_eq!(
            client_addr(&proxied, &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
    }
}
