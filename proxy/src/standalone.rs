//! Standalone mode: a directory of Kubernetes YAML is the source of truth. Each changed
//! file is parsed on its own; a file that fails keeps its last good objects, so one typo
//! never takes down what was serving. The translated config is diffed against what was
//! applied, and only the difference reaches the proxy.

use crate::store::ConfigStore;
use gatehouse_core::diff::diff;
use gatehouse_core::manifest::{self, Object};
use gatehouse_core::model::{BackendTarget, Resource, ResourceKey};
use gatehouse_core::translate::{TranslateOptions, Translation, translate};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const CONTROLLER_NAME: &str = "gatehouse.dev/gateway-controller";

pub fn options(address: IpAddr) -> TranslateOptions {
    TranslateOptions {
        controller_name: CONTROLLER_NAME.to_string(),
        default_address: address,
        accept_gateways_without_class: true,
    }
}

struct FileState {
    hash: u64,
    /// The objects of the file's last version that parsed.
    objects: Vec<Object>,
}

/// What one pass over the directory did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// The new config version, if a delta was applied.
    pub applied: Option<u64>,
    pub upserts: usize,
    pub removals: usize,
    /// Parse, translation and apply errors, each naming file or object and field.
    pub errors: Vec<String>,
}

pub struct Watcher {
    dir: PathBuf,
    options: TranslateOptions,
    store: Arc<ConfigStore>,
    files: BTreeMap<PathBuf, FileState>,
    applied: gatehouse_core::scope::Config,
    /// Problems already logged, so an unchanged problem is not logged on every poll.
    reported: BTreeSet<String>,
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn list_manifests(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list_manifests(&path, out)?;
        } else if is_manifest(&path) {
            out.push(path);
        }
    }
    Ok(())
}

impl Watcher {
    pub fn new(dir: PathBuf, options: TranslateOptions, store: Arc<ConfigStore>) -> Self {
        Self {
            dir,
            options,
            store,
            files: BTreeMap::new(),
            applied: Default::default(),
            reported: BTreeSet::new(),
        }
    }

    pub async fn run(mut self, interval: Duration) {
        loop {
            let report = self.sync();
            if let Some(version) = report.applied {
                tracing::info!(
                    version,
                    upserts = report.upserts,
                    removals = report.removals,
                    "config applied"
                );
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Reads changed files, and applies the resulting delta if anything changed.
    pub fn sync(&mut self) -> SyncReport {
        let mut report = SyncReport::default();
        let mut paths = Vec::new();
        if let Err(e) = list_manifests(&self.dir, &mut paths) {
            report.errors.push(format!(
                "{}: cannot read directory: {e}",
                self.dir.display()
            ));
            self.log_new(&report.errors);
            return report;
        }
        let mut changed = false;
        let present: BTreeSet<&PathBuf> = paths.iter().collect();
        let before = self.files.len();
        self.files.retain(|p, _| present.contains(p));
        changed |= self.files.len() != before;
        for path in &paths {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    report.errors.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let mut hasher = DefaultHasher::new();
            text.hash(&mut hasher);
            let hash = hasher.finish();
            if self.files.get(path).is_some_and(|f| f.hash == hash) {
                continue;
            }
            let shown = path
                .strip_prefix(&self.dir)
                .unwrap_or(path)
                .display()
                .to_string();
            match manifest::parse(&shown, &text) {
                Ok(parsed) => {
                    for warning in &parsed.warnings {
                        tracing::warn!("{warning}");
                    }
                    self.files.insert(
                        path.clone(),
                        FileState {
                            hash,
                            objects: parsed.objects,
                        },
                    );
                    changed = true;
                }
                Err(e) => {
                    // Keep the last good objects; remember the hash so the error is reported
                    // once, not on every poll.
                    report.errors.push(format!("{e} (last good version kept)"));
                    let objects = self
                        .files
                        .remove(path)
                        .map(|f| f.objects)
                        .unwrap_or_default();
                    self.files.insert(path.clone(), FileState { hash, objects });
                }
            }
        }
        if changed {
            let objects: Vec<Object> = self
                .files
                .values()
                .flat_map(|f| f.objects.iter().cloned())
                .collect();
            let mut translation = translate(&objects, &self.options);
            report
                .errors
                .extend(translation.problems.iter().map(|p| p.to_string()));
            self.keep_last_good(&mut translation);
            let delta = diff(&self.applied, &translation.resources);
            if !delta.is_empty() {
                match self.store.apply(&delta) {
                    Ok(version) => {
                        report.applied = Some(version);
                        report.upserts = delta.upserts.len();
                        report.removals = delta.removals.len();
                        self.applied = translation.resources;
                    }
                    Err(e) => report
                        .errors
                        .push(format!("{e} (config not applied; last good config kept)")),
                }
            }
        }
        self.log_new(&report.errors);
        report
    }

    /// A resource whose new content was rejected keeps serving its last good version, with
    /// the backends that version points at.
    fn keep_last_good(&self, translation: &mut Translation) {
        let rejected: Vec<ResourceKey> = translation
            .problems
            .iter()
            .filter_map(|p| p.rejected.clone())
            .collect();
        for key in rejected {
            let Some(old) = self.applied.get(&key) else {
                continue;
            };
            if let Resource::HttpRoute(route) = old {
                let backends = route.rules.iter().flat_map(|r| r.backends.iter());
                for target in backends.map(|b| &b.target) {
                    if let BackendTarget::Service(k) = target {
                        let k = ResourceKey::Backend(k.clone());
                        if let (false, Some(b)) =
                            (translation.resources.contains_key(&k), self.applied.get(&k))
                        {
                            translation.resources.insert(k, b.clone());
                        }
                    }
                }
            }
            translation.resources.insert(key, old.clone());
        }
    }

    fn log_new(&mut self, errors: &[String]) {
        for e in errors {
            if self.reported.insert(e.clone()) {
                tracing::error!("{e}");
            }
        }
    }
}
