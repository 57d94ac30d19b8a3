//! sihai's SIP endpoint: binds the configured transports, runs the protocol [`Core`]
//! (transactions, call control) on every message and timer, sends what it produces,
//! stores each finished call's record, delivers missed-call alerts and swaps in a new
//! configuration (and its routing snapshot) when the file changes, or rejects the
//! change whole when it touches a setting that needs a restart. This is the only place where the
//! sans-IO crates meet tokio, files and signals.

pub mod alerts;
pub mod billing;
pub mod core;
pub mod crm;
mod media;
pub mod metrics;
pub mod payments;
pub mod responder;
pub mod rollups;
pub mod screen;
pub mod stats;
pub mod tenant;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use jiff::Timestamp;
use sihai_call::B2buaConfig;
use sihai_config::Config;
use sihai_routing::RoutingTable;
use sihai_sip::framing::FrameLimits;
use sihai_sip::{Peer, Transport};
use sihai_store::{
    AccessStore, AnalyticsStore, AudioStore, CdrStore, Exclusive, LedgerStore, PgOptions, PgStore,
    SqliteStore, Store, StoreError, TenantStore,
};
use sihai_transaction::{TimerConfig, Transmit};
use sihai_transport::{TransportConfig, Transports};
use thiserror::Error;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

pub use crate::core::Core;
pub use crate::stats::{CallStats, NodeView, Stats, StatsSnapshot};

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot start transports: {0}")]
    Transport(#[from] sihai_transport::TransportError),
    #[error("cannot open the CDR store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot assemble the configuration: {0}")]
    Tenant(#[from] tenant::TenantError),
}

/// Applies a new `[log] level` to the running logger; `Err` says why it could not
/// (e.g. `RUST_LOG` decides the level).
pub type LogLevelReloader = Box<dyn Fn(&str) -> Result<(), String>>;

/// A running endpoint.
pub struct Server {
    transports: Transports,
    stats: Arc<Stats>,
    /// The running configuration, replaced whole by every accepted reload; whatever
    /// reads settings while running (the alert worker, the recording sweep) loads it
    /// from here, so it always sees the configuration the file had when last accepted.
    config: Arc<ArcSwap<Config>>,
    config_path: PathBuf,
    routing: Arc<ArcSwap<RoutingTable>>,
    store: Arc<dyn CdrStore>,
    /// The same store's accounts, ledger and reservations.
    ledger: Arc<dyn LedgerStore>,
    /// The same store's tenant data, from which the running configuration's
    /// enterprises, numbers, plans... come.
    tenant: Arc<dyn TenantStore>,
    /// The tenant revision the running configuration was assembled from.
    tenant_revision: Arc<std::sync::atomic::AtomicI64>,
    /// The same store's users, sessions and audit log, for the admin API.
    access: Arc<dyn AccessStore>,
    /// The same store's uploaded recordings, which `[[prompt]] audio` names.
    audio: Arc<dyn AudioStore>,
    /// The same store's traffic analysis rollups, kept by [`rollups::run`].
    analytics: Arc<dyn AnalyticsStore>,
    /// The same store's locks for the jobs one node at a time runs (several nodes on
    /// one PostgreSQL database).
    jobs: Arc<dyn Exclusive>,
    /// Uploaded recordings already encoded, by digest (see `media::load_prompts`).
    prompt_cache: Arc<std::sync::Mutex<std::collections::HashMap<String, sihai_media::Prompt>>>,
    inbound: mpsc::Receiver<sihai_transport::Received>,
    log_level: Option<LogLevelReloader>,
    started_at: Timestamp,
}

impl Server {
    /// Opens the store and binds every listener named in the configuration read from
    /// `config_path` (which is watched for changes while running).
    pub async fn bind(config: Config, config_path: &Path) -> Result<Server, ServerError> {
        let opened = open_store(&config.store)?;
        let store: Arc<dyn CdrStore> = opened.clone();
        let ledger: Arc<dyn LedgerStore> = opened.clone();
        let tenant_store: Arc<dyn TenantStore> = opened.clone();
        let access: Arc<dyn AccessStore> = opened.clone();
        let audio: Arc<dyn AudioStore> = opened.clone();
        let analytics: Arc<dyn AnalyticsStore> = opened.clone();
        let jobs: Arc<dyn Exclusive> = opened;
        // Node settings from the file, tenant data from the store (the file's tenant
        // sections seed an empty store, or apply when the file changed since).
        let (config, door, revision) = tenant::prepare(&*tenant_store, config_path, None)?;
        log_file_door("start", &door);
        // Before any call: the previous run's open calls are settled, once, and every
        // billed enterprise has an account.
        let recovered = billing::recover(&*store, &*ledger, &config)?;
        if recovered > 0 {
            warn!(
                calls = recovered,
                "settled the calls the previous run left open"
            );
        }
        billing::open_accounts(&*ledger, &config, Timestamp::now());
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
        let routing = Arc::new(ArcSwap::from_pointee(RoutingTable::compile(&config)));
        info!(
            numbers = routing.load().numbers.len(),
            "routing table loaded"
        );
        Ok(Server {
            transports,
            stats: Arc::new(Stats::default()),
            config: Arc::new(ArcSwap::from_pointee(config)),
            config_path: config_path.to_path_buf(),
            routing,
            store,
            ledger,
            tenant: tenant_store,
            tenant_revision: Arc::new(std::sync::atomic::AtomicI64::new(revision)),
            access,
            audio,
            analytics,
            jobs,
            prompt_cache: Arc::default(),
            inbound,
            log_level: None,
            started_at: Timestamp::now(),
        })
    }

    /// The running configuration, as replaced by each accepted reload.
    pub fn config(&self) -> Arc<ArcSwap<Config>> {
        self.config.clone()
    }

    /// The stores the admin API works on: tenant data, and users with their sessions
    /// and the audit log.
    pub fn api_stores(&self) -> (Arc<dyn TenantStore>, Arc<dyn AccessStore>) {
        (self.tenant.clone(), self.access.clone())
    }

    /// The store of uploaded recordings, to which the admin API adds prompts' audio.
    pub fn audio_store(&self) -> Arc<dyn AudioStore> {
        self.audio.clone()
    }

    /// The store's traffic analysis rollups, which the admin API's `/analytics` reads.
    pub fn analytics_store(&self) -> Arc<dyn AnalyticsStore> {
        self.analytics.clone()
    }

    /// The stores the admin API reads an enterprise's records from: its CDRs, and its
    /// prepaid account and ledger.
    pub fn records_stores(&self) -> (Arc<dyn CdrStore>, Arc<dyn LedgerStore>) {
        (self.store.clone(), self.ledger.clone())
    }

    /// The configuration file the server runs from.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// How a reload that changes `[log] level` applies it.
    pub fn on_log_level(&mut self, reloader: LogLevelReloader) {
        self.log_level = Some(reloader);
    }

    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        self.transports.local_addrs()
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// What the admin API shows of the running node (`GET /api/v1/node`): read-only
    /// atomics that the signalling loop writes and never waits on.
    pub fn node_view(&self) -> NodeView {
        NodeView::new(
            self.stats.clone(),
            self.started_at,
            self.tenant_revision.clone(),
            self.store.writer_stats(),
        )
    }

    /// Serves until the node has shut down, then flushes the store. Each message on
    /// `shutdown` is one request to stop (a SIGTERM or SIGINT, named for the log): the
    /// first drains the node (new calls and OPTIONS get `503`, calls in progress go on
    /// for up to `[sip] drain_timeout_s`, and the daemon stops as soon as none is left),
    /// the second ends the calls left at once, a third stops waiting for the answers to
    /// the node's last BYEs (see [`Core::shut_down`]).
    pub async fn run(mut self, mut shutdown: mpsc::Receiver<&'static str>) {
        let addrs = self.transports.local_addrs();
        let first = |t: Transport| addrs.iter().find(|(tt, _)| *tt == t).map(|(_, a)| *a);
        let config = self.config.load_full();
        let timers = &config.sip.timers;
        let b2bua = B2buaConfig {
            timers: TimerConfig {
                t1: timers.t1,
                t2: timers.t2,
                t4: timers.t4,
            },
            user_agent: config.sip.user_agent.clone(),
            udp: first(Transport::Udp),
            tcp: first(Transport::Tcp),
        };
        let mut core = Core::new(b2bua, self.routing.clone(), self.stats.clone());
        core.set_screening(screen::ScreenSettings::from_config(&config.sip));
        core.set_reservation_seconds(config.billing.reservation_minutes * 60);
        let media_config = &config.media;
        if media_config.relay {
            let settings = sihai_call::media::MediaSettings {
                address: media_config.address,
                ports: media_config.rtp_ports.clone(),
                relay: sihai_relay::RelayConfig {
                    media_timeout: media_config.media_timeout,
                    ..sihai_relay::RelayConfig::default()
                },
            };
            match core.enable_media(settings) {
                Ok(()) => {
                    info!(address = %media_config.address, ports = ?media_config.rtp_ports, "RTP relay on")
                }
                Err(err) => error!(%err, "cannot start the RTP relay; media passes through"),
            }
        }
        let mut media = media::MediaSockets::new(media_config.address);
        // Before the first call, off the runtime's threads (files, the store, resampling).
        let (loading, audio, cache) = (
            config.clone(),
            self.audio.clone(),
            self.prompt_cache.clone(),
        );
        match tokio::task::spawn_blocking(move || media::load_prompts(&loading, &*audio, &cache))
            .await
        {
            Ok(prompts) => core.set_prompts(Arc::new(prompts)),
            Err(err) => error!(%err, "cannot load the prompts; the ringing tone plays instead"),
        }
        let mut recorders = media::Recorders::new(media_config.recordings.clone());
        let mut sweep = tokio::time::interval(RECORDING_SWEEP_INTERVAL);

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let alerts = tokio::spawn(alerts::run(
            self.store.clone(),
            self.config.clone(),
            self.stats.clone(),
            Duration::from_millis(500),
            stop_rx.clone(),
        ));
        let lifecycle = tokio::spawn(billing::run_lifecycle(
            self.store.clone(),
            self.ledger.clone(),
            self.jobs.clone(),
            self.config.clone(),
            stop_rx.clone(),
        ));
        // Off the signalling path, and yielding to it: the node's setup rate paces it.
        let rollup_job = tokio::spawn(rollups::run(
            self.analytics.clone(),
            self.jobs.clone(),
            self.stats.clone(),
            stop_rx.clone(),
        ));
        let (reload_tx, mut reload_rx) = mpsc::channel::<&'static str>(4);
        let mut watchers =
            spawn_reload_triggers(self.config_path.clone(), reload_tx.clone(), stop_rx.clone());
        watchers.push(tokio::spawn(watch_tenant_revision(
            self.tenant.clone(),
            self.tenant_revision.clone(),
            reload_tx,
            stop_rx,
        )));
        // Reloads are prepared off the event loop (the file is read, its tenant
        // sections synced to the store, the configuration assembled and checked) and
        // applied here, one at a time: a trigger during one runs after it.
        let (prepared_tx, mut prepared_rx) = mpsc::channel::<Prepared>(1);
        let mut reloading = false;
        let mut reload_again: Option<&'static str> = None;

        let (gate, gate_rx) = mpsc::unbounded_channel();
        let gate_task = tokio::spawn(durability_gate(
            gate_rx,
            self.store.clone(),
            self.transports.clone(),
        ));

        // Set by the first request to stop: from then on each turn asks the core whether
        // it is done (while serving, this flag is all the shutdown costs a turn).
        let mut stopping = false;
        // What one turn of the loop sends now, and what waits for the CDR commit; both
        // keep their capacity from turn to turn.
        let mut outgoing: Vec<(Peer, Bytes)> = Vec::new();
        let mut parked: Vec<Transmit> = Vec::new();
        let mut reservations = billing::Reservations::default();
        let mut crm = crm::CrmLookups::start(&config).await;
        loop {
            let deadline = core.poll_timeout();
            tokio::select! {
                received = self.inbound.recv() => {
                    let Some(received) = received else { break };
                    core.handle_received_on(Instant::now(), Timestamp::now(), received.data, received.source, Some(received.local));
                    self.collect_outputs(&mut core, &mut reservations, &crm, &mut outgoing, &mut parked);
                    // Under load more is already queued: take it in the same turn so that
                    // the replies leave together (one sendmmsg, one wake-up per peer).
                    for _ in 1..INBOUND_BATCH {
                        let Ok(received) = self.inbound.try_recv() else { break };
                        core.handle_received_on(Instant::now(), Timestamp::now(), received.data, received.source, Some(received.local));
                        self.collect_outputs(&mut core, &mut reservations, &crm, &mut outgoing, &mut parked);
                    }
                }
                () = sleep_until(deadline) => core.handle_timeout(Instant::now(), Timestamp::now()),
                // A reservation the store answered after a round trip (PostgreSQL).
                Some((call_id, outcome)) = reservations.recv() => {
                    core.on_reservation(Instant::now(), Timestamp::now(), &call_id, outcome);
                }
                // A CRM's answer (来电弹屏): the call waiting for it rings.
                Some((lookup, answer)) = crm.recv() => {
                    core.on_crm_answer(Instant::now(), Timestamp::now(), lookup, answer);
                }
                Some(trigger) = reload_rx.recv() => {
                    if reloading {
                        reload_again = Some(trigger);
                    } else {
                        reloading = true;
                        self.start_reload(trigger, prepared_tx.clone());
                    }
                }
                Some(prepared) = prepared_rx.recv() => {
                    reloading = false;
                    if let Some(trigger) = reload_again.take() {
                        reloading = true;
                        self.start_reload(trigger, prepared_tx.clone());
                    }
                    if let Some((config, prompts)) = self.finish_reload(prepared) {
                        core.set_prompts(Arc::new(prompts));
                        core.reconfigure(&config.sip.user_agent, config.media.media_timeout);
                        recorders.set_dir(&config.media.recordings);
                        // A new enterprise, or a shorter retention, applies now rather
                        // than at the next hourly sweep.
                        self.sweep_recordings();
                        core.set_screening(screen::ScreenSettings::from_config(&config.sip));
                        core.set_reservation_seconds(config.billing.reservation_minutes * 60);
                        // A new billed enterprise gets its account; each opening waits
                        // for a durable write, so not on the event loop.
                        let (ledger, config) = (self.ledger.clone(), config.clone());
                        tokio::task::spawn_blocking(move || {
                            billing::open_accounts(&*ledger, &config, Timestamp::now())
                        });
                    }
                }
                _ = sweep.tick() => self.sweep_recordings(),
                Some(datagram) = media.recv() => {
                    core.handle_media(Instant::now(), Timestamp::now(), datagram.port, datagram.source, &datagram.data);
                    // At a thousand calls a packet arrives every 10 us: relay what is
                    // queued in the same turn, and send what it produced together.
                    for _ in 1..INBOUND_BATCH {
                        let Some(datagram) = media.try_recv() else { break };
                        core.handle_media(Instant::now(), Timestamp::now(), datagram.port, datagram.source, &datagram.data);
                    }
                }
                Some(signal) = shutdown.recv() => {
                    // Read now: a reload may have changed it since the start.
                    let drain_timeout = self.config.load().sip.drain_timeout;
                    info!(signal, "shutdown requested");
                    core.shut_down(Instant::now(), Timestamp::now(), drain_timeout);
                    stopping = true;
                }
            }
            // Asked before the outputs are collected: ending the calls left at the end of
            // the drain sends BYEs and records CDRs like any other step.
            let stopped = stopping && core.poll_shutdown(Instant::now(), Timestamp::now());
            media.apply(&mut core);
            recorders.apply(&mut core);
            // A failed send fails its transaction, which may want to send something else
            // (a final response to the caller): go round until nothing new is produced.
            loop {
                self.collect_outputs(
                    &mut core,
                    &mut reservations,
                    &crm,
                    &mut outgoing,
                    &mut parked,
                );
                if !parked.is_empty() && gate.send(std::mem::take(&mut parked)).is_err() {
                    error!("durability gate stopped");
                }
                let failed = self.transports.send_all(&mut outgoing).await;
                if failed.is_empty() {
                    break;
                }
                for (destination, err) in failed {
                    warn!(%destination, %err, "send failed");
                    core.handle_transport_error(Instant::now(), Timestamp::now(), destination);
                }
            }
            // For the API's node view and the metrics: relaxed stores, never a wait.
            core.publish_gauges();
            if stopped {
                break;
            }
        }
        // What waits for the last CDRs' commit (the BYEs' 200s, final responses) goes
        // out before the store is flushed.
        drop(gate);
        let _ = gate_task.await;
        info!(stats = ?self.stats.snapshot(), active_calls = core.active_calls(), "shutting down");
        let _ = stop_tx.send(true);
        let _ = alerts.await;
        let _ = lifecycle.await;
        let _ = rollup_job.await;
        for w in watchers {
            w.abort();
        }
        if let Err(err) = self.store.flush() {
            error!(%err, "cannot flush the CDR store");
        }
        self.transports.shutdown();
        info!("stopped");
    }

    /// Records the CDRs of the calls the last step ended and sorts what it wants sent.
    ///
    /// A step that ended a call holds back what it sends (the 200 for a BYE, the final
    /// response of a failed call) until the call's record is committed: once a peer sees
    /// a call end, its CDR survives a crash. Provisional responses end nothing (and a
    /// late 100 would only invite retransmissions): they go at once with the rest.
    fn collect_outputs(
        &self,
        core: &mut Core,
        reservations: &mut billing::Reservations,
        crm: &crm::CrmLookups,
        outgoing: &mut Vec<(Peer, Bytes)>,
        parked: &mut Vec<Transmit>,
    ) {
        billing::serve(core, &*self.ledger, reservations);
        crm::serve(core, crm);
        let mut ended = false;
        while let Some((cdr, alert)) = core.poll_record() {
            ended = true;
            if let Err(err) = self.store.record(cdr, alert) {
                error!(%err, "cannot record a CDR");
            }
        }
        while let Some(transmit) = core.poll_transmit() {
            if ended && !transmit.payload.starts_with(b"SIP/2.0 1") {
                parked.push(transmit);
            } else {
                outgoing.push((transmit.destination, transmit.payload));
            }
        }
    }

    /// Deletes recordings past their enterprise's retention under the running
    /// configuration, off the event loop.
    fn sweep_recordings(&self) {
        let config = self.config.load();
        let dir = config.media.recordings.clone();
        let retention: Vec<(String, u32)> = config
            .enterprises
            .iter()
            .map(|e| (e.id.clone(), e.recording_retention_days))
            .collect();
        let today = sihai_routing::schedule::china_time_zone()
            .to_datetime(Timestamp::now())
            .date();
        let audio = self.audio.clone();
        tokio::task::spawn_blocking(move || {
            for day in media::sweep_recordings(&dir, &retention, today) {
                info!(path = %day.display(), "deleted recordings past their retention");
            }
            // Uploaded prompts' audio that no prompt names any more (replaced, removed),
            // a day after it was stored: an upload's entry is written seconds after its
            // audio, never a day.
            let stored_before = Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_hours(24))
                .unwrap_or(Timestamp::UNIX_EPOCH);
            match audio.sweep_audio(stored_before) {
                Ok(0) => {}
                Ok(deleted) => info!(deleted, "deleted uploaded prompt audio no prompt names"),
                Err(err) => warn!(%err, "cannot sweep uploaded prompt audio"),
            }
        });
    }

    /// Prepares a replacement for the running configuration off the event loop: reads
    /// the file, syncs its tenant sections to the store ([`tenant::prepare`]) and
    /// assembles node settings and the store's tenant data; the result comes back
    /// through `done` for [`Server::finish_reload`].
    fn start_reload(&self, trigger: &'static str, done: mpsc::Sender<Prepared>) {
        let running = self.config.load_full();
        let (store, path) = (self.tenant.clone(), self.config_path.clone());
        let (audio, cache) = (self.audio.clone(), self.prompt_cache.clone());
        tokio::task::spawn_blocking(move || {
            let result =
                tenant::prepare(&*store, &path, Some(&running)).map(|(config, door, revision)| {
                    // The new configuration's prompts, read here so that an uploaded
                    // recording (or a changed file) is what the next call plays.
                    let prompts = media::load_prompts(&config, &*audio, &cache);
                    (config, door, revision, prompts)
                });
            let _ = done.blocking_send(Prepared { trigger, result });
        });
    }

    /// Swaps in a prepared configuration and its routing table. A file with errors, or
    /// one that changes a setting that needs a restart (a listener, the store, the
    /// relay's address or ports...: `sihai_config::reload_rules`), is rejected whole
    /// and the running configuration stays.
    fn finish_reload(&mut self, prepared: Prepared) -> Option<(Arc<Config>, Prompts)> {
        let Prepared { trigger, result } = prepared;
        let running = self.config.load_full();
        let result = result.map(|(config, door, revision, prompts)| {
            log_file_door(trigger, &door);
            self.tenant_revision
                .store(revision, std::sync::atomic::Ordering::Relaxed);
            (config, prompts)
        });
        match result {
            Ok((config, prompts)) => {
                let table = RoutingTable::compile(&config);
                let numbers = table.numbers.len();
                let config = Arc::new(config);
                self.routing.store(Arc::new(table));
                self.config.store(config.clone());
                if config.log.level != running.log.level
                    && let Some(set_level) = &self.log_level
                {
                    match set_level(&config.log.level) {
                        Ok(()) => info!(trigger, level = %config.log.level, "log level changed"),
                        Err(why) => {
                            warn!(trigger, level = %config.log.level, "log level not changed: {why}")
                        }
                    }
                }
                info!(trigger, numbers, "configuration reloaded");
                Some((config, prompts))
            }
            Err(tenant::TenantError::Config(errors)) => {
                for e in &errors.errors {
                    error!(trigger, "{e}");
                }
                error!(
                    trigger,
                    "configuration rejected; the running configuration stays"
                );
                None
            }
            Err(other) => {
                error!(trigger, %other, "configuration not reloaded; the running configuration stays");
                None
            }
        }
    }
}

