//! `quire import --from DIR`: a folder of Markdown files with front matter, the way people
//! arrive from static site generators (Jekyll, Hugo, Eleventy, Zola with YAML front matter).
//!
//! Each `*.md` / `*.markdown` file (searched recursively, in path order) becomes an article:
//!
//! ```text
//! ---
//! title: Hello again            # else the first "# heading", else the file name
//! description: One sentence.    # else the first paragraph, cut at 200 characters
//! tags: [rust, blogging]        # or "rust, blogging"
//! date: 2023-04-05              # or an RFC 3339 time; else the file's modification time
//! author: ada                   # a quire username; else --author
//! draft: true                   # skipped
//! ---
//! The body, Markdown.
//! ```
//!
//! Every file is read and checked before anything is written (unknown authors, missing
//! titles, invalid tags: exit 2 naming the files). Articles are created through the store as
//! the API would create them (slugs, tags, search index), then dated. Importing the folder
//! again skips articles already there (same slug and author), so a re-run completes an
//! interrupted one. Running instances forget their cached lists afterwards.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use quire_domain::{ArticleBody, Description, Slug, TagList, Title, UserId};
use quire_store::admin::{self, Admin};
use quire_store::{DatabaseUrl, NewArticle, StoreOptions};
use serde::Deserialize;
use serde_json::json;

use crate::outcome::{Failure, print};
use crate::progress::{Meter, Unit};
use crate::{ImportArgs, Settings};

/// The front matter fields quire reads; others are ignored.
#[derive(Debug, Default, Deserialize)]
struct FrontMatter {
    title: Option<String>,
    description: Option<String>,
    tags: Option<Tags>,
    date: Option<String>,
    author: Option<String>,
    #[serde(default)]
    draft: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Tags {
    List(Vec<String>),
    Text(String),
}

/// A file, checked and ready to become an article.
struct Post {
    path: PathBuf,
    author: UserId,
    article: NewArticle,
    /// Unix milliseconds.
    date: i64,
}

pub async fn run(settings: &Settings, args: &ImportArgs) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(&settings.database)
        .map_err(|e| Failure::Invalid(format!("--database: {e}")))?;
    let files = {
        let dir = args.from.clone();
        tokio::task::spawn_blocking(move || markdown_files(&dir)).await??
    };
    if files.is_empty() {
        return Err(Failure::Invalid(format!(
            "{} holds no .md or .markdown files",
            args.from.display()
        ))
        .into());
    }
    let mut admin = admin::open(&url).await?;
    let (posts, drafts) = read_all(&files, args.author.as_deref(), admin.as_mut()).await?;
    let store = quire_store::open(&url, StoreOptions::default()).await?;
    let meter = Meter::new("import", posts.len() as u64, Unit::Rows);
    let (mut created, mut present) = (Vec::new(), 0u64);
    for post in posts {
        let slug = Slug::from_title(post.article.title.as_str());
        if let Some(id) = store.article_id(&slug).await?
            && store
                .articles_by_ids(vec![id])
                .await?
                .first()
                .is_some_and(|a| a.author.id == post.author)
        {
            present += 1;
            meter.inc(1);
            continue;
        }
        let article = store
            .create_article(post.article)
            .await
            .with_context(|| format!("cannot import {}", post.path.display()))?;
        admin.date_article(article.id.0, post.date).await?;
        created.push(json!({"file": post.path.display().to_string(), "slug": article.slug}));
        meter.inc(1);
    }
    meter.finish();
    if !created.is_empty() {
        admin
            .record(
                chrono::Utc::now().timestamp_millis(),
                &quire_app::encoded_change_of_everything(),
            )
            .await?;
    }
    print(
        settings.json,
        &json!({
            "imported": args.from.display().to_string(),
            "created": created,
            "already_present": present,
            "drafts_skipped": drafts,
        }),
        || {
            format!(
                "imported {} article(s) from {}; {present} already there, {drafts} draft(s) skipped",
                created.len(),
                args.from.display()
            )
        },
    );
    Ok(())
}

