//! `quire check`: is this installation sound? The configuration as `quire serve` would read it
//! (trusted proxies, TLS files, the token secret), the database (schema version, SQLite's
//! integrity and foreign keys, counters against rows), and the media store against the rows
//! (blobs missing, blobs no row names). Nothing is changed, except with `--fix`, which removes
//! orphaned blobs: those no row names, seen unnamed twice `--fix-after` apart (an upload names
//! its blob right after storing it, so a blob still unnamed then is not an upload in flight;
//! what remains is a race of milliseconds with a new upload of those very bytes, which would
//! name a blob being removed: run `--fix` when such a coincidence does not matter, or with
//! quire stopped).
//! Exit 0 when all is well, 4 when problems were found (listed), 1 when a check could not run.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;

use quire_store::DatabaseUrl;
use serde_json::json;

use crate::outcome::{Failure, print};
use crate::{CheckArgs, Settings};

/// One check's outcome.
struct Finding {
    check: &'static str,
    ok: bool,
    detail: String,
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            ok: true,
            detail: detail.into(),
        }
    }

    fn problem(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            ok: false,
            detail: detail.into(),
        }
    }
}

pub async fn run(settings: &Settings, args: &CheckArgs) -> anyhow::Result<()> {
    let mut findings = configuration(settings).await;
    let url = DatabaseUrl::parse(&settings.database)
        .map_err(|e| Failure::Invalid(format!("--database: {e}")))?;
    let mut orphans_removed = 0u64;
    match quire_store::check::check(&url).await {
        Err(error) => findings.push(Finding::problem("database", format!("{url}: {error}"))),
        Ok(report) => {
            findings.push(schema(report.schema_version, report.newest_schema_version));
            if report.problems.is_empty() {
                findings.push(Finding::ok(
                    "database integrity",
                    "integrity, foreign keys and counters agree with the rows",
                ));
            }
            for problem in &report.problems {
                findings.push(Finding::problem("database integrity", problem.clone()));
            }
            let (media, removed) = media(settings, &url, &report.blobs, args).await;
            findings.extend(media);
            orphans_removed = removed;
        }
    }
    let problems = findings.iter().filter(|f| !f.ok).count();
    print(
        settings.json,
        &json!({
            "ok": problems == 0,
            "problems": problems,
            "orphans_removed": orphans_removed,
            "checks": findings.iter().map(|f| json!({"check": f.check, "ok": f.ok, "detail": f.detail})).collect::<Vec<_>>(),
        }),
        || {
            let mut out = String::new();
            for f in &findings {
                out += &format!(
                    "{} {:<20} {}\n",
                    if f.ok { "ok     " } else { "PROBLEM" },
                    f.check,
                    f.detail
                );
            }
            out += &if problems == 0 {
                "all checks passed\n".to_owned()
            } else {
                format!("{problems} problem(s) found\n")
            };
            out
        },
    );
    if problems > 0 {
        return Err(Failure::Problems(problems).into());
    }
    Ok(())
}

/// The settings `quire serve` would refuse or regret.
async fn configuration(settings: &Settings) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.push(match crate::rate_limits(settings) {
        Ok(config) => Finding::ok(
            "trusted proxies",
            format!(
                "{} network(s) trusted for X-Forwarded-For",
                config.trusted_proxies.networks().len()
            ),
        ),
        Err(error) => Finding::problem("trusted proxies", format!("{error:#}")),
    });
    if let (Some(cert), Some(key)) = (settings.tls_cert.clone(), settings.tls_key.clone()) {
        let http2 = settings.http2;
        let loaded = tokio::task::spawn_blocking(move || {
            quire_serve::tls::Tls::new(quire_serve::tls::TlsFiles { cert, key }, http2)
        })
        .await;
        findings.push(match loaded {
            Ok(Ok(_)) => Finding::ok("tls", "certificate and key load"),
            Ok(Err(error)) => Finding::problem("tls", format!("{error:#}")),
            Err(error) => Finding::problem("tls", error.to_string()),
        });
    }
    if let Some(secret) = &settings.jwt_secret {
        findings.push(match crate::secret::given(secret) {
            Ok(_) => Finding::ok("token secret", "--jwt-secret is long enough"),
            Err(error) => Finding::problem("token secret", error.to_string()),
        });
    } else if let Ok(DatabaseUrl::Sqlite(path)) = DatabaseUrl::parse(&settings.database) {
        let file = crate::secret::secret_path(&path);
        findings.push(match tokio::fs::metadata(&file).await {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Finding::problem(
                "token secret",
                format!(
                    "{} can be read by other users (mode {:o}); chmod 600 it",
                    file.display(),
                    meta.permissions().mode() & 0o777
                ),
            ),
            Ok(_) => Finding::ok("token secret", format!("{} (mode 600)", file.display())),
            Err(_) => Finding::ok(
                "token secret",
                "none yet: quire serve creates one on its first start",
            ),
        });
    }
    findings
}

