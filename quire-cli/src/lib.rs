//! The composition root of the `quire` binary: turns [`Settings`] into backends, the `App`,
//! the router and the engine, and runs the sub-commands. `main.rs` stays thin so that tests
//! can run a whole server on a port-0 listener with [`serve`].

mod archive;
pub mod backup;
pub mod check;
mod cluster;
mod config;
pub mod copy;
pub mod export;
mod health_metrics;
pub mod import;
mod json_lines;
mod markdown_import;
mod media_archive;
pub mod media_copy;
mod open_files;
pub mod otlp;
pub mod outcome;
mod progress;
pub mod restore;
mod secret;
pub mod telemetry;
pub mod user;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use quire_app::{
    App, AppParts, CacheSettings, InProcessBus, PasswordHasher, PasswordHashing, TokenKeys,
};
use quire_cache::AuditSettings;
use quire_http::client_ip::TrustedProxies;
use quire_http::live::LiveConfig;
use quire_http::rate_limit::{Rate, RateLimitConfig, RateLimits};
use quire_http::sign_in_guard::SignInLimits;
use quire_http::web::WebConfig;
use quire_http::{AppState, HttpConfig};
use quire_media::{BlobStore, FsBlobStore, S3BlobStore, S3Settings};
use quire_serve::ServeConfig;
use quire_serve::listener::ListenOptions;
use quire_serve::tls::{Tls, TlsFiles};
use quire_store::postgres::{PgOptions, ReplicaOptions};
use quire_store::sqlite::SqliteOptions;
use quire_store::{DatabaseUrl, StoreOptions};
use tokio::net::TcpListener;

pub use config::{
    BackupArgs, CacheMode, CheckArgs, Cli, Command, CopyArgs, ExportArgs, ImportArgs, LogFormat,
    MediaCommand, MediaCopyArgs, RestoreArgs, Settings, UserCommand,
};

/// How often a serving instance looks for changes `quire user` made (disabled accounts...).
const ADMIN_WATCH_PERIOD: std::time::Duration = std::time::Duration::from_millis(500);

fn store_options(settings: &Settings) -> StoreOptions {
    StoreOptions {
        sqlite: SqliteOptions {
            readers: settings.sqlite_readers,
            queue_depth: settings.store_queue_depth,
        },
        postgres: PgOptions {
            pool_size: settings.pg_pool_size as usize,
            acquire_timeout: settings.pg_acquire_timeout,
            idle_timeout: settings.pg_idle_timeout,
            max_lifetime: settings.pg_max_lifetime,
            statement_timeout: settings.pg_statement_timeout,
        },
        replicas: settings.database_replicas.clone(),
        replica: ReplicaOptions {
            max_lag: settings.replica_max_lag,
        },
    }
}

/// Opens the store the settings name (creating and migrating it).
async fn open_store(
    settings: &Settings,
) -> anyhow::Result<(DatabaseUrl, Arc<dyn quire_store::Store>)> {
    let url = DatabaseUrl::parse(&settings.database)?;
    let store = quire_store::open(&url, store_options(settings))
        .await
        .with_context(|| format!("cannot open database {url}"))?;
    Ok((url, store))
}

async fn token_secret(settings: &Settings, url: &DatabaseUrl) -> anyhow::Result<Vec<u8>> {
    match (&settings.jwt_secret, url) {
        (Some(secret), _) => secret::given(secret),
        (None, DatabaseUrl::Sqlite(path)) => {
            // File I/O stays off the async worker threads.
            let path = secret::secret_path(path);
            tokio::task::spawn_blocking(move || secret::load_or_create(&path)).await?
        }
        (None, DatabaseUrl::Postgres(db)) => {
            // Kept in the database, so every instance sharing it signs with the same key.
            let stored = quire_store::postgres::shared_secret(
                db,
                &store_options(settings).postgres,
                secret::TOKEN_SECRET_NAME,
                &secret::generate(),
            )
            .await
            .with_context(|| format!("cannot read the token secret from {url}"))?;
            secret::stored(&stored)
        }
    }
}

