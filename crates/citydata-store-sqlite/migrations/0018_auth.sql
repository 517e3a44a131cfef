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
