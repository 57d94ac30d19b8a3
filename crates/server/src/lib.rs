//! sihai's SIP endpoint: binds the configured transports, runs the protocol [`Core`]
//! on every message and timer, and sends what it produces. This is the only place where
//! the sans-IO crates meet tokio.

pub mod core;
pub mod responder;
pub mod stats;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use sihai_config::Config;
use sihai_sip::Transport;
use sihai_sip::framing::FrameLimits;
use sihai_transaction::TimerConfig;
use sihai_transport::{TransportConfig, Transports};
use thiserror::Error;
use tokio::sync::mpsc;
use tracing::{info, warn};

pub use crate::core::Core;
pub use crate::stats::{Stats, StatsSnapshot};

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot start transports: {0}")]
    Transport(#[from] sihai_transport::TransportError),
}

/// A running endpoint.
pub struct Server {
    transports: Transports,
    stats: Arc<Stats>,
    config: Config,
    inbound: mpsc::Receiver<sihai_transport::Received>,
}

impl Server {
    /// Binds every listener named in the configuration.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let (sink, inbound) = mpsc::channel(8192);
        let tcp = &config.sip.tcp;
        let transport_config = TransportConfig {
            listen: config
                .sip
                .listen
                .iter()
                .map(|l| (l.transport, l.address))
                .collect(),
            tcp_idle_timeout: tcp.idle_timeout,
            max_tcp_connections: tcp.max_connections,
            limits: FrameLimits {
                max_header_bytes: tcp.max_message_bytes,
                max_body_bytes: tcp.max_message_bytes,
            },
        };
        let transports = Transports::bind(transport_config, sink).await?;
        for (transport, addr) in transports.local_addrs() {
            info!(%transport, %addr, "listening");
        }
        Ok(Server {
            transports,
            stats: Arc::new(Stats::default()),
            config,
            inbound,
        })
    }

    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        self.transports.local_addrs()
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Serves until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let timers = &self.config.sip.timers;
        let timers = TimerConfig {
            t1: timers.t1,
            t2: timers.t2,
            t4: timers.t4,
        };
        let mut core = Core::new(
            timers,
            self.config.sip.user_agent.clone(),
            self.stats.clone(),
        );
        tokio::pin!(shutdown);
        loop {
            let deadline = core.poll_timeout();
            tokio::select! {
                received = self.inbound.recv() => {
                    let Some(received) = received else { break };
                    core.handle_received(Instant::now(), received.data, received.source);
                }
                () = sleep_until(deadline) => core.handle_timeout(Instant::now()),
                () = &mut shutdown => break,
            }
            while let Some(transmit) = core.poll_transmit() {
                if let Err(err) = self
                    .transports
                    .send(transmit.destination, transmit.payload)
                    .await
                {
                    warn!(destination = %transmit.destination, %err, "send failed");
                }
            }
        }
        info!(stats = ?self.stats.snapshot(), "shutting down");
        self.transports.shutdown();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
