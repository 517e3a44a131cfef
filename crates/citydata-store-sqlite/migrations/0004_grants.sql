-- Grants (授权): what a department or a public user may read of a resource.
CREATE TABLE grants (
    id           TEXT PRIMARY KEY,
    resource_id  TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    grantee_kind TEXT NOT NULL CHECK (grantee_kind IN ('department', 'user')),
    grantee      TEXT NOT NULL,
    fields       TEXT NOT NULL,
    row_filter   TEXT,
    masks        TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    valid_from   INTEGER NOT NULL,
    expires_at   INTEGER,
    granted_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    revoked_by   TEXT
);
CREATE INDEX grants_resource ON grants(resource_id);
CREATE INDEX grants_grantee ON grants(grantee_kind, grantee);
