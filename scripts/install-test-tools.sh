#!/usr/bin/env bash
# Debian tools the test suite drives as a user would: kcat (a Kafka client nobody here wrote)
# promtool (from the prometheus package: it checks the alert rules and scrape config) and
# Chromium with its driver (the console's browser tests drive it through Playwright).
# Installed with apt-get when missing; needs root (as CI and the dev machines are) or sudo.
set -euo pipefail
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing test tools: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