/// Opens the store `[store]` names: the SQLite file, or the PostgreSQL database shared
/// with other nodes (as node `[store] node`). The daemon and every command that reads or
/// writes the store open it here.
pub fn open_store(config: &sihai_config::StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &config.postgres {
        None => Arc::new(SqliteStore::open(&config.sqlite, config.commit_interval)?),
        Some(postgres) => {
            let mut options = PgOptions::new(postgres.node.clone());
            options.commit_interval = config.commit_interval;
            options.pool_size = postgres.pool_size;
            options.connect_timeout = postgres.connect_timeout;
            options.spool = Some(postgres.spool.clone());
            let store = PgStore::open(&postgres.url, options)?;
            info!(database = %store.path().display(), node = %postgres.node,
                spool = %postgres.spool.display(), "store on PostgreSQL");
            Arc::new(store)
        }
    })
}

/// Encoded prompts by `[[prompt]]` name.
type Prompts = std::collections::HashMap<String, sihai_media::Prompt>;

/// A reload prepared off the event loop: the configuration, what the file's tenant data
/// did, the tenant revision, and the configuration's prompts, loaded.
struct Prepared {
    trigger: &'static str,
    result: Result<(Config, tenant::FileDoor, i64, Prompts), tenant::TenantError>,
}

fn log_file_door(trigger: &str, door: &tenant::FileDoor) {
    match door {
        tenant::FileDoor::Unchanged => {}
        tenant::FileDoor::Applied { changed, revision } => {
            info!(
                trigger,
                changed, revision, "applied the configuration file's tenant data to the store"
            )
        }
        tenant::FileDoor::Refused(why) => {
            error!(
                trigger,
                "the configuration file's tenant data was not applied: {why}"
            )
        }
    }
}

