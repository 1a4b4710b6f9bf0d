//! Matching topics against URI Templates (RFC 6570), as Mercure subscribers select topics.
//!
//! A template is compiled once into an anchored regular expression (the `regex` crate: linear
//! time, so a hostile template cannot make matching slow). Each expression `{op var,…}`
//! becomes an optional group that accepts what expanding it could produce: values of
//! unreserved characters and percent-escapes, plus reserved characters for `+` and `#`, with
//! the operator's prefix and separators. That is what the reference Mercure hub accepts.

use regex::Regex;

/// Characters a simple expansion leaves as they are, and percent-escapes.
const UNRESERVED: &str = r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})";
/// The same plus reserved characters, for `{+var}` and `{#var}`.
const RESERVED: &str = r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})";

/// Compiles `template` into a matcher, or `None` when it has no expression or is malformed
/// (then it can only match itself, as a plain string).
pub(crate) fn compile(template: &str) -> Option<Regex> {
    let mut pattern = String::from("^");
    let mut rest = template;
    let mut expressions = 0;
    while let Some(open) = rest.find('{') {
        pattern.push_str(&regex::escape(&rest[..open]));
        let close = rest[open..].find('}')? + open;
        pattern.push_str(&expression(&rest[open + 1..close])?);
        expressions += 1;
        rest = &rest[close + 1..];
    }
    if rest.contains('}') || expressions == 0 {
        return None;
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    Regex::new(&pattern).ok()
}

/// The regex for the inside of one `{…}`.
fn expression(body: &str) -> Option<String> {
    let (op, vars) = match body.chars().next()? {
        c @ ('+' | '#' | '.' | '/' | ';' | '?' | '&') => (Some(c), &body[1..]),
        _ => (None, body),
    };
    let names: Vec<&str> = vars
        .split(',')
        .map(|v| v.trim_end_matches('*').split(':').next().unwrap_or(""))
        .collect();
    if names.iter().any(|n| {
        n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '%')
    }) {
        return None;
    }
    let value = match op {
        Some('+' | '#') => RESERVED,
        _ => UNRESERVED,
    };
    let one = |name: &str| match op {
        Some(';') => format!(";{}(?:={value}*)?", regex::escape(name)),
        Some('?' | '&') => format!("{}={value}*", regex::escape(name)),
        _ => format!("{value}*"),
    };
    let (first, separator) = match op {
        None | Some('+') => ("", ","),
        Some('#') => ("#", ","),
        Some('.') => (r"\.", r"\."),
        Some('/') => ("/", "/"),
        Some(';') => ("", ""),
        Some('?') => (r"\?", "&"),
        Some('&') => ("&", "&"),
        Some(_) => unreachable!("operators are matched above"),
    };
    let items: Vec<String> = names.iter().map(|n| one(n)).collect();
    // Any leading subset of the variables may be defined (undefined ones are omitted).
    let body = items.iter().rev().fold(String::new(), |inner, item| {
        if inner.is_empty() {
            item.clone()
        } else {
            format!("{item}(?:{separator}{inner})?")
        }
    });
    Some(format!("(?:{first}{body})?"))
}

#[cfg(test)]
mod tests {
    use super::compile;

    fn m(template: &str, topic: &str) -> bool {
        compile(template).expect("valid template").is_match(topic)
    }

    #[test]
    fn simple_and_reserved() {
        assert!(m(
            "https://example.com/books/{id}",
            "https://example.com/books/1"
        ));
        assert!(!m(
            "https://example.com/books/{id}",
            "https://example.com/books/1/reviews"
        ));
        assert!(m(
            "https://example.com/{+path}",
            "https://example.com/books/1/reviews"
        ));
        assert!(m(
            "https://example.com/books/{id}.jsonld",
            "https://example.com/books/42.jsonld"
        ));
    }

    #[test]
    fn query_form_as_mercure_uses_for_private_topics() {
        let t = "https://example.com/users/foo/{?topic}";
        assert!(m(
            t,
            "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1"
        ));
        assert!(m(t, "https://example.com/users/foo/"));
        assert!(!m(t, "https://example.com/users/bar/?topic=x"));
    }

    #[test]
    fn path_and_label_operators() {
        assert!(m("https://e.com{/a,b}", "https://e.com/x/y"));
        assert!(m("https://e.com/f{.ext}", "https://e.com/f.json"));
        assert!(m("https://e.com/{a}/{b}", "https://e.com/1/2"));
    }

    #[test]
    fn malformed_or_plain_templates_do_not_compile() {
        assert!(compile("https://example.com/books/1").is_none());
        assert!(compile("https://example.com/{unclosed").is_none());
        assert!(compile("https://example.com/}{").is_none());
        assert!(compile("https://example.com/{}").is_none());
        assert!(compile("https://example.com/{a b}").is_none());
    }
}
