#!/usr/bin/env bash
# Publish simulated air-quality stations to a local MQTT broker, for `serve --demo` with
# `demo_mqtt_url` (see README, "IoT streams"). Each station reports every INTERVAL seconds on
# citydata/air/<station> at QoS 1: {"time": RFC 3339, "aqi": n, "pm25": n, "pm10": n}.
# Usage: scripts/iot-simulate.sh [HOST] [PORT] [INTERVAL] [ROUNDS]   (ROUNDS 0 = forever)
set -euo pipefail
host="${1:-127.0.0.1}"
port="${2:-1883}"
interval="${3:-5}"
rounds="${4:-0}"
command -v mosquitto_pub >/dev/null || { echo "mosquitto_pub is missing: apt-get install mosquitto-clients" >&2; exit 1; }
stations=(AQ-HL01 AQ-GG01 AQ-JY01 AQ-XH01 AQ-JJ01 AQ-TX01)
n=0
while :; do
    now="$(date +%Y-%m-%dT%H:%M:%S%:z)"
    for i in "${!stations[@]}"; do
        s="${stations[$i]}"
        # A daily wave per station plus noise, in plausible ranges.
        pm25=$(( 20 + (i * 7) + (RANDOM % 30) ))
        pm10=$(( pm25 + 15 + (RANDOM % 20) ))
        aqi=$(( pm25 * 3 / 2 + (RANDOM % 10) ))
        mosquitto_pub -h "$host" -p "$port" -q 1 -t "citydata/air/$s" \
            -m "{\"time\":\"$now\",\"aqi\":$aqi,\"pm25\":$pm25,\"pm10\":$pm10}"
    done
    n=$((n + 1))
    echo "$now: ${#stations[@]} stations published (round $n)"
    if [ "$rounds" -gt 0 ] && [ "$n" -ge "$rounds" ]; then break; fi
    sleep "$interval"
done
