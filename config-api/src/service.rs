//! Server and client ends of `ConfigDistribution.Stream`, written against tonic's runtime
//! API (what its code generator would emit for the one method).

use crate::MAX_MESSAGE;
use crate::messages::{ConfigUpdate, ProxyMessage};
use crate::tls::ClientTls;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::codegen::tokio_stream::Stream;
use tonic::codegen::{GrpcMethod, Service, http};
use tonic::server::{NamedService, StreamingService};
use tonic::transport::{Channel, Endpoint};
use tonic::{Status, Streaming};
use tonic_prost::ProstCodec;

const SERVICE: &str = "gatehouse.config.v1.ConfigDistribution";
const METHOD: &str = "Stream";
const PATH: &str = "/gatehouse.config.v1.ConfigDistribution/Stream";

/// What the controller sends down one stream.
pub type UpdateStream = Pin<Box<dyn Stream<Item = Result<ConfigUpdate, Status>> + Send>>;
pub type OpenFuture = Pin<Box<dyn Future<Output = Result<UpdateStream, Status>> + Send>>;

/// The controller's side of the service: one call per proxy stream.
pub trait Distributor: Send + Sync + 'static {
    /// Accepts (or refuses, e.g. UNAVAILABLE on a standby) the stream of one proxy.
    fn open(&self, peer: Option<SocketAddr>, messages: Streaming<ProxyMessage>) -> OpenFuture;
}

/// A tower service routing `ConfigDistribution.Stream` to a [`Distributor`].
pub struct ConfigServer<D> {
    distributor: Arc<D>,
}

impl<D> ConfigServer<D> {
    pub fn new(distributor: Arc<D>) -> Self {
        ConfigServer { distributor }
    }
}

impl<D> Clone for ConfigServer<D> {
    fn clone(&self) -> Self {
        ConfigServer {
            distributor: self.distributor.clone(),
        }
    }
}

impl<D> NamedService for ConfigServer<D> {
    const NAME: &'static str = SERVICE;
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<D: Distributor> Service<http::Request<tonic::body::Body>> for ConfigServer<D> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != PATH {
            let path = request.uri().path().to_string();
            return Box::pin(async move {
                Ok(Status::unimplemented(format!("no method {path}")).into_http())
            });
        }
        let handler = Handler(self.distributor.clone());
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<ConfigUpdate, ProxyMessage>::default())
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE);
            Ok(grpc.streaming(handler, request).await)
        })
    }
}

struct Handler<D>(Arc<D>);

impl<D: Distributor> StreamingService<ProxyMessage> for Handler<D> {
    type Response = ConfigUpdate;
    type ResponseStream = UpdateStream;
    type Future = BoxFuture<tonic::Response<UpdateStream>, Status>;

    fn call(&mut self, request: tonic::Request<Streaming<ProxyMessage>>) -> Self::Future {
        let opened = self.0.open(request.remote_addr(), request.into_inner());
        Box::pin(async move { opened.await.map(tonic::Response::new) })
    }
}

/// The proxy's end: one connection to one controller.
pub struct ConfigClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl ConfigClient {
    /// Connects to `url`: `http://host:port`, or `https://host:port` with `tls`.
    pub async fn connect(
        url: &str,
        timeout: Duration,
        tls: Option<&ClientTls>,
    ) -> Result<Self, tonic::transport::Error> {
        let mut endpoint = Endpoint::from_shared(url.to_string())?;
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls.config())?;
        }
        let channel = endpoint
            .connect_timeout(timeout)
            // A controller that vanished without closing (host down, partition) is noticed.
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .connect()
            .await?;
        let grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(ConfigClient { grpc })
    }

    /// Opens the stream: `outbound` carries the Hello then the ACKs/NACKs.
    pub async fn open(
        &mut self,
        outbound: impl Stream<Item = ProxyMessage> + Send + 'static,
    ) -> Result<Streaming<ConfigUpdate>, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("connection not ready: {e}")))?;
        let mut request = tonic::Request::new(outbound);
        request
            .extensions_mut()
            .insert(GrpcMethod::new(SERVICE, METHOD));
        let codec = ProstCodec::<ProxyMessage, ConfigUpdate>::default();
        let path = http::uri::PathAndQuery::from_static(PATH);
        Ok(self
            .grpc
            .streaming(request, path, codec)
            .await?
            .into_inner())
    }
}
