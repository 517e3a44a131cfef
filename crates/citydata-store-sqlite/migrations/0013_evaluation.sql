-- Evaluation (#17): the center's rules (versioned), the rules version a closed period was
-- scored with, and the applications registry. The audit index serves the per-period read
-- aggregates (GROUP BY over a time range of one action at a time).
CREATE TABLE evaluation_rules (
    version    INTEGER PRIMARY KEY,
    rules      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE evaluation_periods (
    period        TEXT PRIMARY KEY,
    rules_version INTEGER NOT NULL,
    scored_by     TEXT NOT NULL,
    scored_at     INTEGER NOT NULL
);

CREATE TABLE applications (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    department TEXT NOT NULL REFERENCES departments(code),
    scenario   TEXT NOT NULL,
    url        TEXT,
    status     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX applications_department ON applications(department);

CREATE TABLE application_resources (
    application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    resource_id    TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    PRIMARY KEY (application_id, resource_id)
);
CREATE INDEX application_resources_resource ON application_resources(resource_id);

CREATE INDEX audit_log_action_at ON audit_log(action, at);
