//! Settings of one node agent.

use crate::image_map::ImageMap;
use crate::ipam::PodCidr;
use crate::names::Prefixes;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub node_name: String,
    pub cidr: PodCidr,
    pub bridge: String,
    pub prefixes: Prefixes,
    /// Per-pod directories (volumes, logs, launch specs) live under `<state_dir>/pods`.
    pub state_dir: PathBuf,
    /// This binary, re-executed as the launcher inside each pod's namespaces.
    pub agent_exe: PathBuf,
    pub images: ImageMap,
    pub kubelet_port: u16,
    /// First restart delay; doubles per crash up to `restart_backoff_max`.
    pub restart_backoff: Duration,
    pub restart_backoff_max: Duration,
    pub heartbeat: Duration,
    /// How long pods get after SIGTERM when the agent itself stops.
    pub shutdown_grace: Duration,
}

impl AgentConfig {
    pub fn pods_dir(&self) -> PathBuf {
        self.state_dir.join("pods")
    }
}
