"""The ain_transfer adapter: conformance, exactly the domain role, errors, heads through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from noiseshift.api import (
    ADAPTERS,
    DENOISERS,
    NOISE_MODELS,
    Denoiser,
    InvalidInputError,
    Sample,
    apply_head,
    load,
    save,
    save_head,
)
from noiseshift.cli import main
from noiseshift.image_io import read_image, write_image
from noiseshift.testing import check_adapter
from noiseshift_ain_transfer import AINDNet, AINTransfer

SMOKE = {"steps": 2, "batch_size": 2, "patch_size": 16}


def _pairs(count: int = 2, size: int = 32, channels: int = 3, sigma: float = 0.1, seed: int = 0) -> list[Sample]:
    generator = torch.Generator().manual_seed(seed)
    noise = NOISE_MODELS.build({"type": "gaussian", "sigma": sigma})
    pairs = []
    for index in range(count):
        base = torch.rand(1, channels, 4, 4, generator=generator)
        clean = nn.functional.interpolate(base, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        noisy = noise(clean, generator).noisy.clamp(0, 1)
        pairs.append(Sample(f"p{index}", noisy, clean))
    return pairs


def _aindnet() -> AINDNet:
    torch.manual_seed(0)
    return AINDNet(preset="tiny").eval()


def _names(model: nn.Module, params: list[nn.Parameter]) -> set[str]:
    ids = {id(p) for p in params}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def test_conforms_on_the_default_and_on_aindnet() -> None:
    check_adapter(AINTransfer, config=SMOKE)
    check_adapter(AINTransfer, config=SMOKE, backbone=_aindnet())


def test_registered_capabilities_and_config() -> None:
    assert ADAPTERS.lookup("ain_transfer") is AINTransfer
    adapter = AINTransfer(**SMOKE)
    assert adapter.trainable == ("domain",) and adapter.needs == frozenset({"target_pairs"})
    assert not adapter.per_image
    assert "role" not in adapter.config()
    assert AINTransfer(**adapter.config()).config() == adapter.config()
    defaults = AINTransfer().config()
    assert defaults["patch_size"] == 256 and defaults["loss"] == "l1"  # the paper's patch and loss
    with pytest.raises(TypeError):
        AINTransfer(role="all")  # the role is what makes it AIN transfer


def test_fit_updates_exactly_the_papers_transfer_set() -> None:
    backbone = _aindnet()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    adapter = AINTransfer(steps=3, batch_size=2, patch_size=16, lr=1e-2)
    model = adapter.wrap(backbone)
    report = adapter.fit(model, target=_pairs(), generator=torch.Generator().manual_seed(0))
    domain = _names(backbone, backbone.parameters_for("domain"))
    changed = {k for k, v in backbone.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and changed <= domain
    # Frozen: AIN-ResBlock convolutions, heads, skips, up-sampling.
    assert not any(k.startswith(("head", "skip", "up", "encoder", "bottleneck", "decoder")) and ".norm" not in k
                   for k in changed)
    assert set(adapter.delta(model)) == domain == set(report.changed)
    assert report.steps == 3 and len(report.history) == 3
    extra = report.extra
    assert extra["role"] == "domain" and extra["trained_parameters"] == sum(p.numel() for p in backbone.parameters_for("domain"))
    assert 0 < extra["trained_fraction"] < 1 and extra["head_tensors"] == len(domain)
    assert all(p.requires_grad for p in backbone.parameters()) and all(p.grad is None for p in backbone.parameters())


def test_fitting_lowers_the_target_loss() -> None:
    backbone = _aindnet()
    pairs = _pairs(count=1, size=16, sigma=0.15, seed=3)
    sample = pairs[0]

    def l1() -> float:
        with torch.no_grad():
            return float((backbone(sample.noisy) - sample.clean).abs().mean())

    start = l1()
    adapter = AINTransfer(steps=25, batch_size=1, patch_size=16, lr=1e-2)
    adapter.fit(adapter.wrap(backbone), target=pairs, generator=torch.Generator().manual_seed(0))
    assert l1() < 0.8 * start


def test_head_is_smaller_than_full_finetuning() -> None:
    # The paper's "+RT" baseline is the core finetune adapter with role all.
    tf_backbone, rt_backbone = _aindnet(), _aindnet()
    tf = AINTransfer(**SMOKE)
    rt = ADAPTERS.build({"type": "finetune", "role": "all", **SMOKE})
    tf_model, rt_model = tf.wrap(tf_backbone), rt.wrap(rt_backbone)
    tf.fit(tf_model, target=_pairs())
    rt.fit(rt_model, target=_pairs())
    tf_size = sum(v.numel() for v in tf.delta(tf_model).values())
    rt_size = sum(v.numel() for v in rt.delta(rt_model).values())
    assert tf_size == sum(p.numel() for p in tf_backbone.parameters_for("domain")) < rt_size


class _NoDomain(Denoiser):
    name = "no_domain_test"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, noisy, cond=None):
        return self.conv(noisy)

    def parameter_groups(self):
        return {"first": [self.conv.weight], "last": [self.conv.weight], "all": list(self.parameters())}


class _EmptyDomain(_NoDomain):
    name = "empty_domain_test"

    def parameter_groups(self):
        return {**super().parameter_groups(), "domain": []}


def test_backbones_without_a_domain_role_are_refused_clearly() -> None:
    with pytest.raises(InvalidInputError, match=r"no_domain_test defines no 'domain' parameter role.*'first'"):
        AINTransfer(**SMOKE).wrap(_NoDomain())
    with pytest.raises(InvalidInputError, match="'domain' parameter role is empty"):
        AINTransfer(**SMOKE).wrap(_EmptyDomain())
    with pytest.raises(InvalidInputError, match="parameter-free"):
        AINTransfer(**SMOKE).wrap(DENOISERS.build({"type": "bm3d"}))
    adapter = AINTransfer(**SMOKE)
    model = adapter.wrap(_aindnet())
    with pytest.raises(InvalidInputError, match="needs target_pairs"):
        adapter.fit(model, target=None)


def test_head_round_trip_through_the_python_api_and_denoise_cli(tmp_path: Path) -> None:
    backbone = _aindnet()
    base = save(backbone, tmp_path / "base.safetensors")
    adapter = AINTransfer(steps=4, batch_size=2, patch_size=16, lr=1e-2)
    model = adapter.wrap(backbone)
    adapter.fit(model, target=_pairs(), generator=torch.Generator().manual_seed(0))
    head = save_head(adapter.delta(model), tmp_path / "head.safetensors", base=backbone,
                     adapter=adapter.name, adapter_config=adapter.config())

    restored = load(base)
    image = _pairs(count=1, size=24, seed=5)[0].noisy
    with torch.no_grad():
        plain = restored(image)
        meta = apply_head(restored, head)
        adapted = backbone(image)
        torch.testing.assert_close(restored(image), adapted)
    assert meta["adapter"] == "ain_transfer" and meta["adapter_config"] == adapter.config()
    assert not torch.allclose(plain, adapted)

    write_image(tmp_path / "in" / "x.png", image)
    x = read_image(tmp_path / "in" / "x.png")
    with torch.no_grad():
        expected = backbone(x).clamp(0, 1)
    assert main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(base),
                 "--head", str(head)]) == 0
    assert (read_image(tmp_path / "out" / "x.png") - expected).abs().max() <= 1 / 255 + 1e-6
    assert main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "out_base"), "--model", str(base)]) == 0
    assert (read_image(tmp_path / "out_base" / "x.png") - expected).abs().max() > 2 / 255


def test_noiseshift_adapt_writes_a_domain_head(tmp_path: Path, capsys) -> None:
    backbone = _aindnet()
    base = save(backbone, tmp_path / "base.safetensors")
    for sample in _pairs(count=2, size=32):
        write_image(tmp_path / "pairs" / "noisy" / f"{sample.key}.png", sample.noisy)
        write_image(tmp_path / "pairs" / "clean" / f"{sample.key}.png", sample.clean)
    head = tmp_path / "head.safetensors"
    assert main(["adapt", "ain_transfer", "--model", str(base), "--target-root", str(tmp_path / "pairs"),
                 "-O", "steps=2", "-O", "batch_size=2", "-O", "patch_size=16", "-o", str(head)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["role"] == "domain" and summary["steps"] == 2
    report = json.loads(head.with_suffix(".fit.json").read_text())
    assert report["adapter"] == "ain_transfer" and len(report["history"]) == 2
    restored = load(base)
    names = _names(restored, restored.parameters_for("domain"))
    assert set(load(base, head=head).state_dict()) == set(restored.state_dict())
    from safetensors import safe_open

    with safe_open(str(head), framework="pt") as handle:
        assert set(handle.keys()) == names
    assert main(["denoise", str(tmp_path / "pairs" / "noisy"), "-o", str(tmp_path / "out"), "--model", str(base),
                 "--head", str(head)]) == 0
    assert (tmp_path / "out" / "p0.png").is_file()
