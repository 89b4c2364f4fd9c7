//! A private PostgreSQL server for one test: `initdb` into a temporary directory, its own port
//! and socket directory, stopped and deleted when dropped. For tests that stop, restart or
//! replicate the server, which the shared server of the other tests must never be. A replica
//! is made the way an operator makes one: `pg_basebackup -R` from a running primary.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI does) its programs run
//! as the `postgres` user through `runuser`. The binaries come from the newest
//! `/usr/lib/postgresql/*/bin` (or `QUIRE_TEST_PG_BIN`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// One private server (a primary, or a streaming replica of one).
pub struct PgServer {
    data: PathBuf,
    /// Holds the data directory's parent; deleted on drop.
    _root: tempfile::TempDir,
    pub port: u16,
}

impl PgServer {
    /// A fresh primary, running, with `wal_level=replica` so replicas can be made from it.
    pub async fn primary() -> Self {
        let server = Self::empty();
        run_pg(&[
            "initdb",
            "--no-sync",
            "-A",
            "trust",
            "-U",
            "postgres",
            "-D",
            path(&server.data),
        ])
        .await;
        server.configure(&[
            "wal_level = replica",
            "max_wal_senders = 4",
            "hot_standby_feedback = on",
        ]);
        server.start().await;
        server
    }

    /// A streaming replica of `primary`, running and replaying.
    pub async fn replica_of(primary: &PgServer) -> Self {
        let server = Self::empty();
        let source = format!("host=127.0.0.1 port={} user=postgres", primary.port);
        run_pg(&[
            "pg_basebackup",
            "-d",
            &source,
            "-D",
            path(&server.data),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        ])
        .await;
        server.configure(&["hot_standby = on"]);
        server.start().await;
        server
    }

    fn empty() -> Self {
        let root = tempfile::Builder::new()
            .prefix("quire-pg-")
            .tempdir()
            .unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        hand_to_postgres(root.path());
        hand_to_postgres(&data);
        Self {
            data,
            _root: root,
            port: free_port(),
        }
    }

    /// Appends settings (and this server's port and socket directory) to its configuration.
    fn configure(&self, lines: &[&str]) {
        let mut config = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = on\n",
            self.port,
            self.data.display()
        );
        for line in lines {
            config.push_str(line);
            config.push('\n');
        }
        let file = self.data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&file).unwrap_or_default();
        text.push_str(&config);
        std::fs::write(&file, text).unwrap();
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&self) {
        let log = self.data.join("server.log");
        run_pg(&[
            "pg_ctl",
            "-D",
            path(&self.data),
            "-l",
            path(&log),
            "-w",
            "start",
        ])
        .await;
    }

    /// Stops the server the way an operator's restart does: clients are disconnected,
    /// transactions rolled back, the server shuts down cleanly.
    pub async fn stop(&self) {
        run_pg(&["pg_ctl", "-D", path(&self.data), "-m", "fast", "-w", "stop"]).await;
    }

    /// A connection to `database` on this server.
    pub async fn client(&self, database: &str) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("private server on {}: {e}", self.port));
        tokio::spawn(connection);
        client
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .args(["-D", path(&self.data), "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A port free right now on 127.0.0.1.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Whether the tests run as root (asked once).
fn running_as_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

/// A command running one of PostgreSQL's programs: as `postgres` through `runuser` when the
/// tests run as root, else directly.
fn pg_command(program: &str) -> std::process::Command {
    if running_as_root() {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin(program));
        command
    } else {
        std::process::Command::new(bin(program))
    }
}

/// Makes `dir` owned by `postgres` (mode 0700, as PostgreSQL requires of its data directory).
fn hand_to_postgres(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    if running_as_root() {
        let status = std::process::Command::new("chown")
            .args(["postgres:postgres", path(dir)])
            .status()
            .unwrap();
        assert!(status.success(), "chown postgres {}", dir.display());
    }
}

/// The directory of PostgreSQL's programs.
fn bin(program: &str) -> PathBuf {
    // The test harness's own knob, read here because tests have no clap layer.
    #[allow(clippy::disallowed_methods)]
    if let Ok(dir) = std::env::var("QUIRE_TEST_PG_BIN") {
        return Path::new(&dir).join(program);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's programs under /usr/lib/postgresql (or QUIRE_TEST_PG_BIN)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join(program).exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    versions
        .pop()
        .unwrap_or_else(|| panic!("no {program} under /usr/lib/postgresql/*/bin"))
        .join(program)
}

/// Runs one of PostgreSQL's programs as `postgres`, failing the test with its output if it
/// fails or takes longer than a minute.
async fn run_pg(args: &[&str]) {
    let (program, rest) = args.split_first().unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        Command::from(pg_command(program))
            .args(rest)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} took over a minute"))
    .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {rest:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
