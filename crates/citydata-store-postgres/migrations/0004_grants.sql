-- Grants (授权): what a department or a public user may read of a resource.
CREATE TABLE grants (
    id           UUID PRIMARY KEY,
    resource_id  UUID NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    grantee_kind TEXT NOT NULL CHECK (grantee_kind IN ('department', 'user')),
    grantee      TEXT NOT NULL,
    fields       TEXT NOT NULL,
    row_filter   TEXT,
    masks        TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    valid_from   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    granted_by   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    revoked_by   TEXT
);
CREATE INDEX grants_resource ON grants(resource_id);
CREATE INDEX grants_grantee ON grants(grantee_kind, grantee);
