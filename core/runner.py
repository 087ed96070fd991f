"""Run a denoiser (or an adapter-wrapped one) over a benchmark: score, record, resume, shard.

:func:`run_benchmark` runs the model on every sample (with optional tiling and ×8 self-ensemble),
scores the output with the benchmark's own protocol and returns a :class:`RunResult` — a
``BenchmarkResult`` that also carries per-item timing, conditions, the run settings and the
software versions. With ``out_dir`` it writes:

* ``run.json`` — what is being run (benchmark and its config, model, weights digest, adapter,
  tiling, ensemble): a resumed run must match it;
* ``items.jsonl`` (``items.rank<r>.jsonl`` under ``torchrun``) — one JSON line per finished
  item, flushed and fsynced as soon as the item is scored, so a killed run loses at most the
  item in flight and a re-run skips the finished ones (a torn last line is discarded);
* ``results.json`` and ``results.csv`` — the per-item and mean scores, conventions, model,
  adapter, versions and seconds per image;
* ``images/<key>.png`` with ``save_images`` (8-bit outputs), and for benchmarks without ground
  truth ``outputs/<key>.safetensors`` (exact float outputs) plus the benchmark's submission
  (``submission/``) written by ``write_submission`` once every item is done;
* ``trace.json`` with ``trace=True`` (test-time adapters): every item's per-step adaptation
  trace (loss, and PSNR against the ground truth when there is one) and their mean per step,
  see :func:`mean_trace`. Each item's trace is also kept in its ``items.jsonl`` record.

Distributed: under ``torchrun`` (``WORLD_SIZE > 1`` with ``torch.distributed`` initialised,
any backend that supports ``all_gather_object``, e.g. gloo) item ``i`` is run by rank
``i % world_size``; the records are gathered with ``all_gather_object`` and rank 0 writes the
result files. ``out_dir`` must then be on a file system all ranks see.

Example::

    from noiseshift.runner import run_benchmark
    result = run_benchmark(model, PolyU("data/PolyU"), out_dir="runs/polyu_dncnn", tile=256)
    print(result.mean())            # {'psnr': ..., 'ssim': ...}
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import math
import os
import platform
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .benchmark import Benchmark, BenchmarkResult
from .errors import InvalidInputError
from .image_io import atomic_write_text
from .types import Sample

__all__ = [
    "DistributedContext",
    "ProgressFn",
    "RunResult",
    "describe_model",
    "display_image",
    "distributed_context",
    "fetch_samples",
    "mean_trace",
    "read_records",
    "run_benchmark",
    "safe_name",
    "shard_indices",
    "write_results",
    "write_trace",
]

ProgressFn = Callable[[int, int, "Mapping[str, Any] | None"], None]
"""``progress(done, total, record)``: called once with ``record=None`` before the first item
(``done`` = items already finished by an earlier run), then after every scored item with its
record (``{"index", "key", "psnr", "ssim", "seconds", ...}``). ``done``/``total`` count this
rank's items. Raising from it stops the run; finished items are kept for the next one."""

RUN_FILE = "run.json"
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
TRACE_JSON = "trace.json"
_ITEMS_GLOB = "items*.jsonl"


