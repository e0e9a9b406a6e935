//! The gRPC stream over which the controller distributes config to its proxies
//! (`proto/config.proto`): messages, the JSON payload codec, and the server and client
//! plumbing tonic's code generator would otherwise write.

mod codec;
mod messages;
mod service;
mod tls;

pub use codec::{PayloadError, decode_delta, decode_keys, encode_delta, encode_keys};
pub use messages::*;
pub use service::{ConfigClient, ConfigServer, Distributor, OpenFuture, UpdateStream};
pub use tls::{ClientTls, ServerTls, TlsFileError, read_pem};

/// The largest message either side accepts: a full snapshot of a big config is one message.
pub const MAX_MESSAGE: usize = 512 << 20;
