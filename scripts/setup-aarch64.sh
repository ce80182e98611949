#!/usr/bin/env bash
# Install what scripts/test.sh's AArch64 stage needs, on Debian or Ubuntu
# (x86-64): Debian's arm64 C library and the four libraries mconv links
# (multiarch, so dpkg learns the arm64 architecture), the AArch64 cross
# binutils and libgcc for clang to link with (gcc-aarch64-linux-gnu brings
# them), and qemu-user. .ci/run calls it; elsewhere the stage says SKIPPED
# when these are missing. Nothing here is needed to build or run mconv.
set -euo pipefail
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
  echo "setup-aarch64: needs apt-get and dpkg (Debian or Ubuntu)" >&2
  exit 1
fi
if [ "$(dpkg --print-architecture)" != amd64 ]; then
  echo "setup-aarch64: for amd64 hosts (this one is $(dpkg --print-architecture))" >&2
  exit 1
fi
pkgs="clang qemu-user gcc-aarch64-linux-gnu libc6-dev:arm64 zlib1g-dev:arm64 libzstd-dev:arm64 libxxhash-dev:arm64 libcjson-dev:arm64"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
echo "setup-aarch64: ready ($(qemu-aarch64 --version | head -1))"
