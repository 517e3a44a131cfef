-- Catalog harvest (#18): which local catalog entry stands for which entry of a harvested catalog
-- (CKAN package id or DCAT dataset IRI), so that a run updates instead of duplicating and
-- withdraws what the source no longer lists. The origin shown on the dataset page.
CREATE TABLE harvest_records (
    source_id   TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    identifier  TEXT NOT NULL,
    resource_id TEXT NOT NULL UNIQUE REFERENCES resources(id) ON DELETE CASCADE,
    url         TEXT,
    modified    TEXT,
    withdrawn   INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (source_id, identifier)
);
