#!/usr/bin/env bash
# Install Orthanc and its DICOMweb plug-in (Debian packages) for tests/test_pacs.py.
# Idempotent and quiet: does nothing when both are present. Needs root (or sudo) and apt-get.
# The tests start their own Orthanc (own port, config and storage); a system service that the
# package may start is neither needed nor used.
set -euo pipefail

have() {
    command -v Orthanc >/dev/null 2>&1 || test -x /usr/sbin/Orthanc || return 1
    compgen -G "/usr/share/orthanc/plugins/libOrthancDicomWeb.so*" >/dev/null ||
        compgen -G "/usr/lib/orthanc/libOrthancDicomWeb.so*" >/dev/null
}

if have; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-orthanc: apt-get not found; install orthanc and orthanc-dicomweb by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends orthanc orthanc-dicomweb >/dev/null
have || { echo "install-orthanc: Orthanc or its DICOMweb plug-in still missing" >&2; exit 1; }
