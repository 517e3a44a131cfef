-- Signed checkpoints of the audit chain: (seq, head hash, time) with an HMAC under a key kept
-- outside the database. A rewritten and re-hashed chain disagrees with them.
CREATE TABLE audit_checkpoints (
    seq  INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    at   INTEGER NOT NULL,
    mac  TEXT NOT NULL
);
