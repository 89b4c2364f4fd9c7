//! The command line: sub-commands and every setting, each with its environment variable
//! (flags win over the environment). This is the only place quire reads the environment.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// What `quire --help` opens with.
const ABOUT: &str = "quire: a blog platform in one binary. It serves the RealWorld (\"Conduit\") API, \
live updates, media and the blog's own web pages, on a SQLite file by default or, for many \
instances, on PostgreSQL and Redis.";

/// The commands, an example each.
const EXAMPLES: &str = "Examples:
  quire                                             serve on 127.0.0.1:8080 with ./quire.db
  quire serve --listen 0.0.0.0:8080 --database postgres://quire@db/quire --redis redis://cache
  quire migrate --database postgres://quire@db/quire     apply schema migrations and exit
  quire copy --from sqlite://quire.db --to postgres://quire@db/quire
  quire media copy --from ./media --to s3://my-blog-media --s3-region eu-west-1
  quire backup --to backup.tar.gz --with-media            online backup while serving
  quire restore --from backup.tar.gz --with-media         into an empty database
  quire export --to blog.tar.gz                           a portable archive of the blog
  quire import --from blog.tar.gz                         all or nothing, idempotent
  echo \"$PASSWORD\" | quire user create --username ada --email ada@example.com
  quire user disable ada                                  its tokens stop working at once
  quire check --fix                                       integrity; removes orphaned blobs
  (add --json to any command for one JSON object on standard output)

Every flag can also be set through its QUIRE_* environment variable; `quire <command> --help`
explains each.";

/// quire: a RealWorld ("Conduit") blog backend in one binary.
#[derive(Debug, Parser)]
#[command(name = "quire", version, about = ABOUT, long_about = None, after_help = EXAMPLES, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the API (the default when no sub-command is given).
    Serve,
    /// Apply schema migrations to the database and exit.
    Migrate,
    /// Copy every row of one database into another (e.g. SQLite to PostgreSQL), all or
    /// nothing, verified by row count and checksum per table. Stop quire on both first.
    Copy(CopyArgs),
    /// Media blobs: `quire media copy --from media --to s3://bucket` moves them between the
    /// filesystem and a bucket.
    #[command(subcommand)]
    Media(MediaCommand),
    /// Take an online, consistent backup of the SQLite database while quire serves: the
    /// database, its token secret and (--with-media) its media blobs, in one archive whose
    /// manifest `quire restore` checks. For PostgreSQL, use pg_dump (README, Operations).
    Backup(BackupArgs),
    /// Restore a `quire backup` archive into an empty database (or, with --replace, over a
    /// non-empty one; stop quire first), after checking its manifest: SHA-256, integrity,
    /// row counts, schema version. Restores into PostgreSQL too.
    Restore(RestoreArgs),
    /// Export the whole blog (every row, and media unless --no-media) as a portable,
    /// versioned archive that any quire imports, on SQLite or PostgreSQL; consistent while
    /// quire serves. Format: docs/export-format.md.
    Export(ExportArgs),
    /// Import a `quire export` archive, all or nothing; importing the same archive again
    /// changes nothing. A database holding other data is refused unless --replace. Or import
    /// a folder of Markdown files with front matter as articles (re-runs skip what is there).
    Import(ImportArgs),
    /// Manage accounts on the database quire serves from, safe while it serves: list,
    /// create, set-password, disable/enable (tokens stop working within half a second on
    /// every instance), delete. Passwords are read from standard input.
    #[command(subcommand)]
    User(UserCommand),
    /// Check the installation without changing it: configuration (trusted proxies, TLS
    /// files, token secret), migrations, database integrity and counters, media blobs missing
    /// or named by no row (--fix removes those). Exit 0 when sound, 4 when problems are found.
    Check(CheckArgs),
}

/// What `quire check` may do.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Remove media blobs that no media row names (each seen unnamed twice, --fix-after apart).
    #[arg(long)]
    pub fix: bool,
    /// How long a blob must stay unnamed before --fix removes it, e.g. 60s.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub fix_after: Duration,
}