# -- distributed -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a multi-process run.

    Attributes:
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: number of processes.
        gather: ``gather(obj) -> [obj of rank 0, obj of rank 1, ...]`` on every rank (a
            collective: every rank must call it, in the same order); ``[obj]`` alone.
    """

    rank: int = 0
    world_size: int = 1
    gather: Callable[[Any], list[Any]] = field(default=lambda obj: [obj])

    def barrier(self) -> None:
        self.gather(None)


def distributed_context() -> DistributedContext:
    """The current process's ``DistributedContext``.

    A single process unless ``WORLD_SIZE > 1`` (set by ``torchrun``), in which case
    ``torch.distributed`` must have been initialised (``init_process_group``).

    Raises:
        InvalidInputError: ``WORLD_SIZE > 1`` but no process group is initialised (every
            process would otherwise run every item and write the same files).
    """
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 1
    if world <= 1:
        return DistributedContext()
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise InvalidInputError(
            f"WORLD_SIZE={world} but torch.distributed is not initialised; call "
            "torch.distributed.init_process_group('gloo') first (the `noiseshift benchmark` command does)"
        )
    size = dist.get_world_size()

    def gather(obj: Any) -> list[Any]:
        gathered: list[Any] = [None] * size
        dist.all_gather_object(gathered, obj)
        return gathered

    return DistributedContext(rank=dist.get_rank(), world_size=size, gather=gather)


def shard_indices(indices: Sequence[int], rank: int, world_size: int) -> list[int]:
    """The items of ``indices`` rank ``rank`` runs: those with ``index % world_size == rank``.

    Interleaving (rather than contiguous blocks) balances ranks when item cost drifts along
    the benchmark (e.g. larger images later), and keeps each rank's items in order, so the
    tiles of one large image are still read consecutively.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise InvalidInputError(f"invalid rank {rank} for world size {world_size}")
    return [index for index in indices if index % world_size == rank]


# -- items -------------------------------------------------------------------------------------


def fetch_samples(benchmark: Benchmark, indices: Sequence[int]) -> Iterator[tuple[int, Sample]]:
    """``(index, sample)`` for the given item indices, in increasing index order.

    Uses ``benchmark[index]`` when the benchmark supports indexing (no other item is read);
    otherwise iterates the benchmark and skips the items not asked for.
    """
    wanted = sorted(set(indices))
    if not wanted:
        return
    if hasattr(benchmark, "__getitem__"):
        for index in wanted:
            yield index, benchmark[index]  # type: ignore[index]
        return
    pending = set(wanted)
    last = wanted[-1]
    for index, sample in enumerate(benchmark):
        if index in pending:
            yield index, sample
        if index >= last:
            break


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(key: str) -> str:
    """A file name for a sample key (characters other than letters, digits, ``._-`` become ``_``)."""
    name = _UNSAFE.sub("_", key).strip("._") or "item"
    return name[:200]


def display_image(image: torch.Tensor) -> torch.Tensor:
    """A viewable ``1×C×H×W`` version of an image in ``[0, 1]``: RGB and gray as they are, packed
    RGGB raw (``C = 4``) as ``(R, mean(G1, G2), B)`` (linear, so dark); CPU float32."""
    image = image.detach().to("cpu", torch.float32).clamp(0, 1)
    if image.shape[1] == 4:
        return torch.stack([image[:, 0], (image[:, 1] + image[:, 2]) / 2, image[:, 3]], dim=1)
    if image.shape[1] in (1, 3):
        return image
    return image[:, :1]


def _scalar_conditions(cond: Mapping[str, Any] | None) -> dict[str, Any]:
    """The JSON-friendly scalar entries of ``cond`` (sensor, ISO, ...); maps are left out."""
    found: dict[str, Any] = {}
    for key, value in (cond or {}).items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (str, bool, int, float)):
            found[key] = value
    return found


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def _dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(value, default=_json_default, **kwargs)


# -- model description ---------------------------------------------------------------------------


def _weights_digest(model: Any) -> str | None:
    """SHA-256 over the model's state (names, dtypes, shapes, bytes); ``None`` for non-modules."""
    if not isinstance(model, torch.nn.Module):
        return None
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def describe_model(model: Any) -> dict[str, Any]:
    """What is scored: name, config, weights digest, and the adapter (name, config) if any."""
    name = getattr(model, "display_name", None) or getattr(model, "name", None) or type(model).__name__
    backbone = getattr(model, "backbone", None)
    adapter = getattr(model, "adapter", None)
    described: dict[str, Any] = {"name": str(name)}
    if backbone is not None and adapter is not None:
        described["backbone"] = {"name": getattr(backbone, "name", type(backbone).__name__),
                                 "config": _config_of(backbone)}
        described["adapter"] = {"name": getattr(adapter, "name", type(adapter).__name__), "config": _config_of(adapter)}
    else:
        described["config"] = _config_of(model)
        described["adapter"] = None
    described["weights_sha256"] = _weights_digest(model)
    return json.loads(_dumps(described))


