//! The entry point: one request in, one decision out.

use crate::decision::{Decision, DenyReason};
use crate::object::{Kind, Object, ObjectRef};
use crate::request::{Admins, Operation, Request};
use crate::rule::Violation;
use crate::snapshot::Snapshot;
use crate::{namespaces, tenant_objects, tenants};

/// The tenancy policy. Pure: the caller supplies the snapshot, so the webhook and the
/// controller reach the same verdict on the same state.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub admins: Admins,
}

impl Policy {
    pub fn new(admins: Admins) -> Self {
        Self { admins }
    }

    pub fn decide(&self, snapshot: &Snapshot, request: &Request) -> Decision {
        let Some(subject) = request.target() else {
            return malformed(request, "carries neither the object nor the old object");
        };
        if let Err(problem) = check_shape(request) {
            return malformed(request, problem);
        }
        let is_admin = self.admins.includes(&request.user);
        if request.kind.is_admin_only() && !is_admin {
            return self.not_admin(request, &subject);
        }
        let (Operation::Create | Operation::Update, Some(object)) =
            (request.operation, &request.object)
        else {
            // Deleting never takes a hostname or a reference from anyone.
            return Decision::Allowed;
        };
        let result = match object {
            Object::Tenant(tenant) => tenants::check(snapshot, tenant),
            Object::Namespace(ns) => {
                let old = match &request.old_object {
                    Some(Object::Namespace(old)) => Some(old),
                    _ => None,
                };
                namespaces::check(snapshot, ns, old, is_admin)
            }
            Object::TenantRoute(_)
            | Object::TenantCertificate(_)
            | Object::HttpRoute(_)
            | Object::GrpcRoute(_)
            | Object::TlsRoute(_)
            | Object::ListenerSet(_) => tenant_objects::check(snapshot, object),
            Object::Gateway(_) | Object::GatewayClass(_) | Object::ReferenceGrant(_) => Ok(()),
        };
        result.map_or_else(|v| v.into_decision(&subject), |()| Decision::Allowed)
    }

    fn not_admin(&self, request: &Request, subject: &ObjectRef) -> Decision {
        let verb = match request.operation {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        };
        let user = &request.user;
        Violation::new(
            DenyReason::NotAdmin,
            "",
            format!(
                "user {} (groups {:?}) is not an admin; only admins may {verb} {} objects (admin groups {:?}, users {:?})",
                user.username, user.groups, request.kind, self.admins.groups, self.admins.users
            ),
        )
        .into_decision(subject)
    }
}

fn check_shape(request: &Request) -> Result<(), &'static str> {
    let kinds_agree = |o: &Option<Object>| o.as_ref().is_none_or(|o| o.kind() == request.kind);
    if !kinds_agree(&request.object) || !kinds_agree(&request.old_object) {
        return Err("kind does not match the object it carries");
    }
    let (new, old) = (request.object.is_some(), request.old_object.is_some());
    match request.operation {
        Operation::Create if !new => Err("create without an object"),
        Operation::Update if !(new && old) => Err("update without both object and old object"),
        _ => Ok(()),
    }
}

fn malformed(request: &Request, problem: &str) -> Decision {
    let subject = request
        .target()
        .unwrap_or_else(|| ObjectRef::new(request.kind, None, "(unnamed)"));
    Decision::deny(
        &subject,
        "",
        DenyReason::MalformedRequest,
        &format!(
            "malformed {} request: {problem}",
            Kind::as_str(request.kind)
        ),
    )
}
