//! sihai's admin API: JSON over HTTP under `/api/v1`, the door through which each
//! enterprise runs its own backend (独立后台) and the operator runs them all.
//!
//! It runs on a runtime of its own, in its own threads, so that no request (a heavy
//! export, a slow password hash) ever delays the signalling loop; everything it reads
//! and writes goes through the store's traits, and the daemon follows the store's
//! tenant revision, so a committed change is in force for the next call within a second.
//!
//! Who may do what: an operator everything; an enterprise admin its own enterprise's
//! groups, plans, menus, extensions and schedules, its profile, its numbers' plans, its
//! users and its prompts' audio (uploaded, converted to 8 kHz mono and stored:
//! [`prompts`]); an enterprise viewer reads. Anything of another enterprise is `404`,
//! as if it did not exist.

pub mod analytics;
pub mod auth;
pub mod enterprise;
pub mod error;
pub mod metrics;
pub mod money;
pub mod operator;
pub mod portal;
pub mod prompts;
pub mod recordings;
pub mod records;
mod running;
pub mod tenant;
pub mod tls;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use sihai_store::{
    AccessStore, AnalyticsStore, AudioStore, CdrStore, LedgerStore, StoreError, TenantStore,
};
use tower_http::timeout::TimeoutLayer;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiError;

/// The largest request body accepted (a tenant entry is a few KB); a prompt's upload
/// has its own limit ([`prompts::MAX_UPLOAD_BYTES`]).
const MAX_BODY_BYTES: usize = 1 << 20;
/// A request that takes longer is answered `408`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler shares.
#[derive(Clone)]
pub struct Api {
    pub tenant: Arc<dyn TenantStore>,
    pub access: Arc<dyn AccessStore>,
    /// The call detail records (read only).
    pub cdrs: Arc<dyn CdrStore>,
    /// The prepaid accounts and their ledger (read only).
    pub ledger: Arc<dyn LedgerStore>,
    /// The traffic analysis rollups (read only; the daemon's job keeps them).
    pub analytics: Arc<dyn AnalyticsStore>,
    /// Uploaded recordings, which `[[prompt]] audio` names.
    pub audio: Arc<dyn AudioStore>,
    /// The node's configuration file: a write is validated with its node settings.
    pub config_path: PathBuf,
    pub session_lifetime: Duration,
    pub throttle: Arc<auth::Throttle>,
    /// Each enterprise's `api_sources`, following the tenant data.
    pub sources: Arc<auth::SourceNetworks>,
    /// The OpenAPI document, as served (set when the router is built).
    pub openapi: Arc<std::sync::OnceLock<String>>,
    /// Served over HTTPS: the session cookie is then `Secure` (never sent over plain
    /// HTTP). Set by [`spawn`] from its TLS settings.
    pub https: bool,
    /// The running node's counters, for `GET /api/v1/node` (read only: atomics the
    /// signalling loop writes).
    pub node: sihai_server::NodeView,
    /// This API's requests by route and status, for `GET /metrics`.
    pub requests: Arc<sihai_server::metrics::ApiCounters>,
}

/// The stores an enterprise's records are read from: its CDRs, its prepaid account and
/// ledger, its traffic analysis rollups (the same database, behind three seams).
pub struct RecordStores {
    pub cdrs: Arc<dyn CdrStore>,
    pub ledger: Arc<dyn LedgerStore>,
    pub analytics: Arc<dyn AnalyticsStore>,
}

impl Api {
    #[allow(clippy::too_many_arguments)] // Each a distinct handle the daemon owns.
    pub fn new(
        tenant: Arc<dyn TenantStore>,
        access: Arc<dyn AccessStore>,
        records: RecordStores,
        audio: Arc<dyn AudioStore>,
        config_path: PathBuf,
        session_lifetime: Duration,
        node: sihai_server::NodeView,
    ) -> Api {
        let RecordStores {
            cdrs,
            ledger,
            analytics,
        } = records;
        Api {
            tenant,
            access,
            cdrs,
            ledger,
            analytics,
            audio,
            config_path,
            session_lifetime,
            throttle: Arc::new(auth::Throttle::default()),
            sources: Arc::new(auth::SourceNetworks::default()),
            openapi: Arc::new(std::sync::OnceLock::new()),
            https: false,
            node,
            requests: Arc::default(),
        }
    }
}

