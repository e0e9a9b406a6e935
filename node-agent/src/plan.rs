//! Pod spec -> what to run: argv, environment, mounts and probes for each container.
//!
//! Pure: everything the plan needs from the cluster (Secrets, ConfigMaps) is fetched
//! beforehand into [`Refs`], so the Kubernetes semantics here are unit-tested without one.

use crate::image_map::ImageMap;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Probe, Secret};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// A pod field the agent cannot honour, named the way `kubectl explain` would.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("pod {pod}: {field}: {reason}")]
pub struct PlanError {
    pub pod: String,
    pub field: String,
    pub reason: String,
}

/// Where a pod runs, for downward-API values that are not in the spec.
#[derive(Clone, Copy, Debug)]
pub struct Placement<'a> {
    pub node_name: &'a str,
    pub pod_ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
}

/// Secrets and ConfigMaps of the pod's namespace that its spec refers to; absent ones
/// are simply missing.
#[derive(Clone, Debug, Default)]
pub struct Refs {
    pub secrets: BTreeMap<String, Secret>,
    pub config_maps: BTreeMap<String, ConfigMap>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerPlan {
    pub name: String,
    pub image: String,
    /// The local program for the image; None when the image map has no entry.
    pub program: Option<PathBuf>,
    /// argv[0] is what the process sees as its name.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<MountPlan>,
    pub readiness: Option<ProbePlan>,
    pub liveness: Option<ProbePlan>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPlan {
    pub volume: String,
    /// A path inside the volume to mount instead of its root.
    pub sub_path: Option<String>,
    pub target: PathBuf,
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbePlan {
    pub action: ProbeAction,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeAction {
    Http {
        port: u16,
        path: String,
        https: bool,
        host_header: Option<String>,
        headers: Vec<(String, String)>,
    },
    Tcp {
        port: u16,
    },
    /// A probe type the agent does not run (exec, grpc); the container is never Ready.
    Refused(String),
}

pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn err(pod: &Pod, field: impl Into<String>, reason: impl Into<String>) -> PlanError {
    PlanError {
        pod: pod_key(pod),
        field: field.into(),
        reason: reason.into(),
    }
}

/// Plans for the pod's containers, in spec order.
pub fn plan_pod(
    pod: &Pod,
    images: &ImageMap,
    refs: &Refs,
    at: Placement<'_>,
) -> Result<Vec<ContainerPlan>, PlanError> {
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| err(pod, "spec", "missing"))?;
    // Running such a pod in its own namespace would silently change what it sees.
    for (field, on) in [
        ("spec.hostNetwork", spec.host_network),
        ("spec.hostPID", spec.host_pid),
        ("spec.hostIPC", spec.host_ipc),
    ] {
        if on == Some(true) {
            return Err(err(
                pod,
                field,
                "sharing the node's namespaces is not supported by the node agent",
            ));
        }
    }
    if !spec
        .init_containers
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(err(
            pod,
            "spec.initContainers",
            "init containers are not supported by the node agent",
        ));
    }
    spec.containers
        .iter()
        .enumerate()
        .map(|(i, c)| plan_container(pod, &format!("spec.containers[{i}]"), c, images, refs, at))
        .collect()
}

fn plan_container(
    pod: &Pod,
    field: &str,
    c: &Container,
    images: &ImageMap,
    refs: &Refs,
    at: Placement<'_>,
) -> Result<ContainerPlan, PlanError> {
    let image = c.image.clone().unwrap_or_default();
    if image.is_empty() {
        return Err(err(pod, format!("{field}.image"), "missing"));
    }
    let env = container_env(pod, field, c, refs, at)?;
    let lookup: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expand_all = |v: &[String]| v.iter().map(|s| expand(s, &lookup)).collect::<Vec<_>>();
    // Kubernetes: command replaces the image's entrypoint, args replace its cmd. The
    // program from the image map is the entrypoint; none of our images has a cmd. A
    // command's first word names a program inside the image, which is the mapped one.
    let command = expand_all(c.command.as_deref().unwrap_or_default());
    let args = expand_all(c.args.as_deref().unwrap_or_default());
    let argv0 = command
        .first()
        .cloned()
        .unwrap_or_else(|| crate::image_map::repository_of(&image));
    let mut argv = vec![argv0];
    argv.extend(command.into_iter().skip(1));
    argv.extend(args);
    let mounts = c
        .volume_mounts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let f = format!("{field}.volumeMounts[{i}]");
            let target = check_mount_target(&m.mount_path)
                .map_err(|r| err(pod, format!("{f}.mountPath"), r))?;
            let sub_path = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => Some(
                    check_relative(s)
                        .map(|_| s.to_string())
                        .map_err(|r| err(pod, format!("{f}.subPath"), r))?,
                ),
                None => None,
            };
            Ok(MountPlan {
                volume: m.name.clone(),
                sub_path,
                target,
                read_only: m.read_only.unwrap_or(false),
            })
        })
        .collect::<Result<_, PlanError>>()?;
    let probe = |p: Option<&Probe>, which: &str| {
        p.map(|p| plan_probe(pod, &format!("{field}.{which}"), c, p))
            .transpose()
    };
    Ok(ContainerPlan {
        name: c.name.clone(),
        program: images.program_for(&image).map(Path::to_path_buf),
        image,
        argv,
        env,
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        mounts,
        readiness: probe(c.readiness_probe.as_ref(), "readinessProbe")?,
        liveness: probe(c.liveness_probe.as_ref(), "livenessProbe")?,
    })
}

