"""Mutation check: does a test fail when a promise the docs make is broken?

Each mutation (tools/mutations.py) breaks one documented behaviour in a scratch copy of the
working tree (one exact text replacement), then runs the tests that guard it. A mutation is
*caught* when those tests fail, *survives* when they pass. The unmutated tree must pass the
same tests first, and every mutation must still apply (its text found exactly once) and
compile, so a stale list fails loudly instead of reporting nothing.

    .venv/bin/python tools/mutants.py            # all: a table, and bench/out/mutants.json
    .venv/bin/python tools/mutants.py --only sha-skip --only cli-ingest-acl
    .venv/bin/python tools/mutants.py --list

Exit status 0 only when every mutation is caught. `make mutants` runs it; CI too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mutations import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[1]
#: deterministic order (the first guarding test runs first, -x stops at the first failure)
PYTEST = ("-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly")
#: pytest's exit status when a test failed (2 and above: collection errors, usage, no tests)
TESTS_FAILED = 1


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    outcome: str  # caught | SURVIVED | timeout | error (exit N)
    seconds: float
    #: the first FAILED/ERROR line of the run (what caught it), or the tail of its output
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.mutation.id,
            "promise": self.mutation.promise,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 1),
            "detail": self.detail,
        }


def tracked_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: what a clean clone plus the change holds."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


def copy_tree(dest: Path) -> None:
    for name in tracked_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def mutated_text(mutation: Mutation, tree: Path) -> str:
    """The mutated file's text; SystemExit if the mutation no longer applies."""
    path = tree / mutation.path
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    found = text.count(mutation.old)
    if found != 1:
        raise SystemExit(
            f"mutation {mutation.id}: its text occurs {found} times in {mutation.path}"
        )
    mutated = text.replace(mutation.old, mutation.new)
    if path.suffix == ".py":
        compile(mutated, str(path), "exec")  # an invalid mutant proves nothing
    return mutated


def mutated_copy(base: Path, mutation: Mutation, tree: Path) -> None:
    """`base` hard-linked into `tree`, then the one mutated file written anew (unlinked
    first, so the base and the other mutants keep their bytes)."""
    shutil.copytree(base, tree, copy_function=os.link)
    mutated = mutated_text(mutation, tree)
    (tree / mutation.path).unlink()
    (tree / mutation.path).write_text(mutated, encoding="utf-8")


def tree_env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}


@contextmanager
def shared_server(scratch: Path) -> Iterator[None]:
    """One embedded PostgreSQL for every test run (MMSEARCH_TEST_DSN): each test module still
    gets a fresh database with the mutated tree's schema and SQL, and an initdb per mutant is
    saved. A server given in MMSEARCH_TEST_DSN is used as it is."""
    if os.environ.get("MMSEARCH_TEST_DSN"):
        yield
        return
    from mmsearch.db import embedded

    pgdata = scratch / "pg"
    os.environ["MMSEARCH_TEST_DSN"] = embedded.ensure_running(pgdata)
    try:
        yield
    finally:
        del os.environ["MMSEARCH_TEST_DSN"]
        embedded.remove(pgdata)


def check_imports_from(tree: Path) -> None:
    """The scratch tree, not the checkout the venv's editable install points at, is what
    `import mmsearch` loads there (else every mutant would survive)."""
    found = subprocess.run(
        [sys.executable, "-c", "import mmsearch; print(mmsearch.__file__)"],
        cwd=tree,
        env=tree_env(tree),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"`import mmsearch` loads {found}, not the scratch tree {tree}")


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, float, str]:
    """(pytest's exit status or -1 on timeout, seconds, its output)."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, *PYTEST, *tests],
            cwd=tree,
            env=tree_env(tree),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        return -1, time.perf_counter() - started, output
    return done.returncode, time.perf_counter() - started, done.stdout + done.stderr


def first_failure(output: str) -> str:
    found = re.search(r"^(?:FAILED|ERROR) (.+)$", output, re.M)
    if found:
        return found.group(1)[:200]
    return " | ".join(output.strip().splitlines()[-3:])[-300:]


def try_mutation(base: Path, scratch: Path, mutation: Mutation, timeout: float) -> Outcome:
    tree = scratch / mutation.id
    mutated_copy(base, mutation, tree)
    try:
        code, seconds, output = run_tests(tree, mutation.tests, timeout)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    outcome = {0: "SURVIVED", TESTS_FAILED: "caught", -1: "timeout"}.get(
        code, f"error (exit {code})"
    )
    detail = first_failure(output) if code != 0 else ""
    return Outcome(mutation, outcome, seconds, detail)


def choose(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Mutation]:
    ids = [m.id for m in MUTATIONS]
    duplicated = {i for i in ids if ids.count(i) > 1}
    if duplicated:
        raise SystemExit(f"mutation ids used twice: {', '.join(sorted(duplicated))}")
    unknown = set(args.only) - set(ids)
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
    return [m for m in MUTATIONS if not args.only or m.id in args.only]


def report(results: list[Outcome], out: Path) -> int:
    print(f"\n| {'mutation':26} | outcome  | {'s':>5} | promise / what caught it")
    print(f"|{'-' * 28}|----------|-------|{'-' * 40}")
    for r in results:
        print(f"| {r.mutation.id:26} | {r.outcome:8} | {r.seconds:5.0f} | {r.mutation.promise}")
        if r.detail:
            print(f"| {'':26} |          |       |   {r.detail}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([r.as_dict() for r in results], indent=1) + "\n")
    caught = sum(r.outcome == "caught" for r in results)
    print(f"\n{caught} of {len(results)} mutations caught ({out})")
    return 0 if caught == len(results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], help="a mutation id (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per test run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "mutants.json")
    args = parser.parse_args(argv)
    chosen = choose(args, parser)
    if args.list:
        for m in chosen:
            print(f"{m.id:26} {m.path:36} {m.promise}")
        return 0
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="mmsearch-mutants-") as tmp,
        shared_server(Path(tmp)),
    ):
        base = Path(tmp) / "base"
        copy_tree(base)
        for mutation in chosen:  # a stale mutation fails before any test runs
            mutated_text(mutation, base)
        check_imports_from(base)
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        code, seconds, output = run_tests(base, tests, args.timeout * 2)
        if code != 0:
            print(output[-5000:])
            print(f"the unmutated tree fails its own guarding tests (exit {code}): fix that first")
            return 2
        print(f"unmutated: {len(tests)} test targets pass ({seconds:.0f} s)", flush=True)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(try_mutation, base, Path(tmp), m, args.timeout) for m in chosen]
            results = []
            for future in futures:
                result = future.result()
                results.append(result)
                print(f"{result.mutation.id:26} {result.outcome:10} {result.seconds:5.0f} s",
                      flush=True)  # fmt: skip
    status = report(results, args.out)
    print(f"mutants: {time.perf_counter() - started:.0f} s in all")
    return status


if __name__ == "__main__":
    sys.exit(main())
