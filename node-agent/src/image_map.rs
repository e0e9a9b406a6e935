//! Which local program stands in for which container image.
//!
//! There is no container runtime: an image repository (tag and digest ignored) maps to an
//! executable on this machine, built from the same source as the image
//! (conformance/images/build writes the map). Images not in the map are never run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ImageMapError {
    #[error("image map {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "image map {path}: expected a JSON object of image repository -> program path: {source}"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("image map {path}: entry {repository:?}: {reason}")]
    Entry {
        path: PathBuf,
        repository: String,
        reason: String,
    },
}

#[derive(Clone, Debug, Default)]
pub struct ImageMap {
    programs: BTreeMap<String, PathBuf>,
}

impl ImageMap {
    pub fn load(path: &Path) -> Result<Self, ImageMapError> {
        let text = std::fs::read(path).map_err(|source| ImageMapError::Read {
            path: path.into(),
            source,
        })?;
        let programs: BTreeMap<String, PathBuf> =
            serde_json::from_slice(&text).map_err(|source| ImageMapError::Parse {
                path: path.into(),
                source,
            })?;
        for (repository, program) in &programs {
            let reason = if repository != &repository_of(repository) {
                Some("keys are repositories without tag or digest".to_string())
            } else if !program.is_absolute() {
                Some(format!(
                    "program {} is not an absolute path",
                    program.display()
                ))
            } else if !program.is_file() {
                Some(format!("program {} does not exist", program.display()))
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(ImageMapError::Entry {
                    path: path.into(),
                    repository: repository.clone(),
                    reason,
                });
            }
        }
        Ok(Self { programs })
    }

    pub fn from_entries<I: IntoIterator<Item = (String, PathBuf)>>(entries: I) -> Self {
        Self {
            programs: entries.into_iter().collect(),
        }
    }

    /// The program for an image reference such as `registry.k8s.io/coredns/coredns:v1.12.2`.
    pub fn program_for(&self, image: &str) -> Option<&Path> {
        self.programs
            .get(&repository_of(image))
            .map(PathBuf::as_path)
    }
}

/// `repo[:tag][@digest]` -> `repo`. A ':' before the last '/' is a registry port.
pub fn repository_of(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let name_start = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[name_start..].find(':') {
        Some(colon) => without_digest[..name_start + colon].to_string(),
        None => without_digest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_digests_and_registry_ports_are_handled() {
        assert_eq!(
            repository_of("registry.k8s.io/gateway-api/echo-basic:v1.5.1"),
            "registry.k8s.io/gateway-api/echo-basic"
        );
        assert_eq!(
            repository_of("registry.k8s.io/coredns/coredns:v1.12.2@sha256:abcd"),
            "registry.k8s.io/coredns/coredns"
        );
        assert_eq!(repository_of("localhost:5000/echo"), "localhost:5000/echo");
        assert_eq!(
            repository_of("localhost:5000/echo:1"),
            "localhost:5000/echo"
        );
    }

    #[test]
    fn lookup_ignores_the_tag_and_refuses_unknown_images() {
        let map = ImageMap::from_entries([(
            "registry.k8s.io/gateway-api/echo-basic".to_string(),
            PathBuf::from("/bin/echo-basic"),
        )]);
        assert_eq!(
            map.program_for("registry.k8s.io/gateway-api/echo-basic:v1.6.0-dev.3"),
            Some(Path::new("/bin/echo-basic"))
        );
        assert_eq!(
            map.program_for("registry.k8s.io/gateway-api/echo-advanced:v1"),
            None
        );
        assert_eq!(map.program_for("nginx"), None);
    }

    #[test]
    fn load_names_the_bad_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.json");
        std::fs::write(&path, r#"{"example.com/x:v1": "/bin/sh"}"#).unwrap();
        let err = ImageMap::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("example.com/x:v1") && err.contains("without tag"),
            "{err}"
        );
        std::fs::write(&path, r#"{"example.com/x": "relative/prog"}"#).unwrap();
        let err = ImageMap::load(&path).unwrap_err().to_string();
        assert!(err.contains("not an absolute path"), "{err}");
        std::fs::write(&path, r#"["x"]"#).unwrap();
        assert!(matches!(
            ImageMap::load(&path),
            Err(ImageMapError::Parse { .. })
        ));
    }
}