fn container_env(
    pod: &Pod,
    field: &str,
    c: &Container,
    refs: &Refs,
    at: Placement<'_>,
) -> Result<Vec<(String, String)>, PlanError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        env.retain(|(old, _)| old != &k);
        env.push((k, v));
    };
    for (i, from) in c.env_from.as_deref().unwrap_or_default().iter().enumerate() {
        let f = format!("{field}.envFrom[{i}]");
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, optional, what) = if let Some(r) = &from.config_map_ref {
            let data = refs.config_maps.get(&r.name).map(config_map_strings);
            (
                data,
                r.optional.unwrap_or(false),
                format!("ConfigMap {}", r.name),
            )
        } else if let Some(r) = &from.secret_ref {
            let data = refs.secrets.get(&r.name).map(secret_strings);
            (
                data,
                r.optional.unwrap_or(false),
                format!("Secret {}", r.name),
            )
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (k, v) in data {
                    set(&mut env, format!("{prefix}{k}"), v);
                }
            }
            None if optional => {}
            None => return Err(err(pod, f, format!("{what} not found"))),
        }
    }
    for (i, var) in c.env.as_deref().unwrap_or_default().iter().enumerate() {
        let f = format!("{field}.env[{i}]");
        let value = match &var.value_from {
            None => {
                let lookup: BTreeMap<&str, &str> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                expand(var.value.as_deref().unwrap_or_default(), &lookup)
            }
            Some(src) => {
                if let Some(fr) = &src.field_ref {
                    field_value(pod, &fr.field_path, at)
                        .map_err(|r| err(pod, format!("{f}.valueFrom.fieldRef.fieldPath"), r))?
                } else if let Some(k) = &src.secret_key_ref {
                    let v = refs
                        .secrets
                        .get(&k.name)
                        .and_then(|s| secret_strings(s).remove(&k.key));
                    match v {
                        Some(v) => v,
                        None if k.optional.unwrap_or(false) => continue,
                        None => {
                            return Err(err(
                                pod,
                                format!("{f}.valueFrom.secretKeyRef"),
                                format!("key {:?} of Secret {} not found", k.key, k.name),
                            ));
                        }
                    }
                } else if let Some(k) = &src.config_map_key_ref {
                    let v = refs
                        .config_maps
                        .get(&k.name)
                        .and_then(|c| config_map_strings(c).remove(&k.key));
                    match v {
                        Some(v) => v,
                        None if k.optional.unwrap_or(false) => continue,
                        None => {
                            return Err(err(
                                pod,
                                format!("{f}.valueFrom.configMapKeyRef"),
                                format!("key {:?} of ConfigMap {} not found", k.key, k.name),
                            ));
                        }
                    }
                } else {
                    return Err(err(
                        pod,
                        format!("{f}.valueFrom"),
                        "only fieldRef, secretKeyRef and configMapKeyRef are supported",
                    ));
                }
            }
        };
        set(&mut env, var.name.clone(), value);
    }
    Ok(env)
}

