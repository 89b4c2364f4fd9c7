//! `quire-bench seed`: fills an already-migrated quire SQLite database with a realistic data
//! set, fast, by writing the file directly (one transaction, prepared statements, rows in
//! key order) instead of going through the API.
//!
//! It follows the schema of `quire-store/migrations/sqlite/0001_initial.sql` and keeps the
//! store's invariants: `articles.favorites_count` equals the article's `favorites` rows,
//! times are integer milliseconds, ids grow with time (newest = highest id), nobody follows
//! themselves. Users are `user{i}` / `user{i}@example.com` with the password
//! `password-bench`; `user1` follows ten users, so its feed is never empty.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use argon2::password_hash::{PasswordHasher as _, SaltString};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom as _, SliceRandom as _};
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, Transaction, params};

/// The password of every seeded user.
pub const PASSWORD: &str = "password-bench";

/// Options of `quire-bench seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The SQLite file, already migrated (`quire migrate --database sqlite://PATH`).
    #[arg(long)]
    pub database: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    pub users: u64,
    #[arg(long, default_value_t = 100_000)]
    pub articles: u64,
    #[arg(long, default_value_t = 1_000_000)]
    pub favorites: u64,
    #[arg(long, default_value_t = 50_000)]
    pub follows: u64,
    #[arg(long, default_value_t = 100_000)]
    pub comments: u64,
    /// Size of the tag pool `tag0..tagN`; each article gets 1 to 5 of them.
    #[arg(long, default_value_t = 50)]
    pub tags: u64,
    /// Seed of the random generator, for a reproducible data set.
    #[arg(long, default_value_t = 42)]
    pub random_seed: u64,
}

/// Writes every table in one transaction.
fn seed(db: &mut Connection, args: &SeedArgs) -> anyhow::Result<Counts> {
    // A seed is all or nothing, so durability of the steps in between does not matter.
    db.pragma_update(None, "synchronous", "OFF")?;
    db.pragma_update(None, "cache_size", -262_144)?; // 256 MiB

    let mut rng = StdRng::seed_from_u64(args.random_seed);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let progress = ProgressBar::new(0).with_style(ProgressStyle::with_template(
        "{msg:>13} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
    )?);

    let tx = db.transaction()?;
    let users = users(&tx, args, now, &progress)?;
    let favorites = pairs(
        &mut rng,
        args.favorites,
        args.users,
        args.articles,
        |_, _| true,
    );
    let mut favorites_count = vec![0_i64; args.articles as usize + 1];
    for &(_, article) in &favorites {
        favorites_count[article as usize] += 1;
    }
    let (articles, article_tags) = articles(&tx, args, now, &favorites_count, &mut rng, &progress)?;
    let counts = Counts {
        users,
        articles,
        article_tags,
        favorites: favorites_rows(&tx, &favorites, now, &progress)?,
        follows: follows(&tx, args, now, &mut rng, &progress)?,
        comments: comments(&tx, args, now, &mut rng, &progress)?,
    };
    progress.set_message("committing");
    tx.commit()?;
    progress.finish_and_clear();
    Ok(counts)
}

/// Rows written, per table.
#[derive(Debug)]
struct Counts {
    users: u64,
    articles: u64,
    article_tags: u64,
    favorites: u64,
    follows: u64,
    comments: u64,
}

/// Span of the made-up history: one year, ending now.
const HISTORY_MS: i64 = 365 * 24 * 3600 * 1000;

const WORDS: &[&str] = &[
    "rust",
    "async",
    "blog",
    "latency",
    "sqlite",
    "index",
    "cache",
    "thread",
    "socket",
    "request",
    "server",
    "client",
    "queue",
    "commit",
    "write",
    "read",
    "page",
    "token",
    "profile",
    "article",
    "comment",
    "follow",
    "feed",
    "tag",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "fast",
    "slow",
    "simple",
    "careful",
    "measure",
    "benchmark",
    "tail",
];

