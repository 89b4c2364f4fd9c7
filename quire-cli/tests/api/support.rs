//! The test harness: a real quire server on a port-0 listener over a fresh database of the
//! test's backend (a SQLite file, or a PostgreSQL database made for the test and dropped after
//! it), and a client that speaks to it over real HTTP. `TestApp::start()` gives a server;
//! helpers make users and articles the way a client would.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quire_cli::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The store a test runs on (see `api_test!` in `main.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    static BACKEND: Backend;
}

impl Backend {
    /// Runs a test body with this backend chosen for every database it makes.
    pub async fn run(self, test: impl Future<Output = ()>) {
        BACKEND.scope(self, test).await
    }

    /// The backend of the running test; SQLite for tests that are not `api_test!`s.
    pub fn current() -> Self {
        BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
    }
}

/// Where PostgreSQL tests create their databases (trust authentication assumed).
fn postgres_admin_url() -> String {
    // The test harness's own knob, read here because tests have no clap layer.
    #[allow(clippy::disallowed_methods)]
    std::env::var("QUIRE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned())
}

/// Prefix of every test database: `quire_t_<unix seconds>_<random>`.
const TEST_DB_PREFIX: &str = "quire_t_";

/// Test databases older than this are left over from a crashed run and dropped.
const STALE_AFTER: Duration = Duration::from_secs(3600);

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn admin_client(admin: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL does not answer at {admin}: {e}; the postgres tests need it \
                 (`bash .ci/run` starts it; QUIRE_TEST_POSTGRES_URL names another server)"
            )
        });
    tokio::spawn(connection);
    client
}

/// A fresh PostgreSQL database for one test, dropped (with its connections) when this is.
pub struct PgDatabase {
    name: String,
    admin: String,
    pub url: String,
}

impl PgDatabase {
    async fn create() -> Self {
        Self::create_on(postgres_admin_url()).await
    }

    /// A fresh database on the server `admin` connects to.
    async fn create_on(admin: String) -> Self {
        let client = admin_client(&admin).await;
        static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        SWEPT.get_or_init(|| drop_stale(&client)).await;
        let name = format!(
            "{TEST_DB_PREFIX}{}_{:08x}",
            unix_secs(),
            rand::random::<u32>()
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e:?}"));
        let (base, _) = admin
            .rsplit_once('/')
            .expect("QUIRE_TEST_POSTGRES_URL ends in /DATABASE");
        let url = format!("{base}/{name}");
        Self { name, admin, url }
    }
}

/// Drops test databases a crashed run left behind (best effort).
async fn drop_stale(client: &tokio_postgres::Client) {
    let Ok(rows) = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            &[&format!("{TEST_DB_PREFIX}%")],
        )
        .await
    else {
        return;
    };
    let cutoff = unix_secs().saturating_sub(STALE_AFTER.as_secs());
    for row in rows {
        let name: String = row.get(0);
        let born = name[TEST_DB_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|s| s.parse::<u64>().ok());
        if born.is_some_and(|born| born < cutoff) {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop cannot await, and may run on a runtime that is shutting down: drop the
        // database from a thread with a runtime of its own, and wait for it.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = dropping.join();
    }
}

/// The S3 API server PostgreSQL tests keep their media in (moto's server mode, which
/// `.ci/run` starts; QUIRE_TEST_S3_URL names another).
pub fn s3_endpoint() -> String {
    // The test harness's own knob, read here because tests have no clap layer.
    #[allow(clippy::disallowed_methods)]
    std::env::var("QUIRE_TEST_S3_URL").unwrap_or_else(|_| "http://127.0.0.1:5000".to_owned())
}

/// The `--s3-*` flags that reach the tests' S3 API server.
pub fn s3_flags() -> Vec<String> {
    [
        ("--s3-endpoint", s3_endpoint()),
        ("--s3-region", "us-east-1".to_owned()),
        ("--s3-access-key-id", "test".to_owned()),
        ("--s3-secret-access-key", "test".to_owned()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect()
}

/// A fresh bucket for one test on the S3 API server.
pub async fn create_bucket() -> String {
    let name = format!("quire-t-{:016x}", rand::random::<u64>());
    let endpoint = s3_endpoint();
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{name}"))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no S3 API server at {endpoint}: {e}; the postgres tests keep their media there \
                 (`bash .ci/run` starts moto's server; QUIRE_TEST_S3_URL names another)"
            )
        });
    assert!(
        response.status().is_success(),
        "creating bucket {name}: {}",
        response.status()
    );
    name
}

