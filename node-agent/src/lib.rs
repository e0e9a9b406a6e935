//! Gatehouse's node agent: a kubelet stand-in for the conformance harness that runs
//! pods as local processes, each in its own network namespace on a host bridge.

pub mod agent;
pub mod binder;
pub mod cleanup;
pub mod config;
pub mod image_map;
pub mod ipam;
pub mod kubelet_api;
pub mod launcher;
pub mod logs;
pub mod mountpoints;
pub mod names;
pub mod netns;
pub mod node;
pub mod plan;
pub mod pod_worker;
pub mod probe;
pub mod process;
pub mod status;
pub mod volumes;
