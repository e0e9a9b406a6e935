//! Pod volumes as files: Secret, ConfigMap, downwardAPI, projected (including
//! service-account tokens) and emptyDir, written under the pod's state directory and
//! bind-mounted at their mountPath by the launcher.

use crate::plan::{Placement, PlanError, Refs, check_relative, field_value, pod_key};
use k8s_openapi::api::core::v1::{KeyToPath, Pod, Volume};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Kubernetes' default file mode for volume items (0644).
const DEFAULT_MODE: u32 = 0o644;
/// What the kubelet asks for when a projected token names no expiry.
const DEFAULT_TOKEN_SECONDS: i64 = 3607;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeFile {
    /// Relative to the volume's root, already checked to stay inside it.
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// A service-account token a projected volume needs, fetched with TokenRequest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenNeed {
    pub volume: String,
    pub path: String,
    pub audience: Option<String>,
    pub expiration_seconds: i64,
}

/// Fetched tokens, by (volume, path).
pub type Tokens = BTreeMap<(String, String), String>;

/// Secrets and ConfigMaps the pod refers to anywhere (volumes and env), to fetch first.
pub fn referenced(pod: &Pod) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut secrets, mut maps) = (BTreeSet::new(), BTreeSet::new());
    let Some(spec) = &pod.spec else {
        return (secrets, maps);
    };
    for v in spec.volumes.iter().flatten() {
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            secrets.insert(s);
        }
        if let Some(c) = &v.config_map {
            maps.insert(c.name.clone());
        }
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(s) = &src.secret {
                secrets.insert(s.name.clone());
            }
            if let Some(c) = &src.config_map {
                maps.insert(c.name.clone());
            }
        }
    }
    for c in &spec.containers {
        for f in c.env_from.iter().flatten() {
            if let Some(r) = &f.secret_ref {
                secrets.insert(r.name.clone());
            }
            if let Some(r) = &f.config_map_ref {
                maps.insert(r.name.clone());
            }
        }
        for e in c.env.iter().flatten() {
            if let Some(src) = &e.value_from {
                if let Some(k) = &src.secret_key_ref {
                    secrets.insert(k.name.clone());
                }
                if let Some(k) = &src.config_map_key_ref {
                    maps.insert(k.name.clone());
                }
            }
        }
    }
    (secrets, maps)
}

pub fn token_needs(pod: &Pod) -> Vec<TokenNeed> {
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    volumes
        .flat_map(|v| {
            let sources = v.projected.iter().flat_map(|p| p.sources.iter().flatten());
            sources.filter_map(|s| {
                let t = s.service_account_token.as_ref()?;
                Some(TokenNeed {
                    volume: v.name.clone(),
                    path: t.path.clone(),
                    audience: t.audience.clone().filter(|a| !a.is_empty()),
                    expiration_seconds: t.expiration_seconds.unwrap_or(DEFAULT_TOKEN_SECONDS),
                })
            })
        })
        .collect()
}

/// Every volume's files, by volume name (emptyDir volumes have none).
pub fn contents(
    pod: &Pod,
    refs: &Refs,
    tokens: &Tokens,
    at: Placement<'_>,
) -> Result<BTreeMap<String, Vec<VolumeFile>>, PlanError> {
    let mut out = BTreeMap::new();
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    for (i, v) in volumes.enumerate() {
        let field = format!("spec.volumes[{i}]");
        out.insert(
            v.name.clone(),
            volume_files(pod, &field, v, refs, tokens, at)?,
        );
    }
    Ok(out)
}

fn err(pod: &Pod, field: String, reason: impl Into<String>) -> PlanError {
    PlanError {
        pod: pod_key(pod),
        field,
        reason: reason.into(),
    }
}

