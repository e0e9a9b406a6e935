//! Removing everything the agent made on the host: processes in its network namespaces,
//! the namespaces, veths, per-pod directories, mount points and (on shutdown) the bridge.
//! Only names of exactly the shape the agent makes are touched (see `names::is_ours`).
//! Run at startup for a previous agent's leftovers, and at shutdown.

use crate::config::AgentConfig;
use crate::mountpoints::Mountpoints;
use crate::{netns, process};
use nix::sys::signal::Signal;

/// Kills whatever still runs in our namespaces and removes namespaces, veths and pod dirs.
pub async fn sweep(cfg: &AgentConfig, mountpoints: &Mountpoints) {
    match netns::netns_with_prefix(&cfg.prefixes.netns).await {
        Ok(spaces) => {
            for ns in spaces.into_iter().filter(|n| cfg.prefixes.is_our_netns(n)) {
                let pids = netns::pids_in(&ns).await;
                if !pids.is_empty() {
                    tracing::info!(netns = %ns, ?pids, "killing leftover processes");
                }
                for pid in pids {
                    process::signal_group(pid, Signal::SIGKILL);
                    process::signal_pid(pid, Signal::SIGKILL);
                }
                if let Err(e) = netns::delete_netns(&ns).await {
                    tracing::warn!(netns = %ns, "{e}");
                }
            }
        }
        Err(e) => tracing::warn!("listing network namespaces: {e}"),
    }
    match netns::links_with_prefix(&cfg.prefixes.veth).await {
        Ok(links) => {
            for link in links.into_iter().filter(|l| cfg.prefixes.is_our_veth(l)) {
                if let Err(e) = netns::delete_link(&link).await {
                    tracing::warn!(link = %link, "{e}");
                }
            }
        }
        Err(e) => tracing::warn!("listing interfaces: {e}"),
    }
    let _ = std::fs::remove_dir_all(cfg.pods_dir());
    mountpoints.remove_all();
}
