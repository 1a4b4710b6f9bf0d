//! Topic names and subscription patterns.
//!
//! A topic is a `/`-separated path of UTF-8 segments (`builds/42/log`). A pattern is a topic in
//! which a segment may be `*` (exactly one segment) and the last segment may be `**` (one or
//! more remaining segments). Both are validated once, at the edge, so the rest of the hub can
//! match them without re-checking.

use std::fmt;
use std::sync::Arc;

/// The longest topic or pattern, in bytes.
pub const MAX_TOPIC_BYTES: usize = 1024;
/// The most segments a topic or pattern may have.
pub const MAX_SEGMENTS: usize = 32;
/// The longest Mercure topic or selector (an IRI), in bytes.
pub const MAX_IRI_BYTES: usize = 4096;

/// Why a topic or pattern was refused. Always the client's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The name is empty.
    #[error("the topic is empty")]
    Empty,
    /// The name is longer than [`MAX_TOPIC_BYTES`].
    #[error("the topic is longer than {MAX_TOPIC_BYTES} bytes")]
    TooLong,
    /// The name has more than [`MAX_SEGMENTS`] segments.
    #[error("the topic has more than {MAX_SEGMENTS} segments")]
    TooManySegments,
    /// A segment is empty (a leading, trailing or doubled `/`).
    #[error("the topic has an empty segment (leading, trailing or double '/')")]
    EmptySegment,
    /// A control character (CR, LF, NUL, …) would corrupt logs and headers.
    #[error("the topic contains a control character")]
    ControlCharacter,
    /// A wildcard in a topic that events are published to.
    #[error("a wildcard ('*' or '**') is only allowed when subscribing")]
    WildcardInTopic,
    /// `*` mixed with other characters in a segment, or `**` before the last segment.
    #[error("'*' must be a whole segment and '**' only the last segment")]
    BadWildcard,
    /// A Mercure URI template over a limit, or over the hub's budget for templates.
    #[error(transparent)]
    Template(#[from] crate::uritemplate::TemplateError),
}

/// A concrete topic that events are published to. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Validates a topic name.
    ///
    /// # Errors
    ///
    /// A [`TopicError`] saying what is wrong with it; wildcards are refused.
    pub fn new(name: &str) -> Result<Self, TopicError> {
        for segment in check(name)? {
            if segment.contains('*') {
                return Err(TopicError::WildcardInTopic);
            }
        }
        Ok(Topic(name.into()))
    }

    /// Validates a Mercure topic: any IRI (or string) that is not empty, at most
    /// [`MAX_IRI_BYTES`] long, and free of control characters (which would corrupt logs and
    /// headers). Segment rules and wildcards do not apply: Mercure selects with URI templates.
    ///
    /// # Errors
    ///
    /// [`TopicError::Empty`], [`TopicError::TooLong`] or [`TopicError::ControlCharacter`].
    pub fn iri(name: &str) -> Result<Self, TopicError> {
        if name.is_empty() {
            return Err(TopicError::Empty);
        }
        if name.len() > MAX_IRI_BYTES {
            return Err(TopicError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(TopicError::ControlCharacter);
        }
        Ok(Topic(name.into()))
    }

    /// The topic's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// One segment of a [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    /// `*`: exactly one segment.
    One,
    /// `**` (last only): one or more segments.
    Rest,
}

/// How a [`Pattern`] matches.
#[derive(Debug, Clone)]
enum Kind {
    /// Segments with `*` and a trailing `**` (ssehub's own syntax).
    Segments(Box<[Segment]>),
    /// Exactly this string (a Mercure topic IRI).
    Exact,
    /// A URI template (RFC 6570), as Mercure subscribers select topics: compiled once per
    /// distinct text, shared.
    Template(Arc<crate::templates::Template>),
    /// Every topic (Mercure's `*`).
    Any,
}

/// A subscription pattern: a topic, a topic with wildcards, or a Mercure selector.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: Arc<str>,
    kind: Kind,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Pattern {}

