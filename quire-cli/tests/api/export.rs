//! `quire export` and `quire import`, run as a user would: a blog exported from one backend
//! and imported into the other reads the same (articles, tags, follows, favorites, comments,
//! media bytes, passwords); importing the same archive again changes nothing; a database
//! holding other data is refused and left as it was; a damaged archive imports nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::copy::{other_backend, write_a_blog};
use crate::support::{TestApp, TestDir, quire_json, stdout_json};

/// Signs anna in (her password moved with her) and reads what she and anyone else sees.
async fn seen(app: &TestApp) -> Vec<Value> {
    let (status, body) = app
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": "anna@example.com", "password": "password-anna"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let anna = body["user"]["token"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    for (path, token) in [
        ("/api/articles", None),
        ("/api/articles", Some(anna.as_str())),
        ("/api/articles/feed", Some(anna.as_str())),
        ("/api/articles?favorited=anna", None),
        ("/api/profiles/jake", Some(anna.as_str())),
        ("/api/articles/moved-one/comments", None),
        ("/api/tags", None),
    ] {
        let (status, body) = app.get(path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        seen.push(body);
    }
    // The search index was rebuilt from the imported rows (snippets differ by engine).
    let (_, found) = app.get("/api/search?q=moved", None).await;
    seen.push(found["articlesCount"].clone());
    seen
}

