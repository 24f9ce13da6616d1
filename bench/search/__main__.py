"""`python -m bench.search`: see `bench.search`."""

from bench.search.cli import main

main()
