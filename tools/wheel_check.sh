#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtualenv outside the checkout, and run
# `mmsearch init`, an ingest and a search from there: proves the package carries its schema
# (migrations, SQL) and runs without the source tree. Used by CI (`make wheel-check`).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d -p /tmp mmsearch-wheel-XXXXXX)"
# On exit: stop the server and delete its data wherever it lives (as root: /var/lib/mmsearch).
cleanup() {
    "$work/venv/bin/python" -c 'import sys; from pathlib import Path
from mmsearch.db import embedded; embedded.remove(Path(sys.argv[1]))' "$work/home/pg" \
        >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

"$python" -m venv "$work/venv"
pip="$work/venv/bin/pip"
"$pip" install -q --upgrade pip
"$pip" install -q torch==2.13.0
# Build from a copy of the tracked files: a stale build/ in the checkout never leaks in.
mkdir -p "$work/src"
git -C "$here" ls-files -z | (cd "$here" && tar --null -T - -cf -) | tar -x -C "$work/src"
"$pip" wheel -q --no-deps -w "$work/dist" "$work/src"
"$pip" install -q "$work"/dist/mmsearch-*.whl
"$pip" install -q --no-deps aisfx==0.1.2

cd "$work"   # nothing of the checkout is importable from here
export MMSEARCH_HOME="$work/home" HF_HUB_OFFLINE=1
mkdir -p docs
printf 'The travel policy covers flights to conferences.\n' > docs/travel.txt
printf 'Reset your password from the account page.\n' > docs/password.txt
mmsearch="$work/venv/bin/mmsearch"
"$mmsearch" init
"$mmsearch" ingest docs --collection wheel
"$mmsearch" search "how do I change my password" --collection wheel --json -k 1 | tee hits.jsonl
grep -q 'password.txt' hits.jsonl
echo "wheel check: ok"
