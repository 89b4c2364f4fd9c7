//! `quire-bench report`: turns the suite's JSON results (one line per load run, written by
//! `scripts/bench.sh`) into BENCHMARKS.md, judging each scenario against its goal.
//! Figures are only ever copied from the results, never typed in.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::summary::Summary;

/// Options of `quire-bench report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// JSON lines: `{"scenario", "target", "goal", "command", "result"}` per load run.
    #[arg(long)]
    pub results: PathBuf,
    /// CPU model of the machine.
    #[arg(long)]
    pub cpu: String,
    #[arg(long)]
    pub cores: u32,
    #[arg(long)]
    pub date: String,
    #[arg(long)]
    pub commit: String,
    /// The data set, in words.
    #[arg(long)]
    pub dataset: String,
    /// How the servers and the client were placed and started, in words.
    #[arg(long)]
    pub setup: String,
}

/// One load run of the suite.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub scenario: String,
    pub target: Server,
    pub goal: Goal,
    pub command: String,
    pub result: Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Server {
    Quire,
    Hello,
}

/// What a scenario must achieve.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// quire's server CPU per request at most this many times hello's.
    CpuRatioAtMost(f64),
    /// quire at its largest connection count: no errors, and at least this share of its
    /// throughput at the smallest connection count.
    ConnectionsThroughputAtLeast(f64),
}

/// A goal's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The measured figure compared with the goal (a ratio).
    pub figure: Option<f64>,
    pub met: bool,
    pub goal: String,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.results)
        .with_context(|| format!("reading {}", args.results.display()))?;
    let records = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line).with_context(|| format!("results line {}", n + 1))
        })
        .collect::<anyhow::Result<Vec<Record>>>()?;
    if records.is_empty() {
        bail!("{} holds no results", args.results.display());
    }
    print!("{}", render(&args, &records));
    Ok(())
}

/// Scenarios in the order they were run, each with its records.
fn scenarios(records: &[Record]) -> Vec<(&str, Vec<&Record>)> {
    let mut out: Vec<(&str, Vec<&Record>)> = Vec::new();
    for record in records {
        match out.iter_mut().find(|(name, _)| *name == record.scenario) {
            Some((_, list)) => list.push(record),
            None => out.push((&record.scenario, vec![record])),
        }
    }
    out
}

fn first(records: &[&Record], server: Server) -> Option<Summary> {
    records
        .iter()
        .find(|r| r.target == server)
        .map(|r| r.result.clone())
}

fn cpu_per_request(summary: &Summary) -> Option<f64> {
    summary.server_cpu.and_then(|cpu| cpu.us_per_request)
}

/// Judges one scenario's records against its goal.
pub fn judge(goal: Goal, records: &[&Record]) -> Verdict {
    match goal {
        Goal::CpuRatioAtMost(max) => {
            let quire = first(records, Server::Quire);
            let hello = first(records, Server::Hello);
            let figure = quire
                .as_ref()
                .and_then(cpu_per_request)
                .zip(hello.as_ref().and_then(cpu_per_request))
                .map(|(q, h)| q / h);
            // A peer that failed requests is no yardstick: both sides must be clean.
            let clean_run = |s: &Option<Summary>| {
                s.as_ref()
                    .is_some_and(|s| s.errors.total() == 0 && s.responses > 0)
            };
            let clean = clean_run(&quire) && clean_run(&hello);
            Verdict {
                figure,
                met: clean && figure.is_some_and(|f| f <= max),
                goal: format!("≤ {max}× hello CPU/req, no errors on either server"),
            }
        }
        Goal::ConnectionsThroughputAtLeast(min) => {
            let quire: Vec<&Summary> = records
                .iter()
                .filter(|r| r.target == Server::Quire)
                .map(|r| &r.result)
                .collect();
            let few = quire.iter().min_by_key(|s| s.connections);
            let many = quire.iter().max_by_key(|s| s.connections);
            // Every run of the scenario, the peer's included, must be free of errors.
            let all_clean = records.iter().all(|r| r.result.errors.total() == 0);
            let (figure, clean) = match (few, many) {
                (Some(few), Some(many)) if few.connections < many.connections => {
                    ((few.rps > 0.0).then(|| many.rps / few.rps), all_clean)
                }
                _ => (None, false),
            };
            Verdict {
                figure,
                met: clean && figure.is_some_and(|f| f >= min),
                goal: format!(
                    "no errors, throughput ≥ {:.0}% of the fewest connections'",
                    min * 100.0
                ),
            }
        }
    }
}

