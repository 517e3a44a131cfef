-- 统一认证 (issue #21): OpenID Connect sign-in.
-- An account made at first sign-in is linked to the provider by (issuer, subject), never by a
-- name the provider sends. `roles_pinned`: a department admin fixed the roles locally, and
-- sign-ins no longer replace the memberships from claims.
CREATE TABLE oidc_identities (
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    provider      TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    roles_pinned  BOOLEAN NOT NULL DEFAULT false,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE UNIQUE INDEX oidc_identities_user ON oidc_identities(user_id);

-- A sign-in under way: the state (stored as its SHA-256), the nonce and PKCE verifier, where
-- to go after; taken (deleted) by the callback, so each state works once.
CREATE TABLE oidc_states (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX oidc_states_expires ON oidc_states(expires_at);

-- Sessions opened by a provider: the ID token for RP-initiated logout (`id_token_hint`).
CREATE TABLE oidc_sessions (
    session_hash TEXT PRIMARY KEY REFERENCES sessions(id_hash) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    id_token     TEXT NOT NULL
);

-- 动态口令 (TOTP, RFC 6238) for administrators with local passwords: the secret sealed under
-- the server secret (XChaCha20-Poly1305, the user id as associated data); `confirmed_at` is
-- set by the first right code; `last_step` refuses a code used twice.
CREATE TABLE totp_secrets (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    last_step    BIGINT
);

-- Recovery codes, argon2-hashed, each usable once.
CREATE TABLE totp_recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (user_id, code_hash)
);
