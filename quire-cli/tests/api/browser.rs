//! The web UI in a real browser: `browser-tests/run.mjs` drives Debian's Chromium (headless,
//! through playwright-core) along a person's path (sign up, write with Markdown and an
//! uploaded image, a second user's comment appearing live, favorite, follow, feed, Atom feed,
//! sign out, a comment with JavaScript off) and runs axe-core on every page. Screenshots are
//! kept under the target directory's `tmp/browser-artifacts/<backend>/`.
//!
//! Needs `node`, Chromium (`/usr/bin/chromium`, or QUIRE_TEST_CHROMIUM) and the suite's npm
//! packages (`npm ci` in `browser-tests/`): `.ci/run` installs all three when missing.

use std::path::Path;

use tokio::process::Command;

use crate::support::{Backend, TestApp};

/// The browser the suite drives (the test harness's own knob).
fn chromium() -> String {
    #[allow(clippy::disallowed_methods)]
    std::env::var("QUIRE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

api_test! {
async fn a_person_uses_the_blog_in_chromium() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../browser-tests");
    assert!(
        suite.join("node_modules/playwright-core").is_dir(),
        "the browser suite's packages are missing: run `npm ci` in browser-tests/ (.ci/run does)"
    );
    let chromium = chromium();
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's `chromium` (.ci/run does)"
    );
    let app = TestApp::start().await;
    let backend = match Backend::current() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts").join(backend);
    let run = Command::new("node")
        .arg(suite.join("run.mjs"))
        .args(["--base", &app.url(""), "--chromium", &chromium])
        .arg("--out")
        .arg(&artifacts)
        .output()
        .await
        .expect("node must be installed (.ci/run installs it)");
    let report = String::from_utf8_lossy(&run.stdout);
    println!("{report}");
    assert!(
        run.status.success(),
        "browser checks failed:\n{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(report.contains("all browser checks passed"), "{report}");
}
}
