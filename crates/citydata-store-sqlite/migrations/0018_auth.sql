-- 统一认证 (issue #21): token scopes and resource lists, service accounts.
-- A token without `scopes` (every token made before this migration) keeps every scope;
-- `resources` NULL reaches every resource. Both are space-separated lists.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
ALTER TABLE api_tokens ADD COLUMN resources TEXT;

-- A service account (服务账号) is a user that holds tokens and cannot log in: its password
-- hash is no PHC string, and login refuses any user listed here.
CREATE TABLE service_accounts (
    user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    department  TEXT NOT NULL REFERENCES departments(code),
    description TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX service_accounts_department ON service_accounts(department);

-- Sessions people can manage: a public id (never the cookie, never its hash), the client
-- address and browser at login, and when the session was last used (the idle timeout).
ALTER TABLE sessions ADD COLUMN public_id TEXT;
ALTER TABLE sessions ADD COLUMN client TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER;
UPDATE sessions SET public_id = substr(id_hash, 1, 32);
CREATE INDEX sessions_user ON sessions(user_id);
