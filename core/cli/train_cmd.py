"""``noiseshift train``: train a denoiser from an mmengine config (one process or torchrun)."""

from __future__ import annotations

import click

from .options import stderr


@click.command("train")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--work-dir", type=click.Path(file_okay=False),
              help="Run folder (default: the config's work_dir, else work_dirs/<config name>).")
@click.option("--resume", is_flag=True,
              help="Continue from the newest complete checkpoint in the work dir (fresh start if none).")
@click.option("--cfg-options", "cfg_options", multiple=True, metavar="KEY=VALUE",
              help="Override a config entry, e.g. --cfg-options optimizer.lr=1e-4 train_cfg.max_iters=2000; "
                   "several pairs may follow one flag.")
@click.option("--device", help="Override the config's device (cpu, cuda, cuda:1, mps, auto).")
@click.option("--no-progress", is_flag=True, help="Print log lines instead of a progress bar.")
def train_command(
    config: str, overrides: tuple[str, ...], work_dir: str | None, resume: bool,
    cfg_options: tuple[str, ...], device: str | None, no_progress: bool,
) -> None:
    """Train a denoiser as CONFIG describes; the resolved config, JSON-lines log, checkpoints,
    best.safetensors and final.safetensors go to the work dir.

    Run the same command under ``torchrun --nproc_per_node N -m noiseshift.cli train CONFIG``
    for distributed data-parallel training.
    """
    from ..training import parse_cfg_options, train

    stray = [item for item in overrides if "=" not in item]
    if stray:
        raise click.UsageError(f"unexpected argument(s) {stray}; overrides are KEY=VALUE after --cfg-options")
    options = parse_cfg_options([*cfg_options, *overrides])
    if device is not None:
        options["device"] = device
    if no_progress:
        options["progress"] = False
    result = train(config, work_dir=work_dir, resume=resume, cfg_options=options)
    if result.final is not None and result.final.exists():
        from rich.table import Table

        table = Table(title=f"training finished: {result.work_dir}")
        table.add_column("what")
        table.add_column("value")
        table.add_row("iterations", str(result.iterations))
        table.add_row("wall time (all sessions)", f"{result.elapsed_s:.0f} s")
        if result.best_metrics:
            table.add_row("best validation", f"{result.best_metrics['psnr']:.3f} dB / SSIM "
                          f"{result.best_metrics['ssim']:.4f} at iteration {result.best_metrics['iter']}")
            table.add_row("best model", str(result.best))
        table.add_row("final model", str(result.final))
        stderr.print(table)


COMMANDS = [train_command]
