//! `quire copy`: every row of one database into another (SQLite to PostgreSQL, back, or between
//! two of a kind), streamed in key-ordered batches, all or nothing, and verified table by table
//! by row count and checksum before the target commits.
//!
//! It works on its own connections, below the [`crate::Store`] trait: copying must carry ids,
//! password hashes and timestamps exactly, which no use case does. Both sides are brought to the
//! binary's schema first, so one list of tables and columns ([`TABLES`]) describes both. Only
//! base tables are copied; the counters derived from them (`article_total`, `tag_counts`) are
//! kept by the target's own triggers as rows arrive. The target is written in one transaction:
//! a failure anywhere (a bad row, a lost connection, a checksum that differs) rolls it all back,
//! leaving the target as it was. A non-empty target is refused unless `replace` is set, which
//! empties it inside that same transaction.
//!
//! Must not: run against a database that a quire process is writing to (the copy would be a
//! snapshot of a moving target); know HTTP.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::{DatabaseUrl, StoreError, StoreResult};

/// A column's type, the same on both stores (times and ids are 64-bit integers everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
}

/// One column of a copied table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Int,
        nullable: false,
    }
}

const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Text,
        nullable: false,
    }
}

const fn nullable_int(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Int,
        nullable: true,
    }
}

const fn nullable_text(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Text,
        nullable: true,
    }
}

/// A copied table: its columns (the key's first) and how many leading columns form its key.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub key_len: usize,
    /// The identity column whose sequence must move past the copied ids (PostgreSQL).
    pub identity: Option<&'static str>,
}

impl Table {
    pub fn key(&self) -> &'static [Column] {
        &self.columns[..self.key_len]
    }

    /// `a, b, c`
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The clause that makes an insert leave rows whose key exists alone (or none).
    fn on_conflict(&self, skip_existing: bool) -> String {
        if skip_existing {
            format!(" ON CONFLICT ({}) DO NOTHING", self.key_list())
        } else {
            String::new()
        }
    }

    /// `a, b` of the key.
    fn key_list(&self) -> String {
        self.key()
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every base table, parents before children (the order rows are inserted in).
pub const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            int("id"),
            text("username"),
            text("email"),
            text("password_hash"),
            nullable_text("bio"),
            nullable_text("image"),
            int("created_at"),
            int("updated_at"),
            nullable_int("disabled_at"),
        ],
        key_len: 1,
        identity: Some("id"),
    },
    Table {
        name: "follows",
        columns: &[int("follower_id"), int("followee_id"), int("created_at")],
        key_len: 2,
        identity: None,
    },
    Table {
        name: "articles",
        columns: &[
            int("id"),
            text("slug"),
            int("author_id"),
            text("title"),
            text("description"),
            text("body"),
            int("favorites_count"),
            int("created_at"),
            int("updated_at"),
        ],
        key_len: 1,
        identity: Some("id"),
    },
    Table {
        name: "article_tags",
        columns: &[int("article_id"), text("tag")],
        key_len: 2,
        identity: None,
    },
    Table {
        name: "favorites",
        columns: &[int("user_id"), int("article_id"), int("created_at")],
        key_len: 2,
        identity: None,
    },
    Table {
        name: "comments",
        columns: &[
            int("id"),
            int("article_id"),
            int("author_id"),
            text("body"),
            int("created_at"),
            int("updated_at"),
        ],
        key_len: 1,
        identity: Some("id"),
    },
    Table {
        name: "media",
        columns: &[
            text("id"),
            text("sha256"),
            int("size"),
            text("content_type"),
            int("uploader_id"),
            int("created_at"),
        ],
        key_len: 1,
        identity: None,
    },
];

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// One row, in its table's column order.
pub type Row = Vec<Value>;

/// An order-independent digest of a table's rows: their count and the wrapping sum of each
/// row's SHA-256 (first 128 bits). Order-independent, so the two stores need not agree on how
/// text sorts; any changed, missing or extra row changes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    pub rows: u64,
    pub sum: u128,
}