fn schema(version: u32, newest: u32) -> Finding {
    match version.cmp(&newest) {
        std::cmp::Ordering::Equal => Finding::ok(
            "migrations",
            format!("schema version {version}, up to date"),
        ),
        std::cmp::Ordering::Less => Finding::ok(
            "migrations",
            format!(
                "schema version {version}; this quire applies {}..={newest} when it starts (or `quire migrate`)",
                version + 1
            ),
        ),
        std::cmp::Ordering::Greater => Finding::problem(
            "migrations",
            format!(
                "schema version {version} is newer than this quire's {newest}: run a newer quire"
            ),
        ),
    }
}

/// The media store against the rows; with `--fix`, removes lasting orphans. Returns the
/// findings and how many blobs were removed.
async fn media(
    settings: &Settings,
    url: &DatabaseUrl,
    named: &[(String, u64)],
    args: &CheckArgs,
) -> (Vec<Finding>, u64) {
    let store = match crate::attach_media(settings, url).await {
        Ok(store) => store,
        Err(error) => return (vec![Finding::problem("media", format!("{error:#}"))], 0),
    };
    let held = match store.list().await {
        Ok(held) => held,
        Err(error) => return (vec![Finding::problem("media", error.to_string())], 0),
    };
    let held_names: BTreeSet<&str> = held.iter().map(|b| b.sha256.as_str()).collect();
    let named_names: BTreeSet<&str> = named.iter().map(|(s, _)| s.as_str()).collect();
    let mut findings = Vec::new();
    let missing: Vec<&str> = named_names.difference(&held_names).copied().collect();
    if missing.is_empty() {
        findings.push(Finding::ok(
            "media blobs",
            format!("all {} blobs the rows name are stored", named_names.len()),
        ));
    } else {
        findings.push(Finding::problem(
            "media blobs",
            format!(
                "{} blob(s) named by media rows are missing from the store: {}",
                missing.len(),
                missing.join(", ")
            ),
        ));
    }
    let orphans: Vec<String> = held_names
        .difference(&named_names)
        .map(|s| (*s).to_owned())
        .collect();
    if orphans.is_empty() {
        findings.push(Finding::ok("orphaned blobs", "none"));
        return (findings, 0);
    }
    let bytes: u64 = held
        .iter()
        .filter(|b| orphans.contains(&b.sha256))
        .map(|b| b.size)
        .sum();
    if !args.fix {
        findings.push(Finding::problem(
            "orphaned blobs",
            format!(
                "{} blob(s), {bytes} bytes, named by no media row; `quire check --fix` removes them",
                orphans.len()
            ),
        ));
        return (findings, 0);
    }
    // Seen unnamed now; removed only if still unnamed after --fix-after.
    tokio::time::sleep(args.fix_after).await;
    let still_named = match quire_store::check::check(url).await {
        Ok(report) => report.blobs,
        Err(error) => {
            findings.push(Finding::problem("orphaned blobs", error.to_string()));
            return (findings, 0);
        }
    };
    let mut removed = 0;
    for orphan in &orphans {
        if still_named.iter().any(|(s, _)| s == orphan) {
            continue; // an upload named it meanwhile
        }
        match store.remove(orphan).await {
            Ok(()) => removed += 1,
            Err(error) => findings.push(Finding::problem(
                "orphaned blobs",
                format!("cannot remove {orphan}: {error}"),
            )),
        }
    }
    findings.push(Finding::ok(
        "orphaned blobs",
        format!("removed {removed} blob(s) named by no media row"),
    ));
    (findings, removed)
}
