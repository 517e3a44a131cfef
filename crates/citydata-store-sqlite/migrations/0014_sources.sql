-- Scheduled collection (#18): sources owned by a provider department and their runs. A run is
-- queued, claimed by one node (its lease renewed by a heartbeat), and finished as succeeded,
-- failed or aborted; the partial unique index keeps at most one running run per source.
CREATE TABLE sources (
    id                   TEXT PRIMARY KEY,
    department           TEXT NOT NULL REFERENCES departments(code),
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    resource_id          TEXT REFERENCES resources(id) ON DELETE CASCADE,
    config               TEXT NOT NULL,
    secret               TEXT,
    schedule             TEXT,
    enabled              INTEGER NOT NULL,
    max_retries          INTEGER NOT NULL,
    watermark            TEXT,
    next_run_at          INTEGER,
    consecutive_failures INTEGER NOT NULL,
    created_by           TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX sources_department ON sources(department, created_at);
CREATE INDEX sources_due ON sources(next_run_at) WHERE enabled = 1;

CREATE TABLE source_runs (
    id              TEXT PRIMARY KEY,
    source_id       TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    state           TEXT NOT NULL,
    cause           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    not_before      INTEGER NOT NULL,
    node            TEXT,
    lease_until     INTEGER,
    abort_requested INTEGER NOT NULL,
    report          TEXT,
    error           TEXT,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER
);
CREATE INDEX source_runs_source ON source_runs(source_id, created_at);
CREATE INDEX source_runs_queued ON source_runs(not_before) WHERE state = 'queued';
CREATE UNIQUE INDEX source_runs_one_running ON source_runs(source_id) WHERE state = 'running';