pub fn secret_strings(s: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    out.extend(s.string_data.clone().unwrap_or_default());
    out
}

fn config_map_strings(c: &ConfigMap) -> BTreeMap<String, String> {
    c.data.clone().unwrap_or_default()
}

/// A downward-API field (env fieldRef and downwardAPI volume items).
pub fn field_value(pod: &Pod, path: &str, at: Placement<'_>) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let keyed = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    let render_map = |map: Option<&BTreeMap<String, String>>| {
        map.into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => render_map(meta.labels.as_ref()),
        "metadata.annotations" => render_map(meta.annotations.as_ref()),
        "spec.nodeName" => at.node_name.to_string(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        "status.podIP" | "status.podIPs" => at.pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => at.host_ip.to_string(),
        _ => {
            if let Some(v) = keyed("metadata.labels['", meta.labels.as_ref()) {
                v
            } else if let Some(v) = keyed("metadata.annotations['", meta.annotations.as_ref()) {
                v
            } else {
                return Err(format!("unsupported field path {path:?}"));
            }
        }
    })
}

/// `$(VAR)` expansion as the kubelet does it: defined variables are replaced, undefined
/// references stay as written, and `$$` is a literal `$`.
pub fn expand(input: &str, vars: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn check_mount_target(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!("{path:?} is not an absolute path"));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!("{path:?} contains '.' or '..'"));
    }
    if p.components().count() < 2 {
        return Err("mounting over / would hide the whole filesystem".into());
    }
    // The process's view of the host is kept; these would break it or the agent.
    for reserved in ["/proc", "/sys", "/dev"] {
        if p.starts_with(reserved) {
            return Err(format!(
                "{path:?} is under {reserved}, which the node agent keeps"
            ));
        }
    }
    Ok(p.to_path_buf())
}

/// A relative path that stays inside its directory (subPath, volume item paths).
pub fn check_relative(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if path.is_empty() || p.is_absolute() {
        return Err(format!("{path:?} must be a non-empty relative path"));
    }
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!("{path:?} may not contain '..' or '.'"));
    }
    Ok(())
}

