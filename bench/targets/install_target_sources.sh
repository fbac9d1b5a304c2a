#!/usr/bin/env bash
# Debian packages whose GNU Texinfo manuals become the demo's Meta-rater targets (root).
set -euo pipefail
apt-get install -y --no-install-recommends bc bzip2-doc diffutils ed findutils gettext gnupg \
  guile-3.0-doc indent info libffi-dev libgpg-error-dev libtasn1-doc libtool-doc m4-doc \
  maxima-doc mtools nettle-dev octave-doc recutils readline-common screen sharutils texinfo \
  time units wdiff wget
