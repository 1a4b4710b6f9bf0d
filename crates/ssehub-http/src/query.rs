//! Query strings with repeated parameters (`?topic=a&topic=b`), checked against the names an
//! endpoint knows, so a typo (`?evnet=`) is an error instead of being silently ignored.

use crate::error::{ApiError, Reason};

/// The decoded `name=value` pairs of a query string, in order.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `raw` (without the `?`) and refuses names not in `known`.
    pub(crate) fn parse(raw: Option<&str>, known: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((name, _)) = pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(ApiError::new(
                Reason::UnknownParameter,
                format!(
                    "unknown query parameter {name:?}; this endpoint takes {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(Query(pairs))
    }

    /// Parses `raw` keeping every parameter: for protocols whose clients may add their own
    /// (Mercure's endpoint, like the reference hub, ignores what it does not know).
    pub(crate) fn parse_any(raw: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_decoded() {
        let q = Query::parse(Some("topic=a%2Fb&topic=c&x=1"), &["topic", "x"]).unwrap();
        assert_eq!(q.all("topic").collect::<Vec<_>>(), ["a/b", "c"]);
        assert_eq!(q.get("x"), Some("1"));
        assert_eq!(q.get("y"), None);
    }

    #[test]
    fn unknown_names_are_refused() {
        let e = Query::parse(Some("evnet=x"), &["event"]).unwrap_err();
        assert_eq!(e.reason, Reason::UnknownParameter);
        assert!(e.message.contains("evnet"));
    }
}
