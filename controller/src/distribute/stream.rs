//! The task behind one proxy stream: feeds the session desired configs and the proxy's
//! answers, sends what it says to send, and keeps the registry current.

use super::registry::Registry;
use super::session::Session;
use gatehouse_config_api::proxy_message::Kind;
use gatehouse_config_api::{ConfigUpdate, ProxyMessage};
use gatehouse_core::scope::Config;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};

pub(super) struct Stream {
    pub id: u64,
    /// Instance and peer address, for logs.
    pub name: String,
    pub session: Session,
    pub registry: Arc<Registry>,
    pub desired: watch::Receiver<Option<Arc<Config>>>,
    pub leading: watch::Receiver<bool>,
    pub messages: Streaming<ProxyMessage>,
    pub out: mpsc::Sender<Result<ConfigUpdate, Status>>,
}

pub(super) async fn run(mut s: Stream) {
    let why = s.serve().await;
    tracing::info!(proxy = %s.name, "proxy stream ended: {why}");
    s.registry.disconnect(s.id);
}

impl Stream {
    /// Runs until the stream ends; returns why.
    async fn serve(&mut self) -> String {
        let first = self.desired.borrow_and_update().clone();
        if let Some(full) = first
            && let Some(update) = self.session.desire(&full)
            && !self.send(update).await
        {
            return "the proxy went away".into();
        }
        loop {
            tokio::select! {
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        return self.end("the controller is shutting down").await;
                    }
                    let current = self.desired.borrow_and_update().clone();
                    // None means the caches are not complete or leadership is ending:
                    // the leading watch decides which.
                    if let Some(full) = current
                        && let Some(update) = self.session.desire(&full)
                        && !self.send(update).await
                    {
                        return "the proxy went away".into();
                    }
                }
                changed = self.leading.changed() => {
                    if changed.is_err() || !*self.leading.borrow_and_update() {
                        return self
                            .end("this controller stopped leading; reconnect to the new leader")
                            .await;
                    }
                }
                message = self.messages.message() => match message {
                    Ok(Some(m)) => {
                        if let Err(why) = self.answer(m).await {
                            return why;
                        }
                    }
                    Ok(None) => return "the proxy closed the stream".into(),
                    Err(status) => return format!("receive failed: {status}"),
                },
            }
        }
    }

    async fn answer(&mut self, message: ProxyMessage) -> Result<(), String> {
        let next = match message.kind {
            Some(Kind::Ack(ack)) => {
                tracing::debug!(proxy = %self.name, version = ack.version, "proxy acknowledged");
                self.session.ack(ack.version)
            }
            Some(Kind::Nack(nack)) => {
                tracing::warn!(
                    proxy = %self.name,
                    version = nack.version,
                    "proxy rejected the config update: {}",
                    nack.error
                );
                self.session.nack(nack.version, nack.error)
            }
            Some(Kind::Hello(_)) => {
                let why = "a second hello on the same stream";
                self.out.send(Err(Status::invalid_argument(why))).await.ok();
                return Err(why.into());
            }
            None => return Ok(()),
        };
        self.registry.update(self.id, &self.session);
        match next {
            Ok(Some(update)) => {
                if self.send(update).await {
                    Ok(())
                } else {
                    Err("the proxy went away".into())
                }
            }
            Ok(None) => Ok(()),
            Err(e) => {
                let why = e.to_string();
                self.out
                    .send(Err(Status::failed_precondition(why.clone())))
                    .await
                    .ok();
                Err(why)
            }
        }
    }

    /// False when the proxy is gone.
    async fn send(&mut self, update: ConfigUpdate) -> bool {
        tracing::info!(
            proxy = %self.name,
            version = update.version,
            snapshot = update.snapshot,
            upserts = update.upserts.len(),
            removals = update.removals.len(),
            "sending config update"
        );
        self.out.send(Ok(update)).await.is_ok()
    }

    async fn end(&mut self, why: &str) -> String {
        self.out.send(Err(Status::unavailable(why))).await.ok();
        why.to_string()
    }
}