/// What `quire user` does.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Every account: id, username, email, articles, comments, state.
    List,
    /// Create an account (`echo "$PASSWORD" | quire user create --username ada --email ada@example.com`).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
    /// Set a user's password (the first line of standard input).
    SetPassword {
        /// Username or email.
        user: String,
    },
    /// Disable an account: it cannot sign in and its tokens are refused; its content stays.
    Disable {
        /// Username or email.
        user: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// Username or email.
        user: String,
    },
    /// Delete an account with its articles, comments and media (or give them to another user
    /// with --reassign-to); follows and favorites go. Needs --yes.
    Delete {
        /// Username or email.
        user: String,
        /// Give the user's articles, comments and media to this user instead of deleting them.
        #[arg(long)]
        reassign_to: Option<String>,
        /// Do it (without it, says what would be deleted and exits 3).
        #[arg(long)]
        yes: bool,
    },
}

/// What `quire export` writes.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The archive to write (a new file; `.gz` at the end compresses it).
    #[arg(long)]
    pub to: std::path::PathBuf,
    /// Leave the media blobs out (their rows are still exported).
    #[arg(long)]
    pub no_media: bool,
}

/// What `quire import` reads.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// A `quire export` archive, or a folder of Markdown files with front matter (title,
    /// description, tags, date, author, draft) to import as articles.
    #[arg(long)]
    pub from: std::path::PathBuf,
    /// Empty the database first (inside the import's transaction; archives only).
    #[arg(long)]
    pub replace: bool,
    /// Markdown folders: the username of files whose front matter names no author.
    #[arg(long)]
    pub author: Option<String>,
}

/// What `quire backup` writes.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// The archive to write (a new file; `.gz` at the end compresses it).
    #[arg(long)]
    pub to: std::path::PathBuf,
    /// Include every media blob the database names (read from --media-dir or
    /// --media-store), each verified by its SHA-256.
    #[arg(long)]
    pub with_media: bool,
}

/// What `quire restore` reads.
#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// The archive `quire backup` wrote.
    #[arg(long)]
    pub from: std::path::PathBuf,
    /// Overwrite a database that holds rows (its token secret too).
    #[arg(long)]
    pub replace: bool,
    /// Also put the backup's media blobs into --media-dir or --media-store.
    #[arg(long)]
    pub with_media: bool,
}

/// What `quire media` does.
#[derive(Debug, Clone, Subcommand)]
pub enum MediaCommand {
    /// Copy every media blob from one store to another, streaming, each verified by its
    /// SHA-256; blobs the target already holds are skipped, so a second run copies only what
    /// was uploaded since. Safe while quire serves on either store; switch `--media-store`
    /// once a run copies nothing new. S3 stores are reached with the --s3-* flags.
    Copy(MediaCopyArgs),
}

/// What `quire media copy` copies where.
#[derive(Debug, Clone, clap::Args)]
pub struct MediaCopyArgs {
    /// Where the blobs are: a media directory (what --media-dir names) or s3://bucket[/prefix].
    #[arg(long)]
    pub from: String,
    /// Where they go: a media directory (created if missing) or s3://bucket[/prefix].
    #[arg(long)]
    pub to: String,
    /// Blobs copied at a time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

/// What `quire copy` copies where.
#[derive(Debug, Clone, clap::Args)]
pub struct CopyArgs {
    /// The database to read: `sqlite://PATH` or `postgres://...` (migrated first if older).
    #[arg(long)]
    pub from: String,
    /// The database to write: created and migrated as needed; must be empty unless --replace.
    #[arg(long)]
    pub to: String,
    /// Delete what the target holds first (inside the same all-or-nothing transaction).
    #[arg(long)]
    pub replace: bool,
    /// Rows read and written at a time.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Whether the read cache is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheMode {
    Auto,
    On,
    Off,
}

/// Every setting of `quire serve` (and the database of `quire migrate`).
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Sub-commands: print the result as one JSON object on standard output (errors too),
    /// for scripts; progress and logs stay on standard error.
    #[arg(long, global = true)]
    pub json: bool,

    /// Address to listen on; port 0 picks a free port (the bound address is logged).
    #[arg(
        long,
        env = "QUIRE_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key); reloaded with the
    /// key on SIGHUP without dropping connections.
    #[arg(long, env = "QUIRE_TLS_CERT", requires = "tls_key", global = true)]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "QUIRE_TLS_KEY", requires = "tls_cert", global = true)]
    pub tls_key: Option<std::path::PathBuf>,

