"""Database access: the embedded server, DSN resolution, schema upgrades, connections."""
