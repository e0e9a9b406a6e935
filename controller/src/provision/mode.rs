//! Which proxies serve a GatewayClass: its `spec.parametersRef`, resolved against the
//! `GatewayClassConfig`s in the cluster. Pure.

use gatehouse_crds::{FleetRef, GatewayClassConfig, ProvisionedProxy, ProxyMode};
use gateway_api::experimental::gatewayclasses::GatewayClass;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq)]
pub enum ClassMode {
    Local,
    SharedFleet(FleetRef),
    Provisioned(ProvisionedProxy),
}

/// Why a class's parameters cannot be used: GatewayClass Accepted=False/InvalidParameters.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("GatewayClass {class}: {field}: {reason}")]
pub struct InvalidParameters {
    pub class: String,
    pub field: &'static str,
    pub reason: String,
}

pub fn class_mode(
    class: &GatewayClass,
    configs: &[GatewayClassConfig],
) -> Result<ClassMode, InvalidParameters> {
    let Some(r) = class.spec.parameters_ref.as_ref() else {
        return Ok(ClassMode::Local);
    };
    let invalid = |reason: String| InvalidParameters {
        class: class.metadata.name.clone().unwrap_or_default(),
        field: "spec.parametersRef",
        reason,
    };
    if r.group != gatehouse_crds::GROUP || r.kind != "GatewayClassConfig" {
        return Err(invalid(format!(
            "{}/{} is not a parameters kind of Gatehouse (use {}/GatewayClassConfig)",
            r.group,
            r.kind,
            gatehouse_crds::GROUP
        )));
    }
    if r.namespace.is_some() {
        return Err(invalid(
            "GatewayClassConfig is cluster-scoped: leave namespace unset".to_string(),
        ));
    }
    let config = configs
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(r.name.as_str()))
        .ok_or_else(|| invalid(format!("GatewayClassConfig {:?} not found", r.name)))?;
    let spec = &config.spec;
    // The CRD's rules refuse these; checked again for objects written before the rules.
    match spec.mode {
        ProxyMode::Local => Ok(ClassMode::Local),
        ProxyMode::SharedFleet => spec
            .shared_fleet
            .clone()
            .map(ClassMode::SharedFleet)
            .ok_or_else(|| {
                invalid(format!(
                    "GatewayClassConfig {}: mode SharedFleet needs spec.sharedFleet",
                    r.name
                ))
            }),
        ProxyMode::Provisioned => spec
            .provisioned
            .clone()
            .map(ClassMode::Provisioned)
            .ok_or_else(|| {
                invalid(format!(
                    "GatewayClassConfig {}: mode Provisioned needs spec.provisioned",
                    r.name
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(params: &str) -> GatewayClass {
        serde_yaml::from_str(&format!(
            "metadata: {{name: c}}\nspec:\n  controllerName: gatehouse.dev/gateway-controller\n{params}"
        ))
        .unwrap()
    }

    fn config(yaml: &str) -> GatewayClassConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn resolves_each_mode_and_refuses_bad_references() {
        let configs = [
            config(
                "metadata: {name: fleet}\nspec: {mode: SharedFleet, sharedFleet: {namespace: gh, service: edge}}",
            ),
            config(
                "metadata: {name: per-gw}\nspec: {mode: Provisioned, provisioned: {image: img}}",
            ),
            config("metadata: {name: broken}\nspec: {mode: Provisioned}"),
        ];
        let r = |name: &str| {
            format!(
                "  parametersRef: {{group: gatehouse.dev, kind: GatewayClassConfig, name: {name}}}"
            )
        };
        assert_eq!(class_mode(&class(""), &configs), Ok(ClassMode::Local));
        assert!(matches!(
            class_mode(&class(&r("fleet")), &configs),
            Ok(ClassMode::SharedFleet(f)) if f.service == "edge" && f.namespace == "gh"
        ));
        assert!(matches!(
            class_mode(&class(&r("per-gw")), &configs),
            Ok(ClassMode::Provisioned(p)) if p.image == "img" && p.replicas == 1
        ));
        let err = class_mode(&class(&r("missing")), &configs).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GatewayClass c: spec.parametersRef: GatewayClassConfig \"missing\" not found"
        );
        assert!(
            class_mode(&class(&r("broken")), &configs)
                .unwrap_err()
                .reason
                .contains("needs spec.provisioned")
        );
        let configmap = "  parametersRef: {group: '', kind: ConfigMap, name: x, namespace: y}";
        assert!(
            class_mode(&class(configmap), &configs)
                .unwrap_err()
                .reason
                .contains("not a parameters kind")
        );
    }
}
