#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages Portcullis' build and tests need and that a
# fresh Debian/Ubuntu machine lacks. Usage: deploy/ensure-packages.sh WHAT=PACKAGE ...
# WHAT is a command looked up on PATH, or an absolute file path (e.g. a font) that must exist.
# Fails, naming what is missing, when it cannot install them.
set -euo pipefail

present() { case "$1" in /*) [ -e "$1" ] ;; *) command -v "$1" >/dev/null 2>&1 ;; esac; }
missing=()
for pair in "$@"; do
  present "${pair%%=*}" || missing+=("${pair#*=}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  apt=(apt-get)
elif command -v sudo >/dev/null 2>&1; then
  apt=(sudo apt-get)
else
  echo "error: missing ${missing[*]}; install them with apt-get as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${apt[@]}" update -q >&2 || true
if ! "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" >&2; then
  echo "error: could not install ${missing[*]} with apt-get" >&2
  exit 1
fi
for pair in "$@"; do
  present "${pair%%=*}" || { echo "error: ${pair%%=*} is still missing after installing ${pair#*=}" >&2; exit 1; }
done
