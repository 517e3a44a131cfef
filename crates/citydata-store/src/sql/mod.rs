//! The SQL both backends share: every statement written once with `$N` placeholders (SQLite
//! accepts them too), the row mapping, and the store traits implemented for any
//! [`SqlBackend`]. A backend supplies only what really differs: how a UUID and a time are bound
//! and read (SQLite: text and INTEGER microseconds; PostgreSQL: `UUID` and `TIMESTAMPTZ`), how a
//! write transaction begins, a few SQL fragments ([`SqlBackend::CLAIM_LOCK`],
//! [`SqlBackend::AUDIT_HEAD_LOCK`], [`SqlBackend::STRPOS`]), and how a driver error maps to
//! [`StoreError`].

mod accounts;
mod auth;
mod catalog;
mod evaluation;
mod files;
mod grants;
mod ingests;
mod iot;
mod oidc;
mod quality;
mod rate;
mod requests;
mod sharing;
mod sources;
mod totp;
mod verify;
mod webhooks;

use crate::{Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One argument of a [`Stmt`], as the shared code has it; the backend binds it in its own
/// representation.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(Option<String>),
    I32(Option<i32>),
    I64(Option<i64>),
    Bool(bool),
    Uuid(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
}

macro_rules! arg_from {
    ($($t:ty => |$v:ident| $e:expr;)*) => {
        $(impl From<$t> for Arg {
            fn from($v: $t) -> Self {
                $e
            }
        })*
    };
}

arg_from! {
    &str => |v| Arg::Text(Some(v.to_owned()));
    String => |v| Arg::Text(Some(v));
    &String => |v| Arg::Text(Some(v.clone()));
    Option<&str> => |v| Arg::Text(v.map(str::to_owned));
    Option<String> => |v| Arg::Text(v);
    &Option<String> => |v| Arg::Text(v.clone());
    i32 => |v| Arg::I32(Some(v));
    Option<i32> => |v| Arg::I32(v);
    i64 => |v| Arg::I64(Some(v));
    Option<i64> => |v| Arg::I64(v);
    bool => |v| Arg::Bool(v);
    Uuid => |v| Arg::Uuid(Some(v));
    Option<Uuid> => |v| Arg::Uuid(v);
    DateTime<Utc> => |v| Arg::Time(Some(v));
    Option<DateTime<Utc>> => |v| Arg::Time(v);
}

/// A statement and its arguments. Either written whole with `$1`, `$2`, … and [`Stmt::bind`]
/// in order, or built piecewise with [`Stmt::push`] and [`Stmt::push_bind`] (which writes the
/// next `$N` itself).
#[derive(Debug, Clone)]
pub struct Stmt {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl Stmt {
    pub fn new(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), args: Vec::new() }
    }

    pub fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    pub fn push_bind(&mut self, arg: impl Into<Arg>) -> &mut Self {
        self.args.push(arg.into());
        self.sql.push_str(&format!("${}", self.args.len()));
        self
    }
}

/// `Stmt::new`, shorter.
pub fn sql(s: &str) -> Stmt {
    Stmt::new(s)
}

/// A fetched row as a backend reads it: each method returns the column's value (`None` for
/// NULL) or the decode error's text. The shared code wraps it in [`Cols`].
pub trait SqlRow: Send + Sync {
    fn text(&self, col: &str) -> std::result::Result<Option<String>, String>;
    /// An integer column of any width.
    fn int(&self, col: &str) -> std::result::Result<Option<i64>, String>;
    fn uuid(&self, col: &str) -> std::result::Result<Option<Uuid>, String>;
    fn time(&self, col: &str) -> std::result::Result<Option<DateTime<Utc>>, String>;
    fn flag(&self, col: &str) -> std::result::Result<Option<bool>, String>;
}

/// What a backend provides; the store traits are implemented for every `SqlBackend`.
#[async_trait]
pub trait SqlBackend: Send + Sync + 'static {
    type Row: SqlRow;
    /// An open write transaction (rolled back when dropped uncommitted).
    type Tx: Send;
    /// Appended to the subquery that picks the webhook deliveries to claim: PostgreSQL's
    /// `FOR UPDATE SKIP LOCKED` (nodes claim disjoint rows); empty on SQLite (one writer).
    const CLAIM_LOCK: &'static str;
    /// Appended to the select of the audit head inside an append: PostgreSQL's `FOR UPDATE`
    /// (appends from all processes serialize on the one row); empty on SQLite, whose write
    /// transaction already excludes other writers.
    const AUDIT_HEAD_LOCK: &'static str;
    /// The function giving the position of a substring, `(haystack, needle)`: `instr`, `strpos`.
    const STRPOS: &'static str;

    /// A driver error as a [`StoreError`] (`Unavailable` when the database cannot be reached).
    fn error(e: sqlx::Error) -> StoreError;
    /// Begin a write transaction.
    async fn begin(&self) -> std::result::Result<Self::Tx, sqlx::Error>;
    async fn commit(tx: Self::Tx) -> std::result::Result<(), sqlx::Error>;
    /// Run `s` and return its rows, in `tx` when given, else on the pool.
    async fn fetch(&self, tx: Option<&mut Self::Tx>, s: Stmt) -> std::result::Result<Vec<Self::Row>, sqlx::Error>;
    /// Run `s` and return how many rows it changed.
    async fn execute(&self, tx: Option<&mut Self::Tx>, s: Stmt) -> std::result::Result<u64, sqlx::Error>;
    /// Held while appending to the audit chain: SQLite serializes appends of one process here
    /// (so that its tasks wait instead of spinning on `SQLITE_BUSY`); PostgreSQL needs none.
    async fn audit_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }
}

