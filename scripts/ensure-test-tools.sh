#!/usr/bin/env bash
# Command-line tools the tests use besides influxd: openssl makes the self-signed
# certificate of the TLS tests at run time. Installed from the OS packages when missing.
set -euo pipefail

command -v openssl >/dev/null 2>&1 && exit 0

cannot() {
  echo "openssl is missing (the TLS tests make a certificate with it), and this script cannot install it here: $1 Install it with your package manager (Debian/Ubuntu: sudo apt-get install openssl)." >&2
  exit 1
}

echo "openssl not found: installing it from the OS packages …"
source "$(dirname "$0")/apt-install.sh"
apt_install openssl