api_test! {
async fn an_exported_blog_imports_into_the_other_backend_once_and_reads_the_same() {
    let app = TestApp::start().await;
    write_a_blog(&app).await;
    let before = seen(&app).await;
    let archive = app.dir().join("blog.tar.gz");
    // Exported while the server runs.
    let output = quire_json(app.test_dir(), &["export", "--to", archive.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let exported = stdout_json(&output);
    assert_eq!(exported["manifest"]["media"]["blobs"], 1);
    let _source = app.stop().await;

    let target = TestDir::new_for(other_backend()).await;
    let output = quire_json(&target, &["import", "--from", archive.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let imported = stdout_json(&output);
    assert_eq!(imported["rows"], exported["rows"]);
    assert_eq!(imported["rows_inserted"], exported["rows"]);
    assert_eq!(imported["media_blobs"], 1);

    // Again: nothing new, and it succeeds.
    let output = quire_json(&target, &["import", "--from", archive.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout_json(&output)["rows_inserted"], 0);

    let moved = TestApp::start_in(target).await;
    assert_eq!(seen(&moved).await, before);
    // The media blob came along (stored under its hash, which import checked).
    assert_eq!(moved.test_dir().media_objects().await, (0, 1));
    let newcomer = moved.register("newcomer").await;
    let article = moved.create_article(&newcomer, "after the import", &[]).await;
    assert_eq!(article["slug"], "after-the-import");

    // Into a database that now holds other data: refused (exit 3), nothing changed.
    let target = moved.stop().await;
    let output = quire_json(&target, &["import", "--from", archive.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout_json(&output)["error"].as_str().unwrap().contains("other data"));
    let moved = TestApp::start_in(target).await;
    let (_, list) = moved.get("/api/articles", None).await;
    assert_eq!(list["articlesCount"], 3);
    // --replace empties it first.
    let target = moved.stop().await;
    let output = quire_json(
        &target,
        &["import", "--from", archive.to_str().unwrap(), "--replace"],
    )
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let moved = TestApp::start_in(target).await;
    assert_eq!(seen(&moved).await, before);
    moved.stop().await;
}
}

api_test! {
async fn a_damaged_or_foreign_archive_imports_nothing() {
    let app = TestApp::start().await;
    write_a_blog(&app).await;
    let archive = app.dir().join("blog.tar");
    let output = quire_json(
        app.test_dir(),
        &["export", "--to", archive.to_str().unwrap(), "--no-media"],
    )
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout_json(&output)["manifest"]["media"], Value::Null);
    let source = app.stop().await;

    // Change one title inside the uncompressed archive (same length): the checksum catches it.
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes
        .windows(9)
        .position(|w| w == b"moved two")
        .expect("the title is in the archive");
    bytes[at..at + 9].copy_from_slice(b"moved 2wo");
    let damaged = source.path().join("damaged.tar");
    std::fs::write(&damaged, &bytes).unwrap();
    let target = TestDir::new_for(other_backend()).await;
    let output = quire_json(&target, &["import", "--from", damaged.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout_json(&output)["error"].as_str().unwrap().contains("damaged"));

    // A backup is not an export.
    let output = quire_json(&target, &["import", "--from", "/dev/null"]).await;
    assert_ne!(output.status.code(), Some(0));

    // Nothing was imported: the target serves an empty blog.
    let empty = TestApp::start_in(target).await;
    let (_, list) = empty.get("/api/articles", None).await;
    assert_eq!(list["articlesCount"], 0);
    let (_, tags) = empty.get("/api/tags", None).await;
    assert_eq!(tags["tags"], json!([]));
    empty.stop().await;
}
}

api_test! {
async fn a_folder_of_markdown_becomes_articles_once() {
    let app = TestApp::start().await;
    app.register("jake").await;
    app.register("anna").await;
    // The server has listed (and cached) the empty blog.
    let (_, list) = app.get("/api/articles", None).await;
    assert_eq!(list["articlesCount"], 0);
    let posts = app.dir().join("posts");
    std::fs::create_dir_all(posts.join("2023")).unwrap();
    std::fs::write(
        posts.join("2023/hello.md"),
        "---\ntitle: Hello from Hugo\ndescription: The first post.\ntags: [static, moving]\n\
         date: 2023-04-05\nauthor: anna\nlayout: post\n---\n\nSome **Markdown**.\n",
    )
    .unwrap();
    std::fs::write(
        posts.join("plain.markdown"),
        "# Only a heading\n\nA first paragraph that becomes the description.\n\nMore.\n",
    )
    .unwrap();
    std::fs::write(posts.join("draft.md"), "---\ntitle: Not yet\ndraft: true\n---\nWIP\n").unwrap();
    std::fs::write(posts.join("notes.txt"), "not markdown").unwrap();

    // A file naming an unknown author stops everything before anything is written.
    let broken = app.dir().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(posts.join("2023/hello.md"), broken.join("a.md")).unwrap();
    std::fs::write(broken.join("b.md"), "---\ntitle: Who\nauthor: nobody\n---\nx\n").unwrap();
    let output = quire_json(app.test_dir(), &["import", "--from", broken.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout_json(&output)["error"].as_str().unwrap().contains("no user nobody"));

    let from = posts.to_str().unwrap();
    let output = quire_json(app.test_dir(), &["import", "--from", from, "--author", "jake"]).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result = stdout_json(&output);
    assert_eq!(result["created"].as_array().unwrap().len(), 2, "{result}");
    assert_eq!(result["drafts_skipped"], 1);

    // The running server shows them (its cached lists were forgotten), dated and tagged.
    let started = std::time::Instant::now();
    loop {
        let (_, list) = app.get("/api/articles", None).await;
        if list["articlesCount"] == 2 {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{list}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, hello) = app.get("/api/articles/hello-from-hugo", None).await;
    assert_eq!(status, StatusCode::OK, "{hello}");
    let hello = &hello["article"];
    assert_eq!(hello["author"]["username"], "anna");
    assert_eq!(hello["description"], "The first post.");
    assert_eq!(hello["tagList"], json!(["moving", "static"]));
    assert_eq!(hello["createdAt"], "2023-04-05T00:00:00.000Z");
    assert_eq!(hello["body"], "Some **Markdown**.");
    let (_, plain) = app.get("/api/articles/only-a-heading", None).await;
    assert_eq!(plain["article"]["author"]["username"], "jake");
    assert_eq!(
        plain["article"]["description"],
        "A first paragraph that becomes the description."
    );

    // Again: nothing new.
    let output = quire_json(app.test_dir(), &["import", "--from", from, "--author", "jake"]).await;
    let result = stdout_json(&output);
    assert!(output.status.success(), "{result}");
    assert_eq!(result["created"], json!([]));
    assert_eq!(result["already_present"], 2);
    app.stop().await;
}
}
