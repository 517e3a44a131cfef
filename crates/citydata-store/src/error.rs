/// What went wrong in a store. Backend messages never reach API clients: the API maps
/// `Backend` to a generic 500 and logs the detail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; the string names what exists already (e.g. `department gaj`).
    #[error("already exists: {0}")]
    Conflict(String),
    /// A referenced row does not exist (e.g. a membership in an unknown department).
    #[error("not found: {0}")]
    NotFound(String),
    /// Stored data could not be read back into domain types.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed (connection, IO, SQL).
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
