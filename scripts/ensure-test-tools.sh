#!/usr/bin/env bash
# Installs the real clients the test suite drives, when they are missing:
# curl, kubectl (Debian: kubernetes-client), Chromium, proxychains4 and
# PostgreSQL (psql and a server, for `kubesocks exec`), Prometheus
# (promtool checks /metrics; a real server scrapes it). Runs before
# `npm test`, so the README's one test command works on a fresh machine.
set -euo pipefail

missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v proxychains4 >/dev/null 2>&1 || missing+=(proxychains4)
{ command -v psql >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing+=(postgresql)
{ command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; } || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "kubesocks tests need: ${missing[*]}" >&2
# Locally a missing client skips the tests that drive it; in CI that would
# hide them, so there it is an error.
cannot_install() {
  if [ "${CI:-}" = "true" ]; then
    echo "CI: cannot install ${missing[*]} ($1); failing rather than skipping the tests that need them" >&2
    exit 1
  fi
  echo "$1: install ${missing[*]} yourself; the tests that need them will be skipped" >&2
  exit 0
}
command -v apt-get >/dev/null 2>&1 || cannot_install "no apt-get here"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else cannot_install "not root and no sudo"; fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}" >&2
