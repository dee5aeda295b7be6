#!/usr/bin/env bash
# Install dicom3tools (Debian package; provides /usr/bin/dciodvfy) for the DICOM validation
# tests (tests/test_dicom_validates.py). Idempotent and quiet: does nothing when dciodvfy is
# present. Needs root (or sudo) and apt-get.
set -euo pipefail

if command -v dciodvfy >/dev/null 2>&1 || test -x /usr/bin/dciodvfy; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-dicom3tools: apt-get not found; install dicom3tools (dciodvfy) by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends dicom3tools >/dev/null
command -v dciodvfy >/dev/null 2>&1 || { echo "install-dicom3tools: dciodvfy still missing" >&2; exit 1; }
