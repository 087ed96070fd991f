"""DistributedDataParallel on CPU: two gloo processes on 127.0.0.1 end with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

WORKER = """
import sys
from safetensors.torch import save_file
from noiseshift.training import Trainer

config, work_dir, out = sys.argv[1:4]

def dump(trainer, done):
    if done == trainer.cfg.train_cfg["max_iters"]:
        state = {k: v.detach().contiguous().clone() for k, v in trainer.model.state_dict().items()}
        save_file(state, f"{out}/rank{trainer.dist.rank}.safetensors",
                  metadata={"world_size": str(trainer.dist.world_size), "backend": str(trainer.dist.backend)})

Trainer(config, work_dir=work_dir, hooks=[dump], progress=False).train()
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_ranks_train_in_lockstep_and_only_rank0_writes(tiny_config, tmp_path: Path) -> None:
    config = tiny_config(iters=6, interval=3)
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    work_dir, out = tmp_path / "run", tmp_path / "weights"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(script), str(config), str(work_dir), str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    rank0, rank1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"ranks differ in {key}"
    # The ranks really trained: the weights moved away from the seeded initialisation.
    torch.manual_seed(0)
    from noiseshift.registry import DENOISERS

    initial = DENOISERS.build({"type": "dncnn", "depth": 3, "width": 8}).state_dict()
    assert not torch.equal(initial["head.0.weight"], rank0["head.0.weight"])
    # Rank 0 alone logged and checkpointed: one start record, one checkpoint record per save.
    records = [json.loads(line) for line in (work_dir / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records].count("start") == 1
    assert [r["iter"] for r in records if r["event"] == "checkpoint"] == [3, 6]
    assert records[0]["world_size"] == 2
    final = load_file(str(work_dir / "checkpoints" / "iter_00000006.safetensors"))
    assert all(torch.equal(final[k], rank0[k]) for k in final)
