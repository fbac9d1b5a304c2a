#!/usr/bin/env bash
# Install the Debian packages that bench/corpus/build_sample.py reads (idempotent).
# The sample corpus is rebuilt byte-identically only from the same package versions;
# SOURCES.md records the versions used for the committed data/sample/.
set -euo pipefail

PACKAGES=(
  # web
  python3.11-doc debian-reference-en r-doc-html zsh-doc bash-doc fortunes fortunes-min
  # code
  libpython3.11-minimal libpython3.11-stdlib python3-lib2to3 perl-modules-5.36 emacs-el
  # books
  bible-kjv bible-kjv-text debian-handbook perl-doc
  # reference
  dict-gcide dict-foldoc dict-jargon dict-devil
  # technical
  linux-doc-6.1 git-doc
  # qa
  debian-faq debian-faq-de debian-faq-fr emacs-common python-django-doc
  # only their changelog/copyright files are read (web)
  coreutils dpkg grep gzip sed tar perl bash dictd zsh-common
)

source "$(dirname "$0")/../install_debian.sh"
install_missing install_sources "${PACKAGES[@]}"
