"""The `mmsearch` command. Exit codes: 0 ok, 1 user error (one line on stderr), 2 internal."""

from __future__ import annotations

import os
import sys

import click

from mmsearch.cli.cluster import cluster_group
from mmsearch.cli.db import db_group, init_command, status_command
from mmsearch.cli.encode import encode_command
from mmsearch.cli.eval import eval_command
from mmsearch.cli.ingest import ingest_command
from mmsearch.cli.labels import acl_group, tag_group
from mmsearch.cli.remove import collection_group, rm_command
from mmsearch.cli.search import search_command
from mmsearch.cli.serve import serve_command
from mmsearch.cli.space import space_group
from mmsearch.cli.token import token_group
from mmsearch.cli.user import user_group
from mmsearch.cli.watch import watch_command
from mmsearch.errors import UserError, one_line


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    envvar="MMSEARCH_HOME",
    type=click.Path(file_okay=False),
    help="Data directory of the embedded database (default: the user data dir).",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Multimodal search over text, images, audio and video, in PostgreSQL."""
    if home:
        os.environ["MMSEARCH_HOME"] = home


for command in (
    init_command,
    status_command,
    db_group,
    ingest_command,
    watch_command,
    search_command,
    encode_command,
    eval_command,
    serve_command,
    token_group,
    rm_command,
    collection_group,
    acl_group,
    tag_group,
    space_group,
    user_group,
):
    cli.add_command(command)
db_group.add_command(cluster_group)


def _quiet_model_libraries() -> None:
    """Model loaders print progress bars and deprecation chatter; a CLI user needs neither.

    psycopg_pool logs every failed reconnect (two lines each) when the server goes away;
    the one-line error the CLI prints says it once.
    """
    import logging
    import warnings

    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # imported already (an embedding app): the variables
        # above are read at import only, and its "Loading weights" bar would still show
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to one line and an exit code instead of a traceback."""
    _quiet_model_libraries()
    try:
        cli.main(args=argv, prog_name="mmsearch", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(1)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("MMSEARCH_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {one_line(str(exc))}", err=True)
        sys.exit(2)
    sys.exit(0)