fn volume_files(
    pod: &Pod,
    field: &str,
    v: &Volume,
    refs: &Refs,
    tokens: &Tokens,
    at: Placement<'_>,
) -> Result<Vec<VolumeFile>, PlanError> {
    if v.empty_dir.is_some() {
        return Ok(Vec::new());
    }
    if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let data = refs.secrets.get(&name).map(secret_bytes);
        let f = format!("{field}.secret");
        return keyed(
            pod,
            &f,
            &format!("Secret {name}"),
            data,
            s.items.as_deref(),
            s.optional,
            s.default_mode,
        );
    }
    if let Some(c) = &v.config_map {
        let data = refs.config_maps.get(&c.name).map(config_map_bytes);
        let f = format!("{field}.configMap");
        let what = format!("ConfigMap {}", c.name);
        return keyed(
            pod,
            &f,
            &what,
            data,
            c.items.as_deref(),
            c.optional,
            c.default_mode,
        );
    }
    if let Some(d) = &v.downward_api {
        let mut files = Vec::new();
        for (i, item) in d.items.iter().flatten().enumerate() {
            let f = format!("{field}.downwardAPI.items[{i}]");
            check_relative(&item.path).map_err(|r| err(pod, format!("{f}.path"), r))?;
            let fr = item.field_ref.as_ref().ok_or_else(|| {
                err(
                    pod,
                    f.clone(),
                    "only fieldRef items are supported (not resourceFieldRef)",
                )
            })?;
            let value = field_value(pod, &fr.field_path, at)
                .map_err(|r| err(pod, format!("{f}.fieldRef.fieldPath"), r))?;
            files.push(VolumeFile {
                path: item.path.clone(),
                data: value.into_bytes(),
                mode: mode(item.mode.or(d.default_mode)),
            });
        }
        return Ok(files);
    }
    if let Some(p) = &v.projected {
        let mut files = Vec::new();
        for (i, src) in p.sources.iter().flatten().enumerate() {
            let f = format!("{field}.projected.sources[{i}]");
            if let Some(s) = &src.secret {
                let data = refs.secrets.get(&s.name).map(secret_bytes);
                let what = format!("Secret {}", s.name);
                files.extend(keyed(
                    pod,
                    &format!("{f}.secret"),
                    &what,
                    data,
                    s.items.as_deref(),
                    s.optional,
                    p.default_mode,
                )?);
            } else if let Some(c) = &src.config_map {
                let data = refs.config_maps.get(&c.name).map(config_map_bytes);
                let what = format!("ConfigMap {}", c.name);
                files.extend(keyed(
                    pod,
                    &format!("{f}.configMap"),
                    &what,
                    data,
                    c.items.as_deref(),
                    c.optional,
                    p.default_mode,
                )?);
            } else if let Some(t) = &src.service_account_token {
                check_relative(&t.path)
                    .map_err(|r| err(pod, format!("{f}.serviceAccountToken.path"), r))?;
                let token = tokens
                    .get(&(v.name.clone(), t.path.clone()))
                    .ok_or_else(|| {
                        err(
                            pod,
                            format!("{f}.serviceAccountToken"),
                            "no token was issued for it",
                        )
                    })?;
                files.push(VolumeFile {
                    path: t.path.clone(),
                    data: token.clone().into_bytes(),
                    // Like the kubelet: the token is readable by the pod's user only.
                    mode: mode(p.default_mode).min(0o600),
                });
            } else if let Some(d) = &src.downward_api {
                for (j, item) in d.items.iter().flatten().enumerate() {
                    let fi = format!("{f}.downwardAPI.items[{j}]");
                    check_relative(&item.path).map_err(|r| err(pod, format!("{fi}.path"), r))?;
                    let fr = item.field_ref.as_ref().ok_or_else(|| {
                        err(
                            pod,
                            fi.clone(),
                            "only fieldRef items are supported (not resourceFieldRef)",
                        )
                    })?;
                    let value = field_value(pod, &fr.field_path, at)
                        .map_err(|r| err(pod, format!("{fi}.fieldRef.fieldPath"), r))?;
                    files.push(VolumeFile {
                        path: item.path.clone(),
                        data: value.into_bytes(),
                        mode: mode(item.mode.or(p.default_mode)),
                    });
                }
            } else {
                return Err(err(
                    pod,
                    f,
                    "unsupported projected source (only secret, configMap, downwardAPI, serviceAccountToken)",
                ));
            }
        }
        return Ok(files);
    }
    Err(err(
        pod,
        field.to_string(),
        format!(
            "volume {:?}: only secret, configMap, downwardAPI, projected and emptyDir volumes are supported",
            v.name
        ),
    ))
}

