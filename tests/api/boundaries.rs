//! The module boundaries the `//!` comments state, checked: every `crate::<module>` path (in a
//! `use` or in code, grouped or not, and `super::` paths that climb to the crate root) and every
//! use of the crates that speak HTTP or Redis, in every file under src/, against one table of
//! rules. The layering is `http -> auth -> {tokens, store} -> domain`; `config` and `metrics` are
//! leaves; only `startup` sees every layer; the command line (`main.rs`, `cli`) reaches the
//! server through `startup`. A new top-level module fails here until it has a rule.

use std::path::Path;

/// What one top-level module of src/ may import from the crate (itself always), and why, in its
/// module comment's words.
struct Rule {
    module: &'static str,
    may_import: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        module: "domain",
        may_import: &[],
        why: "domain: small value types shared by every layer; depends on nothing else in the crate",
    },
    Rule {
        module: "config",
        may_import: &[],
        why: "config: depends on no other module of the crate",
    },
    Rule {
        module: "metrics",
        may_import: &[],
        why: "metrics: depends on nothing else in the crate",
    },
    Rule {
        module: "tokens",
        may_import: &["config", "domain"],
        why: "tokens: signing and verifying; nothing about HTTP, cookies or the store",
    },
    Rule {
        module: "store",
        may_import: &["domain", "config", "metrics"],
        why: "store: knows nothing of HTTP, JWT encoding or the flows above it",
    },
    Rule {
        module: "auth",
        may_import: &["tokens", "store", "domain", "config"],
        why: "auth: the flows; nothing here knows about HTTP",
    },
    Rule {
        module: "http",
        may_import: &["auth", "domain", "config", "metrics"],
        why: "http: handlers call `auth` flows and nothing deeper (http -> auth -> {tokens, store})",
    },
    Rule {
        module: "startup",
        may_import: &[
            "auth", "config", "domain", "http", "metrics", "store", "tokens",
        ],
        why: "startup: the only module that sees every layer",
    },
    Rule {
        module: "cli",
        may_import: &["auth", "config", "domain", "startup", "store", "tokens"],
        why: "cli: the commands' work reaches the server only through `startup`, never `http`",
    },
    Rule {
        module: "main",
        may_import: &["cli", "config"],
        why: "main.rs: the command line only; each command's work is in `refreshd::cli`",
    },
];

/// Crates that only some modules may use: (name, or a prefix ending in `_`; who may; why).
const CRATES: &[(&str, &[&str], &str)] = &[
    (
        "actix_",
        &["http", "startup"],
        "http is the only module that speaks HTTP (startup binds its server)",
    ),
    (
        "cookie",
        &["http", "startup"],
        "http is the only module that speaks HTTP: cookies are built and read there",
    ),
    (
        "redis",
        &["store"],
        "Redis is the store's: only store/ talks to it",
    ),
];

/// Files under src/ that are not modules of the library or its command line: other binaries,
/// in whose code `crate::` is themselves.
const NOT_CHECKED: &[&str] = &["bin/"];