    /// Database URL: sqlite://PATH (created and migrated on start), or postgres://... (the
    /// database must exist; it is migrated on start) for instances sharing one database.
    #[arg(
        long,
        env = "QUIRE_DATABASE_URL",
        default_value = "sqlite://quire.db",
        global = true
    )]
    pub database: String,

    /// A streaming replica of the PostgreSQL --database that may serve reads (repeatable, or
    /// comma-separated in the environment). Reads go to a replica only once it has replayed
    /// every write this instance acknowledged; one that is down or lags is skipped.
    #[arg(
        long = "database-replica",
        env = "QUIRE_DATABASE_REPLICAS",
        value_delimiter = ',',
        global = true
    )]
    pub database_replicas: Vec<String>,

    /// A replica whose replay is behind what the primary had written this long ago is
    /// skipped until it catches up, e.g. 1s.
    #[arg(long, env = "QUIRE_REPLICA_MAX_LAG", default_value = "1s", value_parser = humantime::parse_duration, global = true)]
    pub replica_max_lag: Duration,

    /// Directory for uploaded media; default `media` beside the SQLite file (`media` in the
    /// working directory with PostgreSQL: give instances sharing a database a shared one).
    #[arg(long, env = "QUIRE_MEDIA_DIR", global = true)]
    pub media_dir: Option<std::path::PathBuf>,

    /// Where media bytes live: the filesystem under --media-dir (default), or an
    /// S3-compatible bucket, `s3://bucket` or `s3://bucket/prefix` (see the --s3-* flags and
    /// the standard AWS_* environment).
    #[arg(long, env = "QUIRE_MEDIA_STORE", global = true)]
    pub media_store: Option<String>,

    /// The S3 API's endpoint, for anything but AWS itself (e.g. https://ACCOUNT.r2.cloudflarestorage.com,
    /// http://127.0.0.1:9000); AWS's regional endpoint when not given.
    #[arg(long, env = "QUIRE_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,

    /// The bucket's region (AWS_REGION, else us-east-1, when not given; `auto` for R2).
    #[arg(long, env = "QUIRE_S3_REGION", global = true)]
    pub s3_region: Option<String>,

    /// Access key id (AWS_ACCESS_KEY_ID when not given).
    #[arg(long, env = "QUIRE_S3_ACCESS_KEY_ID", global = true)]
    pub s3_access_key_id: Option<String>,

    /// Secret access key (AWS_SECRET_ACCESS_KEY when not given).
    #[arg(
        long,
        env = "QUIRE_S3_SECRET_ACCESS_KEY",
        hide_env_values = true,
        global = true
    )]
    pub s3_secret_access_key: Option<String>,

    /// Path-style URLs (endpoint/bucket/key), which MinIO, Garage and most self-hosted servers
    /// need; `false` for virtual-hosted style (bucket.endpoint/key).
    #[arg(long, env = "QUIRE_S3_PATH_STYLE", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub s3_path_style: bool,

    /// Size of each part of a multipart upload, in MiB (at least 5): at most two parts of an
    /// upload are in memory at once.
    #[arg(long, env = "QUIRE_S3_PART_MIB", default_value_t = 8, global = true)]
    pub s3_part_mib: usize,

    /// Longest any one request to the bucket may take.
    #[arg(long, env = "QUIRE_S3_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub s3_timeout: Duration,

    /// Memory for upload parts of all uploads together, in MiB: each part counts from its
    /// first byte until the bucket has it; past this, further uploads wait their turn.
    #[arg(long, env = "QUIRE_S3_UPLOAD_BUFFER_MIB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(5..), global = true)]
    pub s3_upload_buffer_mib: u64,

    /// The site's public address (e.g. https://blog.example.com) for canonical links, Atom
    /// feeds and the sitemap; an https:// address also marks the session cookie `Secure`
    /// (as serving TLS does). When not given, each request's `Host` is used.
    #[arg(long, env = "QUIRE_PUBLIC_URL", value_parser = public_url, global = true)]
    pub public_url: Option<String>,

    /// Largest media upload accepted, in bytes; larger ones get 413 as soon as it is known.
    #[arg(long, env = "QUIRE_MAX_MEDIA_BYTES", default_value_t = 256 * 1024 * 1024, global = true)]
    pub max_media_bytes: u64,

    /// Secret that signs session tokens (at least 32 characters). When not given, one is
    /// generated once and kept: with SQLite in a 0600 file beside the database
    /// (`<db>.jwt-secret`), with PostgreSQL in the database itself (shared by every
    /// instance), so restarts keep users signed in.
    #[arg(long, env = "QUIRE_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,

    /// How long a session token stays valid, e.g. 30d, 12h.
    #[arg(long, env = "QUIRE_TOKEN_TTL", default_value = "30d", value_parser = humantime::parse_duration, global = true)]
    pub token_ttl: Duration,

    /// Log format; defaults to pretty on a terminal, json otherwise. Verbosity: RUST_LOG.
    #[arg(long, env = "QUIRE_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,

    /// Export traces (W3C trace context; OTLP over HTTP with protobuf) to this collector,
    /// e.g. http://127.0.0.1:4318 (`/v1/traces` is added unless the URL ends with it). Off
    /// when not given; incoming `traceparent` ids reach the logs either way.
    #[arg(long, env = "QUIRE_OTLP_ENDPOINT", value_parser = otlp_endpoint, global = true)]
    pub otlp_endpoint: Option<String>,

    /// The `service.name` of exported spans.
    #[arg(
        long,
        env = "QUIRE_OTLP_SERVICE_NAME",
        default_value = "quire",
        global = true
    )]
    pub otlp_service_name: String,

    /// Fraction of the traces quire starts that are exported (0 to 1); a request whose
    /// `traceparent` carries the caller's decision follows it.
    #[arg(long, env = "QUIRE_OTLP_SAMPLE_RATIO", default_value_t = 1.0, value_parser = audit_fraction, global = true)]
    pub otlp_sample_ratio: f64,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "QUIRE_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// Browser origins allowed to call the API (CORS), comma-separated, e.g.
    /// `https://blog.example.com`; `*` allows any origin; empty (the default) allows none.
    #[arg(long, env = "QUIRE_CORS_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_origins: Vec<String>,

    /// Requests per second allowed from one client IP (0 turns the limit off); past it, 429.
    #[arg(
        long,
        env = "QUIRE_RATE_LIMIT_IP",
        default_value_t = 100,
        global = true
    )]
    pub rate_limit_ip: u32,

    /// Requests one client IP may send at once on top of its rate.
    #[arg(
        long,
        env = "QUIRE_RATE_LIMIT_IP_BURST",
        default_value_t = 200,
        global = true
    )]
    pub rate_limit_ip_burst: u32,

    /// Requests per second allowed for one signed-in user, whatever its IP (0: off).
    #[arg(
        long,
        env = "QUIRE_RATE_LIMIT_USER",
        default_value_t = 50,
        global = true
    )]
    pub rate_limit_user: u32,

    /// Requests one signed-in user may send at once on top of its rate.
    #[arg(
        long,
        env = "QUIRE_RATE_LIMIT_USER_BURST",
        default_value_t = 100,
        global = true
    )]
    pub rate_limit_user_burst: u32,

    /// Registrations per minute allowed from one client IP (0: off). Sign-ins are limited by
    /// their failures instead (--sign-in-failures).
    #[arg(
        long,
        env = "QUIRE_RATE_LIMIT_AUTH",
        default_value_t = 20,
        global = true
    )]
    pub rate_limit_auth: u32,

    /// Registrations one client IP may send at once.
    #[arg(
        long,
        env = "QUIRE_RATE_LIMIT_AUTH_BURST",
        default_value_t = 20,
        global = true
    )]
    pub rate_limit_auth_burst: u32,

    /// Failed sign-ins allowed per account within --sign-in-failure-window (0: off); past
    /// them, sign-ins for that account get 429 until the window ends.
    #[arg(
        long,
        env = "QUIRE_SIGN_IN_FAILURES",
        default_value_t = 10,
        global = true
    )]
    pub sign_in_failures: u32,

    /// Failed sign-ins allowed per client IP within --sign-in-failure-window (0: off).
    #[arg(
        long,
        env = "QUIRE_SIGN_IN_FAILURES_IP",
        default_value_t = 30,
        global = true
    )]
    pub sign_in_failures_ip: u32,

    /// The window failed sign-ins are counted in, e.g. 15m.
    #[arg(long, env = "QUIRE_SIGN_IN_FAILURE_WINDOW", default_value = "15m", value_parser = humantime::parse_duration, global = true)]
    pub sign_in_failure_window: Duration,

    /// Proxies (addresses or networks, comma-separated, e.g. `127.0.0.1,10.0.0.0/8`) whose
    /// `X-Forwarded-For` names the client; from anyone else the header is ignored. Set this
    /// behind a load balancer, or every client shares the balancer's limits.
    #[arg(
        long,
        env = "QUIRE_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxies: Vec<String>,

    /// Longest a request may take to be answered (media transfers and live connections are
    /// exempt); past it the client gets 503, e.g. 30s.
    #[arg(long, env = "QUIRE_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub request_timeout: Duration,

    /// Most client connections open at once; beyond it new ones wait in the listen backlog.
    /// Default: what the open-files limit holds (raised to the hard limit at start) less 512
    /// descriptors kept for the database, media and logs.
    #[arg(long, env = "QUIRE_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,

    /// Most connections open at once from one IP address (trusted proxies exempt); past
    /// it new connections from that address are answered 503 and closed.
    #[arg(
        long,
        env = "QUIRE_MAX_CONNECTIONS_PER_IP",
        default_value_t = 1_000,
        global = true
    )]
    pub max_connections_per_ip: usize,

    /// Pending connections the kernel may queue before quire accepts them (the system's
    /// `net.core.somaxconn` caps it).
    #[arg(
        long,
        env = "QUIRE_LISTEN_BACKLOG",
        default_value_t = 4096,
        global = true
    )]
    pub listen_backlog: u32,

    /// Bind `--listen` with SO_REUSEPORT, so a new quire can start on the same address
    /// before the old one stops (zero-downtime restarts; see the README). Ignored when a
    /// listening socket is inherited through LISTEN_FDS.
    #[arg(long, env = "QUIRE_REUSE_PORT", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub reuse_port: bool,

    /// Longest a client may take to send request headers, e.g. 10s; also how long an idle
    /// HTTP/1.1 keep-alive connection stays open waiting for its next request.
    #[arg(long, env = "QUIRE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub header_read_timeout: Duration,

    /// Largest request head (request line and headers) in bytes, at least 8192; larger ones get
    /// 431. Also what an HTTP/1.1 connection buffers while it reads, uploads included.
    #[arg(long, env = "QUIRE_MAX_HEADER_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u64).range(8192..=16 * 1024 * 1024), global = true)]
    pub max_header_bytes: u64,

    /// Longest a request body (an upload included) may send nothing; past it the request
    /// fails (400 for uploads) and the connection closes, e.g. 30s.
    #[arg(long, env = "QUIRE_BODY_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub body_read_timeout: Duration,

    /// Longest quire's writes may stay blocked because a client stopped reading (a stalled
    /// download); past it the connection is closed, e.g. 30s.
    #[arg(long, env = "QUIRE_WRITE_STALL_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub write_stall_timeout: Duration,

    /// Keep HTTP/1.1 connections open between requests.
    #[arg(long, env = "QUIRE_KEEP_ALIVE", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub keep_alive: bool,

    /// Accept HTTP/2 over cleartext (h2c, prior knowledge) beside HTTP/1.1.
    #[arg(long, env = "QUIRE_HTTP2", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub http2: bool,

    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish, e.g. 10s.
    #[arg(long, env = "QUIRE_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_grace: Duration,

    /// While draining, how long connections are still served (each HTTP/1.1 answer then
    /// closes its connection, so clients leave cleanly) before idle ones are closed, e.g. 1s.
    #[arg(long, env = "QUIRE_DRAIN_LINGER", default_value = "1s", value_parser = humantime::parse_duration, global = true)]
    pub drain_linger: Duration,

    /// How often live connections are pinged; a client that misses two pongs is closed.
    #[arg(long, env = "QUIRE_LIVE_PING_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub live_ping_interval: Duration,

    /// Longest a live send may wait on a client that does not read before it is closed.
    #[arg(long, env = "QUIRE_LIVE_SEND_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub live_send_timeout: Duration,

    /// Live connections (WebSocket and SSE) at most; beyond it upgrades get 503. Default:
    /// the connection ceiling (--max-connections).
    #[arg(long, env = "QUIRE_LIVE_MAX_CONNECTIONS", global = true)]
    pub live_max_connections: Option<usize>,

    /// Live connections at most from one client IP.
    #[arg(
        long,
        env = "QUIRE_LIVE_MAX_PER_IP",
        default_value_t = 1_000,
        global = true
    )]
    pub live_max_per_ip: usize,

    /// Largest message a live client may send, in bytes.
    #[arg(
        long,
        env = "QUIRE_LIVE_MAX_MESSAGE_BYTES",
        default_value_t = 4096,
        global = true
    )]
    pub live_max_message_bytes: usize,

    /// Events a live client may fall behind before it is closed as too slow (1008).
    #[arg(
        long,
        env = "QUIRE_LIVE_LAG_LIMIT",
        default_value_t = 1024,
        global = true
    )]
    pub live_lag_limit: usize,

    /// Recent events kept so SSE clients can resume with Last-Event-ID.
    #[arg(
        long,
        env = "QUIRE_LIVE_BACKLOG",
        default_value_t = 1024,
        global = true
    )]
    pub live_backlog: usize,

    /// The in-process read cache. `auto`: on, except on PostgreSQL without --redis (where
    /// other instances could write without telling this one); `on` there declares this the
    /// only instance; `off` sends every read to the database.
    #[arg(long, env = "QUIRE_CACHE", value_enum, default_value_t = CacheMode::Auto, global = true)]
    pub cache: CacheMode,

    /// Redis, for running many instances as one: exact caches across instances, live events
    /// reaching every instance's subscribers (e.g. redis://127.0.0.1:6379/0).
    #[arg(long, env = "QUIRE_REDIS_URL", global = true)]
    pub redis: Option<String>,

    /// Prefix of every Redis key quire uses (deployments sharing one Redis need different ones).
    #[arg(
        long,
        env = "QUIRE_REDIS_PREFIX",
        default_value = "quire:",
        global = true
    )]
    pub redis_prefix: String,

    /// Fault drills only: wait this long before applying each batch of invalidations from
    /// other instances, making this instance a slow follower (default 0).
    #[arg(long, env = "QUIRE_REDIS_APPLY_DELAY", default_value = "0s", value_parser = humantime::parse_duration, hide = true, global = true)]
    pub redis_apply_delay: Duration,

    /// Fraction of cache hits re-read from the database in the background and compared with
    /// what was served; differences that outlive the grace period are counted in
    /// `cache_audits_total{result="mismatch"}` and logged with the key (0 turns it off).
    #[arg(long, env = "QUIRE_CACHE_AUDIT_SAMPLE", default_value_t = 0.001, value_parser = audit_fraction, global = true)]
    pub cache_audit_sample: f64,

    /// How long a difference found by a cache audit must last to count as a mismatch (longer
    /// than a write takes to reach every instance and than a replica may lag).
    #[arg(long, env = "QUIRE_CACHE_AUDIT_GRACE", default_value = "3s", value_parser = humantime::parse_duration, global = true)]
    pub cache_audit_grace: Duration,

    /// Memory for cached article text, in MiB (profiles, slugs and list pages come on top).
    #[arg(long, env = "QUIRE_CACHE_MIB", default_value_t = 128, global = true)]
    pub cache_mib: u64,

    /// SQLite reader threads, each with its own connection.
    #[arg(long, env = "QUIRE_SQLITE_READERS", default_value_t = 4, global = true)]
    pub sqlite_readers: usize,

    /// Store jobs that may queue before requests are shed with 503.
    #[arg(
        long,
        env = "QUIRE_STORE_QUEUE_DEPTH",
        default_value_t = 1024,
        global = true
    )]
    pub store_queue_depth: usize,

    /// PostgreSQL: connections in the pool at most.
    #[arg(long, env = "QUIRE_PG_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub pg_pool_size: u32,

    /// PostgreSQL: longest a request waits for a pooled connection (or a new one); past
    /// it the request gets 503 with Retry-After, e.g. 2s.
    #[arg(long, env = "QUIRE_PG_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub pg_acquire_timeout: Duration,

    /// PostgreSQL: an idle pooled connection unused this long is closed, e.g. 10m.
    #[arg(long, env = "QUIRE_PG_IDLE_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration, global = true)]
    pub pg_idle_timeout: Duration,

    /// PostgreSQL: a pooled connection older than this is closed once idle, e.g. 30m.
    #[arg(long, env = "QUIRE_PG_MAX_LIFETIME", default_value = "30m", value_parser = humantime::parse_duration, global = true)]
    pub pg_max_lifetime: Duration,

    /// PostgreSQL: longest one SQL statement may run before the server cancels it (the
    /// request then gets 503), e.g. 10s.
    #[arg(long, env = "QUIRE_PG_STATEMENT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub pg_statement_timeout: Duration,

    /// Password hashes computed at once (each uses one core for tens of milliseconds).
    #[arg(
        long,
        env = "QUIRE_PASSWORD_HASH_CONCURRENCY",
        default_value_t = 2,
        global = true
    )]
    pub password_hash_concurrency: usize,

    /// Requests allowed to wait for a password-hashing turn; past it sign-ins and
    /// registrations are answered 503 with Retry-After at once.
    #[arg(
        long,
        env = "QUIRE_PASSWORD_HASH_QUEUE",
        default_value_t = 256,
        global = true
    )]
    pub password_hash_queue: usize,

    /// argon2id memory cost in KiB (OWASP: 19456).
    #[arg(long, env = "QUIRE_ARGON2_MEMORY_KIB", default_value_t = 19 * 1024, global = true)]
    pub argon2_memory_kib: u32,

    /// argon2id passes (OWASP: 2).
    #[arg(
        long,
        env = "QUIRE_ARGON2_ITERATIONS",
        default_value_t = 2,
        global = true
    )]
    pub argon2_iterations: u32,
}