pub fn run(args: SeedArgs) -> anyhow::Result<()> {
    ensure!(
        args.users >= 12,
        "--users must be at least 12 (user1 follows ten others)"
    );
    ensure!(args.tags >= 1, "--tags must be at least 1");
    let started = Instant::now();
    let mut db = Connection::open(&args.database)
        .with_context(|| format!("opening {}", args.database.display()))?;
    let tables: i64 = db.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'articles'",
        [],
        |row| row.get(0),
    )?;
    ensure!(
        tables == 1,
        "{} has no quire schema: run `quire migrate --database sqlite://PATH` first",
        args.database.display()
    );
    let counts = seed(&mut db, &args)?;
    // No ANALYZE: quire never runs it, so a database filled through the API has no planner
    // statistics either, and the benchmark should see the plans quire really gets.
    println!(
        "seeded {}: {} users, {} articles ({} tags), {} favorites, {} follows, {} comments in {:.1}s",
        args.database.display(),
        counts.users,
        counts.articles,
        counts.article_tags,
        counts.favorites,
        counts.follows,
        counts.comments,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn users(
    tx: &Transaction,
    args: &SeedArgs,
    now: i64,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    start(progress, "users", args.users);
    // One argon2id hash (quire's default cost) for everybody: hashing 10,000 would take minutes.
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(PASSWORD.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the bench password: {e}"))?
        .to_string();
    let mut insert = tx.prepare(
        "INSERT INTO users (id, username, email, password_hash, bio, image, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?6)",
    )?;
    for i in 1..=args.users {
        let at = spread(now, i, args.users);
        let bio = (i % 3 == 0).then(|| format!("I am user {i} and I write about things."));
        insert.execute(params![
            i,
            format!("user{i}"),
            format!("user{i}@example.com"),
            hash,
            bio,
            at
        ])?;
        tick(progress, i);
    }
    Ok(args.users)
}

fn articles(
    tx: &Transaction,
    args: &SeedArgs,
    now: i64,
    favorites_count: &[i64],
    rng: &mut StdRng,
    progress: &ProgressBar,
) -> anyhow::Result<(u64, u64)> {
    start(progress, "articles", args.articles);
    let mut article = tx.prepare(
        "INSERT INTO articles (id, slug, author_id, title, description, body, favorites_count, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?;
    let mut tag = tx.prepare("INSERT INTO article_tags (article_id, tag) VALUES (?1, ?2)")?;
    let pool: Vec<String> = (0..args.tags).map(|t| format!("tag{t}")).collect();
    let mut tags_written = 0;
    for i in 1..=args.articles {
        let author = rng.random_range(1..=args.users);
        let title = format!("Article {i}: {}", sentence(rng, 3..7).trim_end_matches('.'));
        // As people write them: a one-sentence description and a body of about 2 KB
        // (4 to 9 paragraphs of 30 to 70 words), so the benchmarks render realistic bodies.
        let description = sentence(rng, 10..20);
        let body = (0..rng.random_range(4..10))
            .map(|_| sentence(rng, 30..70))
            .collect::<Vec<_>>()
            .join("\n\n");
        let at = spread(now, i, args.articles);
        article.execute(params![
            i,
            format!("article-{i}"),
            author,
            title,
            description,
            body,
            favorites_count[i as usize],
            at
        ])?;
        let how_many = rng.random_range(1..=5).min(pool.len());
        for name in pool.choose_multiple(rng, how_many) {
            tag.execute(params![i, name])?;
            tags_written += 1;
        }
        tick(progress, i);
    }
    Ok((args.articles, tags_written))
}

fn favorites_rows(
    tx: &Transaction,
    favorites: &[(u64, u64)],
    now: i64,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    start(progress, "favorites", favorites.len() as u64);
    let mut insert =
        tx.prepare("INSERT INTO favorites (user_id, article_id, created_at) VALUES (?1, ?2, ?3)")?;
    for (n, &(user, article)) in favorites.iter().enumerate() {
        insert.execute(params![user, article, now - (n as i64 % 1000)])?;
        tick(progress, n as u64 + 1);
    }
    Ok(favorites.len() as u64)
}

fn follows(
    tx: &Transaction,
    args: &SeedArgs,
    now: i64,
    rng: &mut StdRng,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let mut pairs = pairs(rng, args.follows, args.users, args.users, |a, b| a != b);
    // user1 follows users 2..=11, so the authenticated feed always has articles.
    pairs.extend((2..=11).map(|followee| (1, followee)));
    pairs.sort_unstable();
    pairs.dedup();
    start(progress, "follows", pairs.len() as u64);
    let mut insert = tx.prepare(
        "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?1, ?2, ?3)",
    )?;
    for (n, &(follower, followee)) in pairs.iter().enumerate() {
        insert.execute(params![follower, followee, now - (n as i64 % 1000)])?;
        tick(progress, n as u64 + 1);
    }
    Ok(pairs.len() as u64)
}

fn comments(
    tx: &Transaction,
    args: &SeedArgs,
    now: i64,
    rng: &mut StdRng,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    start(progress, "comments", args.comments);
    let mut insert = tx.prepare(
        "INSERT INTO comments (id, article_id, author_id, body, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?;
    for i in 1..=args.comments {
        let article = rng.random_range(1..=args.articles.max(1));
        let author = rng.random_range(1..=args.users);
        insert.execute(params![
            i,
            article,
            author,
            sentence(rng, 5..30),
            spread(now, i, args.comments)
        ])?;
        tick(progress, i);
    }
    Ok(args.comments)
}

/// Up to `wanted` distinct random `(a, b)` pairs with `a` in `1..=a_max`, `b` in
/// `1..=b_max` and `keep(a, b)`, sorted (inserting in key order keeps B-tree pages dense).
/// Asks for at most half of all possible pairs, so rejection sampling ends quickly.
fn pairs(
    rng: &mut StdRng,
    wanted: u64,
    a_max: u64,
    b_max: u64,
    keep: impl Fn(u64, u64) -> bool,
) -> Vec<(u64, u64)> {
    let wanted = wanted.min(a_max * b_max / 2);
    let mut seen = HashSet::with_capacity(wanted as usize);
    while (seen.len() as u64) < wanted {
        let pair = (rng.random_range(1..=a_max), rng.random_range(1..=b_max));
        if keep(pair.0, pair.1) {
            seen.insert(pair);
        }
    }
    let mut pairs: Vec<_> = seen.into_iter().collect();
    pairs.sort_unstable();
    pairs
}

/// The creation time of row `i` of `n`: spread over the last year, growing with `i`.
fn spread(now: i64, i: u64, n: u64) -> i64 {
    now - HISTORY_MS + (HISTORY_MS as i128 * i as i128 / n.max(1) as i128) as i64
}

fn sentence(rng: &mut StdRng, words: std::ops::Range<usize>) -> String {
    let n = rng.random_range(words);
    let mut picked: Vec<&str> = (0..n)
        .map(|_| *WORDS.choose(rng).unwrap_or(&"word"))
        .collect();
    picked.shuffle(rng);
    let mut text = picked.join(" ");
    if let Some(first) = text.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    text.push('.');
    text
}

fn start(progress: &ProgressBar, what: &'static str, len: u64) {
    progress.set_message(what);
    progress.set_length(len);
    progress.set_position(0);
    progress.reset_eta();
}

fn tick(progress: &ProgressBar, position: u64) {
    // Redrawing per row would cost more than the insert.
    if position % 10_000 == 0 {
        progress.set_position(position);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};

    const SCHEMA: &str = include_str!("../../quire-store/migrations/sqlite/0001_initial.sql");

    #[test]
    fn seeds_a_consistent_database_whose_users_can_log_in() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Connection::open(dir.path().join("seed.db")).unwrap();
        db.execute_batch(SCHEMA).unwrap();
        let args = SeedArgs {
            database: dir.path().join("seed.db"),
            users: 30,
            articles: 200,
            favorites: 1000,
            follows: 100,
            comments: 300,
            tags: 8,
            random_seed: 7,
        };
        let counts = seed(&mut db, &args).unwrap();
        assert_eq!(
            (counts.users, counts.articles, counts.favorites),
            (30, 200, 1000)
        );
        assert_eq!(counts.comments, 300);

        let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM favorites"), 1000);
        assert_eq!(count("SELECT sum(favorites_count) FROM articles"), 1000);
        assert_eq!(
            count(
                "SELECT count(*) FROM articles a WHERE favorites_count != \
                 (SELECT count(*) FROM favorites f WHERE f.article_id = a.id)"
            ),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM follows WHERE follower_id = followee_id"),
            0
        );
        assert!(count("SELECT count(*) FROM follows WHERE follower_id = 1") >= 10);
        assert_eq!(
            count("SELECT count(*) FROM articles WHERE slug = 'article-123'"),
            1
        );
        let per_article =
            "SELECT max(n) FROM (SELECT count(*) n FROM article_tags GROUP BY article_id)";
        assert!((1..=5).contains(&count(per_article)));

        let hash: String = db
            .query_row(
                "SELECT password_hash FROM users WHERE username = 'user1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        argon2::Argon2::default()
            .verify_password(PASSWORD.as_bytes(), &parsed)
            .unwrap();
    }

    #[test]
    fn pairs_are_distinct_sorted_and_filtered() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = pairs(&mut rng, 1000, 50, 50, |a, b| a != b);
        assert_eq!(p.len(), 1000);
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        assert!(
            p.iter()
                .all(|&(a, b)| a != b && (1..=50).contains(&a) && (1..=50).contains(&b))
        );
    }

    #[test]
    fn pairs_are_capped_at_half_of_what_exists() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(pairs(&mut rng, 1_000_000, 10, 10, |_, _| true).len(), 50);
    }

    #[test]
    fn times_grow_with_ids_and_end_now() {
        assert_eq!(spread(1_000_000_000_000, 10, 10), 1_000_000_000_000);
        assert!(spread(1_000_000_000_000, 1, 10) < spread(1_000_000_000_000, 2, 10));
    }
}
