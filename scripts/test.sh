#!/usr/bin/env bash
# Installs everything the tests need (Debian packages, the project with its test extras) and runs the
# whole suite plus ruff and mypy --strict. Used by the README Quick start and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v softhsm2-util >/dev/null || need_apt+=(softhsm2)
command -v testssl >/dev/null || command -v testssl.sh >/dev/null || need_apt+=(testssl.sh)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)  # verifies docs/gateway.service
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "missing Debian packages: ${need_apt[*]} (run as root or install them)" >&2
    exit 3
  fi
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
python3 -m ruff check .
echo "== mypy --strict"
python3 -m mypy --strict
echo "== pytest"
python3 -m pytest -q -p no:cacheprovider "$@"
# Every fuzz harness for a bounded time (about 2-3 minutes in all); a finding fails the build.
# OCPPSEC_FUZZ_SECONDS=0 skips this step (e.g. when only a subset of the tests was asked for).
fuzz_seconds="${OCPPSEC_FUZZ_SECONDS:-10}"
if [ "$fuzz_seconds" != 0 ]; then
  echo "== fuzz (${fuzz_seconds} s per harness)"
  python3 -m tests.fuzz.run --all --seconds "$fuzz_seconds"
fi
