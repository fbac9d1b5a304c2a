# Sourced by the bench/*/install_*.sh scripts: install the Debian packages of "$@" that are
# missing (idempotent), with service starts forbidden while apt runs (policy-rc.d 101: some
# packages ship init scripts). Usage: install_missing NAME PACKAGE...
install_missing() {
  local name=$1 pkg
  shift
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' \
      || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "$name: all $# packages already installed"
    return 0
  fi
  local sudo="" policy=/usr/sbin/policy-rc.d created=0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "$name: installing ${missing[*]}"
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    created=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends \
    "${missing[@]}" || { [ "$created" -eq 0 ] || $sudo rm -f "$policy"; return 1; }
  [ "$created" -eq 0 ] || $sudo rm -f "$policy"
}
