//! Kubernetes label selector semantics, shared by Gateway `allowedRoutes` (translation) and
//! Tenant namespace selectors (policy), which carry the same data in different types.

use std::collections::BTreeMap;

/// One `matchExpressions` entry.
pub struct Requirement<'a> {
    pub key: &'a str,
    pub operator: &'a str,
    pub values: &'a [String],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown selector operator {0:?}")]
pub struct UnknownOperator(pub String);

/// Whether `labels` satisfy `match_labels` and every requirement; an empty selector selects
/// everything. Every requirement is read, so an unknown operator is reported even when an
/// earlier requirement already failed.
pub fn matches<'a>(
    match_labels: Option<&BTreeMap<String, String>>,
    requirements: impl IntoIterator<Item = Requirement<'a>>,
    labels: &BTreeMap<String, String>,
) -> Result<bool, UnknownOperator> {
    let mut ok = match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    for r in requirements {
        let value = labels.get(r.key);
        ok &= match r.operator {
            "In" => value.is_some_and(|v| r.values.contains(v)),
            "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => return Err(UnknownOperator(other.to_string())),
        };
    }
    Ok(ok)
}