fn render(args: &ReportArgs, records: &[Record]) -> String {
    let mut md = String::new();
    let scenarios = scenarios(records);
    let _ = writeln!(md, "# quire benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `bash scripts/bench.sh` from measured results: do not edit by hand, \
         run it again.\n"
    );
    let _ = writeln!(md, "- **Machine**: {}, {} cores", args.cpu, args.cores);
    let _ = writeln!(md, "- **Date**: {}", args.date);
    let _ = writeln!(md, "- **Commit**: `{}`", args.commit);
    let _ = writeln!(md, "- **Command**: `bash scripts/bench.sh`");
    let _ = writeln!(md, "- **Data set**: {}", args.dataset);
    let _ = writeln!(md, "- **Set-up**: {}", args.setup);
    let _ = writeln!(
        md,
        "\nThe primary figure is the **server's CPU time per request** (its utime + stime from \
         `/proc/PID/stat` over the measured window, divided by the responses in that window), \
         compared with `quire-bench hello`, a bare hyper server measured in the same run on \
         the same core with the same client: the ratio says what quire costs on top of the \
         HTTP stack, and stays stable on a noisy machine where req/s and latency do not. \
         Latencies are from the client (closed loop: each connection sends again when \
         answered), in microseconds.\n"
    );

    let _ = writeln!(md, "## Goals\n");
    let _ = writeln!(
        md,
        "| scenario | quire req/s | p50 µs | p99 µs | quire CPU µs/req | hello CPU µs/req | ratio | goal | met |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|---|");
    for (name, list) in &scenarios {
        let goal = list[0].goal;
        let verdict = judge(goal, list);
        let quire = first(list, Server::Quire);
        let hello = first(list, Server::Hello);
        let figure = match (goal, verdict.figure) {
            (_, None) => "n/a".to_owned(),
            (Goal::CpuRatioAtMost(_), Some(f)) => format!("{f:.2}×"),
            (Goal::ConnectionsThroughputAtLeast(_), Some(f)) => format!("{:.0}%", f * 100.0),
        };
        let (rps, p50, p99, cpu) = match (goal, &quire) {
            // The connection scenario's headline is its largest connection count.
            (Goal::ConnectionsThroughputAtLeast(_), _) => {
                let many = list
                    .iter()
                    .filter(|r| r.target == Server::Quire)
                    .max_by_key(|r| r.result.connections)
                    .map(|r| &r.result);
                row_figures(many)
            }
            (_, quire) => row_figures(quire.as_ref()),
        };
        let hello_cpu = match goal {
            Goal::CpuRatioAtMost(_) => fmt_opt(hello.as_ref().and_then(cpu_per_request)),
            Goal::ConnectionsThroughputAtLeast(_) => "—".to_owned(),
        };
        let _ = writeln!(
            md,
            "| {name} | {rps} | {p50} | {p99} | {cpu} | {hello_cpu} | {figure} | {} | {} |",
            verdict.goal,
            if verdict.met { "met" } else { "**not met**" }
        );
    }

    let _ = writeln!(md, "\n## Every run\n");
    let _ = writeln!(
        md,
        "| scenario | server | conns | req/s | p50 | p90 | p99 | p99.9 | max | errors | server CPU µs/req | server cores | client cores |"
    );
    let _ = writeln!(
        md,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
    );
    for record in records {
        let s = &record.result;
        let l = &s.latency_us;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |",
            record.scenario,
            match record.target {
                Server::Quire => "quire",
                Server::Hello => "hello",
            },
            s.connections,
            s.rps,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            s.errors,
            fmt_opt(cpu_per_request(s)),
            s.server_cpu
                .map_or_else(|| "n/a".to_owned(), |c| format!("{:.2}", c.cores)),
            s.client_cpu.cores
        );
    }

    let _ = writeln!(md, "\n## Commands\n");
    let _ = writeln!(
        md,
        "Exactly as run by the script (`$TOKEN` is user1's JWT from `POST /api/users/login`; \
         `$QUIRE_PID`/`$HELLO_PID` the servers' process ids).\n"
    );
    let _ = writeln!(md, "```sh");
    for record in records {
        let _ = writeln!(md, "{}", record.command);
    }
    let _ = writeln!(md, "```");
    md
}

fn row_figures(summary: Option<&Summary>) -> (String, String, String, String) {
    match summary {
        Some(s) => (
            format!("{:.0}", s.rps),
            s.latency_us.p50.to_string(),
            s.latency_us.p99.to_string(),
            fmt_opt(cpu_per_request(s)),
        ),
        None => Default::default(),
    }
}