/// A test's data: a temporary directory (the SQLite file, media, TLS files) and, for
/// PostgreSQL tests, the test's database and the bucket its media go to (so every media
/// test runs once on the filesystem store and once on the S3 one). Kept across a server's
/// restarts.
pub struct TestDir {
    dir: TempDir,
    postgres: Option<PgDatabase>,
    bucket: Option<String>,
}

impl TestDir {
    /// A fresh directory, and a fresh database of the current test's backend.
    pub async fn new() -> Self {
        Self::new_for(Backend::current()).await
    }

    /// A fresh directory, and a fresh database of `backend`.
    pub async fn new_for(backend: Backend) -> Self {
        let (postgres, bucket) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => (
                Some(PgDatabase::create().await),
                Some(create_bucket().await),
            ),
        };
        Self {
            dir: tempfile::tempdir().unwrap(),
            postgres,
            bucket,
        }
    }

    /// A fresh directory, and a fresh database on the PostgreSQL server `admin` connects to
    /// (a test's private server).
    pub async fn new_on_server(admin: String) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            postgres: Some(PgDatabase::create_on(admin).await),
            bucket: Some(create_bucket().await),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `--database` URL.
    pub fn database_url(&self) -> String {
        match &self.postgres {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", self.path().join("quire.db").display()),
        }
    }

    /// `--database` and where media go: `--media-dir` in this directory, or, for PostgreSQL
    /// tests, the test's bucket (`--media-store` and the `--s3-*` flags).
    pub fn database_args(&self) -> Vec<String> {
        let mut args = vec![
            "--database".into(),
            self.database_url(),
            "--media-dir".into(),
            self.path().join("media").display().to_string(),
        ];
        if let Some(bucket) = &self.bucket {
            args.extend(["--media-store".to_owned(), format!("s3://{bucket}")]);
            args.extend(s3_flags());
        }
        args
    }

    /// Where this test's media live, as `quire media copy` names a store: the bucket
    /// (`s3://...`) or the media directory.
    pub fn media_store(&self) -> String {
        match &self.bucket {
            Some(bucket) => format!("s3://{bucket}"),
            None => self.path().join("media").display().to_string(),
        }
    }

    /// Sets the media flags of [`Self::database_args`] on `settings`.
    fn media_settings(&self, settings: &mut Settings) {
        settings.media_dir = Some(self.path().join("media"));
        if let Some(bucket) = &self.bucket {
            settings.media_store = Some(format!("s3://{bucket}"));
            settings.s3_endpoint = Some(s3_endpoint());
            settings.s3_region = Some("us-east-1".to_owned());
            settings.s3_access_key_id = Some("test".to_owned());
            settings.s3_secret_access_key = Some("test".to_owned());
        }
    }

    /// What the media store holds: (uploads staged or in progress, stored blobs). On the
    /// filesystem, files under `media/tmp` and `media/blobs`; in the bucket, objects under
    /// `tmp/` plus unfinished multipart uploads, and objects under `blobs/`.
    pub async fn media_objects(&self) -> (usize, usize) {
        let Some(bucket) = &self.bucket else {
            let count = |sub: &str| walk(&self.path().join("media").join(sub));
            return (count("tmp"), count("blobs"));
        };
        let client = reqwest::Client::new();
        let listing = |query: String| {
            let url = format!("{}/{bucket}?{query}", s3_endpoint());
            let client = client.clone();
            async move { client.get(url).send().await.unwrap().text().await.unwrap() }
        };
        let keys = |xml: &str| xml.matches("<Key>").count();
        let tmp = keys(&listing("list-type=2&prefix=tmp/".into()).await);
        let uploads = listing("uploads".into())
            .await
            .matches("<UploadId>")
            .count();
        let blobs = keys(&listing("list-type=2&prefix=blobs/".into()).await);
        (tmp + uploads, blobs)
    }

    /// A connection to this test's PostgreSQL database (panics on a SQLite test).
    pub async fn postgres(&self) -> tokio_postgres::Client {
        let db = self.postgres.as_ref().expect("a PostgreSQL test");
        admin_client(&db.url).await
    }

    /// Runs `sql` on this test's database, behind quire's back (to damage it on purpose).
    pub async fn execute(&self, sql: &str) {
        match &self.postgres {
            None => {
                let conn = rusqlite::Connection::open(self.path().join("quire.db")).unwrap();
                conn.busy_timeout(Duration::from_secs(5)).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Some(db) => admin_client(&db.url)
                .await
                .batch_execute(sql)
                .await
                .unwrap(),
        }
    }

    /// The generated token secret: the file beside the SQLite database, or the row in
    /// PostgreSQL's `secrets` table. Panics when none was kept.
    pub async fn token_secret(&self) -> String {
        match &self.postgres {
            None => std::fs::read_to_string(self.path().join("quire.db.jwt-secret"))
                .expect("the generated secret is kept beside the database")
                .trim()
                .to_owned(),
            Some(db) => admin_client(&db.url)
                .await
                .query_one("SELECT value FROM secrets WHERE name = 'token'", &[])
                .await
                .expect("the generated secret is kept in the database")
                .get(0),
        }
    }
}

