"""The ``noiseshift`` command line (click + rich).

Commands: every module of this package lists its click commands in ``COMMANDS`` (``denoise``,
``demo``, ``plugins``, ``list``, ...); plugins add more through the ``register_commands(cli)``
hook. noiseshift's own errors (and OS errors such as a
full disk) are printed as one clear line (exit code 2) instead of a traceback; set ``NOISESHIFT_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from .. import __version__
from ..errors import NoiseshiftError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="noiseshift")
def cli() -> None:
    """noiseshift: image denoising under noise-domain shift."""


def _add_builtin_commands(group: click.Group) -> None:
    """Add the commands every module of this package lists in a ``COMMANDS`` list."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # __main__ runs the CLI on import
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            group.add_command(command)


_add_builtin_commands(cli)
_plugins_added = False


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: load plugin commands, run, and turn known errors into messages."""
    global _plugins_added
    from ..registry import HOST

    if not _plugins_added:
        HOST.call_register_commands(cli)
        _plugins_added = True
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="noiseshift", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (NoiseshiftError, OSError) as exc:
        if os.environ.get("NOISESHIFT_DEBUG"):
            raise
        click.echo(f"error: {exc}", err=True)
        return 2
    return 0


def run() -> None:
    sys.exit(main())


__all__ = ["cli", "main", "run"]
