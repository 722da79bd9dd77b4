#!/usr/bin/env bash
# Command-line tools the tests use besides influxd: openssl makes the self-signed
# certificate of the TLS tests at run time. Installed from the OS packages when missing.
set -euo pipefail

command -v openssl >/dev/null 2>&1 && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "openssl is missing (the TLS tests make a certificate with it); install it with your package manager" >&2
  exit 1
fi
if [[ "$(id -u)" == 0 ]]; then SUDO=(); elif sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
  echo "openssl is missing and installing it needs root or password-less sudo: sudo apt-get install openssl" >&2
  exit 1
fi
echo "openssl not found: installing it from the OS packages …"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get install -y --no-install-recommends openssl >/tmp/trellis-apt.log 2>&1 \
  || { "${SUDO[@]}" apt-get update -qq >>/tmp/trellis-apt.log 2>&1 && "${SUDO[@]}" apt-get install -y --no-install-recommends openssl >>/tmp/trellis-apt.log 2>&1; } \
  || { echo "apt-get install openssl failed (see /tmp/trellis-apt.log)" >&2; exit 1; }
