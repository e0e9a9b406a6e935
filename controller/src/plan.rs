//! From the watched objects to what the proxies should hold: address assignment, then the
//! core translation over Gateways rewritten to carry their assigned address.
//!
//! The core binds a Gateway to its first `spec.addresses` entry, so handing it a copy whose
//! `spec.addresses` is exactly the assigned address gives per-Gateway listener addresses
//! without touching the core. Gateways that got no usable address are left out of the
//! translation: nothing of theirs reaches a proxy.

use crate::addresses::{self, Assignment, GatewayKey, Pool, Request, Requested};
use crate::provision::{External, Resolution};
use gatehouse_core::manifest::Object;
use gatehouse_core::translate::{TranslateOptions, Translation, Translator};
use gateway_api::experimental::gateways::{Gateway, GatewayAddresses};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

pub const CONTROLLER_NAME: &str = "gatehouse.dev/gateway-controller";

#[derive(Clone, Debug)]
pub struct Plan {
    pub addresses: BTreeMap<GatewayKey, Assignment>,
    /// Our GatewayClasses whose parameters are unusable, with why.
    pub invalid_classes: BTreeMap<String, String>,
    pub translation: Translation,
}

pub fn options() -> TranslateOptions {
    TranslateOptions {
        controller_name: CONTROLLER_NAME.to_string(),
        // Never used: every Gateway reaching the translation carries its address.
        default_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        accept_gateways_without_class: false,
    }
}

/// GatewayClass names whose controllerName is ours.
pub fn our_classes(objects: &[Object]) -> BTreeSet<&str> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::GatewayClass(c) if c.spec.controller_name == CONTROLLER_NAME => {
                c.metadata.name.as_deref()
            }
            _ => None,
        })
        .collect()
}

pub fn gateway_key(gw: &Gateway) -> GatewayKey {
    (
        gw.metadata.namespace.clone().unwrap_or_default(),
        gw.metadata.name.clone().unwrap_or_default(),
    )
}

/// `memory` holds this process's earlier assignments; a Gateway's status addresses stand in
/// for it after a restart.
pub fn plan(objects: &[Object], pool: &Pool, memory: &BTreeMap<GatewayKey, IpAddr>) -> Plan {
    plan_with(objects, pool, memory, &Resolution::default())
}

/// [`plan`], with the in-cluster Gateways of `resolution` taking their address from it
/// instead of the pool.
pub fn plan_with(
    objects: &[Object],
    pool: &Pool,
    memory: &BTreeMap<GatewayKey, IpAddr>,
    resolution: &Resolution,
) -> Plan {
    plan_remembering(
        objects,
        pool,
        memory,
        resolution,
        &mut Translator::new(options()),
    )
}

