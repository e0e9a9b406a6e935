//! The hostname string shared by every tenancy resource, with its apiserver-side rules.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A lowercase RFC 1123 hostname, optionally starting with a `*.` wildcard label.
///
/// Validation happens twice on purpose: the CEL rules in the schema reject bad input at
/// `kubectl apply` time with a readable message, and the policy engine re-checks with
/// `gatehouse_core::hostname::is_valid_hostname` because it must not trust its inputs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hostname(pub String);

impl Hostname {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Hostname {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl JsonSchema for Hostname {
    fn schema_name() -> Cow<'static, str> {
        "Hostname".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // maxLength bounds the CEL cost estimate; without it the apiserver refuses the CRD.
        json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": 253,
            "x-kubernetes-validations": [
                {
                    "rule": "!self.contains('*') || (self.startsWith('*.') && !self.substring(1).contains('*'))",
                    "message": "a wildcard is only allowed as the whole leftmost label, as in *.example.com"
                },
                {
                    "rule": "self.matches('^([*][.])?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?([.][a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$')",
                    "message": "must be a lowercase RFC 1123 hostname without a trailing dot or port, e.g. shop.example.com"
                },
                {
                    "rule": "!self.matches('^[0-9.]+$')",
                    "message": "IP addresses are not allowed where a hostname is expected"
                }
            ]
        })
    }
}