fn mode(m: Option<i32>) -> u32 {
    m.map_or(DEFAULT_MODE, |m| (m as u32) & 0o777)
}

fn secret_bytes(s: &k8s_openapi::api::core::v1::Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<_, _> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

fn config_map_bytes(c: &k8s_openapi::api::core::v1::ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<_, _> = c
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in c.data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// Secret/ConfigMap semantics: every key as a file, or only `items` (each key must
/// exist unless the source is optional).
fn keyed(
    pod: &Pod,
    field: &str,
    what: &str,
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    default_mode: Option<i32>,
) -> Result<Vec<VolumeFile>, PlanError> {
    let optional = optional.unwrap_or(false);
    let Some(data) = data else {
        return if optional {
            Ok(Vec::new())
        } else {
            Err(err(pod, field.to_string(), format!("{what} not found")))
        };
    };
    let mut files = Vec::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (key, value) in data {
                check_relative(&key)
                    .map_err(|r| err(pod, field.to_string(), format!("{what} key: {r}")))?;
                files.push(VolumeFile {
                    path: key,
                    data: value,
                    mode: mode(default_mode),
                });
            }
        }
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                let f = format!("{field}.items[{i}]");
                check_relative(&item.path).map_err(|r| err(pod, format!("{f}.path"), r))?;
                match data.get(&item.key) {
                    Some(value) => files.push(VolumeFile {
                        path: item.path.clone(),
                        data: value.clone(),
                        mode: mode(item.mode.or(default_mode)),
                    }),
                    None if optional => {}
                    None => {
                        return Err(err(
                            pod,
                            format!("{f}.key"),
                            format!("{what} has no key {:?}", item.key),
                        ));
                    }
                }
            }
        }
    }
    Ok(files)
}

