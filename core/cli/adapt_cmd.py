"""``noiseshift adapt``: fit a data-driven adapter (finetune, ain_transfer, adl, ...) and save it.

The model is resolved as ``noiseshift denoise`` resolves it, the target and source domains are
built by :mod:`noiseshift.domains` (a folder of pairs, or ``BENCHMARK:key=value,...`` with
``sensor=``/``split=``/``limit=`` filters), the adapter from the ``ADAPTERS`` registry with the
``-O`` options. After ``fit`` the changed tensors are saved as a domain head (default; apply it
with ``noiseshift denoise --model BASE --head HEAD``) or, with ``--full``, the whole adapted
model. The fit report (loss per step, per-domain statistics such as ADL's accepted and rejected
batches) is written beside the output as ``<OUT>.fit.json`` and its summary printed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import torch

from ..errors import InvalidInputError, OutputExistsError
from .options import parse_options, pick_device, progress_bar, resolve_model, stderr


def _noise_model(name: str | None, options: tuple[str, ...]) -> Any:
    if name is None:
        if options:
            raise click.UsageError("-N options need --noise NAME")
        return None
    from ..registry import NOISE_MODELS

    return NOISE_MODELS.build({"type": name, **parse_options(options)})


def _summary(report: Any) -> dict[str, Any]:
    """The JSON-ready part of a ``FitReport`` worth printing (everything but the history)."""
    last = report.history[-1] if report.history else {}
    return {"steps": report.steps, "changed_tensors": len(report.changed), "last": last, **report.extra}


@click.command("adapt")
@click.argument("adapter")
@click.option("--model", required=True, help="The base model: a weights file (or 'default').")
@click.option("--model-type", help="Registry name of the architecture of a checkpoint without noiseshift metadata.")
@click.option("--target", "target", help="Target domain: a folder of pairs or BENCHMARK:key=value,... "
              "(e.g. polyu:root=/data/PolyU,sensor=Canon80D,split=adapt).")
@click.option("--target-root", type=click.Path(exists=True, file_okay=False),
              help="Shorthand for --target FOLDER (noisy/ and clean/ subfolders).")
@click.option("--source", "sources", multiple=True, help="Source domain (same syntax as --target); repeatable.")
@click.option("--noise", help="Noise model for adapters that need one (registry name).")
@click.option("-N", "noise_option", multiple=True, metavar="KEY=VALUE", help="Noise model option; repeatable.")
@click.option("-O", "option", multiple=True, metavar="KEY=VALUE", help="Adapter option, e.g. -O steps=500; repeatable.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the domain head (or the full model with --full), .safetensors.")
@click.option("--full", is_flag=True, help="Save the whole adapted model instead of a domain head.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the adapter's random generator.")
@click.option("--device", help="torch device, e.g. cpu, cuda, cuda:1, mps (default cpu).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def adapt_command(
    adapter: str, model: str, model_type: str | None, target: str | None, target_root: str | None,
    sources: tuple[str, ...], noise: str | None, noise_option: tuple[str, ...], option: tuple[str, ...],
    output: str, full: bool, seed: int, device: str | None, overwrite: bool,
) -> None:
    """Adapt MODEL to a target domain with ADAPTER and save the result."""
    from ..domains import load_domain
    from ..registry import ADAPTERS
    from ..weights import save, save_head

    if target is not None and target_root is not None:
        raise click.UsageError("give the target once: --target or --target-root, not both")
    target = target if target is not None else target_root
    out = Path(output)
    if out.suffix != ".safetensors":
        raise click.BadParameter(f"{output!r}: weights are written as .safetensors", param_hint="-o")
    report_path = out.with_suffix(".fit.json")
    if not overwrite:
        for path in (out, report_path):
            if path.exists():
                raise OutputExistsError(f"{path} exists; pass --overwrite to replace it")

    adapter_obj = ADAPTERS.build({"type": adapter, **parse_options(option)})
    if adapter_obj.per_image:
        raise InvalidInputError(
            f"adapter {adapter!r} adapts per image at test time; use it with "
            f"`noiseshift denoise --adapter {adapter}` or `noiseshift benchmark --adapter {adapter}`"
        )
    needs = adapter_obj.needs
    if "target_pairs" in needs and target is None:
        raise click.UsageError(f"adapter {adapter!r} needs a target domain: --target or --target-root")
    if "source_pairs" in needs and not sources:
        raise click.UsageError(f"adapter {adapter!r} needs at least one --source domain")
    noise_model = _noise_model(noise, noise_option)
    if "noise_model" in needs and noise_model is None:
        raise click.UsageError(f"adapter {adapter!r} needs a noise model: --noise NAME [-N key=value ...]")

    extra = {"model_type": model_type} if model_type is not None else {}
    backbone = resolve_model(model, {}, None, **extra)
    if not getattr(backbone, "trainable", True):
        raise InvalidInputError(f"{backbone.name!r} has no parameters to adapt; give a trained weights file")
    backbone = backbone.to(pick_device(device))
    wrapped = adapter_obj.wrap(backbone)

    target_domain = load_domain(target) if target is not None else None
    source_domains = {}
    for spec in sources:
        domain = load_domain(spec)
        if domain.name in source_domains:
            raise InvalidInputError(f"two source domains are named {domain.name!r}; add name=... to one spec")
        source_domains[domain.name] = domain.samples
    described = [f"target {target_domain.name} ({len(target_domain)} pairs)"] if target_domain else []
    described += [f"source {name} ({len(samples)} pairs)" for name, samples in source_domains.items()]
    stderr.print(f"{adapter_obj!r} on {backbone.name}: " + ", ".join(described), highlight=False)

    with progress_bar() as bar:
        task = bar.add_task(f"adapt {adapter}", total=None)

        def progress(step: int, total: int, metrics: Any) -> None:
            loss = metrics.get("loss")
            bar.update(task, completed=step, total=total,
                       description=f"adapt {adapter}" + (f" loss {loss:.4g}" if loss is not None else ""))

        report = adapter_obj.fit(
            wrapped,
            target=target_domain.samples if target_domain is not None else None,
            source=source_domains or None,
            noise_model=noise_model,
            generator=torch.Generator().manual_seed(seed),
            progress=progress,
        )

    backbone = wrapped.backbone.cpu()
    if full:
        save(backbone, out, overwrite=overwrite, extra={"adapter": adapter, "adapter_config": adapter_obj.config()})
    else:
        delta = adapter_obj.delta(wrapped)
        if not delta:
            raise InvalidInputError(f"adapter {adapter!r} changed no tensors; nothing to save as a head (try --full)")
        save_head({k: v.cpu() for k, v in delta.items()}, out, base=backbone, adapter=adapter,
                  adapter_config=adapter_obj.config(), overwrite=overwrite)
    from ..image_io import atomic_write_text

    summary = _summary(report)
    record = {
        "adapter": adapter, "adapter_config": adapter_obj.config(), "model": model, "output": str(out),
        "target": target, "sources": list(sources), "seed": seed, **summary, "history": report.history,
    }
    atomic_write_text(report_path, json.dumps(record, indent=1, default=str), overwrite=overwrite)
    click.echo(json.dumps(summary, indent=1, default=str))
    stderr.print(f"wrote {out} ({'full model' if full else 'domain head'}) and {report_path}", highlight=False)


COMMANDS = [adapt_command]
