//! An admission request as the policy sees it: who does what to which object.

use crate::object::{Kind, Object, ObjectRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub username: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn new(username: &str, groups: &[&str]) -> Self {
        Self {
            username: username.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub kind: Kind,
    pub operation: Operation,
    /// The object as it would be stored; absent on delete.
    pub object: Option<Object>,
    /// The object as stored now; absent on create.
    pub old_object: Option<Object>,
    pub user: UserInfo,
}

impl Request {
    pub fn create(object: Object, user: UserInfo) -> Self {
        Self {
            kind: object.kind(),
            operation: Operation::Create,
            object: Some(object),
            old_object: None,
            user,
        }
    }

    pub fn update(old: Object, new: Object, user: UserInfo) -> Self {
        Self {
            kind: new.kind(),
            operation: Operation::Update,
            object: Some(new),
            old_object: Some(old),
            user,
        }
    }

    pub fn delete(old: Object, user: UserInfo) -> Self {
        Self {
            kind: old.kind(),
            operation: Operation::Delete,
            object: None,
            old_object: Some(old),
            user,
        }
    }

    /// The object the request is about, named from whichever version it carries.
    pub fn target(&self) -> Option<ObjectRef> {
        self.object
            .as_ref()
            .or(self.old_object.as_ref())
            .map(Object::object_ref)
    }
}

/// Who counts as a cluster admin. `system:masters` is always one: it bypasses RBAC anyway, so
/// refusing it here would only break break-glass access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admins {
    pub users: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

pub const SYSTEM_MASTERS: &str = "system:masters";

impl Default for Admins {
    fn default() -> Self {
        Self {
            users: BTreeSet::new(),
            groups: BTreeSet::from([SYSTEM_MASTERS.to_string()]),
        }
    }
}

impl Admins {
    pub fn with_group(mut self, group: &str) -> Self {
        self.groups.insert(group.to_string());
        self
    }

    pub fn with_user(mut self, user: &str) -> Self {
        self.users.insert(user.to_string());
        self
    }

    pub fn includes(&self, user: &UserInfo) -> bool {
        self.users.contains(&user.username) || user.groups.iter().any(|g| self.groups.contains(g))
    }
}