/// Settings for tests: the database of `dir`, cheap password hashing.
pub fn test_settings(dir: &TestDir) -> Settings {
    let mut settings = Settings::defaults();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.database = dir.database_url();
    // One instance per test: the cache is on for PostgreSQL too (the default turns it off
    // there without Redis, in case other instances share the database).
    settings.cache = quire_cli::CacheMode::On;
    dir.media_settings(&mut settings);
    settings.argon2_memory_kib = 1024;
    settings.argon2_iterations = 1;
    settings.password_hash_concurrency = 4;
    // Tests send many requests from one address; the limits have tests of their own.
    settings.rate_limit_ip = 0;
    settings.rate_limit_user = 0;
    settings.rate_limit_auth = 0;
    settings.sign_in_failures = 0;
    settings.sign_in_failures_ip = 0;
    settings
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    let path = e.unwrap().path();
                    if path.is_dir() { walk(&path) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Registers `name` (password `password-1234`) on the quire at `base`; returns the token. For
/// servers run as processes, which have no `TestApp`.
pub async fn register_at(client: &reqwest::Client, base: &str, name: &str) -> String {
    let response = client
        .post(format!("{base}/api/users"))
        .json(
            &json!({"user": {"username": name, "email": format!("{name}@example.com"),
                               "password": "password-1234"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["user"]["token"].as_str().unwrap().to_owned()
}

/// Sends `method url` with an optional token and JSON body; the status and the body's bytes.
pub async fn send(
    client: &reqwest::Client,
    method: Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, bytes::Bytes) {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Token {token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.bytes().await.unwrap())
}

/// A running server and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    dir: Option<TestDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_in(TestDir::new().await).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Settings)) -> Self {
        let dir = TestDir::new().await;
        let mut settings = test_settings(&dir);
        edit(&mut settings);
        Self::start_with_settings(dir, settings).await
    }

    /// Starts a server on the database of `dir` (kept when the server stops).
    pub async fn start_in(dir: TestDir) -> Self {
        let settings = test_settings(&dir);
        Self::start_with_settings(dir, settings).await
    }

    /// A server on `dir` with `settings` (from [`test_settings`], then edited).
    pub async fn start_in_with(dir: TestDir, settings: Settings) -> Self {
        Self::start_with_settings(dir, settings).await
    }

    async fn start_with_settings(dir: TestDir, settings: Settings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(quire_cli::serve(settings, listener, async {
            let _ = rx.await;
        }));
        let app = Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            dir: Some(dir),
            shutdown: Some(tx),
            task: Some(task),
        };
        app.wait_ready().await;
        app
    }

    async fn wait_ready(&self) {
        // A client of its own that keeps no connection open, so tests start with every
        // connection slot free.
        let probe = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        for _ in 0..200 {
            if let Ok(r) = probe.get(self.url("/health/ready")).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server did not become ready");
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.as_ref().unwrap().path().to_owned()
    }

    /// The test's directory and database.
    pub fn test_dir(&self) -> &TestDir {
        self.dir.as_ref().unwrap()
    }

    /// Shuts the server down gracefully and hands back its data directory.
    pub async fn stop(mut self) -> TestDir {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        self.dir.take().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with an optional token and JSON body; returns status and JSON body
    /// (`Value::Null` when the body is empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, bytes) = send(&self.client, method, self.url(path), token, body).await;
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("non-JSON body ({e}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, json)
    }

    /// GETs `path` and returns the body as text (HTML pages, `/metrics`).
    pub async fn text(&self, path: &str) -> String {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        response.text().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, token, None).await
    }

    /// Registers `name` (email `name@example.com`, password `password-name`); returns the token.
    pub async fn register(&self, name: &str) -> String {
        let (status, body) = self
            .post(
                "/api/users",
                None,
                json!({"user": {"username": name, "email": format!("{name}@example.com"),
                                "password": format!("password-{name}")}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["user"]["token"].as_str().unwrap().to_owned()
    }

    /// Creates an article; returns its JSON.
    pub async fn create_article(&self, token: &str, title: &str, tags: &[&str]) -> Value {
        let (status, body) = self
            .post(
                "/api/articles",
                Some(token),
                json!({"article": {"title": title, "description": format!("about {title}"),
                                   "body": format!("all of {title}"), "tagList": tags}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["article"].clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts the RealWorld error body: `{"errors":{field:[...]}}` containing `field`.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, field: &str) {
    assert_eq!(status, expected, "{body}");
    let messages = body["errors"][field]
        .as_array()
        .unwrap_or_else(|| panic!("no errors.{field} in {body}"));
    assert!(!messages.is_empty(), "{body}");
    assert!(messages.iter().all(Value::is_string), "{body}");
}

/// Asserts `text` is RFC 3339 with milliseconds and `Z`, like `2026-11-22T03:19:13.000Z`.
pub fn assert_timestamp(text: &Value) {
    let text = text
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {text}"));
    let bytes = text.as_bytes();
    assert_eq!(bytes.len(), 24, "{text}");
    let shape = text
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect::<String>();
    assert_eq!(shape, "9999-99-99T99:99:99.999Z", "{text}");
}

/// GETs `url` and parses the answer as JSON, whatever its status.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// The sum of the metric lines of the server at `base` that start with `prefix` (0 if none).
pub async fn metric(client: &reqwest::Client, base: &str, prefix: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sends SIGTERM to `child` (a `quire` process), as systemd stops it.
pub async fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
}

/// A `quire` process and the address it logged.
pub struct QuireProcess {
    pub child: Child,
    /// `http://ADDRESS`
    pub base: String,
    /// `ADDRESS` (`127.0.0.1:PORT`)
    pub address: String,
    /// Every line it has logged so far (stdout).
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Runs the real `quire` binary on the database of `dir` (cheap password hashing, JSON logs),
/// with `extra` flags, and waits until it logs its address.
pub async fn spawn_quire(dir: &TestDir, extra: &[&str]) -> QuireProcess {
    spawn_quire_with_env(dir, extra, &[]).await
}

/// [`spawn_quire`] with extra environment variables.
pub async fn spawn_quire_with_env(
    dir: &TestDir,
    extra: &[&str],
    env: &[(&str, &str)],
) -> QuireProcess {
    start_quire(Command::new(env!("CARGO_BIN_EXE_quire")), dir, extra, env).await
}

/// [`spawn_quire`] serving on `socket`, inherited as systemd's socket activation passes it
/// (descriptor 3, `LISTEN_FDS=1`).
pub async fn spawn_quire_on(
    socket: &std::net::TcpListener,
    dir: &TestDir,
    extra: &[&str],
) -> QuireProcess {
    use command_fds::{CommandFdExt, FdMapping};
    let mut command = Command::new(env!("CARGO_BIN_EXE_quire"));
    command
        .fd_mappings(vec![FdMapping {
            parent_fd: socket.try_clone().unwrap().into(),
            child_fd: 3,
        }])
        .unwrap();
    start_quire(command, dir, extra, &[("LISTEN_FDS", "1")]).await
}

async fn start_quire(
    mut command: Command,
    dir: &TestDir,
    extra: &[&str],
    env: &[(&str, &str)],
) -> QuireProcess {
    let mut child = command
        .env("RUST_LOG", "warn,quire_cli=info")
        .envs(env.iter().copied())
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--argon2-memory-kib", "1024", "--argon2-iterations", "1"])
        .args([
            "--rate-limit-ip",
            "0",
            "--rate-limit-user",
            "0",
            "--rate-limit-auth",
            "0",
            "--sign-in-failures",
            "0",
            "--sign-in-failures-ip",
            "0",
        ])
        .args(extra)
        .args(dir.database_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn quire");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            logs.lock().unwrap().push(line.clone());
            let Ok(log) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if log["message"] == "quire listening" {
                return log["address"].as_str().unwrap().to_owned();
            }
        }
        panic!("quire exited before listening");
    })
    .await
    .expect("quire started");
    // Keep reading its output so the process never blocks on a full pipe.
    let kept = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().unwrap().push(line);
        }
    });
    QuireProcess {
        child,
        base: format!("http://{address}"),
        address,
        logs,
    }
}

/// Runs the real `quire <args> --json` (a sub-command) on `dir`'s database and media, as a
/// user would; its output.
pub async fn quire_json(dir: &TestDir, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quire"))
        .args(args)
        .args(["--json", "--log-format", "json"])
        .args(dir.database_args())
        .output()
        .await
        .unwrap()
}

/// The JSON object a `--json` sub-command printed.
pub fn stdout_json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
