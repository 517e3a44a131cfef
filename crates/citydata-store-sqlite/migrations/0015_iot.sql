-- IoT collection (#19): device types (payload schema → the resource's items), devices, and MQTT
-- streams. A stream is consumed by the node holding its lease (`node`, `lease_until`).
CREATE TABLE iot_device_types (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    department    TEXT NOT NULL,
    resource_id   TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    payload       TEXT NOT NULL,
    interval_secs INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX iot_device_types_department ON iot_device_types(department);

CREATE TABLE iot_devices (
    id                  TEXT PRIMARY KEY,
    type_id             TEXT NOT NULL REFERENCES iot_device_types(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    model               TEXT,
    lon                 TEXT,
    lat                 TEXT,
    region              TEXT,
    department          TEXT NOT NULL,
    resource_id         TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    status              TEXT NOT NULL,
    last_seen           INTEGER,
    last_message        TEXT,
    messages            INTEGER NOT NULL DEFAULT 0,
    offline_notified_at INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX iot_devices_department ON iot_devices(department);
CREATE INDEX iot_devices_resource ON iot_devices(resource_id);

CREATE TABLE iot_streams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    department  TEXT NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    broker_url  TEXT NOT NULL,
    topics      TEXT NOT NULL,
    username    TEXT,
    password    TEXT,
    qos         INTEGER NOT NULL,
    batch_secs  INTEGER NOT NULL,
    batch_max   INTEGER NOT NULL,
    max_payload INTEGER NOT NULL,
    dedup_secs  INTEGER NOT NULL,
    enabled     INTEGER NOT NULL,
    node        TEXT,
    lease_until INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX iot_streams_resource ON iot_streams(resource_id);