def _config_of(component: Any) -> dict[str, Any]:
    config = getattr(component, "config", None)
    if callable(config):
        try:
            return dict(config())
        except Exception:  # noqa: BLE001 - a description must never fail the run
            return {}
    return {}


def _environment(device: torch.device, world_size: int) -> dict[str, Any]:
    return {
        "noiseshift": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "world_size": world_size,
    }


# -- result ------------------------------------------------------------------------------------


@dataclass
class RunResult(BenchmarkResult):
    """A ``BenchmarkResult`` with everything needed to reproduce and inspect the run.

    Attributes:
        items: one record per scored item, in index order: ``index``, ``key``, the metrics,
            ``seconds`` (model time) and ``cond`` (the scalar conditions, e.g. sensor and ISO).
        total: items in the benchmark (``count`` may be lower with ``limit``).
        benchmark_config: the benchmark's ``config()``.
        model_info: :func:`describe_model` of the model (name, config, weights digest, adapter).
        settings: ``tile``, ``overlap``, ``ensemble``, ``device``, ``limit``.
        environment: versions of noiseshift, torch and Python, platform, device, world size.
        out_dir: where the files were written, if anywhere.
        submission: the path ``write_submission`` returned, for sets without ground truth.
    """

    items: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    benchmark_config: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    out_dir: str | None = None
    submission: str | None = None

    def seconds_per_image(self) -> float | None:
        """Mean model time per item (seconds), or ``None`` when nothing ran."""
        times = [item["seconds"] for item in self.items if isinstance(item.get("seconds"), (int, float))]
        return sum(times) / len(times) if times else None

    def groups(self, max_values: int = 20) -> dict[str, dict[str, dict[str, float]]]:
        """Metric means per value of each scalar condition (``{"sensor": {"Canon5D2": {...}}}``).

        Conditions with a single value, or more than ``max_values`` values, are left out.
        """
        values: dict[str, set[Any]] = {}
        for item in self.items:
            for key, value in item.get("cond", {}).items():
                values.setdefault(key, set()).add(value)
        table: dict[str, dict[str, dict[str, float]]] = {}
        for key, seen in sorted(values.items()):
            if not 1 < len(seen) <= max_values:
                continue
            table[key] = {}
            for value in sorted(seen, key=str):
                members = [item for item in self.items if item.get("cond", {}).get(key) == value]
                metrics = sorted({m for item in members for m in item.get("metrics", {})})
                row = {m: sum(i["metrics"][m] for i in members if m in i["metrics"])
                       / sum(1 for i in members if m in i["metrics"]) for m in metrics}
                row["count"] = float(len(members))
                table[key][str(value)] = row
        return table

    def as_dict(self) -> dict[str, Any]:
        base = super().as_dict()
        base.update({
            "total": self.total,
            "complete": base["count"] == self.total,
            "benchmark_config": self.benchmark_config,
            "model_info": self.model_info,
            "adapter": self.model_info.get("adapter"),
            "settings": self.settings,
            "seconds_per_image": self.seconds_per_image(),
            "groups": self.groups(),
            "environment": self.environment,
            "submission": self.submission,
            "items": self.items,
        })
        return base


# -- records on disk ---------------------------------------------------------------------------


