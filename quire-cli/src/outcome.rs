//! How a sub-command ends: its exit code and what it prints. Every command prints its result
//! as lines for people, or with `--json` as one JSON object on standard output for scripts
//! (on failure too: `{"error": ..., "exit_code": ...}`); progress and logs go to standard
//! error either way.
//!
//! Exit codes: 0 done; 1 failed (an I/O, database or network error); 2 the command line or
//! configuration is wrong (clap uses 2 as well); 3 refused, to protect data (a non-empty
//! target, a backup of a newer schema); 4 `quire check` found problems.

use serde_json::json;

/// A failure with its own exit code; anything else exits 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The arguments or the configuration cannot work.
    #[error("{0}")]
    Invalid(String),
    /// Doing it would lose or mix up data.
    #[error("{0}")]
    Refused(String),
    /// `quire check` found problems (already printed).
    #[error("{0} problem(s) found")]
    Problems(usize),
}

/// The exit code of a failed command.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<Failure>() {
        Some(Failure::Invalid(_)) => 2,
        Some(Failure::Refused(_)) => 3,
        Some(Failure::Problems(_)) => 4,
        None => 1,
    }
}

/// Prints a failed command's error: always on standard error, and with `--json` also as an
/// object on standard output.
pub fn report_failure(error: &anyhow::Error, json: bool) {
    eprintln!("quire: {error:#}");
    // `quire check` printed its findings (the JSON result) already.
    let printed = matches!(error.downcast_ref::<Failure>(), Some(Failure::Problems(_)));
    if json && !printed {
        println!(
            "{}",
            json!({ "error": format!("{error:#}"), "exit_code": exit_code(error) })
        );
    }
}

/// Prints a command's result: `value` as JSON with `--json`, otherwise `human`'s lines.
pub fn print(json: bool, value: &serde_json::Value, human: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        let text = human();
        if !text.is_empty() {
            println!("{}", text.trim_end());
        }
    }
}
