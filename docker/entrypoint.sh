#!/usr/bin/env bash
# Container entrypoint: wait until PostgreSQL accepts connections, create or upgrade the
# mmsearch schema, then replace this shell with the container's command.
#
# The wait lives here rather than only in compose's depends_on so that the image also
# works under plain `docker run`, Kubernetes, or a database that restarts.
#
#   MMSEARCH_DATABASE_URL  the server (required)
#   MMSEARCH_DB_WAIT_S     how long to wait for it, in seconds (default 60)
set -euo pipefail

if [[ -z "${MMSEARCH_DATABASE_URL:-}" ]]; then
    echo "entrypoint: MMSEARCH_DATABASE_URL is not set; point it at PostgreSQL with pgvector" >&2
    exit 1
fi

# psycopg rather than pg_isready: the image has the Python driver but no PostgreSQL client.
python - "${MMSEARCH_DB_WAIT_S:-60}" <<'PY'
import os
import sys
import time

import psycopg
from psycopg.conninfo import conninfo_to_dict

dsn = os.environ["MMSEARCH_DATABASE_URL"]
wait_s = float(sys.argv[1])
parts = conninfo_to_dict(dsn)
# Name the server without the password, which must not reach the logs.
where = f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"
deadline = time.monotonic() + wait_s
while True:
    left = deadline - time.monotonic()
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, min(5, round(left)))):
            break
    except psycopg.OperationalError as exc:
        if time.monotonic() >= deadline:
            reason = " ".join(str(exc).split())
            sys.exit(
                f"entrypoint: the database at {where} did not accept connections "
                f"within {wait_s:g} s (MMSEARCH_DB_WAIT_S): {reason}"
            )
    time.sleep(1)
PY

mmsearch init

if [[ $# -eq 0 ]]; then
    set -- mmsearch --help
fi
exec "$@"
