//! What a single rule returns when it refuses: the reason, the field, and a sentence.

use crate::decision::{Decision, DenyReason};
use crate::object::ObjectRef;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    pub reason: DenyReason,
    pub field: String,
    pub text: String,
}

impl Violation {
    pub fn new(reason: DenyReason, field: &str, text: String) -> Self {
        Self {
            reason,
            field: field.to_string(),
            text,
        }
    }

    pub fn into_decision(self, subject: &ObjectRef) -> Decision {
        Decision::deny(subject, &self.field, self.reason, &self.text)
    }
}

pub(crate) type RuleResult = Result<(), Violation>;
