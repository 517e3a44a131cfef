//! Building and running the HTTP application.

use crate::settings::ResolvedSettings;
use crate::telemetry;
use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use citydata_api::{ApiError, AppState, middleware};
use citydata_core::{Core, CoreConfig};
use citydata_store::Store;
use citydata_store_postgres::PostgresStore;
use citydata_store_sqlite::SqliteStore;
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// Open the metadata store named by `url`: `sqlite://...` or `postgres(ql)://...`.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let redacted = crate::settings::redact_url_password(url);
    if url.starts_with("sqlite:") {
        let s = SqliteStore::connect(url).await.with_context(|| format!("cannot open SQLite database {redacted}"))?;
        Ok(Arc::new(s))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let s =
            PostgresStore::connect(url).await.with_context(|| format!("cannot connect to PostgreSQL at {redacted}"))?;
        Ok(Arc::new(s))
    } else {
        anyhow::bail!("unsupported database_url {redacted}: use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB")
    }
}

/// The whole HTTP application: REST v1, CKAN, DCAT, the web pages, ops endpoints, middleware.
/// `/metrics` is served only with a `metrics_token`, which it then requires as a bearer token.
pub fn build_router(
    state: AppState,
    max_body_bytes: usize,
    portal: citydata_portal::PortalConfig,
    metrics_token: Option<String>,
) -> Router {
    let csp = middleware::content_security_policy(logo_origin(portal.logo_url.as_deref()).as_deref());
    let (api, doc) = citydata_api::v1::router();
    let doc = serde_json::to_value(&doc).unwrap_or_default();
    let portal = Arc::new(citydata_portal::Portal::new(portal, doc));
    // Unknown paths under /api answer in the API's envelope; others with the portal's page.
    let not_found = {
        let portal = portal.clone();
        move |req: Request| {
            let portal = portal.clone();
            async move {
                if req.uri().path().starts_with("/api/") || req.uri().path() == "/api" {
                    return ApiError::route_not_found().into_response();
                }
                let (mut parts, _) = req.into_parts();
                parts.extensions.insert(portal.clone());
                match <citydata_portal::Ctx as axum::extract::FromRequestParts<()>>::from_request_parts(&mut parts, &())
                    .await
                {
                    Ok(ctx) => citydata_portal::not_found(ctx, axum::Extension(portal)).await,
                    Err(r) => r,
                }
            }
        }
    };
    let router = Router::new()
        .merge(api)
        .merge(citydata_api::ckan::router())
        .merge(citydata_api::dcat::router())
        .merge(citydata_portal::router(portal))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), citydata_api::scopes::enforce))
        .layer(from_fn_with_state(state.clone(), middleware::authenticate));
    // Outside `authenticate`: the metrics token is not an API token.
    let router = match metrics_token {
        Some(token) => router.route("/metrics", get(metrics).layer(from_fn_with_state(Arc::new(token), metrics_auth))),
        None => router,
    };
    // Outside `authenticate` too: Delta Sharing has its own bearer tokens (profiles).
    let router = router.merge(citydata_api::delta_sharing::router());
    router
        .layer(from_fn_with_state(state.clone(), middleware::request_context))
        .layer(from_fn(middleware::metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let rid = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", request_id = %rid, method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(from_fn_with_state(csp, middleware::security_headers))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// `scheme://host[:port]` of an absolute logo URL (for the CSP's `img-src`).
fn logo_origin(logo: Option<&str>) -> Option<String> {
    let u = url::Url::parse(logo?).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.origin().ascii_serialization())
}

/// `/metrics` only with `Authorization: Bearer <metrics_token>` (compared in constant time).
async fn metrics_auth(State(token): State<Arc<String>>, req: Request, next: axum::middleware::Next) -> Response {
    use sha2::{Digest, Sha256};
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Equal-length digests, so the comparison's time says nothing about the token.
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(token.as_bytes()));
    if a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0 {
        next.run(req).await
    } else {
        let mut r =
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "需要监控令牌 / the metrics token is required")
                .into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    }
}

/// The router of the separate metrics listener (`metrics_addr`).
fn metrics_router(state: AppState, token: Option<String>) -> Router {
    let r = Router::new().route("/metrics", get(metrics));
    let r = match token {
        Some(t) => r.layer(from_fn_with_state(Arc::new(t), metrics_auth)),
        None => r,
    };
    r.with_state(state)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    // The lake's storage answers (a bucket on S3: one listing, bounded to a few seconds).
    if let Ok(lake) = state.core.lake()
        && let Err((reason, detail)) = lake.ping().await
    {
        tracing::warn!(%detail, ?reason, "lake storage not usable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "lake_unavailable", "reason": reason })),
        )
            .into_response();
    }
    match state.core.store().ready().await {
        Ok(true) => axum::Json(json!({ "status": "ready", "store": state.core.store().backend() })).into_response(),
        Ok(false) => {
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({ "status": "migrations_pending" }))).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "store not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({ "status": "store_unreachable" }))).into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let stats = state.core.store().pool_stats();
    metrics::gauge!("store_pool_connections", "state" => "total").set(f64::from(stats.size));
    metrics::gauge!("store_pool_connections", "state" => "idle").set(f64::from(stats.idle));
    let body = telemetry::prometheus().render();
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    resp
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    core: Core,
    addr: SocketAddr,
    metrics: Option<(TcpListener, Router)>,
    metrics_addr: Option<SocketAddr>,
    shutdown_grace: Duration,
    iot_streams: bool,
}

