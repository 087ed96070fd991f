"""``noiseshift plugins`` and ``noiseshift list <kind>``."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

KIND_ALIASES = {
    "denoisers": "denoisers", "denoiser": "denoisers", "models": "denoisers", "backbones": "denoisers",
    "noise_models": "noise_models", "noise-models": "noise_models", "noise_model": "noise_models",
    "noise": "noise_models", "adapters": "adapters", "adapter": "adapters", "benchmarks": "benchmarks",
    "benchmark": "benchmarks", "losses": "losses", "loss": "losses",
}


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def plugins_command(as_json: bool) -> None:
    """Show installed plugins, their status and what each provides."""
    from ..registry import plugin_records

    records = plugin_records()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in records], indent=2))
        return
    table = Table(title="noiseshift plugins")
    for column in ("plugin", "distribution", "version", "status", "provides", "error / hint"):
        table.add_column(column, overflow="fold")
    colours = {"builtin": "cyan", "ok": "green", "failed": "red", "disabled": "yellow"}
    for record in records:
        provides = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in record.provides.items())
        problem = " ".join(filter(None, [record.error, record.hint])) or "; ".join(record.warnings)
        table.add_row(record.name, record.distribution or "", record.version or "",
                      f"[{colours.get(record.status, 'white')}]{record.status}", provides, problem)
    Console().print(table)


@click.command("list")
@click.argument("kind")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def list_command(kind: str, as_json: bool) -> None:
    """List registered components of KIND (denoisers, noise_models, adapters, benchmarks, losses)."""
    from ..registry import HOST
    from ..registry.loader import list_components

    resolved = KIND_ALIASES.get(kind.lower())
    if resolved is None:
        raise click.BadParameter(f"unknown kind {kind!r}; choose from {sorted(set(KIND_ALIASES.values()))}",
                                 param_hint="KIND")
    rows = list_components(HOST, resolved)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"noiseshift {resolved}")
    for column in ("name", "plugin", "details", "summary"):
        table.add_column(column, overflow="fold")
    skip = {"name", "qualified_name", "plugin", "object", "summary", "short_name"}
    for row in rows:
        name = row["qualified_name"] if row["short_name"] != "bound" else row["name"]
        details = ", ".join(f"{k}={v}" for k, v in row.items() if k not in skip)
        table.add_row(name, row["plugin"], details, row["summary"])
    Console().print(table)

COMMANDS = [plugins_command, list_command]
