#!/usr/bin/env bash
# System packages the test suite uses beyond Python: php-cli + php-curl (the gateway documentation's own
# PHP examples run against the simulator), chromium (Flower dashboard check) and redis-server (tests that
# restart Redis start their own). Installed through apt when we can; otherwise the tests that need them
# skip and say why.
set -u
need=()
command -v php >/dev/null 2>&1 || need+=(php-cli)
php -m 2>/dev/null | grep -qi '^curl$' || need+=(php-curl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "system-deps: not root and no passwordless sudo; tests needing ${need[*]} will skip" >&2; exit 0; fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: no apt-get; install ${need[*]} yourself; tests needing them will skip" >&2; exit 0
fi
echo "system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "system-deps: apt-get install ${need[*]} failed; tests needing them will skip" >&2
exit 0
