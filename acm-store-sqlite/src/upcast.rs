//! Upcasting on read: stored payloads stay byte-for-byte as written; a chain of transforms on
//! the raw JSON brings an old schema version up to the current one before typed decoding.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use foldhash::HashMap;
use serde_json::Value;

type Transform = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

/// Transforms from one schema version of an event type to the next.
///
/// ```
/// use acm_store_sqlite::Upcasters;
/// // Version 1 of `renamed` called the field `old`; version 2 calls it `new`.
/// let upcasters = Upcasters::new().register("renamed", 1, |mut v| {
///     let old = v.as_object_mut().and_then(|o| o.remove("old")).ok_or("no field old")?;
///     v["new"] = old;
///     Ok::<_, String>(v)
/// });
/// assert!(!upcasters.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Upcasters {
    by_type: HashMap<String, BTreeMap<u32, Transform>>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps: Vec<(&str, u32)> = self
            .by_type
            .iter()
            .flat_map(|(t, m)| m.keys().map(move |v| (t.as_str(), *v)))
            .collect();
        f.debug_struct("Upcasters").field("steps", &steps).finish()
    }
}

/// Why an upcaster refused a payload.
#[derive(Debug)]
pub(crate) struct UpcastFailure {
    pub version: u32,
    pub message: String,
}

impl Upcasters {
    /// No transforms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the transform of `event_type` payloads from schema version `from` to `from + 1`.
    #[must_use]
    pub fn register<F, M>(mut self, event_type: &str, from: u32, transform: F) -> Self
    where
        F: Fn(Value) -> Result<Value, M> + Send + Sync + 'static,
        M: Into<String>,
    {
        self.by_type
            .entry(event_type.to_owned())
            .or_default()
            .insert(from, Arc::new(move |v| transform(v).map_err(Into::into)));
        self
    }

    /// Whether no transform is registered.
    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }

    /// The transforms that apply to a stored `(event_type, version)`, if any.
    pub(crate) fn steps(
        &self,
        event_type: &str,
        version: u32,
    ) -> Option<&BTreeMap<u32, Transform>> {
        let steps = self.by_type.get(event_type)?;
        steps.contains_key(&version).then_some(steps)
    }

    /// Runs the chain from `version` up; returns the payload and the version reached.
    pub(crate) fn apply(
        steps: &BTreeMap<u32, Transform>,
        mut version: u32,
        mut value: Value,
    ) -> Result<(Value, u32), UpcastFailure> {
        while let Some(step) = steps.get(&version) {
            value = step(value).map_err(|message| UpcastFailure { version, message })?;
            version += 1;
        }
        Ok((value, version))
    }
}
