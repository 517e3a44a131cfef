-- Data quality (#16): a report per table version, 纠错 tickets, reminders sent once per period.
CREATE TABLE quality_reports (
    resource_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    ingest_id   TEXT,
    report      TEXT NOT NULL,
    samples     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (resource_id, version)
);

CREATE TABLE quality_tickets (
    id                  TEXT PRIMARY KEY,
    resource_id         TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    department          TEXT NOT NULL,
    title               TEXT NOT NULL,
    description         TEXT NOT NULL,
    record_key          TEXT,
    item                TEXT,
    reporter_id         TEXT,
    reporter            TEXT NOT NULL,
    state               TEXT NOT NULL,
    fixed_version       INTEGER,
    due_at              INTEGER NOT NULL,
    overdue_notified_at INTEGER,
    history             TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX quality_tickets_resource ON quality_tickets(resource_id, created_at);
CREATE INDEX quality_tickets_open ON quality_tickets(state, due_at);
CREATE INDEX quality_tickets_department ON quality_tickets(department, created_at);

CREATE TABLE quality_reminders (
    resource_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    period      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    sent_at     INTEGER NOT NULL,
    PRIMARY KEY (resource_id, period, kind)
);
