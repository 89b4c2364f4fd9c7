//! The PostgreSQL side of `quire copy`: one connection of its own (no statement timeout: a
//! copy's statements may take long), rows paged in key order, inserted in multi-row
//! statements, all inside one `BEGIN` ... `COMMIT`. The token secret lives in the `secrets`
//! table, as the store keeps it; identity sequences are moved past the copied ids.

use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::{Checksum, Kind, Row, Source, TABLES, Table, Target, Value};
use crate::postgres::{PgOptions, PgStore, connection_config};
use crate::{StoreError, StoreResult};

/// The `secrets` row of the signing secret (see `quire-cli`'s secret handling).
const TOKEN_SECRET: &str = "token";

type Param = Box<dyn ToSql + Sync + Send>;

pub(crate) struct PostgresSide {
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresSide {
    fn drop(&mut self) {
        // Closing the connection ends any transaction still open: it rolls back.
        self.driver.abort();
    }
}

impl PostgresSide {
    /// Connects to the database at `url` and brings it to this binary's schema.
    pub(crate) async fn open(url: &str) -> StoreResult<Self> {
        let options = PgOptions {
            pool_size: 1,
            statement_timeout: Duration::ZERO,
            ..PgOptions::default()
        };
        // Opening a store migrates (under the migration lock); its pool is dropped at once.
        drop(PgStore::open(url, options).await?);
        let (client, connection) = connection_config(url, &options)?
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| StoreError::Config(format!("cannot connect: {e}")))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { client, driver })
    }

    async fn rows_of(
        &self,
        table: &Table,
        after: Option<Row>,
        limit: usize,
    ) -> StoreResult<Vec<Row>> {
        let keys = table.key_list();
        let mut params: Vec<Param> = Vec::new();
        let filter = match after {
            Some(key) => {
                let marks = (1..=key.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                for (column, value) in table.key().iter().zip(key) {
                    params.push(param(column.kind, value));
                }
                format!("WHERE ({keys}) > ({marks})")
            }
            None => String::new(),
        };
        params.push(Box::new(limit as i64));
        let sql = format!(
            "SELECT {} FROM {} {filter} ORDER BY {keys} LIMIT ${}",
            table.column_list(),
            table.name,
            params.len()
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let rows = self.client.query(&sql, &refs).await?;
        rows.iter().map(|row| read_row(table, row)).collect()
    }
}

fn param(kind: Kind, value: Value) -> Param {
    match (kind, value) {
        (_, Value::Int(n)) => Box::new(n),
        (_, Value::Text(s)) => Box::new(s),
        (Kind::Int, Value::Null) => Box::new(None::<i64>),
        (Kind::Text, Value::Null) => Box::new(None::<String>),
    }
}

fn read_row(table: &Table, row: &tokio_postgres::Row) -> StoreResult<Row> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            Ok(match column.kind {
                Kind::Int => row
                    .try_get::<_, Option<i64>>(i)?
                    .map_or(Value::Null, Value::Int),
                Kind::Text => row
                    .try_get::<_, Option<String>>(i)?
                    .map_or(Value::Null, Value::Text),
            })
        })
        .collect()
}

#[async_trait]
impl Source for PostgresSide {
    async fn snapshot(&mut self) -> StoreResult<()> {
        // Every later statement sees the database as of this transaction's first query.
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1")
            .await?;
        Ok(())
    }

    async fn count(&mut self, table: &'static Table) -> StoreResult<u64> {
        let n: i64 = self
            .client
            .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])
            .await?
            .get(0);
        Ok(n.max(0) as u64)
    }

    async fn page(
        &mut self,
        table: &'static Table,
        after: Option<Row>,
        limit: usize,
    ) -> StoreResult<Vec<Row>> {
        self.rows_of(table, after, limit).await
    }

    async fn token_secret(&mut self) -> StoreResult<Option<String>> {
        Ok(self
            .client
            .query_opt(
                "SELECT value FROM secrets WHERE name = $1",
                &[&TOKEN_SECRET],
            )
            .await?
            .map(|row| row.get(0)))
    }
}

#[async_trait]
impl Target for PostgresSide {
    async fn begin(&mut self) -> StoreResult<()> {
        Ok(self.client.batch_execute("BEGIN").await?)
    }

    async fn holds_rows(&mut self, table: &'static Table) -> StoreResult<bool> {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", table.name);
        Ok(self.client.query_one(&sql, &[]).await?.get(0))
    }

    async fn empty(&mut self, table: &'static Table) -> StoreResult<()> {
        let sql = format!("DELETE FROM {}", table.name);
        Ok(self.client.batch_execute(&sql).await?)
    }

    async fn insert(
        &mut self,
        table: &'static Table,
        rows: Vec<Row>,
        skip_existing: bool,
    ) -> StoreResult<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let width = table.columns.len();
        let mut values = Vec::with_capacity(rows.len());
        let mut params: Vec<Param> = Vec::with_capacity(rows.len() * width);
        for (r, row) in rows.into_iter().enumerate() {
            let marks = (1..=width)
                .map(|c| format!("${}", r * width + c))
                .collect::<Vec<_>>()
                .join(", ");
            values.push(format!("({marks})"));
            for (column, value) in table.columns.iter().zip(row) {
                params.push(param(column.kind, value));
            }
        }
        let conflict = table.on_conflict(skip_existing);
        let sql = format!(
            "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES {}{conflict}",
            table.name,
            table.column_list(),
            values.join(", ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        Ok(self.client.execute(&sql, &refs).await?)
    }

    async fn checksum(&mut self, table: &'static Table) -> StoreResult<Checksum> {
        let mut sum = Checksum::default();
        let mut after = None;
        loop {
            let rows = self.rows_of(table, after.take(), 5000).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last[..table.key_len].to_vec());
            for row in &rows {
                sum.add(row);
            }
        }
        Ok(sum)
    }

