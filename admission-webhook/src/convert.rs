//! From the wire AdmissionRequest to the policy's [`Request`]: which kinds and operations
//! the policy judges, and typed objects parsed with the path of any field that fails.

use crate::review::{AdmissionRequest, GroupVersionKind};
use gatehouse_policy::{Kind, Object, ObjectRef, Operation, Request, UserInfo};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The policy kind for a group and kind; the version is ignored because every served
/// version of these resources round-trips through the same stored schema.
pub fn known_kind(gvk: &GroupVersionKind) -> Option<Kind> {
    // Anything else reaching the webhook was registered by someone else's configuration
    // and is not ours to refuse.
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == gvk.kind && k.group() == gvk.group)
}

pub fn operation(op: &str) -> Option<Operation> {
    match op {
        "CREATE" => Some(Operation::Create),
        "UPDATE" => Some(Operation::Update),
        "DELETE" => Some(Operation::Delete),
        _ => None,
    }
}

pub fn operation_label(op: &str) -> &'static str {
    match op {
        "CREATE" => "CREATE",
        "UPDATE" => "UPDATE",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        _ => "other",
    }
}

/// An object in the review that does not match its kind's schema.
#[derive(Debug, thiserror::Error)]
#[error("{object}: {field}: {source}")]
pub struct ObjectError {
    /// The object as `Kind namespace/name`.
    pub object: String,
    /// Where in the review it failed, e.g. `object.spec.hostnames[0]`.
    pub field: String,
    #[source]
    pub source: serde_json::Error,
}

/// How the object is named in messages before it could be parsed: from the request's own
/// name and namespace, which the apiserver fills in even when the body is odd.
pub fn object_ref(kind: Kind, request: &AdmissionRequest) -> ObjectRef {
    let name = if request.name.is_empty() {
        "(unnamed)"
    } else {
        &request.name
    };
    ObjectRef::new(kind, request.namespace.as_deref(), name)
}

pub fn to_request(
    kind: Kind,
    operation: Operation,
    request: AdmissionRequest,
) -> Result<Request, ObjectError> {
    let subject = object_ref(kind, &request);
    let parse = |which: &str, value: Option<Value>| -> Result<Option<Object>, ObjectError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(value) => parse_object(kind, value)
                .map(Some)
                .map_err(|(path, source)| ObjectError {
                    object: subject.to_string(),
                    field: if path.is_empty() {
                        which.to_string()
                    } else {
                        format!("{which}.{path}")
                    },
                    source,
                }),
        }
    };
    let object = parse("object", request.object)?;
    let old_object = parse("oldObject", request.old_object)?;
    Ok(Request {
        kind,
        operation,
        object,
        old_object,
        user: UserInfo {
            username: request.user_info.username,
            groups: request.user_info.groups,
        },
    })
}

/// A parse failure: the path inside the object (empty for the object itself) and why.
type FieldError = (String, serde_json::Error);

/// Parses into the type the request's kind names, not by the object's own `kind` field, so
/// an object claiming another kind is refused instead of being judged by the wrong rules.
fn parse_object(kind: Kind, value: Value) -> Result<Object, FieldError> {
    if let Some(claimed) = value.get("kind").and_then(Value::as_str)
        && claimed != kind.as_str()
    {
        let problem = format!("object says kind {claimed:?} but the request is for {kind}");
        return Err((
            "kind".to_string(),
            <serde_json::Error as serde::de::Error>::custom(problem),
        ));
    }
    fn typed<T: DeserializeOwned>(value: Value) -> Result<T, FieldError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            (path, e.into_inner())
        })
    }
    Ok(match kind {
        Kind::Tenant => Object::Tenant(typed(value)?),
        Kind::TenantRoute => Object::TenantRoute(typed(value)?),
        Kind::TenantCertificate => Object::TenantCertificate(typed(value)?),
        Kind::HttpRoute => Object::HttpRoute(typed(value)?),
        Kind::GrpcRoute => Object::GrpcRoute(typed(value)?),
        Kind::TlsRoute => Object::TlsRoute(typed(value)?),
        Kind::Gateway => Object::Gateway(typed(value)?),
        Kind::GatewayClass => Object::GatewayClass(typed(value)?),
        Kind::ListenerSet => Object::ListenerSet(typed(value)?),
        Kind::ReferenceGrant => Object::ReferenceGrant(typed(value)?),
        Kind::Namespace => Object::Namespace(typed(value)?),
    })
}
