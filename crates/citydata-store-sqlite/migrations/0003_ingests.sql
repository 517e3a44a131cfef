-- Ingests (数据汇聚批次): one row per upload, with its report.
CREATE TABLE ingests (
    id              TEXT PRIMARY KEY,
    resource_id     TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    idempotency_key TEXT,
    actor           TEXT NOT NULL,
    mode            TEXT NOT NULL,
    policy          TEXT NOT NULL,
    state           TEXT NOT NULL,
    report          TEXT,
    error           TEXT,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
);
CREATE UNIQUE INDEX ingests_key ON ingests(resource_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX ingests_resource ON ingests(resource_id, created_at);
