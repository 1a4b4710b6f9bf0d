//! The hub's compiled URI templates: one per distinct template text, shared by every
//! subscription that uses it, freed when the last one leaves, and bounded in total.
//!
//! Anyone may open a Mercure stream with templates of their choosing, and every event is
//! matched against every template. So what templates cost is bounded three ways: each one by
//! [`TemplateLimits`] (length, variables, compiled size), one subscription by its number of
//! selectors (the HTTP layer's `max_topics_per_subscription`), and the whole hub by the
//! budget here: `max_total_bytes` of compiled automata, and `max_count` distinct templates —
//! every event is matched against every template (about a microsecond each for the worst
//! the per-template limits allow), so the count bounds the CPU each event costs. A hundred streams with the same
//! templates cost one compiled copy of each; a template over the budget is refused (the
//! HTTP layer answers 503) instead of taking memory and fan-out time from everyone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use regex_automata::meta::Regex;

use crate::uritemplate::{self, TemplateError, TemplateLimits};

/// The compiled templates of a hub, and their budget. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Templates {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limits: TemplateLimits,
    max_total_bytes: usize,
    max_count: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_text: HashMap<Arc<str>, Weak<Template>>,
    /// The sum of the costs of the live templates.
    bytes: usize,
}

/// One compiled template. Its cost is given back when the last holder drops it.
#[derive(Debug)]
pub(crate) struct Template {
    text: Arc<str>,
    regex: Regex,
    /// What it is charged against the budget: the automata, and one matching cache at its
    /// largest.
    cost: usize,
    owner: Weak<Shared>,
}

impl Template {
    pub(crate) fn is_match(&self, topic: &str) -> bool {
        self.regex.is_match(topic)
    }
}

impl Drop for Template {
    fn drop(&mut self) {
        let Some(owner) = self.owner.upgrade() else {
            return;
        };
        let mut inner = owner.lock();
        inner.bytes = inner.bytes.saturating_sub(self.cost);
        // Only this template's own entry: the text may already name a newer compilation.
        let own = inner
            .by_text
            .get(&self.text)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self));
        if own {
            inner.by_text.remove(&self.text);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new(TemplateLimits::default(), 64 << 20, 1000)
    }
}

impl Templates {
    /// An empty set: each template within `limits`, all of them within `max_total_bytes`,
    /// at most `max_count` distinct ones.
    pub fn new(limits: TemplateLimits, max_total_bytes: usize, max_count: usize) -> Self {
        Templates {
            shared: Arc::new(Shared {
                limits,
                max_total_bytes,
                max_count,
                inner: Mutex::new(Inner::default()),
            }),
        }
    }

    /// The compiled `template`, shared with every other holder of the same text; `Ok(None)`
    /// when it is not a template (no expression, or malformed).
    ///
    /// # Errors
    ///
    /// A [`TemplateError`]: over one of the limits, or over the hub's budget.
    pub(crate) fn get(&self, template: &str) -> Result<Option<Arc<Template>>, TemplateError> {
        if let Some(found) = self
            .shared
            .lock()
            .by_text
            .get(template)
            .and_then(Weak::upgrade)
        {
            return Ok(Some(found));
        }
        // Compiled outside the lock: a slow compile does not hold up the others.
        let Some(regex) = uritemplate::compile(template, &self.shared.limits)? else {
            return Ok(None);
        };
        let cost = regex.memory_usage() + uritemplate::CACHE_BYTES;
        let mut inner = self.shared.lock();
        if let Some(found) = inner.by_text.get(template).and_then(Weak::upgrade) {
            // Compiled by someone else meanwhile.
            return Ok(Some(found));
        }
        if inner.bytes + cost > self.shared.max_total_bytes {
            return Err(TemplateError::OverBudget(self.shared.max_total_bytes));
        }
        // Entries are removed when their template drops, so this is the live count (a dead
        // entry of the same text was checked above and is replaced, not added).
        let live = inner.by_text.len() - usize::from(inner.by_text.contains_key(template));
        if live >= self.shared.max_count {
            return Err(TemplateError::TooManyTemplates(self.shared.max_count));
        }
        let text: Arc<str> = template.into();
        let compiled = Arc::new(Template {
            text: text.clone(),
            regex,
            cost,
            owner: Arc::downgrade(&self.shared),
        });
        inner.bytes += cost;
        inner.by_text.insert(text, Arc::downgrade(&compiled));
        Ok(Some(compiled))
    }

    /// How many distinct templates are compiled now.
    pub fn count(&self) -> usize {
        let inner = self.shared.lock();
        inner
            .by_text
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// The bytes they are charged (compiled automata and matching caches).
    pub fn bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// The budget.
    pub fn max_total_bytes(&self) -> usize {
        self.shared.max_total_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_once_shared_and_freed_with_the_last_holder() {
        let templates = Templates::default();
        let a = templates.get("https://e.com/{id}").unwrap().unwrap();
        let b = templates.get("https://e.com/{id}").unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "one compilation per distinct text");
        assert_eq!(templates.count(), 1);
        let cost = templates.bytes();
        assert!(cost > 0);
        let c = templates.get("https://e.com/{x}/{y}").unwrap().unwrap();
        assert_eq!(templates.count(), 2);
        drop(a);
        assert_eq!(templates.count(), 2, "b still holds it");
        drop(b);
        assert_eq!(templates.count(), 1);
        drop(c);
        assert_eq!((templates.count(), templates.bytes()), (0, 0));
        assert!(templates.get("https://e.com/plain").unwrap().is_none());
    }

    #[test]
    fn the_budget_refuses_new_templates_and_recovers() {
        let one = {
            let t = Templates::default();
            let held = t.get("https://e.com/{a}").unwrap().unwrap();
            let bytes = t.bytes();
            drop(held);
            bytes
        };
        // Room for about three.
        let templates = Templates::new(TemplateLimits::default(), one * 3 + one / 2, 1000);
        let held: Vec<_> = (0..3)
            .map(|i| templates.get(&format!("https://e.com/{i}/{{a}}")).unwrap())
            .collect();
        let over = templates.get("https://e.com/x/{a}").unwrap_err();
        assert!(over.is_over_budget(), "{over}");
        // A template already compiled costs nothing more.
        assert!(templates.get("https://e.com/0/{a}").is_ok());
        drop(held);
        assert!(templates.get("https://e.com/x/{a}").is_ok());
    }

    /// The count bounds the CPU every event costs: past `max_count` distinct templates a new
    /// one is refused (503 upstream), one already compiled is still shared, and the place is
    /// free again once a template's last holder leaves.
    #[test]
    fn the_count_refuses_new_templates_and_recovers() {
        let templates = Templates::new(TemplateLimits::default(), 64 << 20, 2);
        let a = templates.get("https://e.com/a/{id}").unwrap().unwrap();
        let b = templates.get("https://e.com/b/{id}").unwrap().unwrap();
        let over = templates.get("https://e.com/c/{id}").unwrap_err();
        assert_eq!(over, TemplateError::TooManyTemplates(2));
        assert!(over.is_over_budget(), "the hub's limit, not the template's");
        let shared = templates.get("https://e.com/a/{id}").unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &shared));
        drop((a, shared));
        assert!(templates.get("https://e.com/c/{id}").unwrap().is_some());
        drop(b);
    }
}