/// Every Markdown file under `dir`, sorted.
fn markdown_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "md" || e == "markdown")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads and checks every file; any problem stops the import before it writes.
async fn read_all(
    files: &[PathBuf],
    default_author: Option<&str>,
    admin: &mut dyn Admin,
) -> anyhow::Result<(Vec<Post>, u64)> {
    let mut posts = Vec::new();
    let (mut problems, mut drafts) = (Vec::new(), 0);
    let mut authors = std::collections::HashMap::new();
    for path in files {
        let (text, modified) = {
            let file = path.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<(String, i64)> {
                let modified = std::fs::metadata(&file)?
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64);
                Ok((std::fs::read_to_string(&file)?, modified))
            })
            .await?
            .with_context(|| format!("cannot read {}", path.display()))?
        };
        let (front, body) = match split(&text) {
            Ok(split) => split,
            Err(why) => {
                problems.push(format!("{}: {why}", path.display()));
                continue;
            }
        };
        if front.draft {
            drafts += 1;
            continue;
        }
        let Some(name) = front.author.as_deref().or(default_author) else {
            problems.push(format!(
                "{}: no author (front matter `author:` or --author)",
                path.display()
            ));
            continue;
        };
        if !authors.contains_key(name) {
            let id = admin.account(name).await?.map(|a| UserId(a.id));
            authors.insert(name.to_owned(), id);
        }
        let Some(author) = authors[name] else {
            problems.push(format!(
                "{}: no user {name} (create it with `quire user create`)",
                path.display()
            ));
            continue;
        };
        match post(path, &front, body, author, modified) {
            Ok(post) => posts.push(post),
            Err(why) => problems.push(format!("{}: {why}", path.display())),
        }
    }
    if !problems.is_empty() {
        return Err(Failure::Invalid(format!(
            "nothing was imported; {} file(s) need attention:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
        .into());
    }
    Ok((posts, drafts))
}

/// The front matter (if any) and the body.
fn split(text: &str) -> Result<(FrontMatter, &str), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return Ok((FrontMatter::default(), text));
    };
    let end = rest
        .find("\n---")
        .ok_or("front matter opened with --- is never closed")?;
    let yaml = &rest[..end];
    let body = rest[end + 4..].trim_start_matches(['\r', '\n']);
    let front = if yaml.trim().is_empty() {
        FrontMatter::default()
    } else {
        yaml_serde::from_str(yaml).map_err(|e| format!("front matter: {e}"))?
    };
    Ok((front, body))
}

fn post(
    path: &Path,
    front: &FrontMatter,
    body: &str,
    author: UserId,
    modified: i64,
) -> Result<Post, String> {
    let heading = body
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(str::trim);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().replace(['-', '_'], " "));
    let title = front
        .title
        .as_deref()
        .or(heading)
        .or(stem.as_deref())
        .unwrap_or_default();
    let description = match &front.description {
        Some(d) => d.clone(),
        None => first_paragraph(body),
    };
    let tags: Vec<String> = match &front.tags {
        None => Vec::new(),
        Some(Tags::List(tags)) => tags.clone(),
        Some(Tags::Text(text)) => text
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
    };
    let date = match front.date.as_deref() {
        None => modified,
        Some(date) => parse_date(date)
            .ok_or_else(|| format!("date {date:?} is neither YYYY-MM-DD nor an RFC 3339 time"))?,
    };
    Ok(Post {
        path: path.to_owned(),
        author,
        article: NewArticle {
            author,
            title: Title::parse(title).map_err(|e| e.to_string())?,
            description: Description::parse(&description).map_err(|e| e.to_string())?,
            body: ArticleBody::parse(body).map_err(|e| e.to_string())?,
            tags: TagList::parse(&tags).map_err(|e| e.to_string())?,
        },
        date,
    })
}

/// The body's first paragraph of text (not a heading), cut at 200 characters.
fn first_paragraph(body: &str) -> String {
    let paragraph = body
        .split("\n\n")
        .map(str::trim)
        .find(|p| !p.is_empty() && !p.starts_with('#'))
        .unwrap_or_default()
        .replace('\n', " ");
    match paragraph.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &paragraph[..at]),
        None => paragraph,
    }
}

fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp_millis());
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_in_its_usual_shapes() {
        let (front, body) =
            split("---\ntitle: Hello\ntags: [a, b]\ndate: 2023-04-05\n---\n\nBody here.\n")
                .unwrap();
        assert_eq!(front.title.as_deref(), Some("Hello"));
        assert!(matches!(front.tags, Some(Tags::List(ref t)) if t == &["a", "b"]));
        assert_eq!(body, "Body here.\n");
        assert_eq!(parse_date("2023-04-05"), Some(1_680_652_800_000));
        assert_eq!(
            parse_date("2023-04-05T10:00:00+02:00"),
            Some(1_680_681_600_000)
        );
        let (front, _) = split("---\ntags: rust, web\nunknown: kept out\n---\nx").unwrap();
        assert!(matches!(front.tags, Some(Tags::Text(ref t)) if t == "rust, web"));
        let (front, body) = split("# Just markdown\n\nText").unwrap();
        assert!(front.title.is_none());
        assert_eq!(body, "# Just markdown\n\nText");
        assert!(split("---\ntitle: never closed\n").is_err());
        assert!(split("---\ntitle: [unbalanced\n---\nx").is_err());
    }

    #[test]
    fn descriptions_come_from_the_first_paragraph() {
        assert_eq!(
            first_paragraph("# Title\n\nFirst one\ncontinues.\n\nSecond."),
            "First one continues."
        );
        assert!(first_paragraph(&"w".repeat(300)).ends_with('…'));
    }
}
