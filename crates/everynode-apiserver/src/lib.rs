//! everynode's Kubernetes-compatible API server.
//!
//! A tour, in the order a request travels:
//! - [`serve`]: TLS (rustls, HTTP/1.1 and HTTP/2 by ALPN) around the axum router.
//! - [`handlers::dispatch`]: the one handler behind every path — authentication
//!   ([`auth`]), routing ([`request::parse_path`]), content negotiation, then the verb.
//! - [`resources`]: the table of hosted resources; everything else is generic over it.
//! - [`registry`]: create / guaranteed update / delete over the store, with Kubernetes'
//!   metadata, finalizer and grace-period rules; [`strategy`] supplies per-kind
//!   defaulting, validation and status/spec resets (from the pure `everynode-api` crate).
//! - [`list`] and [`watch`]: selectors, pagination, and watch streams over store watches.
//! - [`patch`]: JSON, merge and strategic merge patches.
//! - [`tables`], [`discovery`], [`openapi`]: what kubectl reads to print and to validate.
//! - [`namespaces`]: deleting a namespace deletes what is in it.
//! - [`services`]: Service cluster IPs and node ports; the `kubernetes` Service.
//! - [`logs`] and [`exec`]: `pods/log` and `pods/exec`, proxied to the node's agent.
//! - [`satokens`]: `serviceaccounts/token` (TokenRequest) and the ServiceAccount token
//!   authenticator.
//! - [`priority`]: the Priority admission of pods and the PriorityClass rules that need
//!   the store (one global default, the system classes stay).

pub mod auth;
pub mod discovery;
pub mod error;
pub mod exec;
pub mod handlers;
pub mod list;
pub mod logs;
pub mod managed;
pub mod namespaces;
pub mod openapi;
pub mod patch;
pub mod priority;
pub mod protobuf;
pub mod registry;
pub mod request;
pub mod resources;
pub mod satokens;
pub mod serve;
pub mod services;
pub mod strategy;
pub mod tables;
pub mod watch;

use std::sync::Arc;

use everynode_store::Store;

pub use auth::{Authenticator, User};
pub use registry::Registry;
pub use watch::WatchConfig;

/// Everything a request handler can reach. Shared by all connections.
pub struct ServerState {
    pub registry: Registry,
    pub auth: Authenticator,
    pub openapi: openapi::OpenApi,
    pub watch: WatchConfig,
    /// Flips to true when the server starts shutting down: watches end, readyz fails.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// How the server reaches node agents for `pods/log` (its client certificate);
    /// unset, logs are not proxied.
    pub kubelet_client: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
    /// The key ServiceAccount tokens are signed and checked with: a fresh one per
    /// server unless [`ApiServer::set_service_account_keys`] gives the data dir's.
    sa_keys: std::sync::RwLock<Arc<everynode_api::satoken::Keys>>,
    /// ServiceAccount tokens whose signature was checked, with their claims: a client
    /// sends the same token with every request, and an ES256 verification costs ~40 µs.
    /// Only the signature is remembered; every other check runs on every request.
    pub(crate) verified_tokens:
        std::sync::Mutex<std::collections::HashMap<Box<str>, Arc<everynode_api::satoken::Claims>>>,
    /// Stored RBAC objects as authorization reads them, decoded once per version (key →
    /// the mod revision decoded and the parts read): requests by anyone but the
    /// administrator consult the bindings every time.
    pub(crate) rbac_decoded: std::sync::Mutex<RbacDecoded>,
}

type RbacDecoded = std::collections::HashMap<String, (u64, Arc<dyn std::any::Any + Send + Sync>)>;

impl ServerState {
    pub fn service_account_keys(&self) -> Arc<everynode_api::satoken::Keys> {
        match self.sa_keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The audiences the server accepts tokens for (and issues them for by default).
    pub fn api_audiences(&self) -> &'static [String] {
        static AUDIENCES: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec![everynode_api::satoken::ISSUER.to_string()]);
        &AUDIENCES
    }
}

/// A configured API server. Build it, then [`ApiServer::router`] for in-process use or
/// [`serve::serve_tls`] for the network.
#[derive(Clone)]
pub struct ApiServer {
    pub state: Arc<ServerState>,
    shutdown_tx: Arc<tokio::sync::watch::Sender<bool>>,
}

impl ApiServer {
    /// Creates the server over `store`, bootstrapping the initial namespaces.
    pub async fn new(
        store: Store,
        auth: Authenticator,
        watch: WatchConfig,
    ) -> Result<Self, error::ApiError> {
        Self::with_services(store, auth, watch, services::ServiceConfig::default()).await
    }

    /// [`ApiServer::new`] with Service ranges other than the defaults.
    pub async fn with_services(
        store: Store,
        auth: Authenticator,
        watch: WatchConfig,
        services: services::ServiceConfig,
    ) -> Result<Self, error::ApiError> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let registry = Registry::with_services(store, services);
        registry.bootstrap().await?;
        let state = Arc::new(ServerState {
            registry,
            auth,
            openapi: openapi::OpenApi::build(),
            watch,
            shutdown: rx,
            kubelet_client: std::sync::OnceLock::new(),
            verified_tokens: std::sync::Mutex::default(),
            rbac_decoded: std::sync::Mutex::default(),
            sa_keys: std::sync::RwLock::new(Arc::new(
                everynode_api::satoken::Keys::generate().map_err(error::ApiError::internal)?,
            )),
        });
        namespaces::resume(&state);
        Ok(ApiServer {
            state,
            shutdown_tx: Arc::new(tx),
        })
    }

    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(handlers::dispatch)
            .with_state(self.state.clone())
    }

    /// Sets the client certificate the server presents to node agents when it proxies
    /// `pods/log` (once; later calls are ignored).
    pub fn set_kubelet_client(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
        let cfg = logs::kubelet_client_config(cert_pem, key_pem)?;
        let _ = self.state.kubelet_client.set(cfg);
        Ok(())
    }

    /// Replaces the ServiceAccount token key (the data dir's, so that tokens outlive a
    /// restart).
    pub fn set_service_account_keys(&self, keys: everynode_api::satoken::Keys) {
        let keys = Arc::new(keys);
        match self.state.sa_keys.write() {
            Ok(mut k) => *k = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        // Signatures checked with the old key mean nothing now.
        match self.state.verified_tokens.lock() {
            Ok(mut v) => v.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }

    /// Signals every connection and watch to finish.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
    }

    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.state.shutdown.clone()
    }

    /// Points the `kubernetes` Service in `default` at `addr`, where this server listens.
    pub async fn publish_kubernetes_service(
        &self,
        addr: std::net::SocketAddr,
    ) -> Result<(), error::ApiError> {
        services::publish_kubernetes_service(&self.state.registry, addr).await
    }

    pub fn store(&self) -> &Store {
        &self.state.registry.store
    }
}
