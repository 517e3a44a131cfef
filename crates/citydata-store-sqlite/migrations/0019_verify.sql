-- 可用不可见 (#23): verification grants. A grant with a row here is a verification grant: it
-- answers match / no_match / not_found and gives no rows (`grants_for_resource`, which the gate
-- reads, leaves it out). The row is written before the grant's own row, so a grant can never
-- exist for a moment as a read grant; hence no foreign key.
CREATE TABLE verify_grants (
    grant_id    TEXT PRIMARY KEY,
    daily_quota INTEGER NOT NULL,
    max_batch   INTEGER NOT NULL
);

-- Records verified per scope (`grant:<id>` or `user:<id>`) and day (UTC, YYYY-MM-DD): quotas.
CREATE TABLE verify_usage (
    scope TEXT NOT NULL,
    day   TEXT NOT NULL,
    used  INTEGER NOT NULL,
    PRIMARY KEY (scope, day)
);

-- Requests of kind `verify`: approved into a verification grant (written before the request).
CREATE TABLE verify_requests (
    request_id TEXT PRIMARY KEY
);
