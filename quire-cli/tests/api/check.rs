//! `quire check`, run as an operator would: a sound installation passes (exit 0); each kind
//! of damage made behind quire's back is found and named (exit 4): a counter that disagrees
//! with its rows, a media row whose blob is gone, a blob no row names (which `--fix`
//! removes), a --trusted-proxies that does not parse.

use serde_json::Value;

use crate::copy::write_a_blog;
use crate::support::{TestApp, quire_json, stdout_json};

/// The `detail` of every failed check of a `quire check --json` result.
fn problems(result: &Value) -> Vec<String> {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            format!(
                "{}: {}",
                c["check"].as_str().unwrap(),
                c["detail"].as_str().unwrap()
            )
        })
        .collect()
}

api_test! {
async fn check_finds_each_kind_of_damage_and_fix_removes_orphans() {
    let app = TestApp::start().await;
    write_a_blog(&app).await;
    let dir = app.stop().await;

    let output = quire_json(&dir, &["check"]).await;
    let result = stdout_json(&output);
    assert_eq!(output.status.code(), Some(0), "{result}");
    assert_eq!(result["ok"], true);

    // A favorites count that disagrees with the favorites.
    dir.execute("UPDATE articles SET favorites_count = 7").await;
    let output = quire_json(&dir, &["check"]).await;
    assert_eq!(output.status.code(), Some(4));
    let found = problems(&stdout_json(&output));
    assert!(found.iter().any(|p| p.contains("favorites count")), "{found:?}");
    dir.execute("UPDATE articles SET favorites_count = (SELECT count(*) FROM favorites f WHERE f.article_id = articles.id)").await;

    // The media row goes (its blob is orphaned), and a row names a blob that is not there.
    let missing = "ab".repeat(32);
    dir.execute(&format!(
        "DELETE FROM media;
         INSERT INTO media (id, sha256, size, content_type, uploader_id, created_at)
         SELECT 'gone', '{missing}', 10, 'image/png', min(id), 0 FROM users"
    ))
    .await;
    let output = quire_json(&dir, &["check"]).await;
    assert_eq!(output.status.code(), Some(4));
    let found = problems(&stdout_json(&output));
    assert!(found.iter().any(|p| p.starts_with("media blobs") && p.contains(&missing)), "{found:?}");
    assert!(found.iter().any(|p| p.starts_with("orphaned blobs") && p.contains("1 blob(s)")), "{found:?}");
    assert_eq!(dir.media_objects().await.1, 1, "check alone removes nothing");

    // --fix removes the orphan (and only reports the missing one).
    dir.execute("DELETE FROM media").await;
    let output = quire_json(&dir, &["check", "--fix", "--fix-after", "0s"]).await;
    let result = stdout_json(&output);
    assert_eq!(output.status.code(), Some(0), "{result}");
    assert_eq!(result["orphans_removed"], 1);
    assert_eq!(dir.media_objects().await, (0, 0));

    // A configuration quire serve would refuse.
    let output = quire_json(&dir, &["check", "--trusted-proxies", "not-a-network"]).await;
    assert_eq!(output.status.code(), Some(4));
    let found = problems(&stdout_json(&output));
    assert!(found.iter().any(|p| p.starts_with("trusted proxies")), "{found:?}");
}
}
