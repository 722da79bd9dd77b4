#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries (initdb, postgres) are installed, from the OS packages when they are missing:
# Trellis runs its registry on a PostgreSQL server it manages under DATA_DIR/postgres.
# Used by `npm start`, `npm run hub`, `npm test` and `npm run bench`. With DATABASE_URL set and --optional given, nothing is needed.
set -euo pipefail

if [[ "${1:-}" == "--optional" && -n "${DATABASE_URL:-}" ]]; then
  exit 0
fi

for dir in /usr/lib/postgresql/*/bin "$(dirname "$(command -v postgres 2>/dev/null || echo /nonexistent/postgres)")"; do
  if [[ -x "$dir/postgres" && -x "$dir/initdb" ]]; then
    exit 0
  fi
done

cannot() {
  cat >&2 <<MSG
PostgreSQL (initdb and postgres) is not installed, and this script cannot install it here: $1
Install it yourself, then run the command again:
  Debian/Ubuntu:   sudo apt-get install postgresql
or point Trellis at an existing PostgreSQL with DATABASE_URL=postgresql://user:password@host:5432/trellis
MSG
  exit 1
}

echo "PostgreSQL not found: installing it from the OS packages (apt-get install postgresql) …"
# The package's own cluster and service are not used: Trellis runs its own server on a unix socket under DATA_DIR.
source "$(dirname "$0")/apt-install.sh"
apt_install postgresql
echo "installed: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)"
