//! The messages of `proto/config.proto`, written as prost types.

/// Proxy → controller.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProxyMessage {
    #[prost(oneof = "proxy_message::Kind", tags = "1, 2, 3")]
    pub kind: Option<proxy_message::Kind>,
}

pub mod proxy_message {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        Hello(super::Hello),
        #[prost(message, tag = "2")]
        Ack(super::Ack),
        #[prost(message, tag = "3")]
        Nack(super::Nack),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Hello {
    #[prost(string, tag = "1")]
    pub instance: String,
    #[prost(string, repeated, tag = "2")]
    pub gateways: Vec<String>,
    #[prost(string, tag = "3")]
    pub held_session: String,
    #[prost(uint64, tag = "4")]
    pub held_version: u64,
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub held_keys: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Ack {
    #[prost(uint64, tag = "1")]
    pub version: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Nack {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    #[prost(string, tag = "2")]
    pub error: String,
}

/// Controller → proxy.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigUpdate {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    #[prost(string, tag = "2")]
    pub session: String,
    #[prost(bool, tag = "3")]
    pub snapshot: bool,
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub upserts: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub removals: Vec<Vec<u8>>,
}
