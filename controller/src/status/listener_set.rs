//! ListenerSet status: whether its Gateway admits it, and per listener the same conditions
//! a Gateway's own listener gets.

use super::gateway::{ListenerStatus, listener};
use super::{Condition, Ctx, generation, message_of};
use crate::addresses::{Assignment, GatewayKey};
use gatehouse_core::model::ListenerKey;
use gatehouse_core::translate::as_gateway_listener;
use gateway_api::experimental::listenersets::ListenerSet;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSetStatus {
    pub conditions: Vec<Condition>,
    pub listeners: Vec<ListenerStatus>,
}

impl ListenerSetStatus {
    /// Counts toward its Gateway's `attachedListenerSets`.
    pub fn attached(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| c.kind == "Accepted" && c.is_true())
    }
}

/// `None` for a ListenerSet whose Gateway is not ours.
pub(super) fn status(ctx: &Ctx<'_>, set: &ListenerSet) -> Option<(GatewayKey, ListenerSetStatus)> {
    let set_key = (
        set.metadata.namespace.clone().unwrap_or_default(),
        set.metadata.name.clone().unwrap_or_default(),
    );
    let gw = ctx.listener_sets.get(&set_key)?.clone();
    let generation = generation(&set.metadata);
    let object = format!("ListenerSet {}/{}", set_key.0, set_key.1);
    let problems = ctx.problems_of(&object);
    let both = |ok: bool, reason: &str, message: String| {
        let programmed_reason = if ok { "Programmed" } else { reason };
        vec![
            Condition::new("Accepted", ok, reason, message.clone(), generation),
            Condition::new("Programmed", ok, programmed_reason, message, generation),
        ]
    };

    if let Some(p) = problems.iter().find(|p| p.field == "spec.parentRef") {
        return Some((
            gw,
            ListenerSetStatus {
                conditions: both(false, "NotAllowed", message_of(p)),
                listeners: Vec::new(),
            },
        ));
    }
    let assignment = ctx.plan.addresses.get(&gw);
    let Some(assignment @ Assignment::Assigned(_)) = assignment else {
        let message = format!(
            "Gateway {}/{} is not accepted or has no address",
            gw.0, gw.1
        );
        return Some((
            gw,
            ListenerSetStatus {
                conditions: both(false, "ParentNotAccepted", message),
                listeners: Vec::new(),
            },
        ));
    };
    let programmed = ctx.programmed.contains(&gw);
    let listeners: Vec<ListenerStatus> = set
        .spec
        .listeners
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let spec = as_gateway_listener(l)?;
            let at = format!("spec.listeners[{i}]");
            let key = ListenerKey::in_set((&gw.0, &gw.1), (&set_key.0, &set_key.1), &spec.name);
            Some(listener(
                ctx, &spec, &at, problems, &key, assignment, programmed, generation,
            ))
        })
        .collect();

    // A listener that can serve nothing (refused, conflicted, no usable certificate) is not
    // valid; a ListenerSet none of whose listeners is valid is not accepted.
    let unusable = |l: &ListenerStatus| {
        l.conditions.iter().any(|c| {
            (c.kind == "Accepted" && !c.is_true())
                || (c.kind == "Programmed" && !c.is_true() && c.reason == "Invalid")
        })
    };
    let invalid = listeners.iter().filter(|l| unusable(l)).count();
    let conditions = if !listeners.is_empty() && invalid == listeners.len() {
        both(
            false,
            "ListenersNotValid",
            format!("none of its {} listeners is valid", listeners.len()),
        )
    } else {
        let message = if invalid > 0 {
            format!("{invalid} of {} listeners are not valid", listeners.len())
        } else {
            String::new()
        };
        vec![
            Condition::new("Accepted", true, "Accepted", message, generation),
            if programmed {
                Condition::new("Programmed", true, "Programmed", "", generation)
            } else {
                Condition::new(
                    "Programmed",
                    false,
                    "Pending",
                    "waiting for every proxy to acknowledge the configuration",
                    generation,
                )
            },
        ]
    };
    Some((
        gw,
        ListenerSetStatus {
            conditions,
            listeners,
        },
    ))
}
