//! One AdmissionReview in, one answer out. Pure: the caller passes the policy and the
//! snapshot, so the HTTP layer, the tests and the fuzz target all run exactly this code.

use crate::convert::{self, ObjectError};
use crate::review::{
    API_VERSION, AdmissionResponse, AdmissionReview, BadRequest, KIND, ReviewResponse, Status,
    StatusCause, StatusDetails,
};
use gatehouse_policy::{Decision, Kind, ObjectRef, Objects, Operation, Policy, Snapshot};
use std::sync::LazyLock;

/// Shown to whoever is refused while the watch caches are still filling: deciding against a
/// partial world could hand out a hostname that is already taken.
pub const NOT_SYNCED: &str = "webhook caches not synced yet; retry in a few seconds";
pub const REASON_NOT_SYNCED: &str = "CachesNotSynced";
/// A kind whose CRD was not installed when the webhook last looked: none of its objects are
/// in the snapshot, so admitting one could hand out a hostname another of them already uses.
pub const REASON_NOT_WATCHED: &str = "KindNotWatched";
pub const REASON_MALFORMED: &str = "MalformedRequest";
pub const REASON_BAD_REVIEW: &str = "BadReview";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allowed,
    Denied,
    /// Not an AdmissionReview at all: answered with HTTP 400.
    Rejected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::Rejected => "rejected",
        }
    }
}

/// What a review was about and how it ended, with bounded values only: these become metric
/// labels, and nothing a tenant writes may grow their cardinality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outcome {
    pub kind: &'static str,
    pub operation: &'static str,
    pub verdict: Verdict,
    pub reason: &'static str,
}

#[derive(Debug)]
pub struct Reply {
    pub http_status: u16,
    /// JSON: an AdmissionReview response, or a `metav1.Status` for a 400.
    pub body: Vec<u8>,
    pub outcome: Outcome,
}

/// Answers one request body. `snapshot` is `None` until the watch caches have synced.
pub fn handle_review(policy: &Policy, snapshot: Option<&Snapshot>, body: &[u8]) -> Reply {
    handle_review_with(policy, snapshot, &[], body)
}

/// [`handle_review`] when some optional kinds are `unwatched`: creates and updates of those
/// are refused (code 503) until their watch has synced.
pub fn handle_review_with(
    policy: &Policy,
    snapshot: Option<&Snapshot>,
    unwatched: &[Kind],
    body: &[u8],
) -> Reply {
    let review: AdmissionReview =
        match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)) {
            Ok(review) => review,
            Err(e) => {
                let path = e.path().to_string();
                return bad_request(format!(
                    "body is not an {API_VERSION} AdmissionReview: at {path}: {}",
                    e.inner()
                ));
            }
        };
    if review.api_version != API_VERSION || review.kind != KIND {
        return bad_request(format!(
            "expected apiVersion {API_VERSION} kind {KIND}, got apiVersion {:?} kind {:?}",
            review.api_version, review.kind
        ));
    }
    let Some(request) = review.request else {
        return bad_request("AdmissionReview has no request".to_string());
    };
    let uid = request.uid.clone();
    let operation_label = convert::operation_label(&request.operation);
    let (Some(kind), Some(operation)) = (
        convert::known_kind(&request.kind),
        convert::operation(&request.operation),
    ) else {
        // Not ours to judge: the registration names the kinds and operations we decide.
        let outcome = Outcome {
            kind: "other",
            operation: operation_label,
            verdict: Verdict::Allowed,
            reason: "",
        };
        return answer(uid, None, outcome);
    };
    let outcome = |verdict, reason| Outcome {
        kind: kind.as_str(),
        operation: operation_label,
        verdict,
        reason,
    };
    let subject = convert::object_ref(kind, &request);
    if unwatched.contains(&kind) && operation != Operation::Delete {
        let message = format!(
            "{subject}: the webhook is not watching {kind} objects yet (their CRD was not \
             installed when it last checked); retry in a few seconds"
        );
        let status = denial(503, REASON_NOT_WATCHED, message, &subject, "");
        return answer(
            uid,
            Some(status),
            outcome(Verdict::Denied, REASON_NOT_WATCHED),
        );
    }
    let snapshot = match snapshot {
        Some(snapshot) => snapshot,
        // A delete is judged only on who asks, never on the cluster's state, so it need not
        // wait for the caches: a tenant can still clean up while the webhook starts.
        None if operation == Operation::Delete => empty_snapshot(),
        None => {
            let status = denial(
                503,
                REASON_NOT_SYNCED,
                format!("{subject}: {NOT_SYNCED}"),
                &subject,
                "",
            );
            return answer(
                uid,
                Some(status),
                outcome(Verdict::Denied, REASON_NOT_SYNCED),
            );
        }
    };
    let request = match convert::to_request(kind, operation, request) {
        Ok(request) => request,
        Err(e) => return malformed_object(uid, &subject, e, outcome),
    };
    match policy.decide(snapshot, &request) {
        Decision::Allowed => answer(uid, None, outcome(Verdict::Allowed, "")),
        Decision::Denied {
            reason,
            field,
            message,
        } => {
            let subject = request.target().unwrap_or(subject);
            let status = denial(403, reason.as_str(), message, &subject, &field);
            answer(uid, Some(status), outcome(Verdict::Denied, reason.as_str()))
        }
    }
}

fn empty_snapshot() -> &'static Snapshot {
    static EMPTY: LazyLock<Snapshot> = LazyLock::new(|| Snapshot::new(Objects::default()));
    &EMPTY
}

fn malformed_object(
    uid: String,
    subject: &ObjectRef,
    error: ObjectError,
    outcome: impl Fn(Verdict, &'static str) -> Outcome,
) -> Reply {
    let field = error.field.clone();
    let status = denial(400, REASON_MALFORMED, error.to_string(), subject, &field);
    answer(
        uid,
        Some(status),
        outcome(Verdict::Denied, REASON_MALFORMED),
    )
}

fn denial(code: u16, reason: &str, message: String, subject: &ObjectRef, field: &str) -> Status {
    Status {
        status: "Failure",
        code,
        reason: reason.to_string(),
        details: Some(StatusDetails {
            name: subject.name.clone(),
            group: Kind::group(subject.kind).to_string(),
            kind: subject.kind.as_str().to_string(),
            causes: vec![StatusCause {
                reason: reason.to_string(),
                message: message.clone(),
                field: field.to_string(),
            }],
        }),
        message,
    }
}

fn answer(uid: String, status: Option<Status>, outcome: Outcome) -> Reply {
    let response = ReviewResponse::new(AdmissionResponse {
        uid,
        allowed: status.is_none(),
        status,
    });
    Reply {
        http_status: 200,
        body: serde_json::to_vec(&response).expect("response types always serialize"),
        outcome,
    }
}

fn bad_request(message: String) -> Reply {
    Reply {
        http_status: 400,
        body: serde_json::to_vec(&BadRequest::new(message)).expect("status always serializes"),
        outcome: Outcome {
            kind: "unknown",
            operation: "unknown",
            verdict: Verdict::Rejected,
            reason: REASON_BAD_REVIEW,
        },
    }
}
