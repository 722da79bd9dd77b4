#!/usr/bin/env bash
# The console's browser tests drive Debian's chromium through playwright-core,
# which downloads no browser of its own. Installed from the OS packages when missing.
set -euo pipefail

[[ -x /usr/bin/chromium ]] && exit 0

cannot() {
  echo "chromium is missing (the console tests in test/console drive it), and this script cannot install it here: $1 Install it with your package manager (Debian/Ubuntu: sudo apt-get install chromium)." >&2
  exit 1
}

echo "chromium not found: installing it from the OS packages …"
source "$(dirname "$0")/apt-install.sh"
apt_install chromium