#[test]
fn every_module_keeps_the_boundaries_its_comment_states() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &src, &mut files);
    assert!(files.len() > 10, "src/ read: {} files", files.len());
    // The checker reads the real files as it reads the examples: startup, which wires every
    // layer, is seen importing them.
    let (_, startup) = files.iter().find(|(p, _)| p == "startup.rs").unwrap();
    let seen = references(&module_path("startup.rs"), "crate", &strip(startup));
    for expected in [
        Reference::Module("http".into()),
        Reference::Module("store".into()),
        Reference::Crate("actix_web".into()),
    ] {
        assert!(
            seen.iter().any(|(_, r)| *r == expected),
            "{expected:?} in {seen:?}"
        );
    }
    let problems = check(&files);
    assert!(
        problems.is_empty(),
        "forbidden imports (rules: tests/api/boundaries.rs, as each module's //! comment states):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_reports_each_kind_of_forbidden_import() {
    let reports = |path: &str, text: &str| check(&[(path.to_owned(), text.to_owned())]);
    // Each of these breaks a rule, in a different spelling.
    for (path, text, needle) in [
        (
            "auth/mod.rs",
            "use actix_web::HttpResponse;",
            "auth/mod.rs:1",
        ),
        (
            "http/routes.rs",
            "\n\nuse crate::store::SessionInfo;",
            "http/routes.rs:3",
        ),
        (
            "http/x.rs",
            "fn f() { crate::tokens::keys::generate() }",
            "crate::tokens",
        ),
        (
            "tokens/keys.rs",
            "use crate::{config::Algorithm, store::Store};",
            "crate::store",
        ),
        ("tokens/mod.rs", "fn f() { redis::cmd(\"GET\"); }", "redis"),
        (
            "auth/mod.rs",
            "#[derive(Debug)] struct C(cookie::Cookie<'static>);",
            "cookie",
        ),
        (
            "store/memory.rs",
            "mod tests { use super::super::super::auth::X; }",
            "auth",
        ),
        (
            "store/memory.rs",
            "use super::super::{domain::UserId, http};",
            "http",
        ),
        (
            "domain/mod.rs",
            "use crate::config::Settings;",
            "crate::config",
        ),
        ("main.rs", "use refreshd::store::Store;", "refreshd::store"),
        (
            "cli/users.rs",
            "use crate::http::error::INTERNAL;",
            "crate::http",
        ),
        ("newmodule.rs", "", "no boundary rule"),
    ] {
        let found = reports(path, text);
        assert_eq!(found.len(), 1, "{path}: {text:?}: {found:?}");
        assert!(found[0].contains(needle), "{path}: {text:?}: {found:?}");
        assert!(found[0].starts_with(&format!("src/{path}")), "{found:?}");
    }
    // These keep the rules: allowed layers, the module's own paths, and text that only
    // mentions a module (comments, strings, a field named like a crate).
    for (path, text) in [
        (
            "auth/mod.rs",
            "use crate::store::Store;\nuse crate::tokens::{TokenCodec, keys};",
        ),
        (
            "store/mod.rs",
            "mod redis;\npub use self::redis::{RedisStore, SentinelConfig};",
        ),
        (
            "store/redis.rs",
            "use redis::AsyncCommands;\nuse crate::metrics;",
        ),
        (
            "http/routes.rs",
            "use super::error::ApiError;\nmod tests { use super::*; }",
        ),
        (
            "domain/mod.rs",
            "// use crate::store\n/// crate::http\n/* crate::auth /* nested */ */\n\
             const S: &str = \"crate::auth\";\nconst R: &str = r#\"use actix_web::\"#;\n\
             const C: char = '\"'; fn f<'a>(x: &'a str) -> &'a str { x.redis }",
        ),
        (
            "startup.rs",
            "use crate::{auth, http::{self, error}, store::Store};",
        ),
        (
            "main.rs",
            "use refreshd::cli::{self, users::UserCommand};\nuse crate::Cli;",
        ),
        (
            "bin/other.rs",
            "use crate::store::Store; use actix_web::App;",
        ),
    ] {
        assert_eq!(
            reports(path, text),
            Vec::<String>::new(),
            "{path}: {text:?}"
        );
    }
}

