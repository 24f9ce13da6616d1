"""Scale-out on Citus: building the extension for the embedded PostgreSQL, a local cluster.

Developer and test tooling. Citus is a separate server extension (AGPL) built from a vendored
source tarball; mmsearch never links it, it only talks SQL to a coordinator.
"""
