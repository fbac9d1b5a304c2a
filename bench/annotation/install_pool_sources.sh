#!/usr/bin/env bash
# Install the Debian packages that bench/annotation/build_pool_v2.py reads (idempotent).
# None of them is a source of the bundled corpus (data/sample/SOURCES.md); the build checks
# that again. The pool is rebuilt byte-identically only from the same package versions:
# data/annotations/v2/SOURCES.md records the versions used for the committed batches.
# Services are never started (policy-rc.d 101 while installing).
set -euo pipefail

PACKAGES=(
  # log
  fail2ban gcc-12-test-results
  # dictionary
  dict-wn dict-vera dict-elements dict-freedict-eng-deu dict-freedict-fra-eng
  dict-freedict-spa-eng
  # foreign-docs (man pages in other languages) and man pages / info manuals in English
  manpages-de manpages-fr manpages-es manpages-pl manpages-ru manpages-pt-br manpages-it
  man-db groff-base gawk wget screen
  # html-page
  apache2-doc postgresql-doc-15 sqlite3-doc
  # minified
  libjs-jquery libjs-bootstrap4 libjs-d3 libjs-lodash libjs-jquery-ui libjs-highlight.js
  libjs-underscore libjs-sphinxdoc
  # academic (R vignettes: Sweave/knitr sources and the PDFs built from them)
  r-cran-zoo r-cran-sandwich r-cran-lme4 r-cran-strucchange r-cran-lmtest r-cran-vcd
  r-cran-pscl r-cran-partykit r-cran-coin r-cran-multcomp r-cran-quantreg r-cran-plm
  r-cran-survival poppler-utils
  # source-code
  golang-github-sirupsen-logrus-dev golang-github-pkg-errors-dev golang-golang-x-text-dev
  golang-github-spf13-cobra-dev librust-regex-dev librust-clap-dev librust-rand-dev
  librust-serde-dev ruby-thor ruby-rspec-core liblua5.4-dev lua5.4 libcurl4-openssl-dev
  tcl8.6 node-commander
  # table-data
  unicode-data iso-codes pci.ids usb.ids distro-info-data wamerican hwdata
  # config
  nginx-common logrotate
)

source "$(dirname "$0")/../install_debian.sh"
install_missing install_pool_sources "${PACKAGES[@]}"
