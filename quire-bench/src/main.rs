//! quire-bench: the benchmark harness. A load generator (`load`), the bare hyper peer it is
//! compared with (`hello`), a fast data-set writer (`seed`) and the BENCHMARKS.md writer
//! (`report`); `scripts/bench.sh` runs them together.
//!
//! A client only: it depends on none of quire's crates and sees quire as any HTTP client does.

mod cluster_drill;
mod cpu;
mod crash_drill;
mod hello;
mod load;
mod media;
mod report;
mod restart_drill;
mod seed;
mod summary;
mod ws;
mod ws_peer;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "quire-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve `{"hello":"world"}` to every request: the bare-hyper peer.
    Hello {
        /// Address to serve on; port 0 picks one (printed on stdout's first line).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Load a loopback HTTP server and report throughput, latency, errors and CPU per request.
    Load(load::LoadArgs),
    /// Fill a migrated quire SQLite database with a realistic data set.
    Seed(seed::SeedArgs),
    /// Media scenarios: download vs nginx, upload vs an fsync'd copy, concurrency, aborts.
    Media(media::MediaArgs),
    /// Several instances on PostgreSQL and Redis under load while one is killed, Redis
    /// restarts and all restart in turn; fail on a stale read, a lost write or event.
    ClusterDrill(cluster_drill::ClusterDrillArgs),
    /// SIGKILL quire at random moments under writes; fail if an acknowledged write is lost.
    CrashDrill(crash_drill::CrashDrillArgs),
    /// Restart quire repeatedly on one inherited socket under load; fail on any error.
    RestartDrill(restart_drill::RestartDrillArgs),
    /// Write BENCHMARKS.md (on stdout) from the suite's JSON results.
    Report(report::ReportArgs),
    /// Open N idle WebSocket connections; report server memory per connection and fan-out.
    Ws(ws::WsArgs),
    /// Accept WebSocket upgrades on any path with axum's default settings: the ws peer.
    WsPeer {
        /// Address to serve on; port 0 picks one (printed on stdout's first line).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Hello { listen } => hello::run(listen),
        Command::Load(args) => load::run(args),
        Command::Seed(args) => seed::run(args),
        Command::Report(args) => report::run(args),
        Command::CrashDrill(args) => crash_drill::run(args),
        Command::ClusterDrill(args) => cluster_drill::run(args),
        Command::RestartDrill(args) => restart_drill::run(args),
        Command::Media(args) => media::run(args),
        Command::Ws(args) => ws::run(args),
        Command::WsPeer { listen } => ws_peer::run(listen),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quire-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
