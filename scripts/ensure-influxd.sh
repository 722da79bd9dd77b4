#!/usr/bin/env bash
# Makes sure InfluxDB 1.x (influxd) is installed, from the OS packages when it is missing.
# Used by `npm start`, `npm test` and `npm run bench`. With INFLUX_URL set and --optional given, nothing is needed.
set -euo pipefail

if [[ "${1:-}" == "--optional" && -n "${INFLUX_URL:-}" ]]; then
  exit 0
fi

for candidate in "$(command -v influxd 2>/dev/null || true)" /usr/bin/influxd /usr/sbin/influxd /usr/local/bin/influxd; do
  if [[ -n "$candidate" && -x "$candidate" ]]; then
    exit 0
  fi
done

cannot() {
  cat >&2 <<MSG
influxd (InfluxDB 1.x) is not installed, and this script cannot install it here: $1
Install it yourself, then run the command again:
  Debian/Ubuntu:   sudo apt-get install influxdb
  Docker:          docker compose up -d influxdb   and set INFLUX_URL=http://127.0.0.1:8086
or point Trellis at an existing InfluxDB 1.x with INFLUX_URL=http://host:8086
MSG
  exit 1
}

echo "influxd not found: installing InfluxDB 1.x from the OS packages (apt-get install influxdb) …"
# The package's service is not used: Trellis runs its own influxd on 127.0.0.1.
source "$(dirname "$0")/apt-install.sh"
apt_install influxdb
echo "installed: $(influxd version 2>/dev/null || echo influxd)"