impl std::hash::Hash for Pattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl Pattern {
    /// Validates a pattern.
    ///
    /// # Errors
    ///
    /// A [`TopicError`] saying what is wrong with it.
    pub fn new(text: &str) -> Result<Self, TopicError> {
        let parts: Vec<&str> = check(text)?.collect();
        let last = parts.len() - 1;
        let segments = parts
            .iter()
            .enumerate()
            .map(|(i, part)| match *part {
                "*" => Ok(Segment::One),
                "**" if i == last => Ok(Segment::Rest),
                p if p.contains('*') => Err(TopicError::BadWildcard),
                p => Ok(Segment::Literal(p.into())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Pattern {
            text: text.into(),
            kind: Kind::Segments(segments),
        })
    }

    /// A Mercure topic selector: `*` matches everything, a valid URI template matches what it
    /// could expand to, and anything else matches that exact topic. A template is compiled
    /// for this pattern alone, within the default [`TemplateLimits`](crate::TemplateLimits)
    /// (for selectors from trusted places, such as tokens' rights); selectors from clients go
    /// through [`Pattern::mercure_in`].
    ///
    /// # Errors
    ///
    /// As [`Topic::iri`]: empty, too long, or with control characters; or
    /// [`TopicError::Template`] for a template over the default limits.
    pub fn mercure(selector: &str) -> Result<Self, TopicError> {
        Pattern::mercure_in(selector, &crate::Templates::default())
    }

    /// A Mercure topic selector like [`Pattern::mercure`], its template (if it is one) taken
    /// from `templates`: compiled once per distinct text, shared, and charged to that set's
    /// budget for as long as a pattern holds it.
    ///
    /// # Errors
    ///
    /// As [`Pattern::mercure`], with `templates`' limits; [`TopicError::Template`] with
    /// [`TemplateError::OverBudget`](crate::TemplateError::OverBudget) when the set is full.
    pub fn mercure_in(selector: &str, templates: &crate::Templates) -> Result<Self, TopicError> {
        Topic::iri(selector)?;
        let kind = if selector == "*" {
            Kind::Any
        } else {
            match templates.get(selector)? {
                Some(template) => Kind::Template(template),
                None => Kind::Exact,
            }
        };
        Ok(Pattern {
            text: selector.into(),
            kind,
        })
    }

    /// Whether this is a Mercure URI template (matched against every event, so kept apart
    /// by fan-out).
    pub(crate) fn is_template(&self) -> bool {
        matches!(self.kind, Kind::Template(_))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The topic this pattern names, when it has no wildcard.
    pub fn as_topic(&self) -> Option<Topic> {
        let exact = match &self.kind {
            Kind::Segments(segments) => segments.iter().all(|s| matches!(s, Segment::Literal(_))),
            Kind::Exact => true,
            Kind::Template(_) | Kind::Any => false,
        };
        exact.then(|| Topic(self.text.clone()))
    }

    /// The literal segments before the first wildcard, as text (`a/b` for `a/b/*/c`), for a
    /// pattern in ssehub's syntax that starts with one; `None` for the others (`*/c`, Mercure
    /// selectors). A topic this pattern matches is this text, or starts with it and a `/`:
    /// fan-out uses that to look wildcard patterns up instead of trying every one.
    pub(crate) fn literal_prefix(&self) -> Option<&str> {
        let Kind::Segments(segments) = &self.kind else {
            return None;
        };
        let literal = segments
            .iter()
            .take_while(|s| matches!(s, Segment::Literal(_)))
            .count();
        if literal == 0 {
            return None;
        }
        // The text is the segments joined by `/` (checked when the pattern was made).
        let end = self
            .text
            .match_indices('/')
            .nth(literal - 1)
            .map_or(self.text.len(), |(i, _)| i);
        Some(&self.text[..end])
    }

    /// Whether `topic` matches.
    pub fn matches(&self, topic: &Topic) -> bool {
        let segments = match &self.kind {
            Kind::Segments(segments) => segments,
            Kind::Exact => return *self.text == *topic.0,
            Kind::Template(template) => return template.is_match(topic.as_str()),
            Kind::Any => return true,
        };
        let mut parts = topic.as_str().split('/');
        for segment in segments.iter() {
            match segment {
                Segment::Rest => return parts.next().is_some(),
                Segment::One => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Segment::Literal(lit) => {
                    if parts.next() != Some(lit) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What one subscription listens to: one or more patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    patterns: Vec<Pattern>,
}

impl Selector {
    /// A selector over `patterns`; duplicates are removed.
    ///
    /// # Errors
    ///
    /// [`TopicError::Empty`] when there is no pattern at all.
    pub fn new(mut patterns: Vec<Pattern>) -> Result<Self, TopicError> {
        if patterns.is_empty() {
            return Err(TopicError::Empty);
        }
        let mut seen = std::collections::HashSet::new();
        patterns.retain(|p| seen.insert(p.text.clone()));
        Ok(Selector { patterns })
    }

    /// The patterns.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any of `topics` matches any pattern.
    pub fn matches_any(&self, topics: &[Topic]) -> bool {
        topics
            .iter()
            .any(|t| self.patterns.iter().any(|p| p.matches(t)))
    }
}

/// The checks common to topics and patterns; returns the segments.
fn check(name: &str) -> Result<std::str::Split<'_, char>, TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(TopicError::ControlCharacter);
    }
    if name.split('/').count() > MAX_SEGMENTS {
        return Err(TopicError::TooManySegments);
    }
    if name.split('/').any(str::is_empty) {
        return Err(TopicError::EmptySegment);
    }
    Ok(name.split('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Topic {
        Topic::new(s).unwrap()
    }

    #[test]
    fn literal_prefix_is_the_segments_before_the_first_wildcard() {
        let prefix = |p: &str| {
            Pattern::new(p)
                .unwrap()
                .literal_prefix()
                .map(str::to_string)
        };
        assert_eq!(prefix("a/b/*").as_deref(), Some("a/b"));
        assert_eq!(prefix("users/alice/*/x/**").as_deref(), Some("users/alice"));
        assert_eq!(prefix("a/**").as_deref(), Some("a"));
        assert_eq!(prefix("a/b").as_deref(), Some("a/b"));
        assert_eq!(prefix("*/b"), None);
        assert_eq!(prefix("**"), None);
        let mercure = |p: &str| {
            Pattern::mercure(p)
                .unwrap()
                .literal_prefix()
                .map(str::to_string)
        };
        assert_eq!(mercure("https://example.com/books/{id}"), None);
        assert_eq!(mercure("*"), None);
    }

    #[test]
    fn topic_validation() {
        assert!(Topic::new("builds/42/log").is_ok());
        assert!(Topic::new("ünïcode/☃").is_ok());
        assert_eq!(Topic::new(""), Err(TopicError::Empty));
        assert_eq!(Topic::new("/a"), Err(TopicError::EmptySegment));
        assert_eq!(Topic::new("a/"), Err(TopicError::EmptySegment));
        assert_eq!(Topic::new("a//b"), Err(TopicError::EmptySegment));
        assert_eq!(Topic::new("a\nb"), Err(TopicError::ControlCharacter));
        assert_eq!(Topic::new("a\0"), Err(TopicError::ControlCharacter));
        assert_eq!(Topic::new("a/*"), Err(TopicError::WildcardInTopic));
        assert_eq!(Topic::new(&"a".repeat(1025)), Err(TopicError::TooLong));
        assert_eq!(
            Topic::new(&vec!["a"; 33].join("/")),
            Err(TopicError::TooManySegments)
        );
    }

    #[test]
    fn pattern_validation() {
        assert!(Pattern::new("a/*/c").is_ok());
        assert!(Pattern::new("a/**").is_ok());
        assert!(Pattern::new("**").is_ok());
        assert_eq!(Pattern::new("a/**/c"), Err(TopicError::BadWildcard));
        assert_eq!(Pattern::new("a*"), Err(TopicError::BadWildcard));
        assert_eq!(Pattern::new("a/***"), Err(TopicError::BadWildcard));
    }

    #[test]
    fn matching() {
        let cases = [
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
            ("a/b", "a/b/c", false),
            ("a/*", "a/b", true),
            ("a/*", "a/b/c", false),
            ("a/*", "a", false),
            ("*/log", "x/log", true),
            ("a/**", "a/b", true),
            ("a/**", "a/b/c/d", true),
            ("a/**", "a", false),
            ("a/**", "b/c", false),
            ("**", "anything/at/all", true),
            ("a/*/c/**", "a/x/c/d/e", true),
            ("a/*/c/**", "a/x/d/d/e", false),
        ];
        for (pattern, topic, want) in cases {
            assert_eq!(
                Pattern::new(pattern).unwrap().matches(&t(topic)),
                want,
                "{pattern} vs {topic}"
            );
        }
    }

    #[test]
    fn as_topic_only_without_wildcards() {
        assert_eq!(Pattern::new("a/b").unwrap().as_topic(), Some(t("a/b")));
        assert_eq!(Pattern::new("a/*").unwrap().as_topic(), None);
    }

    #[test]
    fn mercure_selectors() {
        let iri = |s: &str| Topic::iri(s).unwrap();
        let book = iri("https://example.com/books/1");
        assert!(Pattern::mercure("*").unwrap().matches(&book));
        assert!(
            Pattern::mercure("https://example.com/books/1")
                .unwrap()
                .matches(&book)
        );
        assert!(
            Pattern::mercure("https://example.com/books/{id}")
                .unwrap()
                .matches(&book)
        );
        assert!(
            !Pattern::mercure("https://example.com/users/{id}")
                .unwrap()
                .matches(&book)
        );
        assert_eq!(
            Pattern::mercure("https://example.com/books/1")
                .unwrap()
                .as_topic(),
            Some(book)
        );
        assert!(Topic::iri("a\nb").is_err());
        assert!(Pattern::mercure("").is_err());
    }

    #[test]
    fn selector_dedupes() {
        let p = Pattern::new("a").unwrap();
        let s = Selector::new(vec![p.clone(), p]).unwrap();
        assert_eq!(s.patterns().len(), 1);
        assert!(Selector::new(vec![]).is_err());
        assert!(s.matches_any(&[t("b"), t("a")]));
    }
}
