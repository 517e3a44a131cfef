-- The resource catalog (信息资源目录). `doc` holds the whole resource as JSON; the other
-- columns exist for filtering, uniqueness and ordering.
CREATE TABLE resources (
    id             TEXT PRIMARY KEY,
    code           TEXT NOT NULL UNIQUE,
    slug           TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    provider       TEXT NOT NULL REFERENCES departments(code),
    class          TEXT NOT NULL,
    theme          TEXT NOT NULL,
    share_type     TEXT NOT NULL,
    open_type      TEXT NOT NULL,
    update_cycle   TEXT NOT NULL,
    state          TEXT NOT NULL,
    security_level TEXT NOT NULL,
    regions        TEXT NOT NULL, -- ',321200,321202,'
    revision       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    doc            TEXT NOT NULL
);
CREATE INDEX resources_provider ON resources(provider);
CREATE INDEX resources_state ON resources(state);
CREATE INDEX resources_updated ON resources(updated_at);

CREATE TABLE resource_revisions (
    resource_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    revision    INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    changes     TEXT NOT NULL,
    PRIMARY KEY (resource_id, revision)
);

-- Every catalog write appends here, so each node's search index can catch up.
CREATE TABLE catalog_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_id TEXT NOT NULL,
    at          INTEGER NOT NULL
);