fn plan_probe(pod: &Pod, field: &str, c: &Container, p: &Probe) -> Result<ProbePlan, PlanError> {
    let secs =
        |v: Option<i32>, default: i32| Duration::from_secs(v.unwrap_or(default).max(0) as u64);
    let port = |port: &IntOrString, f: &str| -> Result<u16, PlanError> {
        let n = match port {
            IntOrString::Int(n) => *n,
            IntOrString::String(name) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.container_port)
                .ok_or_else(|| {
                    err(
                        pod,
                        format!("{field}.{f}.port"),
                        format!("no container port named {name:?}"),
                    )
                })?,
        };
        u16::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            err(
                pod,
                format!("{field}.{f}.port"),
                format!("{n} is not a port"),
            )
        })
    };
    let action = if let Some(h) = &p.http_get {
        ProbeAction::Http {
            port: port(&h.port, "httpGet")?,
            path: h
                .path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into()),
            https: h.scheme.as_deref() == Some("HTTPS"),
            host_header: h.host.clone().filter(|h| !h.is_empty()),
            headers: h
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        }
    } else if let Some(t) = &p.tcp_socket {
        ProbeAction::Tcp {
            port: port(&t.port, "tcpSocket")?,
        }
    } else if p.exec.is_some() {
        ProbeAction::Refused(format!(
            "{field}.exec: exec probes are not supported by the node agent"
        ))
    } else if p.grpc.is_some() {
        ProbeAction::Refused(format!(
            "{field}.grpc: gRPC probes are not supported by the node agent"
        ))
    } else {
        return Err(err(
            pod,
            field,
            "no probe handler (httpGet, tcpSocket, exec or grpc)",
        ));
    };
    Ok(ProbePlan {
        action,
        initial_delay: secs(p.initial_delay_seconds, 0),
        period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
        timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
        success_threshold: p.success_threshold.unwrap_or(1).max(1) as u32,
        failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "ns1", "uid": "0c5a4e7e-3f0b-4f7c-9a55-2d0c6c1f9a10",
                         "labels": {"app": "web"}},
            "spec": spec,
        }))
        .unwrap()
    }

    fn at() -> Placement<'static> {
        Placement {
            node_name: "node-a",
            pod_ip: Ipv4Addr::new(198, 19, 0, 7),
            host_ip: Ipv4Addr::new(198, 19, 0, 1),
        }
    }

    fn images() -> ImageMap {
        ImageMap::from_entries([
            (
                "registry.k8s.io/gateway-api/echo-basic".into(),
                PathBuf::from("/opt/echo-basic"),
            ),
            (
                "registry.k8s.io/coredns/coredns".into(),
                PathBuf::from("/opt/coredns"),
            ),
        ])
    }

    #[test]
    fn conformance_echo_backend_gets_downward_api_env_and_secret_mount() {
        let p = pod(json!({"containers": [{
            "name": "tls-backend",
            "image": "registry.k8s.io/gateway-api/echo-basic:v1.5.1",
            "volumeMounts": [{"name": "secret-volume", "mountPath": "/etc/secret-volume"}],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "TLS_SERVER_CERT", "value": "/etc/secret-volume/crt"},
            ],
        }]}));
        let plans = plan_pod(&p, &images(), &Refs::default(), at()).unwrap();
        let c = &plans[0];
        assert_eq!(c.program.as_deref(), Some(Path::new("/opt/echo-basic")));
        assert_eq!(
            c.argv,
            vec!["registry.k8s.io/gateway-api/echo-basic".to_string()]
        );
        let env: BTreeMap<_, _> = c.env.iter().cloned().collect();
        assert_eq!(env["POD_NAME"], "web-1");
        assert_eq!(env["NAMESPACE"], "ns1");
        assert_eq!(env["IP"], "198.19.0.7");
        assert_eq!(env["NODE"], "node-a");
        assert_eq!(env["APP"], "web");
        assert_eq!(env["TLS_SERVER_CERT"], "/etc/secret-volume/crt");
        assert_eq!(c.mounts[0].target, PathBuf::from("/etc/secret-volume"));
    }

    #[test]
    fn command_replaces_entrypoint_args_replace_cmd_with_expansion() {
        let p = pod(json!({"containers": [
            {"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.2",
             "args": ["-conf", "/root/Corefile"]},
            {"name": "x", "image": "registry.k8s.io/coredns/coredns:v1.12.2",
             "command": ["/coredns", "-dns.port=$(PORT)"], "args": ["$(UNSET)", "$$(PORT)"],
             "env": [{"name": "PORT", "value": "5353"}, {"name": "P2", "value": "x$(PORT)"}]},
        ]}));
        let plans = plan_pod(&p, &images(), &Refs::default(), at()).unwrap();
        assert_eq!(
            plans[0].argv,
            ["registry.k8s.io/coredns/coredns", "-conf", "/root/Corefile"]
        );
        assert_eq!(
            plans[1].argv,
            ["/coredns", "-dns.port=5353", "$(UNSET)", "$(PORT)"]
        );
        assert_eq!(plans[1].env[1], ("P2".to_string(), "x5353".to_string()));
    }

    #[test]
    fn unknown_image_plans_without_a_program() {
        let p = pod(json!({"containers": [{"name": "c", "image": "docker.io/library/nginx:1"}]}));
        let plans = plan_pod(&p, &images(), &Refs::default(), at()).unwrap();
        assert_eq!(plans[0].program, None);
    }

    #[test]
    fn secret_and_config_map_refs_resolve_or_name_the_missing_key() {
        let p = pod(
            json!({"containers": [{"name": "c", "image": "registry.k8s.io/coredns/coredns",
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
            "env": [{"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                    {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}}]}]}),
        );
        let mut refs = Refs::default();
        refs.config_maps.insert(
            "cm".into(),
            serde_json::from_value(json!({"metadata": {"name": "cm"}, "data": {"A": "1"}}))
                .unwrap(),
        );
        let e = plan_pod(&p, &images(), &refs, at()).unwrap_err();
        assert_eq!(e.pod, "ns1/web-1");
        assert_eq!(e.field, "spec.containers[0].env[0].valueFrom.secretKeyRef");
        assert!(e.reason.contains("Secret s"), "{e}");
        refs.secrets.insert(
            "s".into(),
            serde_json::from_value(
                json!({"metadata": {"name": "s"}, "data": {"pw": "aHVudGVyMg=="}}),
            )
            .unwrap(),
        );
        let env = plan_pod(&p, &images(), &refs, at()).unwrap().remove(0).env;
        assert_eq!(
            env,
            [
                ("CM_A".into(), "1".into()),
                ("PASS".into(), "hunter2".into())
            ]
        );
    }

    #[test]
    fn probes_resolve_named_ports_and_refuse_exec() {
        let p = pod(
            json!({"containers": [{"name": "c", "image": "registry.k8s.io/coredns/coredns",
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"port": "http", "path": "/ready"}, "periodSeconds": 2},
            "livenessProbe": {"exec": {"command": ["true"]}}}]}),
        );
        let c = plan_pod(&p, &images(), &Refs::default(), at())
            .unwrap()
            .remove(0);
        let r = c.readiness.unwrap();
        assert_eq!(r.period, Duration::from_secs(2));
        assert_eq!(r.failure_threshold, 3);
        assert!(
            matches!(r.action, ProbeAction::Http { port: 8080, ref path, .. } if path == "/ready")
        );
        assert!(
            matches!(c.liveness.unwrap().action, ProbeAction::Refused(m) if m.contains("exec probes"))
        );
        let p = pod(json!({"containers": [{"name": "c", "image": "x",
            "readinessProbe": {"tcpSocket": {"port": "nope"}}}]}));
        let e = plan_pod(&p, &images(), &Refs::default(), at()).unwrap_err();
        assert_eq!(e.field, "spec.containers[0].readinessProbe.tcpSocket.port");
    }

    #[test]
    fn mount_paths_that_escape_or_hide_the_host_are_refused() {
        for (path, sub, field) in [
            ("/", None, "mountPath"),
            ("relative", None, "mountPath"),
            ("/etc/../root", None, "mountPath"),
            ("/proc/self", None, "mountPath"),
            ("/data", Some("../x"), "subPath"),
        ] {
            let mut m = json!({"name": "v", "mountPath": path});
            if let Some(s) = sub {
                m["subPath"] = json!(s);
            }
            let p = pod(json!({"containers": [{"name": "c", "image": "x", "volumeMounts": [m]}]}));
            let e = plan_pod(&p, &images(), &Refs::default(), at()).unwrap_err();
            assert_eq!(
                e.field,
                format!("spec.containers[0].volumeMounts[0].{field}"),
                "{path}"
            );
        }
    }

    #[test]
    fn init_containers_and_host_namespaces_are_refused_clearly() {
        let p = pod(json!({"initContainers": [{"name": "i", "image": "x"}],
                           "containers": [{"name": "c", "image": "x"}]}));
        let e = plan_pod(&p, &images(), &Refs::default(), at()).unwrap_err();
        assert_eq!(e.field, "spec.initContainers");
        let p = pod(json!({"hostNetwork": true, "containers": [{"name": "c", "image": "x"}]}));
        let e = plan_pod(&p, &images(), &Refs::default(), at()).unwrap_err();
        assert_eq!(e.field, "spec.hostNetwork");
        assert!(e.reason.contains("not supported"), "{e}");
    }
}