/// How often the store's tenant revision is looked at: a change committed by another
/// door (`sihai apply`, the admin API) is running within about this much.
const TENANT_POLL: Duration = Duration::from_millis(250);

/// How often the revision is looked at when the store pushes changes
/// ([`TenantStore::tenant_changes`]): only in case a push was missed.
const TENANT_POLL_WITH_PUSH: Duration = Duration::from_secs(1);

/// Asks for a reload whenever the store's tenant revision moves past the one the
/// running configuration was assembled from: at once when the store pushes it (another
/// node's change on PostgreSQL), and by polling in any case.
async fn watch_tenant_revision(
    store: Arc<dyn TenantStore>,
    running: Arc<std::sync::atomic::AtomicI64>,
    reload: mpsc::Sender<&'static str>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut pushed = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.tenant_changes())
            .await
            .ok()
            .flatten()
    };
    let mut tick = tokio::time::interval(if pushed.is_some() {
        TENANT_POLL_WITH_PUSH
    } else {
        TENANT_POLL
    });
    let mut asked_for = None;
    loop {
        let revision = tokio::select! {
            _ = tick.tick() => None,
            changed = async {
                match pushed.as_mut() {
                    Some(rx) => rx.changed().await.map(|()| *rx.borrow_and_update()),
                    None => std::future::pending().await,
                }
            } => match changed {
                Ok(revision) => Some(revision),
                Err(_) => {
                    // The push has stopped (the store closed): polling goes on.
                    pushed = None;
                    None
                }
            },
        };
        if *stop.borrow() {
            return;
        }
        let revision = match revision {
            Some(revision) => revision,
            None => {
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.tenant_revision()).await {
                    Ok(Ok(revision)) => revision,
                    Ok(Err(err)) => {
                        warn!(%err, "cannot read the tenant revision");
                        continue;
                    }
                    Err(_) => return,
                }
            }
        };
        let compiled = running.load(std::sync::atomic::Ordering::Relaxed);
        if revision != compiled && asked_for != Some(revision) {
            asked_for = Some(revision);
            if reload.send("tenant data").await.is_err() {
                return;
            }
        }
    }
}

