-- 共享申请 (requests), their comments, and users' inboxes.
CREATE TABLE requests (
    id                   TEXT PRIMARY KEY,
    resource_id          TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    requester            TEXT NOT NULL,
    requester_name       TEXT NOT NULL,
    requester_department TEXT,
    fields               TEXT NOT NULL,
    purpose              TEXT NOT NULL,
    basis                TEXT NOT NULL,
    scenario             TEXT NOT NULL,
    contact              TEXT NOT NULL,
    period_days          INTEGER NOT NULL,
    state                TEXT NOT NULL,
    reason               TEXT,
    decided_by           TEXT,
    decided_at           INTEGER,
    grant_id             TEXT,
    due_at               INTEGER NOT NULL,
    created_at           INTEGER NOT NULL
);
CREATE INDEX requests_resource ON requests(resource_id);
CREATE INDEX requests_requester ON requests(requester);

CREATE TABLE request_comments (
    id         TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX request_comments_request ON request_comments(request_id, created_at);

CREATE TABLE inbox (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    link       TEXT,
    created_at INTEGER NOT NULL,
    read_at    INTEGER
);
CREATE INDEX inbox_user ON inbox(user_id, created_at);
