-- Evaluation (评估考核) reads the audit log by action and time and groups by target,
-- department and actor: a covering index makes those scans index-only (no lookup of each
-- entry's row). It replaces the (action, at) index of 0013, which it contains.
CREATE INDEX audit_log_eval ON audit_log(action, at, outcome, target, department, actor);
DROP INDEX audit_log_action_at;
