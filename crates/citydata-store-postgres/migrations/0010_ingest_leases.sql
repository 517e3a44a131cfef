-- Ingest leases: the node running an ingest renews `lease_until`; a running ingest whose lease
-- has expired (its node died) is settled by any node. `body_sha256` lets a retry with the same
-- Idempotency-Key but another body be told apart.
ALTER TABLE ingests ADD COLUMN node TEXT;
ALTER TABLE ingests ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE ingests ADD COLUMN body_sha256 TEXT;
CREATE INDEX ingests_running ON ingests(lease_until) WHERE state = 'running';