/// [`plan_with`] through a translator kept between passes, so that routes whose inputs did
/// not change are not converted again.
pub fn plan_remembering(
    objects: &[Object],
    pool: &Pool,
    memory: &BTreeMap<GatewayKey, IpAddr>,
    resolution: &Resolution,
    translator: &mut Translator,
) -> Plan {
    let classes = our_classes(objects);
    let mut ours: Vec<&Gateway> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Gateway(gw)
                if classes.contains(gw.spec.gateway_class_name.as_str())
                    && !resolution.external.contains_key(&gateway_key(gw)) =>
            {
                Some(&**gw)
            }
            _ => None,
        })
        .collect();
    // Oldest first, so a newcomer never takes an address an older Gateway could get.
    ours.sort_by_key(|gw| (gw.metadata.creation_timestamp.clone(), gateway_key(gw)));
    let requests: Vec<Request> = ours
        .iter()
        .map(|gw| Request {
            gateway: gateway_key(gw),
            requested: requested(gw),
            previous: memory
                .get(&gateway_key(gw))
                .copied()
                .or_else(|| status_address(gw)),
        })
        .collect();
    let mut addresses = addresses::assign(pool, &requests);
    for (key, external) in &resolution.external {
        let assignment = match external {
            External::Address(ip) => Assignment::Assigned(*ip),
            External::Awaiting(why) => Assignment::Awaiting(why.clone()),
            External::InvalidParameters(why) => Assignment::InvalidParameters(why.clone()),
        };
        addresses.insert(key.clone(), assignment);
    }

    // Only Gateways are rewritten; everything else is handed over by reference.
    let rewritten: BTreeMap<GatewayKey, Object> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Gateway(gw) if parameters_ref(gw).is_none() => {
                match addresses.get(&gateway_key(gw)) {
                    Some(Assignment::Assigned(ip)) => Some((
                        gateway_key(gw),
                        Object::Gateway(std::sync::Arc::new(with_address(gw, *ip))),
                    )),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    let input = objects.iter().filter_map(|o| match o {
        // Gatehouse takes no parameters object: such a Gateway is not accepted.
        Object::Gateway(gw) if parameters_ref(gw).is_some() => None,
        Object::Gateway(gw) => match addresses.get(&gateway_key(gw)) {
            Some(Assignment::Assigned(_)) => rewritten.get(&gateway_key(gw)),
            Some(_) => None,
            None => Some(o),
        },
        _ => Some(o),
    });
    let translation = translator.translate(input);
    Plan {
        addresses,
        invalid_classes: resolution
            .invalid_classes
            .iter()
            .map(|(class, e)| (class.clone(), e.to_string()))
            .collect(),
        translation,
    }
}

/// `spec.infrastructure.parametersRef` as `group/kind name`, when set.
pub fn parameters_ref(gw: &Gateway) -> Option<String> {
    let r = gw.spec.infrastructure.as_ref()?.parameters_ref.as_ref()?;
    Some(format!("{}/{} {}", r.group, r.kind, r.name))
}

fn with_address(gw: &Gateway, ip: IpAddr) -> Gateway {
    let mut gw = gw.clone();
    gw.spec.addresses = Some(vec![GatewayAddresses {
        r#type: Some("IPAddress".to_string()),
        value: Some(ip.to_string()),
    }]);
    gw
}

/// The first `spec.addresses` entry decides, as in the core's translation.
pub fn requested(gw: &Gateway) -> Requested {
    let Some(first) = gw.spec.addresses.as_deref().unwrap_or_default().first() else {
        return Requested::Any;
    };
    let kind = first.r#type.as_deref().unwrap_or("IPAddress");
    if kind != "IPAddress" {
        return Requested::Unsupported {
            field: "spec.addresses[0].type".to_string(),
            reason: format!("address type {kind} is not supported"),
        };
    }
    match first.value.as_deref().map(str::parse::<IpAddr>) {
        // An IPAddress entry without a value asks for any address of that type.
        None => Requested::Any,
        Some(Ok(ip)) => Requested::Specific(ip),
        Some(Err(_)) => Requested::Unsupported {
            field: "spec.addresses[0].value".to_string(),
            reason: format!(
                "{:?} is not an IP address",
                first.value.as_deref().unwrap_or("")
            ),
        },
    }
}

fn status_address(gw: &Gateway) -> Option<IpAddr> {
    let addresses = gw.status.as_ref()?.addresses.as_deref()?;
    addresses
        .iter()
        .filter(|a| a.r#type.as_deref().is_none_or(|t| t == "IPAddress"))
        .find_map(|a| a.value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use gatehouse_core::model::{ListenerKey, Resource, ResourceKey};

    fn listener_address(plan: &Plan, key: &str) -> Option<IpAddr> {
        match plan
            .translation
            .resources
            .get(&ResourceKey::Listener(ListenerKey::from(key)))
        {
            Some(Resource::Listener(l)) => Some(l.address),
            _ => None,
        }
    }

    #[test]
    fn each_gateway_binds_its_own_address() {
        let objects = parse(&[
            CLASS,
            &gateway("ns", "a", 8080, ""),
            &gateway("ns", "b", 8080, ""),
        ]);
        let pool = "127.0.0.10-127.0.0.20".parse().unwrap();
        let plan = plan(&objects, &pool, &BTreeMap::new());
        assert_eq!(
            listener_address(&plan, "ns/a/http"),
            Some("127.0.0.10".parse().unwrap())
        );
        assert_eq!(
            listener_address(&plan, "ns/b/http"),
            Some("127.0.0.11".parse().unwrap())
        );
    }

    #[test]
    fn status_address_and_memory_are_kept() {
        let with_status = format!(
            "{}status:\n  addresses: [{{type: IPAddress, value: 127.0.0.15}}]\n",
            gateway("ns", "a", 8080, "")
        );
        let objects = parse(&[CLASS, &with_status, &gateway("ns", "b", 8080, "")]);
        let pool = "127.0.0.10-127.0.0.20".parse().unwrap();
        let memory = BTreeMap::from([(
            ("ns".to_string(), "b".to_string()),
            "127.0.0.17".parse().unwrap(),
        )]);
        let plan = plan(&objects, &pool, &memory);
        assert_eq!(
            listener_address(&plan, "ns/a/http"),
            Some("127.0.0.15".parse().unwrap())
        );
        assert_eq!(
            listener_address(&plan, "ns/b/http"),
            Some("127.0.0.17".parse().unwrap())
        );
    }

    #[test]
    fn unusable_addresses_and_foreign_gateways_are_not_served() {
        let specific = "  addresses: [{type: IPAddress, value: 10.1.1.1}]\n";
        let foreign = gateway("ns", "f", 8080, "").replace("gatehouse\n", "other\n");
        let objects = parse(&[CLASS, &gateway("ns", "far", 8080, specific), &foreign]);
        let pool = "127.0.0.10-127.0.0.20".parse().unwrap();
        let plan = plan(&objects, &pool, &BTreeMap::new());
        assert_eq!(
            plan.addresses[&("ns".to_string(), "far".to_string())],
            Assignment::NotUsable("10.1.1.1".parse().unwrap())
        );
        assert!(
            !plan
                .addresses
                .contains_key(&("ns".to_string(), "f".to_string()))
        );
        assert!(plan.translation.resources.is_empty());
    }
}