fn rate_limits(settings: &Settings) -> anyhow::Result<RateLimitConfig> {
    Ok(RateLimitConfig {
        per_ip: Rate::per_second(settings.rate_limit_ip, settings.rate_limit_ip_burst),
        per_user: Rate::per_second(settings.rate_limit_user, settings.rate_limit_user_burst),
        auth: Rate::per_minute(settings.rate_limit_auth, settings.rate_limit_auth_burst),
        sign_in: SignInLimits {
            per_account: settings.sign_in_failures,
            per_ip: settings.sign_in_failures_ip,
            window: settings.sign_in_failure_window,
        },
        trusted_proxies: TrustedProxies::parse(&settings.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?,
    })
}

/// The TLS acceptor when `--tls-cert`/`--tls-key` are given; SIGHUP reloads the pair.
async fn tls(settings: &Settings) -> anyhow::Result<Option<Tls>> {
    let (Some(cert), Some(key)) = (settings.tls_cert.clone(), settings.tls_key.clone()) else {
        return Ok(None);
    };
    let http2 = settings.http2;
    let files = TlsFiles { cert, key };
    // Reading the files is blocking I/O.
    let tls = tokio::task::spawn_blocking(move || Tls::new(files, http2))
        .await?
        .context("cannot load the TLS certificate")?;
    let reloader = tls.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot watch SIGHUP; the certificate will not be reloaded");
            return;
        };
        while hangups.recv().await.is_some() {
            match reloader.reload().await {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the old one")
                }
            }
        }
    });
    Ok(Some(tls))
}

/// The connection ceiling: `--max-connections`, or what the open-files limit (raised to the
/// hard limit first) holds.
fn connection_ceiling(settings: &Settings) -> usize {
    let raised = open_files::raise();
    let ceiling = settings
        .max_connections
        .unwrap_or_else(|| raised.map_or(10_000, |(_, now, _)| open_files::connection_budget(now)));
    match raised {
        Some((before, now, hard)) => tracing::info!(
            open_files_before = before,
            open_files = now,
            open_files_hard = hard,
            max_connections = ceiling,
            "open-files limit"
        ),
        None => tracing::warn!(
            max_connections = ceiling,
            "cannot read the open-files limit"
        ),
    }
    ceiling
}

/// `quire migrate`: brings the database schema up to date and returns.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let (url, _store) = open_store(settings).await?;
    tracing::info!(database = %url, "database is up to date");
    Ok(())
}