/// Sends parked transmits once everything recorded before them is committed. It waits
/// for the store's regular commit rather than forcing one (group commit): under load
/// every call that ended within one commit interval shares one transaction and one
/// fsync, at the price of up to that interval (50 ms by default) before the peer hears
/// the final response.
async fn durability_gate(
    mut parked: mpsc::UnboundedReceiver<Vec<Transmit>>,
    store: Arc<dyn CdrStore>,
    transports: Transports,
) {
    while let Some(first) = parked.recv().await {
        let mut batches = vec![first];
        while let Ok(more) = parked.try_recv() {
            batches.push(more);
        }
        let waiting = store.clone();
        match tokio::task::spawn_blocking(move || waiting.wait_committed()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                error!(%err, "CDR commit failed; sending anyway (the writer keeps retrying)")
            }
            Err(err) => error!(%err, "CDR flush task failed"),
        }
        let mut outgoing: Vec<(Peer, Bytes)> = batches
            .into_iter()
            .flatten()
            .map(|t| (t.destination, t.payload))
            .collect();
        for (destination, err) in transports.send_all(&mut outgoing).await {
            warn!(%destination, %err, "send failed");
        }
    }
}

/// SIGHUP, and a change of the file's modification time (checked every second).
fn spawn_reload_triggers(
    path: PathBuf,
    reload: mpsc::Sender<&'static str>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let hup = reload.clone();
    tasks.push(tokio::spawn(async move {
        let Ok(mut signals) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            warn!("cannot listen for SIGHUP; reload on file change only");
            return;
        };
        while signals.recv().await.is_some() {
            if hup.send("SIGHUP").await.is_err() {
                return;
            }
        }
    }));
    tasks.push(tokio::spawn(async move {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let mut last: Option<SystemTime> = modified(&path);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if *stop.borrow() {
                return;
            }
            let now = modified(&path);
            if now.is_some() && now != last {
                last = now;
                if reload.send("file change").await.is_err() {
                    return;
                }
            }
        }
    }));
    tasks
}

/// Received messages handled in one turn of the event loop before its replies are sent.
const INBOUND_BATCH: usize = 64;

/// How often recordings past their retention are looked for (also once at start).
const RECORDING_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
