//! The billing worker's read-only HTTP API: machines, costs, usage series, gaps, quarantine,
//! Prometheus metrics, health and its own OpenAPI document, served by `tiny_http` on threads of
//! its own so the billing loop never waits on a client.
//!
//! Safety rules: loopback unless a bearer token is set; every request carries the token when one
//! is; each handler thread reads through its own read-only ledger connection.

pub mod auth;
pub mod lag;
pub mod openapi;
pub mod params;
pub mod queries;
pub mod render;
pub mod routes;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub use self::auth::ApiToken;
use self::render::ApiResponse;
use self::routes::{Api, ApiRequest, LedgerCache};
use crate::billing::rate_card::RateCard;
use crate::kafka::KafkaConfig;
use crate::kafka::KafkaSetupError;
use crate::worker::WorkerMetrics;

/// Threads answering requests; two let a slow query not hold up `/metrics` or `/healthz`.
const HANDLER_THREADS: usize = 2;
/// How often a handler thread looks at the stop flag while no request comes.
const STOP_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `--http` is not an address.
    #[error("--http {given:?}: {reason}")]
    BadAddress {
        /// What was given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve the HTTP API on {address}, which is not a loopback address, without a bearer token: \
         pass --api-token-file FILE or set USAGEBILL_API_TOKEN (or listen on 127.0.0.1)"
    )]
    TokenRequired {
        /// The address asked for.
        address: SocketAddr,
    },
    /// The address cannot be bound (in use, not local, no permission).
    #[error("cannot listen on {address}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The token file cannot be read.
    #[error("cannot read the API token file {path}")]
    TokenFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The token is unusable; names where it came from, never the token.
    #[error("the API token from {origin} is unusable: {reason}")]
    BadToken {
        /// A file path or an environment variable name.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A thread cannot be started.
    #[error("cannot start an HTTP API thread")]
    Thread(#[source] std::io::Error),
    /// The consumer-lag probe's Kafka client cannot be created.
    #[error("cannot start the consumer-lag probe")]
    LagProbe(#[from] KafkaSetupError),
}

/// Parses `--http`: `HOST:PORT`, `[V6]:PORT`, or a bare `PORT` / `:PORT` meaning 127.0.0.1.
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, ApiError> {
    let bad = |reason: &str| ApiError::BadAddress { given: text.to_owned(), reason: reason.to_owned() };
    let trimmed = text.trim();
    let port_only = trimmed.strip_prefix(':').unwrap_or(trimmed);
    if !port_only.is_empty() && port_only.bytes().all(|byte| byte.is_ascii_digit()) {
        let port: u16 = port_only.parse().map_err(|_| bad("the port must be from 0 to 65535"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let mut resolved = trimmed.to_socket_addrs().map_err(|error| bad(&format!("write HOST:PORT or PORT ({error})")))?;
    resolved.next().ok_or_else(|| bad("the host resolves to no address"))
}

/// How to run the API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Bearer token; required unless `listen` is a loopback address.
    pub token: Option<ApiToken>,
    /// The worker's ledger (read-only here).
    pub ledger_path: PathBuf,
    /// The worker's live numbers.
    pub metrics: Arc<WorkerMetrics>,
    /// The worker's rate card (graduated tiers are applied to per-machine totals, as in `report`).
    pub card: RateCard,
}

/// A running API; dropping it stops the threads and waits for them.
pub struct ApiServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl ApiServer {
    /// Checks the security rules, binds, and starts the handler threads and, given `kafka`, the
    /// consumer-lag probe.
    pub fn start(settings: ApiSettings, kafka: Option<&KafkaConfig>) -> Result<ApiServer, ApiError> {
        if settings.token.is_none() && !settings.listen.ip().is_loopback() {
            return Err(ApiError::TokenRequired { address: settings.listen });
        }
        let listener = TcpListener::bind(settings.listen).map_err(|source| ApiError::Bind { address: settings.listen, source })?;
        let address = listener.local_addr().map_err(|source| ApiError::Bind { address: settings.listen, source })?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|error| ApiError::Bind { address, source: std::io::Error::other(error) })?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        if let Some(kafka) = kafka {
            threads.push(lag::start_probe(kafka, settings.ledger_path.clone(), Arc::clone(&settings.metrics), Arc::clone(&stop))?);
        }
        let guarded = if settings.token.is_some() { "bearer token required" } else { "no token: loopback only" };
        let api = Arc::new(Api {
            ledger_path: settings.ledger_path,
            token: settings.token,
            metrics: settings.metrics,
            card: settings.card,
            kafka: kafka.cloned(),
        });
        for index in 0..HANDLER_THREADS {
            let (server, api, thread_stop) = (Arc::clone(&server), Arc::clone(&api), Arc::clone(&stop));
            let spawned = std::thread::Builder::new().name(format!("api-{index}")).spawn(move || serve(&server, &api, &thread_stop));
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(error) => {
                    stop.store(true, Ordering::SeqCst);
                    return Err(ApiError::Thread(error));
                }
            }
        }
        tracing::info!("HTTP API listening on http://{address} ({guarded})");
        Ok(ApiServer { address, stop, threads })
    }

    /// The address actually bound (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn serve(server: &tiny_http::Server, api: &Api, stop: &AtomicBool) {
    let mut cache = LedgerCache::default();
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(STOP_CHECK_INTERVAL) {
            Ok(Some(request)) => respond(api, &mut cache, request),
            Ok(None) => {}
            Err(error) => {
                // An accept error (e.g. out of file descriptors): wait a little rather than spin.
                tracing::debug!("api: accepting a connection: {error}");
                std::thread::sleep(STOP_CHECK_INTERVAL);
            }
        }
    }
}

fn respond(api: &Api, cache: &mut LedgerCache, request: tiny_http::Request) {
    let authorization = request.headers().iter().find(|header| header.field.equiv("Authorization")).map(|header| header.value.as_str());
    let api_request = ApiRequest { method: request.method().as_str(), target: request.url(), authorization };
    let answer = std::panic::catch_unwind(AssertUnwindSafe(|| api.handle(&api_request, cache))).unwrap_or_else(|_| {
        // A bug, not a client error: keep the thread serving, start over with a fresh connection.
        *cache = LedgerCache::default();
        ApiResponse::error(500, "internal error; the worker logged it")
    });
    tracing::debug!("api: {} {} -> {}", api_request.method, api_request.target, answer.status);
    let mut response = tiny_http::Response::from_data(answer.body).with_status_code(answer.status);
    let headers = std::iter::once(("Content-Type", answer.content_type.to_owned())).chain(answer.headers);
    for (name, value) in headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    if let Err(error) = request.respond(response) {
        tracing::debug!("api: writing a response: {error}");
    }
}

#[cfg(test)]
mod tests;
