-- Delta Sharing (#20): recipient profiles. A profile's bearer token is stored only as its
-- SHA-256 (`secret_hash`), like API tokens; it acts for `user_id` on /delta-sharing only.
CREATE TABLE sharing_profiles (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX sharing_profiles_user ON sharing_profiles(user_id);