/// The use cases' configuration from the settings: the server and every CLI command that opens
/// a `Core` use this one function, so pseudonyms, the working-day calendar, limits and weights
/// are the same wherever a use case runs.
pub fn core_config(settings: &ResolvedSettings) -> anyhow::Result<CoreConfig> {
    Ok(CoreConfig {
        session_ttl: chrono::Duration::hours(i64::from(settings.settings.session_ttl_hours.max(1))),
        session_idle: (settings.settings.session_idle_minutes > 0)
            .then(|| chrono::Duration::minutes(i64::from(settings.settings.session_idle_minutes))),
        pseudonym_key: settings.secret_key.expose().as_bytes().to_vec(),
        calendar: settings.calendar(),
        response_days: settings.settings.response_days.clamp(1, 365),
        webhook_retry_base: chrono::Duration::milliseconds(
            settings.settings.webhook_retry_base_ms.clamp(10, 86_400_000) as i64,
        ),
        webhook_max_attempts: settings.settings.webhook_max_attempts.clamp(1, 30),
        commitment_text: settings
            .settings
            .commitment_text
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| citydata_core::DEFAULT_COMMITMENT.to_string()),
        sql_memory_limit: (settings.settings.sql_memory_mib.clamp(16, 1 << 20) as usize) << 20,
        sql_concurrency: settings.settings.sql_concurrency.clamp(1, 64) as usize,
        // The demo's generated districts unless another boundary is named.
        boundary_resource: settings
            .settings
            .boundary_resource
            .clone()
            .or_else(|| settings.settings.demo.then(|| citydata_core::demo::BOUNDARY.to_string()))
            .filter(|b| !b.trim().is_empty()),
        login_max_failures: settings.settings.login_max_failures.max(1),
        login_max_failures_per_client: settings.settings.login_max_failures_per_client.max(1),
        login_max_failures_per_user: settings.settings.login_max_failures_per_user.max(1),
        login_window: chrono::Duration::minutes(i64::from(settings.settings.login_window_minutes.clamp(1, 1440))),
        password_hash_concurrency: match settings.settings.password_hash_concurrency {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        },
        password_queue_wait: Duration::from_millis(settings.settings.password_queue_timeout_ms.max(1)),
        decompress: citydata_lake::limits::DecompressLimits {
            max_bytes: settings.settings.max_decompressed_bytes.max(1024 * 1024),
            max_ratio: settings.settings.max_decompression_ratio.max(2),
        },
        max_file_bytes: settings.settings.max_file_bytes.max(1),
        webhook_allow: settings.webhook_allow(),
        public_url: settings.settings.public_base_url.as_ref().map(|u| u.trim_end_matches('/').to_string()),
        node_id: settings.node_id().context("cannot keep the node id in the data directory")?,
        ingest_lease: Duration::from_secs(settings.settings.ingest_lease_secs.clamp(1, 86_400)),
        quality_weights: {
            let w = settings.settings.quality_weights;
            w.check().map_err(|e| anyhow::anyhow!(e))?;
            w
        },
        ticket_sla_days: settings.settings.ticket_sla_days.clamp(1, 365),
        ticket_autoclose_days: settings.settings.ticket_autoclose_days.clamp(1, 3650),
        verify: citydata_core::verify::VerifyLimits {
            daily_quota: settings.settings.verify_daily_quota.clamp(1, 10_000_000),
            max_batch: settings.settings.verify_max_batch.clamp(1, citydata_core::verify::MAX_BATCH_CEILING),
            user_daily_quota: settings.settings.verify_user_daily_quota.clamp(1, 100_000_000),
            per_second: settings.settings.verify_per_second,
        },
        licenses: citydata_core::licenses::LicenseConfig {
            per_minute: settings.settings.license_verify_per_minute.clamp(1, 1_000_000),
            receipt_key: Some(settings.receipt_key().context("cannot keep the license receipt key")?),
        },
        oidc: {
            settings.settings.oidc.check().map_err(|e| anyhow::anyhow!(e))?;
            settings.settings.oidc.clone()
        },
        totp_required: settings.settings.totp_required_for_admins,
        ..CoreConfig::default()
    })
}