fn fmt_opt(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{CpuCost, Errors, Latency};
    use std::time::Duration;

    fn record(
        scenario: &str,
        target: Server,
        goal: Goal,
        conns: usize,
        rps: f64,
        cpu_us: f64,
    ) -> Record {
        let responses = (rps * 10.0) as u64;
        Record {
            scenario: scenario.to_owned(),
            target,
            goal,
            command: format!("quire-bench load --connections {conns}"),
            result: Summary {
                url: "http://127.0.0.1:1/".to_owned(),
                method: "GET".to_owned(),
                connections: conns,
                rate: None,
                duration_s: 10.0,
                warmup_s: 2.0,
                responses,
                rps,
                latency_us: Latency::default(),
                errors: Errors::default(),
                server_cpu: Some(CpuCost::new(
                    Duration::from_secs_f64(cpu_us * responses as f64 / 1e6),
                    Duration::from_secs(10),
                    responses,
                )),
                client_cpu: CpuCost::new(Duration::ZERO, Duration::from_secs(10), responses),
            },
        }
    }

    #[test]
    fn cpu_ratio_goal() {
        let goal = Goal::CpuRatioAtMost(2.0);
        let q = record("a", Server::Quire, goal, 100, 1000.0, 30.0);
        let h = record("a", Server::Hello, goal, 100, 5000.0, 20.0);
        let verdict = judge(goal, &[&q, &h]);
        assert!((verdict.figure.unwrap() - 1.5).abs() < 0.01);
        assert!(verdict.met);

        let slow = record("a", Server::Quire, goal, 100, 1000.0, 50.0);
        assert!(!judge(goal, &[&slow, &h]).met);
        // Without the peer there is nothing to compare with.
        assert!(!judge(goal, &[&q]).met);
    }

    #[test]
    fn errors_fail_a_cpu_goal_however_cheap() {
        let goal = Goal::CpuRatioAtMost(2.0);
        let mut q = record("a", Server::Quire, goal, 100, 1000.0, 10.0);
        q.result.errors.status_5xx = 1;
        let h = record("a", Server::Hello, goal, 100, 5000.0, 20.0);
        assert!(!judge(goal, &[&q, &h]).met);
        // Nor may the peer fail: its figure would not be a fair yardstick.
        let q = record("a", Server::Quire, goal, 100, 1000.0, 10.0);
        let mut h = record("a", Server::Hello, goal, 100, 5000.0, 20.0);
        h.result.errors.io = 1;
        assert!(!judge(goal, &[&q, &h]).met);
    }

    #[test]
    fn connections_goal_compares_fewest_and_most() {
        let goal = Goal::ConnectionsThroughputAtLeast(0.6);
        let few = record("c", Server::Quire, goal, 100, 1000.0, 30.0);
        let many = record("c", Server::Quire, goal, 10_000, 700.0, 30.0);
        let hello = record("c", Server::Hello, goal, 10_000, 10.0, 30.0);
        let verdict = judge(goal, &[&few, &many, &hello]);
        assert!((verdict.figure.unwrap() - 0.7).abs() < 1e-9);
        assert!(verdict.met);

        let mut failing = many.clone();
        failing.result.errors.connect = 3;
        assert!(!judge(goal, &[&few, &failing]).met);
        let slow = record("c", Server::Quire, goal, 10_000, 500.0, 30.0);
        assert!(!judge(goal, &[&few, &slow]).met);
        let mut failing_peer = hello.clone();
        failing_peer.result.errors.timeout = 1;
        assert!(!judge(goal, &[&few, &many, &failing_peer]).met);
    }

    #[test]
    fn renders_every_scenario_and_command() {
        let goal = Goal::CpuRatioAtMost(1.5);
        let records = vec![
            record("tags", Server::Quire, goal, 100, 1000.0, 30.0),
            record("tags", Server::Hello, goal, 100, 5000.0, 20.0),
        ];
        let args = ReportArgs {
            results: PathBuf::new(),
            cpu: "Some CPU".to_owned(),
            cores: 2,
            date: "2026-01-01".to_owned(),
            commit: "abc".to_owned(),
            dataset: "small".to_owned(),
            setup: "pinned".to_owned(),
        };
        let md = render(&args, &records);
        assert!(md.contains("| tags | 1000 |"));
        assert!(md.contains("| 1.50× | ≤ 1.5× hello CPU/req, no errors on either server | met |"));
        assert!(md.contains("Some CPU, 2 cores"));
        assert_eq!(md.matches("quire-bench load --connections 100").count(), 2);
    }
}
