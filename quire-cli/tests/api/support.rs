//! The test harness: a real quire server on a port-0 listener over a fresh SQLite file, and a
//! client that speaks to it over real HTTP. `TestApp::start()` gives a server; helpers make
//! users and articles the way a client would.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use quire_cli::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Settings for tests: a database in `dir`, cheap password hashing.
pub fn test_settings(dir: &Path) -> Settings {
    let mut settings = Settings::defaults();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.database = format!("sqlite://{}", dir.join("quire.db").display());
    settings.argon2_memory_kib = 1024;
    settings.argon2_iterations = 1;
    settings.password_hash_concurrency = 4;
    // Tests send many requests from one address; the limits have tests of their own.
    settings.rate_limit_ip = 0;
    settings.rate_limit_user = 0;
    settings.rate_limit_auth = 0;
    settings
}

/// A running server and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    dir: Option<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap()).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = test_settings(dir.path());
        edit(&mut settings);
        Self::start_with_settings(dir, settings).await
    }

    /// Starts a server on the database in `dir` (kept when the server stops).
    pub async fn start_in(dir: TempDir) -> Self {
        let settings = test_settings(dir.path());
        Self::start_with_settings(dir, settings).await
    }

    async fn start_with_settings(dir: TempDir, settings: Settings) -> Self {
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

    /// Shuts the server down gracefully and hands back its data directory.
    pub async fn stop(mut self) -> TempDir {
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
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
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

/// Runs the real `quire` binary on a database in `dir` (cheap password hashing, JSON logs),
/// with `extra` flags, and waits until it logs its address.
pub async fn spawn_quire(dir: &Path, extra: &[&str]) -> QuireProcess {
    spawn_quire_with_env(dir, extra, &[]).await
}

/// [`spawn_quire`] with extra environment variables.
pub async fn spawn_quire_with_env(
    dir: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> QuireProcess {
    start_quire(Command::new(env!("CARGO_BIN_EXE_quire")), dir, extra, env).await
}

/// [`spawn_quire`] serving on `socket`, inherited as systemd's socket activation passes it
/// (descriptor 3, `LISTEN_FDS=1`).
pub async fn spawn_quire_on(
    socket: &std::net::TcpListener,
    dir: &Path,
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
    dir: &Path,
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
        ])
        .args(extra)
        .arg("--database")
        .arg(format!("sqlite://{}", dir.join("quire.db").display()))
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
