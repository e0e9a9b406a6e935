//! The `admission.k8s.io/v1` AdmissionReview wire format, only the fields the webhook reads
//! or writes. Our own types rather than a client library's so that every parse failure can
//! name the field it failed on, and so the fuzz target needs no Kubernetes client.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    pub api_version: String,
    pub kind: String,
    pub request: Option<AdmissionRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// Kept as text: CONNECT, or an operation a future apiserver adds, must not turn the
    /// whole review into a 400.
    pub operation: String,
    #[serde(default)]
    pub user_info: WireUserInfo,
    #[serde(default)]
    pub object: Option<Value>,
    #[serde(default)]
    pub old_object: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub kind: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct WireUserInfo {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: AdmissionResponse,
}

impl ReviewResponse {
    pub fn new(response: AdmissionResponse) -> Self {
        Self {
            api_version: API_VERSION,
            kind: KIND,
            response,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// A `metav1.Status`. The apiserver hands `reason` and `message` to the client unchanged,
/// so `kubectl` prints `Error from server (<reason>): ... denied the request: <message>`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub status: &'static str,
    pub code: u16,
    pub reason: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
}

#[derive(Debug, Serialize)]
pub struct StatusDetails {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub causes: Vec<StatusCause>,
}

#[derive(Debug, Serialize)]
pub struct StatusCause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// What answers a body that is not an AdmissionReview at all: there is no uid to answer to,
/// so it is a plain `metav1.Status` with HTTP 400.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BadRequest {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub status: &'static str,
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl BadRequest {
    pub fn new(message: String) -> Self {
        Self {
            api_version: "v1",
            kind: "Status",
            status: "Failure",
            code: 400,
            reason: "BadRequest",
            message,
        }
    }
}
