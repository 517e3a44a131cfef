-- Scheduled collection (#18): sources owned by a provider department and their runs. A run is
-- queued, claimed by one node (its lease renewed by a heartbeat), and finished as succeeded,
-- failed or aborted; the partial unique index keeps at most one running run per source.
CREATE TABLE sources (
    id                   UUID PRIMARY KEY,
    department           TEXT NOT NULL REFERENCES departments(code),
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    resource_id          UUID REFERENCES resources(id) ON DELETE CASCADE,
    config               TEXT NOT NULL,
    secret               TEXT,
    schedule             TEXT,
    enabled              BOOLEAN NOT NULL,
    max_retries          INTEGER NOT NULL,
    watermark            TEXT,
    next_run_at          TIMESTAMPTZ,
    consecutive_failures INTEGER NOT NULL,
    created_by           TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX sources_department ON sources(department, created_at);
CREATE INDEX sources_due ON sources(next_run_at) WHERE enabled;

CREATE TABLE source_runs (
    id              UUID PRIMARY KEY,
    source_id       UUID NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    state           TEXT NOT NULL,
    cause           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    not_before      TIMESTAMPTZ NOT NULL,
    node            TEXT,
    lease_until     TIMESTAMPTZ,
    abort_requested BOOLEAN NOT NULL,
    report          TEXT,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX source_runs_source ON source_runs(source_id, created_at);
CREATE INDEX source_runs_queued ON source_runs(not_before) WHERE state = 'queued';
CREATE UNIQUE INDEX source_runs_one_running ON source_runs(source_id) WHERE state = 'running';