impl Settings {
    /// The settings with every default, as `quire serve` with no flags and no environment.
    pub fn defaults() -> Self {
        Cli::parse_from(["quire"]).settings
    }
}

/// An http:// or https:// origin, without a trailing slash.
fn public_url(raw: &str) -> Result<String, String> {
    let url = raw.trim_end_matches('/');
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if host.is_empty() || host.contains(['/', '?', '#', ' ', '"', '<', '>']) {
        return Err("must be an origin such as https://blog.example.com (no path)".to_owned());
    }
    Ok(url.to_owned())
}

impl Settings {
    /// What trace export is to do, if `--otlp-endpoint` asks for it.
    pub fn otlp(&self) -> Option<crate::otlp::OtlpSettings> {
        Some(crate::otlp::OtlpSettings {
            endpoint: self.otlp_endpoint.clone()?,
            service_name: self.otlp_service_name.clone(),
            sample_ratio: self.otlp_sample_ratio,
        })
    }
}

/// An `http://` or `https://` URL, completed with the OTLP traces path `/v1/traces`.
fn otlp_endpoint(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{raw:?} is not an http:// or https:// URL"));
    }
    let raw = raw.trim_end_matches('/');
    Ok(
        if url.path().trim_end_matches('/').ends_with("/v1/traces") {
            raw.to_owned()
        } else {
            format!("{raw}/v1/traces")
        },
    )
}