impl Checksum {
    pub fn add(&mut self, row: &[Value]) {
        let mut hash = Sha256::new();
        for value in row {
            match value {
                Value::Null => hash.update([0u8]),
                Value::Int(n) => {
                    hash.update([1u8]);
                    hash.update(n.to_le_bytes());
                }
                Value::Text(s) => {
                    hash.update([2u8]);
                    hash.update((s.len() as u64).to_le_bytes());
                    hash.update(s.as_bytes());
                }
            }
        }
        let digest = hash.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.rows += 1;
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
    }
}

/// Where rows come from.
#[async_trait]
pub trait Source: Send {
    /// Fixes what every later read sees to one instant (a read transaction), so reading a
    /// database that quire is writing to gives a consistent snapshot.
    async fn snapshot(&mut self) -> StoreResult<()>;
    async fn count(&mut self, table: &'static Table) -> StoreResult<u64>;
    /// Up to `limit` rows with keys after `after` (from the start when `None`), key order.
    async fn page(
        &mut self,
        table: &'static Table,
        after: Option<Row>,
        limit: usize,
    ) -> StoreResult<Vec<Row>>;
    /// The token signing secret the source keeps (SQLite: the `<db>.jwt-secret` file beside
    /// it; PostgreSQL: its `secrets` table), if any: copied so sessions survive the move.
    async fn token_secret(&mut self) -> StoreResult<Option<String>>;
}

/// Where rows go: everything between `begin` and `commit` is one transaction.
#[async_trait]
pub trait Target: Send {
    /// Starts the transaction everything else runs in.
    async fn begin(&mut self) -> StoreResult<()>;
    /// Whether `table` holds any row.
    async fn holds_rows(&mut self, table: &'static Table) -> StoreResult<bool>;
    /// Deletes every row of `table`.
    async fn empty(&mut self, table: &'static Table) -> StoreResult<()>;
    /// Inserts `rows`; with `skip_existing`, a row whose key the table already holds is left
    /// as it is instead of failing. Returns how many rows were inserted.
    async fn insert(
        &mut self,
        table: &'static Table,
        rows: Vec<Row>,
        skip_existing: bool,
    ) -> StoreResult<u64>;
    /// The checksum of what the table now holds, read back inside the transaction.
    async fn checksum(&mut self, table: &'static Table) -> StoreResult<Checksum>;
    /// Moves identity sequences past the copied ids and keeps the source's token secret where
    /// the target keeps its own: an existing one stays, unless `replace` (the target is being
    /// replaced, its sessions with it).
    async fn finish(&mut self, token_secret: Option<String>, replace: bool) -> StoreResult<()>;
    async fn commit(&mut self) -> StoreResult<()>;
    async fn rollback(&mut self) -> StoreResult<()>;
}

/// How `copy` reports what it is doing (a progress bar in the CLI).
pub trait Progress: Send + Sync {
    /// Copying `table`, which holds `rows` rows, starts.
    fn table(&self, table: &str, rows: u64);
    /// `rows` more rows of the current table were written.
    fn rows(&self, rows: u64);
}

/// Options of [`copy`].
#[derive(Debug, Clone, Copy)]
pub struct CopyOptions {
    /// Empty a non-empty target first (inside the copy's transaction).
    pub replace: bool,
    /// Rows read and inserted at a time.
    pub batch: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            replace: false,
            batch: 1000,
        }
    }
}

/// What was copied, table by table, with the checksums both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopied {
    pub table: &'static str,
    pub checksum: Checksum,
}

/// Copies every row of `from` into `to`, migrating both to this binary's schema first.
pub async fn copy(
    from: &DatabaseUrl,
    to: &DatabaseUrl,
    options: CopyOptions,
    progress: &dyn Progress,
) -> StoreResult<Vec<TableCopied>> {
    if from == to {
        return Err(StoreError::Config(
            "--from and --to name the same database".into(),
        ));
    }
    let mut source = open_source(from).await?;
    let mut target = open_target(to).await?;
    target.begin().await?;
    let copied = async {
        clear(target.as_mut(), options.replace).await?;
        copy_tables(source.as_mut(), target.as_mut(), options, progress).await
    };
    match copied.await {
        Ok(copied) => {
            target.commit().await?;
            Ok(copied)
        }
        Err(error) => {
            // The error is what the caller needs; a failed rollback only means the connection
            // is gone, which ends the transaction all the same.
            let _ = target.rollback().await;
            Err(error)
        }
    }
}

/// Refuses a target holding rows unless `replace`, which deletes them, children first.
pub async fn clear(target: &mut dyn Target, replace: bool) -> StoreResult<()> {
    for table in TABLES.iter().rev() {
        if !target.holds_rows(table).await? {
            continue;
        }
        if !replace {
            return Err(StoreError::Config(format!(
                "the target database is not empty (table {} has rows); \
                 use --replace to empty it first",
                table.name
            )));
        }
        target.empty(table).await?;
    }
    Ok(())
}

async fn copy_tables(
    source: &mut dyn Source,
    target: &mut dyn Target,
    options: CopyOptions,
    progress: &dyn Progress,
) -> StoreResult<Vec<TableCopied>> {
    let mut copied = Vec::new();
    for table in TABLES {
        progress.table(table.name, source.count(table).await?);
        let mut sent = Checksum::default();
        let mut after: Option<Row> = None;
        loop {
            let rows = source
                .page(table, after.take(), options.batch.max(1))
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some(last[..table.key_len].to_vec());
            for row in &rows {
                sent.add(row);
            }
            let n = rows.len() as u64;
            target.insert(table, rows, false).await?;
            progress.rows(n);
        }
        let received = target.checksum(table).await?;
        if received != sent {
            return Err(StoreError::Database(format!(
                "table {}: {} rows read but the target holds {} (checksums {:032x} and {:032x}); nothing was copied",
                table.name, sent.rows, received.rows, sent.sum, received.sum
            )));
        }
        copied.push(TableCopied {
            table: table.name,
            checksum: sent,
        });
    }
    target
        .finish(source.token_secret().await?, options.replace)
        .await?;
    Ok(copied)
}

/// Opens `url` to read rows from (migrated to this binary's schema first).
pub async fn open_source(url: &DatabaseUrl) -> StoreResult<Box<dyn Source>> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            if !path.exists() {
                return Err(StoreError::Config(format!(
                    "no database to copy from at {}",
                    path.display()
                )));
            }
            Ok(Box::new(sqlite::SqliteSide::open(path).await?))
        }
        DatabaseUrl::Postgres(url) => Ok(Box::new(postgres::PostgresSide::open(url).await?)),
    }
}

