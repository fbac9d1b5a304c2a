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

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' \
    || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install_sources: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install_sources: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
