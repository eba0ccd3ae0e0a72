#!/usr/bin/env bash
# Installs the Debian packages the project needs beyond Python wheels:
#   - libosmesa6: MuJoCo renders through OSMesa on machines with no display
#     (videos of Gymnasium's MuJoCo tasks; common/gymnasium_env.py).
# Needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(libosmesa6)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "system_packages: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
