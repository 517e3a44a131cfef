-- 共享申请 (requests), their comments, and users' inboxes.
CREATE TABLE requests (
    id                   UUID PRIMARY KEY,
    resource_id          UUID NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    requester            UUID NOT NULL,
    requester_name       TEXT NOT NULL,
    requester_department TEXT,
    fields               TEXT NOT NULL,
    purpose              TEXT NOT NULL,
    basis                TEXT NOT NULL,
    scenario             TEXT NOT NULL,
    contact              TEXT NOT NULL,
    period_days          BIGINT NOT NULL,
    state                TEXT NOT NULL,
    reason               TEXT,
    decided_by           TEXT,
    decided_at           TIMESTAMPTZ,
    grant_id             UUID,
    due_at               TIMESTAMPTZ NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX requests_resource ON requests(resource_id);
CREATE INDEX requests_requester ON requests(requester);

CREATE TABLE request_comments (
    id         UUID PRIMARY KEY,
    request_id UUID NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX request_comments_request ON request_comments(request_id, created_at);

CREATE TABLE inbox (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    link       TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    read_at    TIMESTAMPTZ
);
CREATE INDEX inbox_user ON inbox(user_id, created_at);
