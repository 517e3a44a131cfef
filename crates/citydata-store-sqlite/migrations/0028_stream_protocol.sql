-- MQTT 5 and private certificate authorities for IoT streams: the protocol version a stream
-- speaks (4 = MQTT 3.1.1, 5 = MQTT 5.0) and the PEM certificates an mqtts broker's certificate
-- is checked against in addition to the system's roots.
ALTER TABLE iot_streams ADD COLUMN mqtt_version INTEGER NOT NULL DEFAULT 4;
ALTER TABLE iot_streams ADD COLUMN ca_pem TEXT;