/// Serves on `listener` until `shutdown` resolves, then drains and returns.
pub async fn serve(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (url, store) = open_store(&settings).await?;
    let tokens = TokenKeys::new(&token_secret(&settings, &url).await?, settings.token_ttl);
    let passwords = PasswordHasher::new(PasswordHashing {
        memory_kib: settings.argon2_memory_kib,
        iterations: settings.argon2_iterations,
        concurrency: settings.password_hash_concurrency,
        queue: settings.password_hash_queue,
    })?;
    let media_dir = media_dir(&settings, &url);
    let blobs: Arc<dyn BlobStore> = match &settings.media_store {
        None => Arc::new(
            FsBlobStore::open(&media_dir)
                .await
                .with_context(|| format!("cannot open media directory {}", media_dir.display()))?,
        ),
        Some(url) => Arc::new(open_bucket(&settings, url).await?),
    };
    let local_events = Arc::new(InProcessBus::new(
        settings.live_lag_limit,
        settings.live_backlog,
    ));
    let cluster = cluster::Cluster::join(&settings, local_events).await?;
    let cache_on = match settings.cache {
        CacheMode::On => true,
        CacheMode::Off => false,
        CacheMode::Auto => {
            let shared = matches!(url, DatabaseUrl::Postgres(_)) && settings.redis.is_none();
            if shared {
                tracing::info!(
                    "read cache off: PostgreSQL without --redis (give --cache on if this is the only instance)"
                );
            }
            !shared
        }
    };
    let app = Arc::new(App::new(AppParts {
        store,
        tokens,
        passwords,
        blobs,
        events: cluster.events.clone(),
        max_media_bytes: settings.max_media_bytes,
        cache: CacheSettings {
            article_bytes: settings.cache_mib.saturating_mul(1024 * 1024),
            enabled: cache_on,
            audit: AuditSettings {
                sample: settings.cache_audit_sample,
                grace: settings.cache_audit_grace,
                ..AuditSettings::default()
            },
            ..CacheSettings::default()
        },
        coherence: cluster.coherence.clone(),
    }));
    cluster.start(&app);
    let admin_watch = app.spawn_admin_watch(ADMIN_WATCH_PERIOD);
    let max_connections = connection_ceiling(&settings);
    let live = LiveConfig {
        ping_interval: settings.live_ping_interval,
        send_timeout: settings.live_send_timeout,
        max_message_bytes: settings.live_max_message_bytes,
        max_connections: settings.live_max_connections.unwrap_or(max_connections),
        max_per_ip: settings.live_max_per_ip,
    };
    let rate_limits_config = rate_limits(&settings)?;
    let state = AppState::new(
        app,
        live,
        RateLimits::with_shared(rate_limits_config.clone(), cluster.buckets.clone()),
        WebConfig {
            secure_cookies: settings.tls_cert.is_some()
                || settings
                    .public_url
                    .as_deref()
                    .is_some_and(|url| url.starts_with("https://")),
            public_url: settings.public_url.clone(),
        },
    );
    state.rate_limits.spawn_housekeeping();
    quire_http::metrics::recorder();
    quire_http::metrics::spawn_lag_probe();
    quire_http::metrics::spawn_upkeep();
    telemetry::spawn_dropped_lines_reporter();
    let health_gauges = health_metrics::spawn(
        state.clone(),
        &url,
        settings.media_store.is_none().then(|| media_dir.clone()),
    );
    if settings.otlp_endpoint.is_some() {
        otlp::register_metrics();
    }
    let router = quire_http::router(
        state.clone(),
        &HttpConfig {
            max_body_bytes: settings.max_body_bytes,
            cors_origins: settings.cors_origins.clone(),
            request_timeout: settings.request_timeout,
            body_read_timeout: settings.body_read_timeout,
            export_traces: settings.otlp_endpoint.is_some(),
        },
    );
    let engine = ServeConfig {
        header_read_timeout: settings.header_read_timeout,
        max_header_bytes: usize::try_from(settings.max_header_bytes).unwrap_or(usize::MAX),
        keep_alive: settings.keep_alive,
        write_stall_timeout: settings.write_stall_timeout,
        http2: settings.http2,
        max_connections,
        max_connections_per_ip: settings.max_connections_per_ip,
        per_ip_exempt: rate_limits_config.trusted_proxies.networks().to_vec(),
        shutdown_grace: settings.shutdown_grace,
        drain_linger: settings.drain_linger,
        tls: tls(&settings).await?,
    };
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        tls = engine.tls.is_some(),
        store = %url,
        version = env!("CARGO_PKG_VERSION"),
        "quire listening"
    );
    let draining = state.draining.clone();
    let shutdown = async move {
        shutdown.await;
        quire_serve::systemd::stopping();
        draining.start();
        tracing::info!("shutting down");
    };
    quire_serve::systemd::ready();
    if let Some(period) = quire_serve::systemd::spawn_watchdog() {
        tracing::info!(?period, "systemd watchdog pings enabled");
    }
    let grace = engine.shutdown_grace;
    quire_serve::serve(listener, router, engine, shutdown).await;
    health_gauges.stop().await;
    admin_watch.abort();
    let _ = admin_watch.await;
    // WebSocket sessions outlive their HTTP connection's tracking; they were told to close
    // with 1001 when draining began.
    state.sessions.close();
    if tokio::time::timeout(grace, state.sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!("live sessions still open after the grace period");
    }
    tracing::info!("quire stopped");
    Ok(())
}

