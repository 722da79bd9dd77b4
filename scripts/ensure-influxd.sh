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

command -v apt-get >/dev/null 2>&1 || cannot "no apt-get on this system (Debian/Ubuntu only)."

if [[ "$(id -u)" == 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  cannot "installing needs root or password-less sudo."
fi

echo "influxd not found: installing InfluxDB 1.x from the OS packages (apt-get install influxdb) …"
export DEBIAN_FRONTEND=noninteractive
# The package's service is not used: Trellis runs its own influxd on 127.0.0.1.
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends influxdb >/tmp/trellis-apt.log 2>&1; then
  echo "refreshing the package lists first …"
  "${SUDO[@]}" apt-get update -qq >>/tmp/trellis-apt.log 2>&1 || cannot "apt-get update failed (see /tmp/trellis-apt.log)."
  "${SUDO[@]}" apt-get install -y --no-install-recommends influxdb >>/tmp/trellis-apt.log 2>&1 || cannot "apt-get install influxdb failed (see /tmp/trellis-apt.log)."
fi
echo "installed: $(influxd version 2>/dev/null || echo influxd)"
