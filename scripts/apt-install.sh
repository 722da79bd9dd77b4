# Sourced by the ensure-*.sh scripts: apt_install PACKAGE installs a Debian
# package, as root or with password-less sudo, refreshing the package lists
# once if the first attempt fails. The caller defines cannot REASON, which
# explains what to do instead and exits.

apt_install () {
  local package=$1 log=/tmp/trellis-apt.log sudo=()
  command -v apt-get >/dev/null 2>&1 || cannot "no apt-get on this system (Debian/Ubuntu only)."
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else cannot "installing needs root or password-less sudo."; fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends "$package" >"$log" 2>&1; then
    echo "refreshing the package lists first …"
    "${sudo[@]}" apt-get update -qq >>"$log" 2>&1 || cannot "apt-get update failed (see $log)."
    "${sudo[@]}" apt-get install -y --no-install-recommends "$package" >>"$log" 2>&1 || cannot "apt-get install $package failed (see $log)."
  fi
}