/// `quire serve`: binds `--listen` and serves until SIGTERM or SIGINT.
pub async fn serve_until_signal(settings: Settings) -> anyhow::Result<()> {
    let options = ListenOptions {
        address: settings.listen,
        backlog: settings.listen_backlog,
        reuse_port: settings.reuse_port,
    };
    let (listener, inherited) = quire_serve::listener::listen(options)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    if inherited {
        tracing::info!("serving on the listening socket passed in LISTEN_FDS");
    }
    serve(settings, listener, shutdown_signal()).await
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops quire");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// How old a temporary object in the bucket must be before a starting instance deletes it as
/// a crash's leftover (younger ones may be uploads another instance is finishing).
const BUCKET_LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The media directory of the database at `url`: --media-dir, or `media` beside the SQLite
/// file (in the working directory with PostgreSQL).
fn media_dir(settings: &Settings, url: &DatabaseUrl) -> std::path::PathBuf {
    match (&settings.media_dir, url) {
        (Some(dir), _) => dir.clone(),
        (None, DatabaseUrl::Sqlite(path)) => path
            .parent()
            .map_or_else(|| "media".into(), |dir| dir.join("media")),
        (None, DatabaseUrl::Postgres(_)) => "media".into(),
    }
}

/// The media store quire serves from with `settings`, opened without removing anything (the
/// sub-commands use it while quire may be serving). `create`: make a missing directory.
pub(crate) async fn attach_media(
    settings: &Settings,
    url: &DatabaseUrl,
) -> anyhow::Result<Arc<dyn BlobStore>> {
    if let Some(bucket) = &settings.media_store {
        return Ok(Arc::new(connect_bucket(settings, bucket).await?));
    }
    let dir = media_dir(settings, url);
    let store = FsBlobStore::attach(&dir)
        .await
        .with_context(|| format!("cannot open media directory {}", dir.display()))?;
    Ok(Arc::new(store))
}

/// The media bucket `url` names (`s3://bucket[/prefix]`), checked reachable, with the
/// temporary objects of uploads a crash interrupted removed.
async fn open_bucket(settings: &Settings, url: &str) -> anyhow::Result<S3BlobStore> {
    let store = connect_bucket(settings, url).await?;
    match store.clean_leftovers(BUCKET_LEFTOVER_AGE).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed the leftovers of interrupted uploads"),
        Err(error) => tracing::warn!(error = %error, "could not list leftover uploads"),
    }
    Ok(store)
}

/// The media bucket `url` names (`s3://bucket[/prefix]`), checked reachable.
async fn connect_bucket(settings: &Settings, url: &str) -> anyhow::Result<S3BlobStore> {
    let (bucket, prefix) = parse_bucket_url(url)?;
    let region = settings
        .s3_region
        .clone()
        .or_else(aws_region)
        .unwrap_or_else(|| "us-east-1".to_owned());
    let bucket_settings = S3Settings {
        bucket: bucket.clone(),
        prefix,
        endpoint: settings.s3_endpoint.clone(),
        region,
        access_key_id: settings.s3_access_key_id.clone(),
        secret_access_key: settings.s3_secret_access_key.clone(),
        path_style: settings.s3_path_style,
        part_size: settings.s3_part_mib.saturating_mul(1024 * 1024),
        timeout: settings.s3_timeout,
        upload_buffer: usize::try_from(settings.s3_upload_buffer_mib.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
    };
    let store = S3BlobStore::new(&bucket_settings).context("cannot use --media-store")?;
    store
        .check()
        .await
        .with_context(|| format!("cannot reach the media bucket {bucket}"))?;
    tracing::info!(%bucket, "media in an S3 bucket");
    Ok(store)
}

/// The standard AWS_REGION (read here, beside the other AWS_* settings object_store reads).
fn aws_region() -> Option<String> {
    #[allow(clippy::disallowed_methods)]
    std::env::var("AWS_REGION").ok()
}

/// `s3://bucket` or `s3://bucket/some/prefix` -> (bucket, "" or "some/prefix/").
fn parse_bucket_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .with_context(|| format!("--media-store must be s3://bucket[/prefix], not {url}"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    anyhow::ensure!(
        !bucket.is_empty(),
        "--media-store must name a bucket: s3://bucket[/prefix]"
    );
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Ok((bucket.to_owned(), prefix))
}
