//! The `quire` binary: parse the command line, set up logging, run the sub-command.
//! Everything testable lives in the library (`quire_cli`).

use clap::Parser;
use quire_cli::{Cli, Command, MediaCommand};

/// mimalloc: fewer CPU cycles per request than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let json = cli.settings.json;
    let serving = matches!(cli.command, None | Some(Command::Serve));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("quire: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Spans are exported through the runtime, so it comes first.
    let mut telemetry = match quire_cli::telemetry::init(
        cli.settings.log_format,
        !serving,
        cli.settings.otlp(),
        runtime.handle(),
    ) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("quire: cannot export traces: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => quire_cli::serve_until_signal(cli.settings).await,
            Command::Migrate => quire_cli::migrate(&cli.settings).await,
            Command::Copy(args) => quire_cli::copy::run(&args).await,
            Command::Media(MediaCommand::Copy(args)) => {
                quire_cli::media_copy::run(&cli.settings, &args).await
            }
            Command::Backup(args) => quire_cli::backup::run(&cli.settings, &args).await,
            Command::Restore(args) => quire_cli::restore::run(&cli.settings, &args).await,
            Command::Export(args) => quire_cli::export::run(&cli.settings, &args).await,
            Command::Import(args) => quire_cli::import::run(&cli.settings, &args).await,
            Command::User(command) => quire_cli::user::run(&cli.settings, &command).await,
            Command::Check(args) => quire_cli::check::run(&cli.settings, &args).await,
        }
    });
    runtime.block_on(telemetry.flush_traces());
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = format!("{e:#}"), "quire failed");
            quire_cli::outcome::report_failure(&e, json);
            std::process::ExitCode::from(quire_cli::outcome::exit_code(&e))
        }
    }
}