/// Runs a store operation on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

#[derive(utoipa::OpenApi)]
#[openapi(info(
    title = "sihai admin API",
    description = "Each enterprise's own backend and the operator's: tenant data, audit. See docs/admin-api.md."
))]
struct ApiDoc;

/// Every route, and the OpenAPI document describing them, from the same declarations:
/// a handler is routed only through its `#[utoipa::path]`, so none can be missing from
/// the document.
pub fn router_and_document(api: Api) -> (Router, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    let (router, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(tenant::audit))
        .routes(routes!(tenant::list))
        .routes(routes!(tenant::read, tenant::put, tenant::delete))
        .routes(routes!(prompts::upload, prompts::download))
        .routes(routes!(records::cdrs))
        .routes(routes!(records::cdrs_csv))
        .routes(routes!(records::missed_calls))
        .routes(routes!(records::account))
        .routes(routes!(records::ledger))
        .routes(routes!(records::bill))
        .routes(routes!(records::bill_text))
        .routes(routes!(records::bill_csv))
        .routes(routes!(analytics::analytics))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::remove))
        .routes(routes!(users::change_password))
        .routes(routes!(users::reset_password))
        .routes(routes!(users::keys, users::create_key))
        .routes(routes!(users::revoke_key))
        .routes(routes!(enterprise::list))
        .routes(routes!(enterprise::read, enterprise::put))
        .routes(routes!(enterprise::suspend))
        .routes(routes!(enterprise::resume))
        .routes(routes!(recordings::recording))
        .routes(routes!(money::recharge))
        .routes(routes!(money::adjustment))
        .routes(routes!(operator::accounts))
        .routes(routes!(operator::node))
        .routes(routes!(openapi_json))
        .routes(routes!(metrics::metrics))
        .split_for_parts();
    let json = document.to_pretty_json().unwrap_or_default();
    let _ = api.openapi.set(json);
    let router = router
        .fallback(portal::serve)
        // Outermost but for the limits below: it sees the status every layer and
        // handler chose (a route's template is known once routing matched it).
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            metrics::count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(api);
    (router, document)
}

/// Every route.
pub fn router(api: Api) -> Router {
    router_and_document(api).0
}

/// `GET /api/v1/openapi.json`: this API described as OpenAPI 3.1.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json(
    axum::extract::State(api): axum::extract::State<Api>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        api.openapi.get().cloned().unwrap_or_default(),
    )
        .into_response()
}

/// A running API; dropping it does not stop it, [`ApiHandle::stop`] does.
pub struct ApiHandle {
    pub local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiHandle {
    /// Stops accepting, lets requests in progress finish, and waits for the threads.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `listen` (an error now, not later, if it cannot) and serves the API on a
/// runtime of its own (two worker threads): HTTPS when `tls` is given, else HTTP.
pub fn spawn(
    listen: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut api: Api,
) -> std::io::Result<ApiHandle> {
    use axum::serve::ListenerExt;

    api.https = tls.is_some();
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sihai-api")
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let thread = std::thread::Builder::new()
        .name("sihai-api".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(err) => {
                        tracing::error!(%err, "the API cannot use its listener");
                        return;
                    }
                };
                let app = router(api).into_make_service_with_connect_info::<SocketAddr>();
                let shutdown = async {
                    let _ = stopped.await;
                };
                let served = match tls {
                    // `tap_io` only to get the peer's address as connect info.
                    Some(config) => match tls::TlsListener::new(listener, config) {
                        Ok(listener) => {
                            axum::serve(listener.tap_io(|_| {}), app)
                                .with_graceful_shutdown(shutdown)
                                .await
                        }
                        Err(err) => Err(err),
                    },
                    None => {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(shutdown)
                            .await
                    }
                };
                if let Err(err) = served {
                    tracing::error!(%err, "the API stopped");
                }
            });
        })?;
    tracing::info!(%local_addr, scheme, "admin API listening");
    Ok(ApiHandle {
        local_addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}
