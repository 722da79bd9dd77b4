#!/usr/bin/env bash
# Makes sure redis-server is installed, from the OS packages when it is missing:
# the cluster tests (test/cluster/) run their own redis-server on a free port.
# Used by `npm test`. A cluster in production points REDIS_URL at its own Redis.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi

cannot() {
  cat >&2 <<MSG
redis-server is not installed, and this script cannot install it here: $1
Install it yourself, then run the command again:
  Debian/Ubuntu:   sudo apt-get install redis-server
MSG
  exit 1
}

echo "redis-server not found: installing it from the OS packages (apt-get install redis-server) …"
# The package's own service is not used: each test file starts its own server.
source "$(dirname "$0")/apt-install.sh"
apt_install redis-server
echo "installed: $(command -v redis-server)"