/// Every .rs file under `dir`, as (its path from src/, its text).
fn collect(src: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(src, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.push((relative, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// Every broken rule in `files` ((path from src/, text) pairs), as "src/<file>:<line>: ...".
fn check(files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, text) in files {
        if NOT_CHECKED.iter().any(|p| path.starts_with(p)) || path == "lib.rs" {
            continue;
        }
        let module_path = module_path(path);
        let module = module_path[0].as_str();
        let Some(rule) = RULES.iter().find(|r| r.module == module) else {
            problems.push(format!(
                "src/{path}: module `{module}` has no boundary rule: add one to RULES in \
                 tests/api/boundaries.rs, and say it in the module's //! comment"
            ));
            continue;
        };
        // In the binary, `crate::` is the binary and the library is `refreshd::`.
        let root = if module == "main" {
            "refreshd"
        } else {
            "crate"
        };
        for (line, reference) in references(&module_path, root, &strip(text)) {
            match reference {
                Reference::Module(target) => {
                    let known = RULES.iter().any(|r| r.module == target);
                    if known && target != module && !rule.may_import.contains(&target.as_str()) {
                        problems.push(format!(
                            "src/{path}:{line}: `{root}::{target}`: {} (may import: {})",
                            rule.why,
                            list(rule.may_import)
                        ));
                    }
                }
                Reference::Crate(name) => {
                    let limit = CRATES
                        .iter()
                        .find(|(c, _, _)| name == *c || (c.ends_with('_') && name.starts_with(c)));
                    if let Some((_, who, why)) = limit
                        && !who.contains(&module)
                    {
                        problems.push(format!(
                            "src/{path}:{line}: crate `{name}` in `{module}`: {why} (may use it: {})",
                            list(who)
                        ));
                    }
                }
            }
        }
    }
    problems
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// The module a file is: `http/routes.rs` is [http, routes], `http/mod.rs` [http], `main.rs`
/// [main].
fn module_path(path: &str) -> Vec<String> {
    let path = path.strip_suffix(".rs").unwrap_or(path);
    let mut parts: Vec<String> = path.split('/').map(str::to_owned).collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

#[derive(Debug, PartialEq)]
enum Reference {
    /// A top-level module of the crate, reached from the crate root.
    Module(String),
    /// A crate whose use is limited.
    Crate(String),
}

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Every reference in `code` (comments and literals already blanked), with its line. `file` is
/// the file's module path; inline `mod x { ... }` blocks extend it, for `super::`.
fn references(file: &[String], root: &str, code: &str) -> Vec<(usize, Reference)> {
    let tokens = tokenize(code);
    let ident = |i: usize| match tokens.get(i) {
        Some((Token::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: &Token| tokens.get(i).is_some_and(|(x, _)| x == t);
    let mut found = Vec::new();
    // Inline modules open: (name, the brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    for i in 0..tokens.len() {
        match &tokens[i].0 {
            Token::Punct('{') => {
                depth += 1;
                continue;
            }
            Token::Punct('}') => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
                continue;
            }
            Token::Ident(kw) if kw == "mod" => {
                if let Some(name) = ident(i + 1)
                    && is(i + 2, &Token::Punct('{'))
                {
                    inline.push((name.to_owned(), depth + 1));
                }
                continue;
            }
            _ => {}
        }
        let Some(first) = ident(i) else { continue };
        // A later segment of a path (`a::b`, `Vec::<u8>::new`) starts nothing; `::name` does.
        if i >= 2
            && is(i - 1, &Token::PathSep)
            && matches!(tokens[i - 2].0, Token::Ident(_) | Token::Punct('>'))
        {
            continue;
        }
        if !is(i + 1, &Token::PathSep) {
            continue;
        }
        let line = tokens[i].1;
        // Where the path is, after its `crate`, `super`s or `self`.
        let (at_root, next) = if first == root {
            (true, i + 2)
        } else if first == "super" {
            let mut here: Vec<String> = file.to_vec();
            here.extend(inline.iter().map(|(n, _)| n.clone()));
            if file.first().is_some_and(|m| m == "main") {
                here.clear();
            }
            let mut j = i;
            while ident(j) == Some("super") && is(j + 1, &Token::PathSep) {
                here.pop();
                j += 2;
            }
            (here.is_empty(), j)
        } else if first == "self" || first == "crate" || first == "Self" {
            (false, i + 2)
        } else {
            if CRATES
                .iter()
                .any(|(c, _, _)| first == *c || (c.ends_with('_') && first.starts_with(c)))
            {
                found.push((line, Reference::Crate(first.to_owned())));
            }
            continue;
        };
        if !at_root {
            continue;
        }
        if let Some(name) = ident(next) {
            found.push((line, Reference::Module(name.to_owned())));
        } else if is(next, &Token::Punct('{')) {
            // A group: the first name of each item at its top level.
            let mut level = 1;
            let mut item_start = true;
            for (t, line) in &tokens[next + 1..] {
                match t {
                    Token::Punct('{') => level += 1,
                    Token::Punct('}') => {
                        level -= 1;
                        if level == 0 {
                            break;
                        }
                    }
                    Token::Punct(',') if level == 1 => {
                        item_start = true;
                        continue;
                    }
                    Token::Ident(name) if level == 1 && item_start && name != "self" => {
                        found.push((*line, Reference::Module(name.clone())));
                    }
                    _ => {}
                }
                item_start = false;
            }
        }
    }
    found
}

/// Identifiers, `::` and single punctuation characters, each with its line.
fn tokenize(code: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((Token::Ident(chars[start..i].iter().collect()), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push((Token::PathSep, line));
            i += 2;
        } else {
            tokens.push((Token::Punct(c), line));
            i += 1;
        }
    }
    tokens
}

/// `text` with comments, string and character literals blanked (newlines kept, so that line
/// numbers still hold): what they say is not an import.
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, s: &[char]| {
        out.extend(s.iter().map(|&ch| if ch == '\n' { '\n' } else { ' ' }));
    };
    let ident_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied();
        // A raw string: r"...", r#"..."#, br#"..."#.
        let raw_start = if at(0) == Some('b') && at(1) == Some('r') {
            Some(i + 1)
        } else if at(0) == Some('r') {
            Some(i)
        } else {
            None
        };
        if let Some(r) = raw_start
            && (i == 0 || !ident_char(c[i - 1]))
        {
            let hashes = c[r + 1..].iter().take_while(|&&ch| ch == '#').count();
            if c.get(r + 1 + hashes) == Some(&'"') {
                let body = r + 2 + hashes;
                let close: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let rest: String = c[body..].iter().collect();
                let end = body
                    + rest
                        .find(&close)
                        .map_or(c.len() - body, |k| rest[..k].chars().count() + close.len());
                blank(&mut out, &c[i..end.min(c.len())]);
                i = end;
                continue;
            }
        }
        let end = match (at(0), at(1)) {
            (Some('/'), Some('/')) => {
                let mut k = i;
                while k < c.len() && c[k] != '\n' {
                    k += 1;
                }
                k
            }
            (Some('/'), Some('*')) => {
                let (mut k, mut open) = (i + 2, 1);
                while k < c.len() && open > 0 {
                    if c[k] == '/' && c.get(k + 1) == Some(&'*') {
                        open += 1;
                        k += 2;
                    } else if c[k] == '*' && c.get(k + 1) == Some(&'/') {
                        open -= 1;
                        k += 2;
                    } else {
                        k += 1;
                    }
                }
                k
            }
            (Some('"'), _) => {
                let mut k = i + 1;
                while k < c.len() && c[k] != '"' {
                    k += if c[k] == '\\' { 2 } else { 1 };
                }
                k + 1
            }
            // A character literal ('x', '\n', '\''); a lifetime ('a) is left as it is.
            (Some('\''), Some('\\')) => {
                let mut k = i + 2;
                while k < c.len() && c[k] != '\'' {
                    k += 1;
                }
                k + 1
            }
            (Some('\''), Some(_)) if at(2) == Some('\'') => i + 3,
            _ => {
                out.push(c[i]);
                i += 1;
                continue;
            }
        };
        let end = end.min(c.len());
        blank(&mut out, &c[i..end]);
        i = end;
    }
    out
}