/// A fraction from 0 to 1.
fn audit_fraction(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{raw:?} is not a fraction from 0 to 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_work_before_and_after_the_subcommand() {
        let cli = Cli::parse_from([
            "quire",
            "--listen",
            "127.0.0.1:0",
            "serve",
            "--http2",
            "false",
        ]);
        assert!(matches!(cli.command, Some(Command::Serve)));
        assert_eq!(cli.settings.listen.port(), 0);
        assert!(!cli.settings.http2);
        let cli = Cli::parse_from(["quire", "migrate", "--database", "sqlite://x.db"]);
        assert_eq!(cli.settings.database, "sqlite://x.db");
    }

    #[test]
    fn otlp_endpoints_get_the_traces_path() {
        for (given, used) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example.com/v1/traces",
                "https://otel.example.com/v1/traces",
            ),
            ("http://gw/otlp", "http://gw/otlp/v1/traces"),
        ] {
            assert_eq!(otlp_endpoint(given).as_deref(), Ok(used), "{given}");
        }
        for wrong in [
            "127.0.0.1:4318",
            "ftp://x",
            "http://",
            "grpc://collector:4317",
        ] {
            assert!(otlp_endpoint(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn a_flag_given_twice_takes_the_last_value() {
        let cli = Cli::parse_from(["quire", "--rate-limit-ip", "0", "--rate-limit-ip", "5"]);
        assert_eq!(cli.settings.rate_limit_ip, 5);
    }
}