def read_records(out_dir: str | Path) -> dict[int, dict[str, Any]]:
    """The finished-item records of every ``items*.jsonl`` in ``out_dir``, by item index.

    A line that does not parse (the torn end of a killed run) is skipped.
    """
    records: dict[int, dict[str, Any]] = {}
    for file in sorted(Path(out_dir).glob(_ITEMS_GLOB)):
        with open(file, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                    records[int(record["index"])] = record
                except (ValueError, KeyError, TypeError):
                    continue
    return records


class _RecordLog:
    """Append-only JSON-lines log; each line is flushed and fsynced before ``append`` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._repair()
        self._handle: io.TextIOWrapper | None = None  # opened on the first record: no empty logs

    def _repair(self) -> None:
        """Drop a torn last line (a kill mid-write) so appended lines stay on lines of their own."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        keep = data[: data.rfind(b"\n") + 1]
        from .image_io import atomic_write_bytes

        atomic_write_bytes(self.path, keep, overwrite=True)

    def append(self, record: Mapping[str, Any]) -> None:
        if self._handle is None:
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._handle.write(_dumps(record) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


class _SavedOutputs(Mapping[str, torch.Tensor]):
    """``{key: output}`` read lazily from ``outputs/<key>.safetensors`` (bounded memory)."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self._files = dict(files)

    def __getitem__(self, key: str) -> torch.Tensor:
        from safetensors.torch import load_file

        return load_file(str(self._files[key]))["output"]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


def _save_output(path: Path, output: torch.Tensor) -> None:
    from safetensors.torch import save

    from .image_io import atomic_write_bytes

    atomic_write_bytes(path, save({"output": output.detach().to("cpu").contiguous()}), overwrite=True)


# -- the run -----------------------------------------------------------------------------------


def _check_positive(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidInputError(f"{name} must be a positive integer or None, got {value!r}")


def _target_device(model: Any, device: str | torch.device | None) -> torch.device:
    if device is not None:
        try:
            return torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise InvalidInputError(f"invalid device {device!r}: {exc}") from exc
    if isinstance(model, torch.nn.Module):
        tensor = next(model.parameters(), None)
        if tensor is None:
            tensor = next(model.buffers(), None)
        if tensor is not None:
            return tensor.device
    return torch.device("cpu")


def _fingerprint(benchmark: Benchmark, model_info: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """What must not change between a run and its resumption."""
    return json.loads(_dumps({
        "benchmark": benchmark.name,
        "benchmark_config": benchmark.config(),
        "items": len(benchmark),
        "conventions": benchmark.conventions.as_dict(),
        "model": model_info,
        "tile": settings["tile"],
        "overlap": settings["overlap"],
        "ensemble": settings["ensemble"],
    }))


def _prepare_out_dir(
    out: Path, fingerprint: dict[str, Any], resume: bool, ctx: DistributedContext
) -> dict[int, dict[str, Any]]:
    """Check or start the run in ``out``; returns the records of items already finished."""
    run_file = out / RUN_FILE
    if resume and run_file.exists():
        try:
            previous = json.loads(run_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InvalidInputError(f"{run_file} is not valid JSON ({exc}); remove it or pass resume=False") from exc
        if previous != fingerprint:
            changed = sorted(k for k in fingerprint.keys() | previous.keys() if previous.get(k) != fingerprint.get(k))
            raise InvalidInputError(
                f"{out} holds a run of a different configuration (differs in: {', '.join(changed)}); "
                "use another output folder, or resume=False (--no-resume) to discard it"
            )
    ctx.barrier()  # every rank has read run.json before rank 0 replaces it
    out.mkdir(parents=True, exist_ok=True)
    if ctx.rank == 0:
        if not resume or not run_file.exists():
            for stale in out.glob(_ITEMS_GLOB):
                stale.unlink()
        atomic_write_text(run_file, json.dumps(fingerprint, indent=2) + "\n", overwrite=True)
    ctx.barrier()
    return read_records(out) if resume else {}


def run_benchmark(
    model: Any,
    benchmark: Benchmark,
    *,
    out_dir: str | Path | None = None,
    limit: int | None = None,
    tile: int | None = None,
    overlap: int = 32,
    ensemble: bool = False,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
    step_progress: Callable[[int, int], None] | None = None,
    save_images: bool = False,
    resume: bool = True,
    label: str | None = None,
    trace: bool = False,
) -> RunResult:
    """Run ``model`` over ``benchmark``, score every output, and record the results.

    Args:
        model: a ``Denoiser`` (an adapter-wrapped one included: ``adapter.wrap(backbone)``) or
            any ``model(noisy, cond) -> output`` callable. A module is moved to ``device`` and
            put in ``eval()`` mode for the run (its previous mode is restored afterwards).
        benchmark: the benchmark; its protocol scores every output.
        out_dir: folder for ``run.json``, ``items.jsonl``, ``results.json``, ``results.csv``,
            images and submissions (see the module docstring); ``None`` writes nothing.
        limit: run only the first ``limit`` items.
        tile: tile side for bounded-memory inference (``None``: whole images).
        overlap: tile overlap in pixels.
        ensemble: ×8 geometric self-ensemble.
        device: where to run (default: the model's device, else CPU).
        progress: see :data:`ProgressFn`.
        step_progress: ``(done, total)`` per tile batch or ensemble pass inside one item.
        save_images: write each output as ``out_dir/images/<key>.png`` (8-bit).
        resume: with ``out_dir``, skip items an earlier run of the same configuration finished
            (their recorded scores are reused); ``False`` discards earlier records and redoes
            every item.
        label: the model description in the results (default: the model's display name).
        trace: record the per-step trace of a test-time adapter (``model.adapter``, e.g. LAN or
            RFR) for every item: ``record["trace"]`` is the list of ``{"step", "loss", "psnr"}``
            dicts the adapter wrote (one run of steps per adapter call: several with tiling).
            PSNR is recorded when the item has ground truth and the adapter sees the whole
            image (not with ``ensemble``; with ``tile`` only when the image fits in one tile);
            it is the adapter's float PSNR of its prediction (data range 1, clipped), not the
            benchmark's protocol score. With ``out_dir`` the traces go to ``trace.json``.
            Items finished by an earlier run without tracing have no trace.

    Returns:
        A :class:`RunResult` over the (first ``limit``) items, finished earlier or now.

    Raises:
        InvalidInputError: invalid options; ``out_dir`` holds a run of another configuration;
            no ``out_dir`` for a benchmark without ground truth; or an error from the model,
            the data or the scoring (these propagate; finished items stay recorded).
    """
    if not isinstance(benchmark, Benchmark):
        raise InvalidInputError(f"run_benchmark needs a Benchmark, got {type(benchmark).__name__}")
    _check_positive("limit", limit)
    _check_positive("tile", tile)
    if not benchmark.has_ground_truth and out_dir is None:
        raise InvalidInputError(
            f"benchmark {benchmark.name!r} has no ground truth: pass out_dir to write its outputs and submission"
        )
    adapter = getattr(model, "adapter", None) if trace else None
    if trace and not (getattr(adapter, "per_image", False) and hasattr(adapter, "trace")):
        raise InvalidInputError(
            "trace=True records the steps of a test-time adapter (e.g. lan, rfr); "
            f"{getattr(model, 'display_name', None) or type(model).__name__} has none"
        )
    ctx = distributed_context()
    total = len(benchmark)
    selected = list(range(min(total, limit) if limit is not None else total))
    target = _target_device(model, device)
    was_training = model.training if isinstance(model, torch.nn.Module) else None
    if isinstance(model, torch.nn.Module):
        model.to(target).eval()
    model_info = describe_model(model)
    settings = {"tile": tile, "overlap": overlap, "ensemble": bool(ensemble), "device": str(target), "limit": limit,
                "trace": bool(trace)}
    out = Path(out_dir) if out_dir is not None else None
    done: dict[int, dict[str, Any]] = {}
    if out is not None:
        done = _prepare_out_dir(out, _fingerprint(benchmark, model_info, settings), resume, ctx)
        _check_resumed_keys(benchmark, done)

    mine = shard_indices(selected, ctx.rank, ctx.world_size)
    todo = [index for index in mine if index not in done]
    finished = len(mine) - len(todo)
    new_records: list[dict[str, Any]] = []
    log = None
    if out is not None:
        log = _RecordLog(out / ("items.jsonl" if ctx.world_size == 1 else f"items.rank{ctx.rank}.jsonl"))
    try:
        if progress is not None:
            progress(finished, len(mine), None)
        for index, sample in fetch_samples(benchmark, todo):
            record = _run_item(model, benchmark, index, sample, target, tile, overlap, ensemble, step_progress,
                               out, save_images, adapter)
            if log is not None:
                log.append(record)
            new_records.append(record)
            finished += 1
            if progress is not None:
                progress(finished, len(mine), record)
    finally:
        if log is not None:
            log.close()
        if was_training is not None and isinstance(model, torch.nn.Module):
            model.train(was_training)

    gathered = [record for part in ctx.gather(new_records) for record in part]
    chosen = set(selected)
    records = {index: record for index, record in done.items() if index in chosen}
    records.update({int(record["index"]): record for record in gathered})
    result = _result(benchmark, model_info, label, settings, ctx, target, out, [records[i] for i in sorted(records)])
    if out is not None and ctx.rank == 0:
        if not benchmark.has_ground_truth and len(records) == total:
            files = {record["key"]: out / "outputs" / f"{safe_name(record['key'])}.safetensors"
                     for record in result.items}
            result.submission = str(benchmark.write_submission(_SavedOutputs(files), out / "submission"))
        write_results(result, out)
        if trace:
            write_trace(result, out)
    return result


def _check_resumed_keys(benchmark: Benchmark, done: Mapping[int, Mapping[str, Any]]) -> None:
    keys = getattr(benchmark, "keys", None)
    if not done or not callable(keys):
        return
    names = keys()
    wrong = [(i, r.get("key")) for i, r in done.items() if i >= len(names) or names[i] != r.get("key")]
    if wrong:
        raise InvalidInputError(
            f"recorded items do not match benchmark {benchmark.name!r} (e.g. item {wrong[0][0]} was "
            f"{wrong[0][1]!r}); the data changed: use another output folder or resume=False"
        )


def _run_item(
    model: Any,
    benchmark: Benchmark,
    index: int,
    sample: Sample,
    target: torch.device,
    tile: int | None,
    overlap: int,
    ensemble: bool,
    step_progress: Callable[[int, int], None] | None,
    out: Path | None,
    save_images: bool,
    adapter: Any = None,
) -> dict[str, Any]:
    from .inference import denoise

    steps: list[dict[str, Any]] = []
    if adapter is not None:
        adapter.trace = steps
        # A self-ensemble shows the adapter rotated copies of the image: no reference then.
        adapter.reference = sample.clean.to(target) if sample.clean is not None and not ensemble else None
    try:
        started = time.perf_counter()
        output = denoise(model, sample.noisy, sample.cond or None, tile=tile, overlap=overlap, ensemble=ensemble,
                         device=target, progress=step_progress)
        seconds = time.perf_counter() - started  # denoise returns on the input's (CPU) device: synchronised
    finally:
        if adapter is not None:
            adapter.trace = None
            adapter.reference = None
    output = output.to(torch.float32)
    record: dict[str, Any] = {"index": index, "key": sample.key}
    if benchmark.has_ground_truth:
        record["metrics"] = {name: float(value) for name, value in benchmark.score(output, sample).items()}
    elif out is not None:
        _save_output(out / "outputs" / f"{safe_name(sample.key)}.safetensors", output)
    record["seconds"] = seconds
    record["cond"] = _scalar_conditions(sample.cond)
    if adapter is not None:
        record["trace"] = [{k: float(v) if k != "step" else int(v) for k, v in entry.items()} for entry in steps]
    if save_images and out is not None:
        from .image_io import write_image

        write_image(out / "images" / f"{safe_name(sample.key)}.png", display_image(output), overwrite=True)
    return record


def _result(
    benchmark: Benchmark,
    model_info: Mapping[str, Any],
    label: str | None,
    settings: Mapping[str, Any],
    ctx: DistributedContext,
    target: torch.device,
    out: Path | None,
    items: list[dict[str, Any]],
) -> RunResult:
    return RunResult(
        benchmark=benchmark.name,
        model=label or str(model_info.get("name", "")),
        conventions=benchmark.conventions,
        per_sample={item["key"]: dict(item.get("metrics", {})) for item in items},
        items=items,
        total=len(benchmark),
        benchmark_config=json.loads(_dumps(benchmark.config())),
        model_info=dict(model_info),
        settings=dict(settings),
        environment=_environment(target, ctx.world_size),
        out_dir=str(out) if out is not None else None,
    )


def write_results(result: RunResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.csv`` (replacing earlier ones) atomically.

    The CSV has one row per item: ``index``, ``key``, the metrics, ``seconds`` and one column
    per scalar condition.

    Returns:
        The two paths.
    """
    out = Path(out_dir)
    record = result.as_dict()
    record["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    json_path = atomic_write_text(out / RESULTS_JSON, _dumps(record, indent=2) + "\n", overwrite=True)
    metrics = sorted({m for item in result.items for m in item.get("metrics", {})})
    conds = sorted({c for item in result.items for c in item.get("cond", {})})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "key", *metrics, "seconds", *conds])
    for item in result.items:
        values = [item.get("metrics", {}).get(m, "") for m in metrics]
        writer.writerow([item["index"], item["key"], *[_csv_number(v) for v in values],
                         _csv_number(item.get("seconds", "")), *[item.get("cond", {}).get(c, "") for c in conds]])
    csv_path = atomic_write_text(out / RESULTS_CSV, buffer.getvalue(), overwrite=True)
    return json_path, csv_path


def mean_trace(items: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """The mean adaptation curve over items: one ``{"step", "loss", "psnr", "items"}`` per step.

    Each item's entries are first averaged per step (an item adapted tile by tile has one run
    of steps per tile), then the items are averaged. ``loss`` / ``psnr`` are left out of a step
    no item recorded them for; ``items`` counts the items with a PSNR at that step (or with a
    loss, when none has PSNR). Non-finite values are skipped. Items without ``"trace"`` are
    ignored.
    """
    per_step: dict[int, dict[str, list[float]]] = {}
    for item in items:
        mine: dict[int, dict[str, list[float]]] = {}
        for entry in item.get("trace") or ():
            step = int(entry.get("step", 0))
            for metric in ("loss", "psnr"):
                value = entry.get(metric)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    mine.setdefault(step, {}).setdefault(metric, []).append(float(value))
        for step, metrics in mine.items():
            for metric, values in metrics.items():
                per_step.setdefault(step, {}).setdefault(metric, []).append(sum(values) / len(values))
    curve: list[dict[str, float]] = []
    for step in sorted(per_step):
        metrics = per_step[step]
        row: dict[str, float] = {"step": step}
        for metric, values in sorted(metrics.items()):
            row[metric] = sum(values) / len(values)
        row["items"] = len(metrics.get("psnr", metrics.get("loss", [])))
        curve.append(row)
    return curve


def write_trace(result: RunResult, out_dir: str | Path) -> Path:
    """Write ``trace.json``: the adapter, every item's trace by key, and :func:`mean_trace`.

    Returns:
        The path written (replacing an earlier one, atomically).
    """
    record = {
        "benchmark": result.benchmark,
        "model": result.model,
        "adapter": result.model_info.get("adapter"),
        "settings": result.settings,
        "mean": mean_trace(result.items),
        "items": {item["key"]: item["trace"] for item in result.items if "trace" in item},
    }
    return atomic_write_text(Path(out_dir) / TRACE_JSON, _dumps(record, indent=2) + "\n", overwrite=True)


def _csv_number(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return value
