/// What went wrong in a store. Backend messages never reach API clients: the API maps
/// `Backend` and `Corrupt` to a generic 500 and logs the detail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; the string names what exists already (e.g. `department gaj`).
    #[error("already exists: {0}")]
    Conflict(String),
    /// A referenced row does not exist (e.g. a membership in an unknown department).
    #[error("not found: {0}")]
    NotFound(String),
    /// Stored data could not be read back into domain types; the message names the table and
    /// column (`grants.valid_from: …`), never the SQL.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed (SQL, a bug, a constraint the caller could not foresee). Keeps the
    /// driver's error as its source.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached right now: connection refused or lost, the pool had no
    /// connection within its acquire timeout, the server is shutting down, or (SQLite) the
    /// file stayed locked past the busy timeout. Transient: the API answers 503
    /// `store_unavailable` with `Retry-After`, and the pool reconnects by itself.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// A `Backend` error from a message of our own (no driver error behind it).
    pub fn backend(message: impl Into<String>) -> Self {
        Self::Backend(message.into().into())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