impl Application {
    /// Open the store, run migrations, seed the demo when asked, and bind the listener.
    pub async fn build(settings: ResolvedSettings) -> anyhow::Result<Self> {
        let _ = telemetry::prometheus();
        let store = open_store(&settings.database_url).await?;
        store.migrate().await.context("database migration failed")?;
        let config = core_config(&settings)?;
        let (index, fresh) = open_search_index(&settings.data_dir.join("search"))?;
        let lake = settings.open_lake()?;
        let audit_key = citydata_core::audit_seal::AuditKey::open_or_create(&settings.audit_key_file)
            .map_err(|e| anyhow::anyhow!("cannot use the audit key {}: {e}", settings.audit_key_file.display()))?;
        let core = Core::new(store, config)
            .with_search(Arc::new(index))
            .with_lake(lake, settings.data_dir.join("tmp"))
            .with_audit_key(Arc::new(audit_key));
        // What this node was running when it stopped cannot be running any more.
        if let Err(e) = core.settle_stale_ingests(true).await {
            tracing::warn!(error = %e, "settling interrupted ingests at start failed");
        }
        if settings.settings.demo {
            let r = core.seed_demo().await.context("seeding the demo content failed")?;
            tracing::info!(
                departments = r.departments_created,
                users = r.users_created,
                resources = r.resources_created,
                "demo content seeded"
            );
            if let Some(url) = &settings.settings.demo_mqtt_url {
                core.seed_demo_stream(url).await.context("creating the demo MQTT stream failed")?;
            }
        }
        if settings.settings.demo && settings.settings.demo_rows > 0 {
            let started = std::time::Instant::now();
            let loaded =
                core.load_demo_data(settings.settings.demo_rows).await.context("loading the demo data failed")?;
            if loaded > 0 {
                tracing::info!(rows = loaded, seconds = started.elapsed().as_secs_f64(), "demo data loaded");
            }
        }
        if fresh {
            let n = core.reindex().await.context("building the search index failed")?;
            tracing::info!(documents = n, "search index built");
        } else {
            core.sync_search().await;
        }
        let state = AppState::new(citydata_api::AppStateInner {
            core: core.clone(),
            cookie_secure: settings.cookie_secure(),
            public_base_url: settings.settings.public_base_url.clone(),
            max_upload_bytes: settings.settings.max_upload_bytes,
            trusted_proxies: Arc::new(settings.trusted_proxies()),
        });
        let portal = settings.portal_config();
        let token = settings.settings.metrics_token.as_ref().map(|t| t.expose().to_string()).filter(|t| !t.is_empty());
        let metrics = match settings.settings.metrics_addr {
            Some(a) => {
                let l = TcpListener::bind(a).await.with_context(|| format!("cannot listen on {a} (metrics_addr)"))?;
                Some((l, metrics_router(state.clone(), token.clone())))
            }
            None => None,
        };
        let metrics_addr = match &metrics {
            Some((l, _)) => Some(l.local_addr()?),
            None => None,
        };
        // With a separate listener, the main one does not serve /metrics.
        let main_token = if metrics.is_some() { None } else { token };
        let router = build_router(state, settings.settings.max_body_bytes, portal, main_token);
        let listener = TcpListener::bind(settings.settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.settings.listen))?;
        let addr = listener.local_addr()?;
        let shutdown_grace = Duration::from_secs(settings.settings.shutdown_grace_secs);
        let iot_streams = settings.settings.iot_streams;
        Ok(Self { listener, router, core, addr, metrics, metrics_addr, shutdown_grace, iot_streams })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the separate metrics listener, when `metrics_addr` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Serve until `shutdown` resolves, then refuse new connections (the listener is closed at
    /// once), let in-flight requests finish for up to `shutdown_grace_secs`, and close the
    /// store. Requests still running when the grace period ends are dropped: an upload cut
    /// off that way never committed (one upload, one commit), and its ingest record is left
    /// for the ingest recovery to settle.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let store = self.core.store().clone();
        let core = self.core.clone();
        // Catch the search index up with catalog changes made elsewhere (other nodes, the CLI).
        let follower = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                core.sync_search().await;
                // Fold recorded latencies into their buckets: without a scrape of /metrics the
                // recorder would keep every observation.
                telemetry::prometheus().run_upkeep();
            }
        });
        let notices = self.core.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(e) = store.delete_expired_sessions(chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "expired-session sweep failed");
                }
                match notices.sweep_notices(chrono::Utc::now()).await {
                    Ok((o, e)) if o + e > 0 => tracing::info!(overdue = o, expiring = e, "notices sent"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "notice sweep failed"),
                }
                match notices.sweep_quality(chrono::Utc::now()).await {
                    Ok((s, l)) if s + l > 0 => tracing::info!(due_soon = s, overdue = l, "update reminders sent"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "quality sweep failed"),
                }
            }
        });
        // Tables with many small files (streams, small appends): compacted every 10 minutes.
        let compactor = self.core.clone();
        let compaction = tokio::spawn(async move {
            let mut tick = tokio::time::interval(citydata_core::compaction::COMPACT_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                match compactor.compact_lake(citydata_core::compaction::MIN_SMALL_FILES).await {
                    Ok((t, f)) if t > 0 => tracing::info!(tables = t, files = f, "tables compacted"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "compaction sweep failed"),
                }
                // Shared tables (Delta Sharing) whose file URLs have all expired.
                match compactor.sweep_shared_tables(chrono::Utc::now()).await {
                    Ok(n) if n > 0 => tracing::info!(tables = n, "shared tables removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "shared table sweep failed"),
                }
            }
        });
        // Interrupted ingests of any node: settled once their lease has ended.
        let leases = self.core.clone();
        let settler = tokio::spawn(async move {
            let mut tick = tokio::time::interval((leases.ingest_lease() / 2).max(Duration::from_millis(200)));
            loop {
                tick.tick().await;
                if let Err(e) = leases.settle_stale_ingests(false).await {
                    tracing::warn!(error = %e, "settling interrupted ingests failed");
                }
            }
        });
        // Collection sources: scheduled and queued runs, leases of runs whose node died.
        let sources = self.core.spawn_source_runner();
        // Webhook deliveries: woken when this node queues one, polling every second for
        // retries and for deliveries queued by other nodes.
        let hooks = self.core.clone();
        let metrics = self.metrics.map(|(l, r)| {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(l, r).await {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            })
        });
        let dispatcher = tokio::spawn(async move {
            let client = match hooks.webhook_client() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "webhook deliveries disabled");
                    return;
                }
            };
            let wake = hooks.webhook_wakeup();
            loop {
                match hooks.dispatch_webhooks(&client).await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "webhook dispatch failed"),
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        });
        // MQTT streams: start a consumer for each free enabled stream, every 2 s.
        let streams = self.iot_streams.then(|| {
            let core = self.core.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(e) = core.supervise_streams().await {
                        tracing::warn!(error = %e, "supervising MQTT streams failed");
                    }
                    if let Err(e) = core.sweep_offline_devices(chrono::Utc::now()).await {
                        tracing::warn!(error = %e, "detecting offline devices failed");
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            })
        });
        let (signalled_tx, mut signalled) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            let _ = signalled_tx.send(true);
        };
        let serve = axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown);
        let grace = self.shutdown_grace;
        let grace_over = async move {
            // Only once the signal came: then the drain has `grace` to finish.
            if signalled.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            r = serve => r,
            () = grace_over => {
                tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over: requests still in flight are dropped");
                Ok(())
            }
        };
        sweeper.abort();
        settler.abort();
        compaction.abort();
        sources.abort();
        dispatcher.abort();
        if let Some(s) = streams {
            s.abort();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.core.stop_streams()).await;
        }
        if let Some(m) = metrics {
            m.abort();
        }
        follower.abort();
        // Sign the head, so that removing the last entries after shutdown is detected.
        // Both need the database, which may be the reason for the shutdown: bounded waits.
        match tokio::time::timeout(Duration::from_secs(10), self.core.checkpoint_audit()).await {
            Ok(Err(e)) => tracing::error!(error = %e, "signing the audit checkpoint at shutdown failed"),
            Err(_) => tracing::error!("signing the audit checkpoint at shutdown timed out"),
            Ok(Ok(_)) => {}
        }
        // `close` waits for every pooled connection; requests dropped at the end of the grace
        // period may still hold some.
        if tokio::time::timeout(Duration::from_secs(5), self.core.store().close()).await.is_err() {
            tracing::warn!("closing the store timed out");
        }
        result.context("server error")
    }
}

/// A future that resolves on SIGINT (Ctrl-C) or SIGTERM.
///
/// On Unix the handlers are installed when this is called, not when the future is first polled: call it
/// before binding the listener, so that a signal sent as soon as the port answers (a supervisor
/// stopping a server that just started) is a graceful shutdown and not the default action, which
/// kills the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (int, term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(int) => {},
                _ = wait(term) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}

/// Open (or create, or rebuild when damaged) the catalog search index.
pub fn open_search_index(dir: &std::path::Path) -> anyhow::Result<(citydata_search::CatalogIndex, bool)> {
    citydata_search::CatalogIndex::open(dir).with_context(|| {
        format!(
            "cannot open the search index in {} (is another citydata process using this data directory?)",
            dir.display()
        )
    })
}