    async fn finish(&mut self, token_secret: Option<String>, replace: bool) -> StoreResult<()> {
        for table in TABLES {
            if let Some(id) = table.identity {
                self.client
                    .query_one(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{0}', '{id}'), \
                             COALESCE((SELECT max({id}) FROM {0}), 0) + 1, false)",
                            table.name
                        ),
                        &[],
                    )
                    .await?;
            }
        }
        if let Some(secret) = token_secret {
            // A target's own secret is its users' sessions: kept, unless it is being replaced.
            let on_conflict = if replace {
                "DO UPDATE SET value = EXCLUDED.value"
            } else {
                "DO NOTHING"
            };
            self.client
                .execute(
                    &format!(
                        "INSERT INTO secrets (name, value) VALUES ($1, $2) \
                         ON CONFLICT (name) {on_conflict}"
                    ),
                    &[&TOKEN_SECRET, &secret],
                )
                .await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> StoreResult<()> {
        self.client.batch_execute("COMMIT").await?;
        Ok(())
    }

    async fn rollback(&mut self) -> StoreResult<()> {
        self.client.batch_execute("ROLLBACK").await?;
        Ok(())
    }
}

fn account_from(row: &tokio_postgres::Row) -> crate::admin::Account {
    crate::admin::Account {
        id: row.get(0),
        username: row.get(1),
        email: row.get(2),
        disabled: row.get(3),
        created_at: row.get(4),
        articles: row.get::<_, i64>(5).max(0) as u64,
        comments: row.get::<_, i64>(6).max(0) as u64,
    }
}

#[async_trait]
impl crate::admin::Admin for PostgresSide {
    async fn accounts(&mut self) -> StoreResult<Vec<crate::admin::Account>> {
        let sql = format!("{} ORDER BY u.id", crate::admin::sql::ACCOUNTS);
        let rows = self.client.query(&sql, &[]).await?;
        Ok(rows.iter().map(account_from).collect())
    }

    async fn account(&mut self, name: &str) -> StoreResult<Option<crate::admin::Account>> {
        let sql = format!(
            "{} WHERE u.username = $1 OR lower(u.email) = lower($1)",
            crate::admin::sql::ACCOUNTS
        );
        let row = self.client.query_opt(&sql, &[&name]).await?;
        Ok(row.as_ref().map(account_from))
    }

    async fn create(
        &mut self,
        username: &str,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<i64> {
        match self
            .client
            .query_one(
                crate::admin::sql::CREATE,
                &[&username, &email, &password_hash, &now],
            )
            .await
        {
            Ok(row) => Ok(row.get(0)),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                Err(StoreError::Conflict(vec!["username or email"]))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn set_password(
        &mut self,
        id: i64,
        password_hash: &str,
        now: i64,
        changes: &str,
    ) -> StoreResult<()> {
        let tx = self.client.transaction().await?;
        tx.execute(
            crate::admin::sql::SET_PASSWORD,
            &[&id, &password_hash, &now],
        )
        .await?;
        tx.execute(crate::admin::sql::RECORD, &[&changes, &now])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_disabled(
        &mut self,
        id: i64,
        disabled_at: Option<i64>,
        now: i64,
        changes: &str,
    ) -> StoreResult<()> {
        let tx = self.client.transaction().await?;
        tx.execute(crate::admin::sql::SET_DISABLED, &[&id, &disabled_at, &now])
            .await?;
        tx.execute(crate::admin::sql::RECORD, &[&changes, &now])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete(
        &mut self,
        id: i64,
        heir: Option<i64>,
        now: i64,
        changes: &str,
    ) -> StoreResult<crate::admin::Removed> {
        use crate::admin::sql;
        let tx = self.client.transaction().await?;
        let mut counts = [0u64; 3];
        for (n, statement) in [sql::COUNT_ARTICLES, sql::COUNT_COMMENTS, sql::COUNT_MEDIA]
            .into_iter()
            .enumerate()
        {
            counts[n] = tx
                .query_one(statement, &[&id])
                .await?
                .get::<_, i64>(0)
                .max(0) as u64;
        }
        if let Some(heir) = heir {
            for statement in sql::REASSIGN {
                tx.execute(statement, &[&id, &heir]).await?;
            }
            counts = [0; 3];
        }
        tx.execute(sql::UNCOUNT_FAVORITES, &[&id]).await?;
        tx.execute(sql::DELETE, &[&id]).await?;
        tx.execute(sql::RECORD, &[&changes, &now]).await?;
        tx.commit().await?;
        Ok(crate::admin::Removed {
            articles: counts[0],
            comments: counts[1],
            media: counts[2],
        })
    }

    async fn date_article(&mut self, id: i64, at: i64) -> StoreResult<()> {
        self.client
            .execute(crate::admin::sql::DATE_ARTICLE, &[&id, &at])
            .await?;
        Ok(())
    }

    async fn record(&mut self, now: i64, changes: &str) -> StoreResult<()> {
        self.client
            .execute(crate::admin::sql::RECORD, &[&changes, &now])
            .await?;
        Ok(())
    }
}