/// Writes each volume to `root/<volume name>/`, replacing what was there.
pub fn write(root: &Path, volumes: &BTreeMap<String, Vec<VolumeFile>>) -> std::io::Result<()> {
    for (name, files) in volumes {
        let dir = root.join(name);
        // Volume names are DNS labels (validated by the API server); this keeps a bad
        // one from naming anything outside `root`.
        check_relative(name).map_err(std::io::Error::other)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        for f in files {
            let path = dir.join(&f.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, &f.data)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::net::Ipv4Addr;

    fn at() -> Placement<'static> {
        Placement {
            node_name: "n",
            pod_ip: Ipv4Addr::new(198, 19, 0, 9),
            host_ip: Ipv4Addr::new(198, 19, 0, 1),
        }
    }

    fn pod(volumes: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "x"}], "volumes": volumes}}),
        )
        .unwrap()
    }

    fn refs() -> Refs {
        let mut r = Refs::default();
        r.secrets.insert(
            "tls".into(),
            serde_json::from_value(json!({"metadata": {"name": "tls"},
            "data": {"tls.crt": "Q0VSVA==", "tls.key": "S0VZ"}}))
            .unwrap(),
        );
        r.config_maps.insert(
            "coredns".into(),
            serde_json::from_value(json!({"metadata": {"name": "coredns"},
            "data": {"Corefile": ".:53 {\n  whoami\n}\n"}}))
            .unwrap(),
        );
        r.config_maps.insert(
            "kube-root-ca.crt".into(),
            serde_json::from_value(json!({"metadata": {"name": "kube-root-ca.crt"},
            "data": {"ca.crt": "CA"}}))
            .unwrap(),
        );
        r
    }

    #[test]
    fn secret_items_rename_keys_and_configmap_exposes_every_key() {
        let p = pod(json!([
            {"name": "secret-volume", "secret": {"secretName": "tls",
                "items": [{"key": "tls.crt", "path": "crt"}, {"key": "tls.key", "path": "key", "mode": 0o400}]}},
            {"name": "conf", "configMap": {"name": "coredns", "defaultMode": 420}},
            {"name": "scratch", "emptyDir": {}},
        ]));
        let v = contents(&p, &refs(), &Tokens::new(), at()).unwrap();
        assert_eq!(
            v["secret-volume"],
            vec![
                VolumeFile {
                    path: "crt".into(),
                    data: b"CERT".to_vec(),
                    mode: 0o644
                },
                VolumeFile {
                    path: "key".into(),
                    data: b"KEY".to_vec(),
                    mode: 0o400
                },
            ]
        );
        assert_eq!(v["conf"][0].path, "Corefile");
        assert!(v["scratch"].is_empty());
        let (secrets, maps) = referenced(&p);
        assert!(secrets.contains("tls") && maps.contains("coredns"));
    }

    #[test]
    fn missing_objects_and_keys_are_errors_unless_optional() {
        let p = pod(
            json!([{"name": "v", "secret": {"secretName": "tls", "items": [{"key": "nope", "path": "x"}]}}]),
        );
        let e = contents(&p, &refs(), &Tokens::new(), at()).unwrap_err();
        assert_eq!(e.field, "spec.volumes[0].secret.items[0].key");
        let p = pod(json!([{"name": "v", "configMap": {"name": "gone"}}]));
        let e = contents(&p, &refs(), &Tokens::new(), at()).unwrap_err();
        assert!(e.reason.contains("ConfigMap gone not found"), "{e}");
        let p = pod(json!([{"name": "v", "configMap": {"name": "gone", "optional": true}}]));
        assert!(contents(&p, &refs(), &Tokens::new(), at()).unwrap()["v"].is_empty());
        let p = pod(json!([{"name": "v", "hostPath": {"path": "/"}}]));
        let e = contents(&p, &refs(), &Tokens::new(), at()).unwrap_err();
        assert!(e.reason.contains("only secret"), "{e}");
    }

    #[test]
    fn projected_service_account_volume_has_token_ca_and_namespace() {
        let p = pod(
            json!([{"name": "kube-api-access", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            ]}}]),
        );
        let needs = token_needs(&p);
        assert_eq!(
            needs,
            vec![TokenNeed {
                volume: "kube-api-access".into(),
                path: "token".into(),
                audience: None,
                expiration_seconds: 3607
            }]
        );
        let e = contents(&p, &refs(), &Tokens::new(), at()).unwrap_err();
        assert!(e.reason.contains("no token"), "{e}");
        let tokens = Tokens::from([(("kube-api-access".into(), "token".into()), "jwt".into())]);
        let v = &contents(&p, &refs(), &tokens, at()).unwrap()["kube-api-access"];
        let by_path: BTreeMap<_, _> = v
            .iter()
            .map(|f| (f.path.as_str(), f.data.as_slice()))
            .collect();
        assert_eq!(by_path["token"], b"jwt");
        assert_eq!(by_path["ca.crt"], b"CA");
        assert_eq!(by_path["namespace"], b"ns");
        assert_eq!(v[0].mode, 0o600);
    }

    #[test]
    fn write_lays_out_files_with_modes() {
        let dir = tempfile::tempdir().unwrap();
        let v = BTreeMap::from([(
            "conf".to_string(),
            vec![VolumeFile {
                path: "sub/Corefile".into(),
                data: b"x".to_vec(),
                mode: 0o600,
            }],
        )]);
        write(dir.path(), &v).unwrap();
        let f = dir.path().join("conf/sub/Corefile");
        assert_eq!(std::fs::read(&f).unwrap(), b"x");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let bad = BTreeMap::from([("../x".to_string(), vec![])]);
        assert!(write(dir.path(), &bad).is_err());
    }
}
