#!/bin/sh
# One-shot cluster setup, run by compose once every node is healthy; safe to run again.
# Each node gets citus and vector, and the owner's password for the connections Citus
# opens between nodes (pg_dist_authinfo: scram everywhere, no trust, no .pgpass); then the
# coordinator registers itself and the workers.
#
#   PGUSER, PGPASSWORD, PGDATABASE  the owner (the same on every node)
#   MMSEARCH_COORDINATOR            host:port of the coordinator
#   MMSEARCH_WORKERS                host:port of each worker, space-separated
set -eu

on() {  # on HOST:PORT psql-arguments...: psql against one node, stopping at the first error
    node=$1
    shift
    psql -X -q -v ON_ERROR_STOP=1 -h "${node%:*}" -p "${node##*:}" "$@"
}

for node in "$MMSEARCH_COORDINATOR" $MMSEARCH_WORKERS; do
    # Only where missing: once registered, a worker refuses even CREATE EXTENSION IF NOT
    # EXISTS ("operation is not allowed on this node").
    on "$node" -v user="$PGUSER" -v info="password=$PGPASSWORD" <<'SQL'
SELECT format('CREATE EXTENSION %I', e) FROM unnest(ARRAY['citus', 'vector']) AS e
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = e) \gexec
INSERT INTO pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo)
VALUES (0, :'user', :'info') ON CONFLICT DO NOTHING;
SQL
done

coordinator=$MMSEARCH_COORDINATOR
on "$coordinator" -v host="${coordinator%:*}" -v port="${coordinator##*:}" <<'SQL'
SELECT citus_set_coordinator_host(:'host', :port);
SQL
for node in $MMSEARCH_WORKERS; do
    on "$coordinator" -v host="${node%:*}" -v port="${node##*:}" <<'SQL'
SELECT citus_add_node(:'host', :port)
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_dist_node
                  WHERE nodename = :'host' AND nodeport = :port);
SQL
done
on "$coordinator" -c "SELECT nodename, nodeport, noderole FROM pg_catalog.pg_dist_node ORDER BY nodeid"
