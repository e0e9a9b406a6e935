//! Kubernetes label selector semantics, for Tenant namespace selectors.

use gatehouse_core::selector::{Requirement, matches};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// True when `labels` satisfy every requirement. An unknown operator matches nothing: a
/// selector we cannot read must not hand namespaces to a tenant.
pub(crate) fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let requirements = selector
        .match_expressions
        .iter()
        .flatten()
        .map(|r| Requirement {
            key: &r.key,
            operator: &r.operator,
            values: r.values.as_deref().unwrap_or(&[]),
        });
    matches(selector.match_labels.as_ref(), requirements, labels).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.to_string(),
                operator: op.to_string(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
        }
    }

    #[test]
    fn selector_table() {
        let team_a = labels(&[("team", "a")]);
        let none = labels(&[]);
        let by_label = LabelSelector {
            match_labels: Some(labels(&[("team", "a")])),
            match_expressions: None,
        };
        let cases: &[(&str, LabelSelector, &BTreeMap<String, String>, bool)] = &[
            ("matchLabels hit", by_label.clone(), &team_a, true),
            ("matchLabels miss", by_label, &none, false),
            ("In hit", expr("team", "In", &["a", "b"]), &team_a, true),
            ("In miss", expr("team", "In", &["b"]), &team_a, false),
            (
                "NotIn absent key",
                expr("team", "NotIn", &["a"]),
                &none,
                true,
            ),
            ("NotIn hit", expr("team", "NotIn", &["a"]), &team_a, false),
            ("Exists", expr("team", "Exists", &[]), &team_a, true),
            (
                "DoesNotExist",
                expr("team", "DoesNotExist", &[]),
                &team_a,
                false,
            ),
            (
                "unknown operator",
                expr("team", "Like", &["a"]),
                &team_a,
                false,
            ),
        ];
        for (name, selector, labels, want) in cases {
            assert_eq!(selects(selector, labels), *want, "{name}");
        }
    }
}
