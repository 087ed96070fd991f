"""Weights: safetensors with rebuild metadata, safe legacy loading, domain heads."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

import noiseshift
from noiseshift.errors import OutputExistsError, WeightsError
from noiseshift.registry import DENOISERS
from noiseshift.weights import apply_head, load, load_into, load_state_dict, read_metadata, save, save_head


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return DENOISERS.build({"type": "dncnn", "depth": 4, "width": 8}).eval()


def test_save_load_round_trip_rebuilds_from_metadata_alone(model, tmp_path: Path) -> None:
    path = save(model, tmp_path / "m.safetensors", extra={"note": "test"})
    meta = read_metadata(path)
    assert meta["type"] == "dncnn" and meta["config"]["depth"] == 4 and meta["extra"] == {"note": "test"}
    restored = noiseshift.load(path)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(restored(x), model(x))
    with pytest.raises(OutputExistsError, match="overwrite"):
        save(model, path)
    save(model, path, overwrite=True)


def test_legacy_pth_is_unwrapped_and_loaded_strictly(model, tmp_path: Path) -> None:
    for key in ("params", "params_ema", "state_dict"):
        path = tmp_path / f"{key}.pth"
        torch.save({key: model.state_dict(), "iter": 5}, path)
        state = load_state_dict(path)
        assert set(state) == set(model.state_dict())
    official = load(tmp_path / "params.pth", model_type="dncnn", config={"depth": 4, "width": 8})
    assert type(official) is type(model)
    with pytest.raises(WeightsError, match="missing"):
        load(tmp_path / "params.pth", model_type="dncnn", config={"depth": 5, "width": 8})
    prefixed = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, prefixed)
    assert set(load_state_dict(prefixed)) == set(model.state_dict())


def test_strict_load_names_missing_unexpected_and_misshaped_keys(model) -> None:
    state = dict(model.state_dict())
    first = sorted(state)[0]
    state.pop(first)
    state["extra.weight"] = torch.zeros(1)
    other = DENOISERS.build({"type": "dncnn", "depth": 4, "width": 16}).state_dict()
    last_key = [k for k in state if k.endswith("weight") and state[k].dim() == 4][-1]
    state[last_key] = other[last_key]
    with pytest.raises(WeightsError) as info:
        load_into(model, state, source="ckpt.pth")
    message = str(info.value)
    assert f"missing 1 key(s): {first}" in message
    assert "unexpected 1 key(s): extra.weight" in message
    assert "shape mismatch" in message and last_key in message


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"params": {"w": torch.zeros(1)}, "payload": _Exploit()}, path)
    with pytest.raises(WeightsError, match="never unpickles"):
        load_state_dict(path)
    raw = tmp_path / "evil_raw.pth"
    raw.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(WeightsError):
        load_state_dict(raw)


def test_corrupt_empty_missing_and_foreign_files(tmp_path: Path, model) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_state_dict(tmp_path / "none.safetensors")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        load_state_dict(empty)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(256))
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load(garbage)
    broken_zip = tmp_path / "broken.pth"
    with zipfile.ZipFile(broken_zip, "w") as archive:
        archive.writestr("archive/data.pkl", b"not a pickle")
    with pytest.raises(WeightsError):
        load_state_dict(broken_zip)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(foreign))
    with pytest.raises(WeightsError, match="no noiseshift metadata"):
        load(foreign)
    rebuilt = load(foreign, model_type="dncnn", config={"depth": 4, "width": 8})
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in model.state_dict().items())
    nested = tmp_path / "nested.pth"
    torch.save({"optimizer": {"lr": torch.tensor(1.0)}, "epoch": 3}, nested)
    with pytest.raises(WeightsError, match="no state dict found"):
        load_state_dict(nested)


def test_domain_head_round_trip_and_mismatch_errors(model, tmp_path: Path) -> None:
    base = save(model, tmp_path / "base.safetensors")
    last = [name for name, _ in model.named_parameters()][-1]
    changed = {last: torch.full_like(model.state_dict()[last], 0.5)}
    head = save_head(changed, tmp_path / "head.safetensors", base=model, adapter="finetune",
                     adapter_config={"role": "last"})
    with pytest.raises(WeightsError, match="domain head"):
        load(head)
    adapted = load(base, head=head)
    assert torch.equal(adapted.state_dict()[last], changed[last])
    other = DENOISERS.build({"type": "dncnn", "depth": 5, "width": 8})
    with pytest.raises(WeightsError, match="config"):
        apply_head(other, head)
    unet = DENOISERS.build({"type": "unet"})
    with pytest.raises(WeightsError, match="'dncnn' model, not 'unet'"):
        apply_head(unet, head)
