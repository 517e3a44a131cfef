-- Rate counters shared by every node (#23): license verifications per client address and
-- minute, per address and neighbourhood of numbers and day, verifications per user and second.
-- `until` (RFC 3339, UTC) is when the window ends; ended windows are pruned.
CREATE TABLE rate_counters (
    scope TEXT NOT NULL,
    win   TEXT NOT NULL,
    until TEXT NOT NULL,
    used  INTEGER NOT NULL,
    PRIMARY KEY (scope, win)
);
CREATE INDEX rate_counters_until ON rate_counters (until);
