"""Search: filters, the SQL builder, fusion, and the search entry point."""