/// Opens (SQLite: creating) `url` to write rows into (migrated to this binary's schema first).
pub async fn open_target(url: &DatabaseUrl) -> StoreResult<Box<dyn Target>> {
    match url {
        DatabaseUrl::Sqlite(path) => Ok(Box::new(sqlite::SqliteSide::open(path).await?)),
        DatabaseUrl::Postgres(url) => Ok(Box::new(postgres::PostgresSide::open(url).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_ignore_order_and_see_every_change() {
        let a = vec![Value::Int(1), Value::Text("x".into()), Value::Null];
        let b = vec![Value::Int(2), Value::Text("y".into()), Value::Null];
        let (mut one, mut two) = (Checksum::default(), Checksum::default());
        one.add(&a);
        one.add(&b);
        two.add(&b);
        two.add(&a);
        assert_eq!(one, two);
        let mut changed = Checksum::default();
        changed.add(&a);
        changed.add(&[
            Value::Int(2),
            Value::Text("y".into()),
            Value::Text(String::new()),
        ]);
        assert_ne!(one, changed);
        // Text boundaries count: ("ab", "c") is not ("a", "bc").
        let (mut x, mut y) = (Checksum::default(), Checksum::default());
        x.add(&[Value::Text("ab".into()), Value::Text("c".into())]);
        y.add(&[Value::Text("a".into()), Value::Text("bc".into())]);
        assert_ne!(x, y);
    }

    #[test]
    fn keys_lead_every_table() {
        for table in TABLES {
            assert!(table.key_len >= 1 && table.key_len <= table.columns.len());
            assert!(table.key().iter().all(|c| !c.nullable), "{}", table.name);
            if let Some(identity) = table.identity {
                assert_eq!(table.columns[0].name, identity);
            }
        }
    }
}
