//! Kubernetes label selectors, as used by `allowedRoutes.namespaces.selector`.

use crate::selector::Requirement;
use gateway_api::experimental::gateways::GatewayListenersAllowedRoutesNamespacesSelector as Selector;
use std::collections::BTreeMap;

/// Whether `labels` satisfy the selector; an unknown operator is an error rather than a
/// silent mismatch so the Gateway's author hears about it.
pub(super) fn matches(
    selector: &Selector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    let requirements = selector
        .match_expressions
        .iter()
        .flatten()
        .map(|e| Requirement {
            key: &e.key,
            operator: &e.operator,
            values: e.values.as_deref().unwrap_or_default(),
        });
    crate::selector::matches(selector.match_labels.as_ref(), requirements, labels)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_api::experimental::gateways::GatewayListenersAllowedRoutesNamespacesSelectorMatchExpressions as Expr;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, operator: &str, values: &[&str]) -> Expr {
        Expr {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn selector_table() {
        let ns = labels(&[("team", "a"), ("env", "prod")]);
        let by_labels = |pairs: &[(&str, &str)]| Selector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        };
        let by_expr = |e: Expr| Selector {
            match_labels: None,
            match_expressions: Some(vec![e]),
        };
        let table = [
            (Selector::default(), true),
            (by_labels(&[("team", "a")]), true),
            (by_labels(&[("team", "a"), ("env", "prod")]), true),
            (by_labels(&[("team", "b")]), false),
            (by_labels(&[("other", "a")]), false),
            (by_expr(expr("env", "In", &["prod", "stage"])), true),
            (by_expr(expr("env", "In", &["dev"])), false),
            (by_expr(expr("env", "NotIn", &["dev"])), true),
            (by_expr(expr("missing", "NotIn", &["dev"])), true),
            (by_expr(expr("env", "NotIn", &["prod"])), false),
            (by_expr(expr("team", "Exists", &[])), true),
            (by_expr(expr("missing", "Exists", &[])), false),
            (by_expr(expr("missing", "DoesNotExist", &[])), true),
            (by_expr(expr("team", "DoesNotExist", &[])), false),
        ];
        for (i, (selector, want)) in table.into_iter().enumerate() {
            assert_eq!(matches(&selector, &ns), Ok(want), "case {i}");
        }
    }

    #[test]
    fn unknown_operator_is_an_error() {
        let s = Selector {
            match_labels: None,
            match_expressions: Some(vec![expr("a", "Gt", &["1"])]),
        };
        assert!(matches(&s, &BTreeMap::new()).is_err());
    }
}
