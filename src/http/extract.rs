//! Getting credentials and bodies out of requests: cookie lookup, token normalisation, the
//! bounded body reader, the Authorization header and the client's address.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::StreamExt;
use ipnet::IpNet;

use super::error::ApiError;
use crate::auth::Requester;

/// Bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

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

/// The first non-empty (after normalisation) cookie of that name, across every Cookie header.
pub fn cookie_token(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .filter(|(n, _)| n.trim() == name)
        .find_map(|(_, v)| normalize_token(v))
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

/// Reads the whole body, refusing more than `MAX_BODY_BYTES` as soon as it is seen (from the
/// Content-Length header or while streaming), so a huge body is never buffered. A body that has
/// not arrived within REQUEST_BODY_TIMEOUT (see `deadline`) is a 408.
pub async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::BodyTooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            if super::deadline::is_timeout(&e) {
                return ApiError::BodyTimedOut;
            }
            log::debug!("request body unreadable: {e}");
            ApiError::MalformedBody
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::BodyTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// `body["field"]` when the body is a JSON object and that member is a string.
pub fn json_string_field(body: &[u8], field: &str) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.get(field)? {
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
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

/// `body["field"] == true` when the body is a JSON object.
pub fn json_flag(body: &[u8], field: &str) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get(field).and_then(serde_json::Value::as_bool))
        .unwrap_or(false)
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
    fn a_body_field_must_be_a_string_in_a_json_object() {
        assert_eq!(
            json_string_field(br#"{"refresh":"x"}"#, "refresh").as_deref(),
            Some("x")
        );
        for body in [
            &b""[..],
            b"{}",
            b"[]",
            b"null",
            b"not json",
            br#"{"refresh":1}"#,
            br#"{"refresh":null}"#,
            b"\xff\xfe",
        ] {
            assert_eq!(json_string_field(body, "refresh"), None, "{body:?}");
        }
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
