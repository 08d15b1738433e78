//! The device a person recognises ("Chrome 156 on Linux", "Safari on iPhone") from a stored
//! user-agent string, for the session list. Parsing is woothee's; the wording is ours. Pure: no
//! I/O, nothing from the other layers.

use std::sync::OnceLock;

/// What the session list shows when the user agent says nothing useful.
pub const UNKNOWN_DEVICE: &str = "Unknown device";

fn parser() -> &'static woothee::parser::Parser {
    static PARSER: OnceLock<woothee::parser::Parser> = OnceLock::new();
    PARSER.get_or_init(woothee::parser::Parser::new)
}

/// A short name for the browser and system of a user agent. Desktop browsers carry their major
/// version (several may be installed side by side); on a phone or tablet the browser's version
/// follows the system's and only the device is named ("Safari on iPhone"). A client that no
/// browser database knows (curl, an app's HTTP library) is named by its first product token.
pub fn describe(user_agent: &str) -> String {
    let ua = user_agent.trim();
    if ua.is_empty() {
        return UNKNOWN_DEVICE.to_owned();
    }
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    // Chromium's headless mode names itself in the product token woothee does not know.
    if let Some(version) = product_version(ua, "HeadlessChrome") {
        return with_os(&format!("Headless Chrome {}", major(version)), os_of(ua));
    }
    let Some(parsed) = parser().parse(ua) else {
        return first_product(ua);
    };
    let os = if known(parsed.os) {
        Some(parsed.os)
    } else {
        None
    };
    // woothee files curl, wget and the HTTP libraries of every language under one name.
    if parsed.name == "HTTP Library" {
        return first_product(ua);
    }
    if parsed.category == "crawler" {
        return if known(parsed.name) {
            parsed.name.to_owned()
        } else {
            first_product(ua)
        };
    }
    if !known(parsed.name) {
        return with_os(&first_product(ua), os);
    }
    let name = match parsed.name {
        "Internet Explorer" if parsed.version.starts_with("Edge") => "Edge",
        other => other,
    };
    let mobile = matches!(parsed.category, "smartphone" | "mobilephone");
    let version = major(parsed.version);
    let browser = if mobile || version.is_empty() {
        name.to_owned()
    } else {
        format!("{name} {version}")
    };
    with_os(&browser, os)
}

fn with_os(browser: &str, os: Option<&str>) -> String {
    match os {
        Some(os) => format!("{browser} on {}", friendly_os(os)),
        None => browser.to_owned(),
    }
}

/// woothee's system names, as people say them.
fn friendly_os(os: &str) -> &str {
    match os {
        "Mac OSX" => "macOS",
        "iPad" => "iPad",
        "iPhone" => "iPhone",
        "iPod" => "iPod",
        other => other,
    }
}

/// The system of a user agent woothee could not name a browser for.
fn os_of(ua: &str) -> Option<&str> {
    parser()
        .parse(ua)
        .map(|p| p.os)
        .filter(|os| !os.is_empty() && *os != woothee::woothee::VALUE_UNKNOWN)
}

/// The version after `product/` in a user agent.
fn product_version<'a>(ua: &'a str, product: &str) -> Option<&'a str> {
    ua.split_whitespace()
        .find_map(|token| token.strip_prefix(product)?.strip_prefix('/'))
}

/// "156.0.7390.54" -> "156"; "-" or "UNKNOWN" -> "".
fn major(version: &str) -> &str {
    let head = version.split(['.', ' ']).next().unwrap_or("");
    if head.bytes().any(|b| b.is_ascii_digit()) {
        head
    } else {
        ""
    }
}

/// "curl/8.5.0" -> "curl 8.5.0"; "okhttp/4.12.0 (x)" -> "okhttp 4.12.0". Capped, since any client
/// may send anything.
fn first_product(ua: &str) -> String {
    let token = ua.split_whitespace().next().unwrap_or(ua);
    let text = match token.split_once('/') {
        Some((name, version)) if !name.is_empty() => format!("{name} {version}"),
        _ => token.to_owned(),
    };
    let text: String = text.chars().filter(|c| !c.is_control()).take(60).collect();
    if text.is_empty() {
        UNKNOWN_DEVICE.to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_named_as_people_say_them() {
        for (ua, expected) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
                "Chrome 156 on Linux",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15",
                "Safari 18 on macOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0",
                "Firefox 140 on Windows 10",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/146.0.0.0 Safari/537.36",
                "Headless Chrome 146 on Linux",
            ),
            ("curl/8.14.1", "curl 8.14.1"),
            ("okhttp/4.12.0", "okhttp 4.12.0"),
            ("python-requests/2.32.3", "python-requests 2.32.3"),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "Googlebot",
            ),
            ("", UNKNOWN_DEVICE),
            ("   ", UNKNOWN_DEVICE),
        ] {
            assert_eq!(describe(ua), expected, "{ua}");
        }
    }

    #[test]
    fn hostile_agents_give_a_short_plain_name() {
        let long = format!("{}/1", "x".repeat(10_000));
        assert!(describe(&long).chars().count() <= 60);
        assert!(!describe("evil\u{7}bell/1").chars().any(char::is_control));
    }
}
