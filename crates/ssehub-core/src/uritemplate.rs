//! Matching topics against URI Templates (RFC 6570), as Mercure subscribers select topics.
//!
//! A template is compiled once into an anchored regular expression (`regex-automata`'s lazy
//! DFA, with its PikeVM as the fallback: linear time, so a hostile template cannot make
//! matching slow per byte; the lazy DFA makes it about a byte a nanosecond, where the PikeVM
//! alone took up to 4 ms for a 4 KiB topic against a 16-variable template). Each
//! expression `{op var,…}` becomes an optional group that accepts what expanding it could
//! produce: values of unreserved characters and percent-escapes, plus reserved characters for
//! `+` and `#`, with the operator's prefix and separators. That is what the reference Mercure
//! hub accepts.
//!
//! Anyone may send templates, so each one is bounded before and while it is compiled
//! ([`TemplateLimits`]): its length, its number of variables (each adds states to the
//! automaton, and every event is matched against every template), and the size of the
//! compiled automaton. How many the hub holds at once is bounded by
//! [`Templates`](crate::Templates).

use regex_automata::meta::Regex;

/// Characters a simple expansion leaves as they are, and percent-escapes.
const UNRESERVED: &str = r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})";
/// The same plus reserved characters, for `{+var}` and `{#var}`.
const RESERVED: &str = r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})";

/// The most bytes of one lazy-DFA cache of one template (one per thread matching at once);
/// when the DFA outgrows it, matching falls back to the PikeVM, slower but still linear.
pub(crate) const CACHE_BYTES: usize = 16 << 10;

/// Bounds on one URI template, checked before it is compiled (and, for the compiled size,
/// while it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLimits {
    /// The longest template, in bytes.
    pub max_bytes: usize,
    /// The most variables, over all its expressions (`{a,b}{c}` has three).
    pub max_variables: usize,
    /// The most bytes its compiled automaton may take.
    pub max_compiled_bytes: usize,
}

impl Default for TemplateLimits {
    /// 1 KiB, 16 variables, 256 KiB compiled: far above what real Mercure selectors need
    /// (one to three variables, about 2 KiB each compiled).
    fn default() -> Self {
        TemplateLimits {
            max_bytes: 1024,
            max_variables: 16,
            max_compiled_bytes: 256 << 10,
        }
    }
}

/// Why a URI template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Longer than [`TemplateLimits::max_bytes`].
    #[error("the URI template is longer than {0} bytes")]
    TooLong(usize),
    /// More than [`TemplateLimits::max_variables`] variables.
    #[error("the URI template has more than {0} variables")]
    TooManyVariables(usize),
    /// It compiles to more than [`TemplateLimits::max_compiled_bytes`].
    #[error("the URI template compiles to more than {0} bytes")]
    TooLarge(usize),
    /// The hub holds as many compiled templates as its budget allows (the hub's fault, not
    /// the template's: retry later).
    #[error("the hub's budget for URI templates ({0} bytes) is spent")]
    OverBudget(usize),
    /// The hub holds as many distinct templates as it allows (each costs every event one
    /// match): the hub's fault, retry later.
    #[error("the hub holds its most distinct URI templates ({0})")]
    TooManyTemplates(usize),
}

impl TemplateError {
    /// Whether the hub, not the template, is at its limit.
    pub fn is_over_budget(&self) -> bool {
        matches!(
            self,
            TemplateError::OverBudget(_) | TemplateError::TooManyTemplates(_)
        )
    }
}

/// Compiles `template` into a matcher, `Ok(None)` when it has no expression or is malformed
/// (then it can only match itself, as a plain string).
///
/// # Errors
///
/// A [`TemplateError`] when it is over one of `limits`.
pub(crate) fn compile(
    template: &str,
    limits: &TemplateLimits,
) -> Result<Option<Regex>, TemplateError> {
    let Some((pattern, variables)) = translate(template) else {
        return Ok(None);
    };
    if template.len() > limits.max_bytes {
        return Err(TemplateError::TooLong(limits.max_bytes));
    }
    if variables > limits.max_variables {
        return Err(TemplateError::TooManyVariables(limits.max_variables));
    }
    Regex::builder()
        .configure(
            Regex::config()
                .nfa_size_limit(Some(limits.max_compiled_bytes))
                .hybrid(true)
                .hybrid_cache_capacity(CACHE_BYTES)
                .dfa(false),
        )
        .build(&pattern)
        .map(Some)
        .map_err(|_| TemplateError::TooLarge(limits.max_compiled_bytes))
}

/// The anchored regex for `template` and its number of variables, or `None` when it has no
/// expression or is malformed.
fn translate(template: &str) -> Option<(String, usize)> {
    let mut pattern = String::from("^");
    let mut rest = template;
    let mut expressions = 0;
    let mut variables = 0;
    while let Some(open) = rest.find('{') {
        pattern.push_str(&regex::escape(&rest[..open]));
        let close = rest[open..].find('}')? + open;
        let inside = &rest[open + 1..close];
        pattern.push_str(&expression(inside)?);
        variables += inside.split(',').count();
        expressions += 1;
        rest = &rest[close + 1..];
    }
    if rest.contains('}') || expressions == 0 {
        return None;
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    Some((pattern, variables))
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
    use super::*;

    fn compile(template: &str) -> Option<Regex> {
        super::compile(template, &TemplateLimits::default()).expect("within the limits")
    }

    fn m(template: &str, topic: &str) -> bool {
        compile(template).expect("valid template").is_match(topic)
    }

    /// Each limit refuses what is over it; a real selector is far below all of them.
    #[test]
    fn limits() {
        let limits = TemplateLimits::default();
        let hostile = "{a}".repeat(560);
        assert_eq!(
            super::compile(&hostile, &limits).unwrap_err(),
            TemplateError::TooLong(1024)
        );
        let many = "{a}".repeat(17);
        assert_eq!(
            super::compile(&many, &limits).unwrap_err(),
            TemplateError::TooManyVariables(16)
        );
        let vars: Vec<String> = (0..17).map(|i| format!("v{i}")).collect();
        let one = format!("https://e.com/{{{}}}", vars.join(","));
        assert_eq!(
            super::compile(&one, &limits).unwrap_err(),
            TemplateError::TooManyVariables(16)
        );
        let small = TemplateLimits {
            max_compiled_bytes: 1000,
            ..limits
        };
        assert_eq!(
            super::compile(&"{a}".repeat(16), &small).unwrap_err(),
            TemplateError::TooLarge(1000)
        );
        let real = compile("https://example.com/books/{id}").unwrap();
        assert!(real.memory_usage() < 16 << 10, "{}", real.memory_usage());
        let largest = compile(&"{+a}".repeat(16)).unwrap();
        assert!(largest.memory_usage() < limits.max_compiled_bytes);
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
