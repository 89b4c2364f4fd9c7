//! `quire backup` and `quire restore`, run as a user would (the real binary) against a quire
//! that keeps serving writes: the restore drill. Every write acknowledged before the backup
//! started is in the restored blog, the backup is one instant (the articles it holds are
//! exactly the first N written), sessions and media survive, and every refusal (a non-empty
//! target, an existing file, a damaged archive, PostgreSQL as the source) exits with its code
//! and changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::media::upload;
use crate::support::{Backend, TestApp, TestDir, quire_json, stdout_json};

/// `quire backup --to archive` on `dir`, which must succeed.
async fn backup(dir: &TestDir, archive: &std::path::Path) {
    let output = quire_json(dir, &["backup", "--to", archive.to_str().unwrap()]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn articles_in(manifest: &Value) -> u64 {
    manifest["database"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "articles")
        .unwrap()["rows"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_under_write_load_restores_every_acknowledged_write() {
    let app = TestApp::start_in(TestDir::new_for(Backend::Sqlite).await).await;
    let anna = app.register("anna").await;
    let image: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (status, media) = upload(&app, &anna, "image/png", image.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    let media_id = media["media"]["id"].as_str().unwrap().to_owned();

    // One writer, one article after another; `acked` lists the slugs quire confirmed, in order.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, base, anna) = (app.client.clone(), app.base.clone(), anna.clone());
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"article": {
                    "title": format!("drill {n}"),
                    "description": "written while the backup ran",
                    "body": "x".repeat(2000),
                    "tagList": ["drill"],
                }});
                let response = client
                    .post(format!("{base}/api/articles"))
                    .header("Authorization", format!("Token {anna}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                let article: Value = response.json().await.unwrap();
                acked
                    .lock()
                    .unwrap()
                    .push(article["article"]["slug"].as_str().unwrap().to_owned());
            }
        })
    };
    while acked.lock().unwrap().len() < 30 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before = acked.lock().unwrap().clone();
    let archive = app.dir().join("drill.tar.gz");
    let output = quire_json(
        app.test_dir(),
        &["backup", "--to", archive.to_str().unwrap(), "--with-media"],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = acked.lock().unwrap().clone();
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let result = stdout_json(&output);
    let manifest = &result["manifest"];
    let in_backup = articles_in(manifest) as usize;
    assert!(
        in_backup >= before.len() && in_backup <= after.len(),
        "the backup holds {in_backup} articles; {} were acknowledged before it started and {} by its end",
        before.len(),
        after.len()
    );
    assert_eq!(manifest["media"]["blobs"], 1);
    assert_eq!(manifest["token_secret"], true);

    // Restore into a fresh directory and serve it.
    let fresh = TestDir::new_for(Backend::Sqlite).await;
    let output = quire_json(
        &fresh,
        &[
            "restore",
            "--from",
            archive.to_str().unwrap(),
            "--with-media",
        ],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout_json(&output)["media_blobs"], 1);
    let restored = TestApp::start_in(fresh).await;
    // Every write acknowledged before the backup started is there, as the server served it.
    for slug in &before {
        let (status, there) = restored.get(&format!("/api/articles/{slug}"), None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{slug} was acknowledged but is missing"
        );
        let (_, here) = app.get(&format!("/api/articles/{slug}"), None).await;
        assert_eq!(there, here);
    }
    // One instant: exactly the first `in_backup` articles written, nothing half-written.
    let (_, list) = restored
        .get("/api/articles?tag=drill&limit=100", None)
        .await;
    assert_eq!(list["articlesCount"], in_backup);
    let mut slugs: Vec<String> = list["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["slug"].as_str().unwrap().to_owned())
        .collect();
    slugs.sort();
    let mut first: Vec<String> = after[..in_backup].to_vec();
    first.sort();
    assert_eq!(slugs, first);
    // Sessions survive (the token secret came along), and so do the media bytes.
    let (status, user) = restored.get("/api/user", Some(&anna)).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    let bytes = restored
        .client
        .get(restored.url(&format!("/media/{media_id}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), image.as_slice());

    // Restoring again over the now non-empty database is refused (exit 3), changing nothing.
    let fresh = restored.stop().await;
    let output = quire_json(&fresh, &["restore", "--from", archive.to_str().unwrap()]).await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout_json(&output)["error"]
            .as_str()
            .unwrap()
            .contains("not empty")
    );
    // --replace overwrites it.
    let output = quire_json(
        &fresh,
        &["restore", "--from", archive.to_str().unwrap(), "--replace"],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A backup never overwrites a file.
    let output = quire_json(
        app.test_dir(),
        &["backup", "--to", archive.to_str().unwrap()],
    )
    .await;
    assert_eq!(output.status.code(), Some(3));
    app.stop().await;
}

#[tokio::test]
async fn a_damaged_backup_is_refused_and_the_target_is_left_alone() {
    let app = TestApp::start_in(TestDir::new_for(Backend::Sqlite).await).await;
    let token = app.register("jake").await;
    app.create_article(&token, "kept safe", &[]).await;
    let archive = app.dir().join("plain.tar");
    backup(app.test_dir(), &archive).await;
    let dir = app.stop().await;

    // Flip one byte inside the database entry (the first entry, after its 512-byte header).
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[512 + 8192] ^= 0x55;
    let damaged = dir.path().join("damaged.tar");
    std::fs::write(&damaged, &bytes).unwrap();
    let target = TestDir::new_for(Backend::Sqlite).await;
    let output = quire_json(&target, &["restore", "--from", damaged.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout_json(&output)["error"]
            .as_str()
            .unwrap()
            .contains("damaged"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        !target.path().join("quire.db").exists(),
        "nothing was restored"
    );
    assert!(
        std::fs::read_dir(target.path()).unwrap().next().is_none(),
        "no leftovers"
    );

    // Cut short: no manifest.
    let cut = dir.path().join("cut.tar");
    std::fs::write(&cut, &std::fs::read(&archive).unwrap()[..4096]).unwrap();
    let output = quire_json(&target, &["restore", "--from", cut.to_str().unwrap()]).await;
    assert_ne!(output.status.code(), Some(0));
    assert!(!target.path().join("quire.db").exists());

    // Not a file at all, and not a backup.
    let output = quire_json(&target, &["restore", "--from", "/nonexistent.tar"]).await;
    assert_eq!(output.status.code(), Some(1));
}

#[tokio::test]
async fn a_sqlite_backup_restores_into_postgresql_and_postgresql_backups_point_to_pg_dump() {
    let app = TestApp::start_in(TestDir::new_for(Backend::Sqlite).await).await;
    let token = app.register("jake").await;
    let article = app
        .create_article(&token, "moves to postgres", &["pg"])
        .await;
    let archive = app.dir().join("to-pg.tar");
    backup(app.test_dir(), &archive).await;
    let _source = app.stop().await;

    let pg = TestDir::new_for(Backend::Postgres).await;
    let output = quire_json(&pg, &["restore", "--from", archive.to_str().unwrap()]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let restored = TestApp::start_in(pg).await;
    let slug = article["slug"].as_str().unwrap();
    let (status, body) = restored.get(&format!("/api/articles/{slug}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["article"]["tagList"], json!(["pg"]));
    let (status, _) = restored.get("/api/user", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "sessions move with the secret");

    let output = quire_json(
        restored.test_dir(),
        &[
            "backup",
            "--to",
            restored.dir().join("x.tar").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stdout_json(&output)["error"]
            .as_str()
            .unwrap()
            .contains("pg_dump")
    );
    restored.stop().await;
}