/// The shared code's shorthands over a backend, with errors mapped to [`StoreError`].
#[async_trait]
pub(crate) trait Db: SqlBackend {
    async fn all(&self, s: Stmt) -> Result<Vec<Self::Row>> {
        self.fetch(None, s).await.map_err(Self::error)
    }

    async fn one(&self, s: Stmt) -> Result<Option<Self::Row>> {
        Ok(self.all(s).await?.into_iter().next())
    }

    async fn run(&self, s: Stmt) -> Result<u64> {
        self.execute(None, s).await.map_err(Self::error)
    }

    async fn tx_run(&self, tx: &mut Self::Tx, s: Stmt) -> Result<u64> {
        self.execute(Some(tx), s).await.map_err(Self::error)
    }

    async fn tx_begin(&self) -> Result<Self::Tx> {
        self.begin().await.map_err(Self::error)
    }

    async fn tx_commit(&self, tx: Self::Tx) -> Result<()> {
        Self::commit(tx).await.map_err(Self::error)
    }

    /// The number in column `n` of the one row `s` returns.
    async fn count(&self, s: Stmt, table: &'static str) -> Result<i64> {
        let rows = self.all(s).await?;
        let row = rows.first().ok_or_else(|| StoreError::Corrupt(format!("{table}: COUNT returned no row")))?;
        Cols::new(row, table).i64("n")
    }

    /// Map each row with `f`.
    async fn map<T: Send>(
        &self,
        s: Stmt,
        table: &'static str,
        f: for<'c, 'r> fn(&'c Cols<'r, Self::Row>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.all(s).await?.iter().map(|r| f(&Cols::new(r, table))).collect()
    }

    /// Map the first row, if any, with `f`.
    async fn map_one<T: Send>(
        &self,
        s: Stmt,
        table: &'static str,
        f: for<'c, 'r> fn(&'c Cols<'r, Self::Row>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.one(s).await?.as_ref().map(|r| f(&Cols::new(r, table))).transpose()
    }
}

impl<B: SqlBackend> Db for B {}

/// `true` when `e` is a database error of `kind` (a unique or foreign-key violation).
pub(crate) fn is_kind(e: &sqlx::Error, kind: sqlx::error::ErrorKind) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == kind)
}

pub(crate) fn unique(e: &sqlx::Error) -> bool {
    is_kind(e, sqlx::error::ErrorKind::UniqueViolation)
}

pub(crate) fn foreign_key(e: &sqlx::Error) -> bool {
    is_kind(e, sqlx::error::ErrorKind::ForeignKeyViolation)
}

/// A row of `table`, read column by column; every failure is `StoreError::Corrupt` naming
/// `table.column`.
pub struct Cols<'a, R> {
    row: &'a R,
    table: &'static str,
}

impl<'a, R: SqlRow> Cols<'a, R> {
    pub fn new(row: &'a R, table: &'static str) -> Self {
        Self { row, table }
    }

    pub fn corrupt(&self, col: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{}.{col}: {e}", self.table))
    }

    fn req<T>(&self, col: &str, v: std::result::Result<Option<T>, String>) -> Result<T> {
        v.map_err(|e| self.corrupt(col, e))?.ok_or_else(|| self.corrupt(col, "unexpected NULL"))
    }

    pub fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.row.text(col).map_err(|e| self.corrupt(col, e))
    }

    pub fn text(&self, col: &str) -> Result<String> {
        self.req(col, self.row.text(col))
    }

    pub fn i64(&self, col: &str) -> Result<i64> {
        self.req(col, self.row.int(col))
    }

    pub fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        self.row.int(col).map_err(|e| self.corrupt(col, e))
    }

    pub fn opt_i32(&self, col: &str) -> Result<Option<i32>> {
        match self.row.int(col).map_err(|e| self.corrupt(col, e))? {
            Some(v) => i32::try_from(v).map(Some).map_err(|e| self.corrupt(col, e)),
            None => Ok(None),
        }
    }

    pub fn i32(&self, col: &str) -> Result<i32> {
        self.opt_i32(col)?.ok_or_else(|| self.corrupt(col, "unexpected NULL"))
    }

    pub fn uuid(&self, col: &str) -> Result<Uuid> {
        self.req(col, self.row.uuid(col))
    }

    pub fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        self.row.uuid(col).map_err(|e| self.corrupt(col, e))
    }

    pub fn time(&self, col: &str) -> Result<DateTime<Utc>> {
        self.req(col, self.row.time(col))
    }

    pub fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        self.row.time(col).map_err(|e| self.corrupt(col, e))
    }

    pub fn flag(&self, col: &str) -> Result<bool> {
        self.req(col, self.row.flag(col))
    }

    /// A text column holding JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self, col: &str) -> Result<T> {
        serde_json::from_str(&self.text(col)?).map_err(|e| self.corrupt(col, e))
    }

    /// A text column parsed by `parse` (a domain type's or a state's), its error named.
    pub fn parse<T, E: std::fmt::Display>(
        &self,
        col: &str,
        parse: impl FnOnce(&str) -> std::result::Result<T, E>,
    ) -> Result<T> {
        let s = self.text(col)?;
        parse(&s).map_err(|e| self.corrupt(col, e))
    }

    /// A text column holding one of an enum's texts.
    pub fn state<T>(&self, col: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
        let s = self.text(col)?;
        parse(&s).ok_or_else(|| self.corrupt(col, format!("unknown value {s:?}")))
    }
}

/// JSON text of a value that always serializes (lists and maps of strings).
pub(crate) fn json_text<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::backend(format!("serialize: {e}")))
}
