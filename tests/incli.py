"""The `mmsearch` command run in this process: its exit status and output captured.

Models load once per test process instead of once per command; the environment (the
database URL, the home) is whatever the caller's fixture set, as a user's shell would.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass

from mmsearch.cli import main


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict]:
        assert self.code == 0, self.err
        return [json.loads(line) for line in self.out.splitlines()]


def invoke(*argv: str) -> Ran:
    """`invoke("search", "x", "--json")`: what `mmsearch search x --json` prints and returns."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Ran(code, out.getvalue(), err.getvalue())
