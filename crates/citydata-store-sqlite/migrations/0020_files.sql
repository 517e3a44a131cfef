-- File distributions (#24): every version of every file of a resource; the bytes are in the
-- lake's object store under files/sha256/<sha256>.
CREATE TABLE resource_files (
    id           TEXT PRIMARY KEY,
    resource_id  TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    description  TEXT,
    deidentified INTEGER NOT NULL,
    uploaded_by  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (resource_id, name, version)
);
CREATE INDEX resource_files_sha256 ON resource_files(sha256);
