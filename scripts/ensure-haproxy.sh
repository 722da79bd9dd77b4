#!/usr/bin/env bash
# Makes sure haproxy is installed, from the OS packages when it is missing:
# the cluster tests (test/cluster/) put their own haproxy in front of the nodes they start.
# Used by `npm test`. docker-compose.yml's cluster profile runs haproxy from its image.
set -euo pipefail

if command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]]; then
  exit 0
fi

cannot() {
  cat >&2 <<MSG
haproxy is not installed, and this script cannot install it here: $1
Install it yourself, then run the command again:
  Debian/Ubuntu:   sudo apt-get install haproxy
MSG
  exit 1
}

echo "haproxy not found: installing it from the OS packages (apt-get install haproxy) …"
# The package's own service is not used: the tests start their own haproxy with a configuration they write.
source "$(dirname "$0")/apt-install.sh"
apt_install haproxy
echo "installed: $(command -v haproxy || echo /usr/sbin/haproxy)"
