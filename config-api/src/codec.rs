//! Resources travel as their model JSON inside the protobuf messages.

use crate::messages::ConfigUpdate;
use gatehouse_core::model::{Delta, Resource, ResourceKey};
use thiserror::Error;

/// A payload that is not the JSON of what its field should hold.
#[derive(Debug, Error)]
#[error("config update {version}: {field}[{index}]: {reason}")]
pub struct PayloadError {
    pub version: u64,
    /// `upserts`, `removals` or `held_keys`.
    pub field: &'static str,
    pub index: usize,
    pub reason: String,
}

pub fn encode_delta(delta: &Delta, version: u64, session: &str, snapshot: bool) -> ConfigUpdate {
    ConfigUpdate {
        version,
        session: session.to_string(),
        snapshot,
        upserts: delta.upserts.iter().map(to_json).collect(),
        removals: delta.removals.iter().map(to_json).collect(),
    }
}

pub fn decode_delta(update: &ConfigUpdate) -> Result<Delta, PayloadError> {
    Ok(Delta {
        upserts: decode_all::<Resource>(&update.upserts, update.version, "upserts")?,
        removals: decode_all::<ResourceKey>(&update.removals, update.version, "removals")?,
    })
}

pub fn encode_keys(keys: &[ResourceKey]) -> Vec<Vec<u8>> {
    keys.iter().map(to_json).collect()
}

pub fn decode_keys(keys: &[Vec<u8>]) -> Result<Vec<ResourceKey>, PayloadError> {
    decode_all(keys, 0, "held_keys")
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // The model types serialise infallibly (plain structs, string map keys).
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode_all<T: serde::de::DeserializeOwned>(
    items: &[Vec<u8>],
    version: u64,
    field: &'static str,
) -> Result<Vec<T>, PayloadError> {
    items
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            serde_json::from_slice(bytes).map_err(|e| PayloadError {
                version,
                field,
                index,
                reason: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::model::{Backend, BackendKey, CertificateKey};
    use prost::Message;

    #[test]
    fn delta_round_trips_through_the_wire_format() {
        let delta = Delta {
            upserts: vec![Resource::Backend(Backend {
                key: BackendKey::new("ns", "svc", 80),
                version: 3,
                app_protocol: Default::default(),
                endpoints: vec!["10.0.0.1:8080".parse().unwrap()],
            })],
            removals: vec![ResourceKey::Certificate(CertificateKey("ns/old".into()))],
        };
        let wire = encode_delta(&delta, 7, "s1", false).encode_to_vec();
        let back = ConfigUpdate::decode(wire.as_slice()).unwrap();
        assert_eq!((back.version, back.session.as_str()), (7, "s1"));
        assert_eq!(decode_delta(&back).unwrap(), delta);
    }

    #[test]
    fn a_bad_payload_names_field_and_index() {
        let update = ConfigUpdate {
            version: 4,
            removals: vec![
                br#"{"kind":"Backend","key":"ns/a:80"}"#.to_vec(),
                b"{".to_vec(),
            ],
            ..Default::default()
        };
        let e = decode_delta(&update).unwrap_err();
        assert_eq!((e.version, e.field, e.index), (4, "removals", 1));
        assert!(
            e.to_string().starts_with("config update 4: removals[1]: "),
            "{e}"
        );
    }
}
