"""The guarded plugin loader, on real installed (throwaway) distributions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from noiseshift.errors import AmbiguousNameError, PluginLoadError, UnknownComponentError
from noiseshift.registry import ADAPTERS, DENOISERS, HOST, LOSSES

GOOD = """
from noiseshift.api import Denoiser, hookimpl

class Tiny(Denoiser):
    '''Identity for tests.'''
    name = "tiny"
    def forward(self, noisy, cond=None):
        return noisy
    def parameter_groups(self):
        return {"first": [], "last": [], "domain": [], "all": []}

@hookimpl
def register_denoisers(register):
    register(Tiny)
"""

BROKEN = """
raise RuntimeError("this plugin is broken on purpose")
"""

COLLIDER = """
from noiseshift.api import Adapter, hookimpl

class Dup(Adapter):
    '''Colliding adapter from {plugin}.'''
    name = "dup"

@hookimpl
def register_adapters(register):
    register(Dup)
"""


def test_builtins_register_through_hooks() -> None:
    HOST.load()
    assert HOST.records["noiseshift"].status == "builtin"
    assert DENOISERS.lookup("dncnn").__name__ == "DnCNN"
    assert DENOISERS.lookup("noiseshift.dncnn") is DENOISERS.lookup("dncnn")
    assert {"denoisers", "noise_models", "adapters", "losses"} <= set(HOST.records["noiseshift"].provides)


def test_working_plugin_is_loaded_with_scope_and_short_name(plugin_site) -> None:
    plugin_site("noiseshift-goodplug", "goodplug", GOOD, version="1.2.3")
    HOST.reload()
    record = HOST.records["goodplug"]
    assert (record.status, record.distribution, record.version) == ("ok", "noiseshift-goodplug", "1.2.3")
    assert record.provides == {"denoisers": ["tiny"]}
    assert DENOISERS.lookup("goodplug.tiny") is DENOISERS.lookup("tiny")
    model = DENOISERS.build({"type": "goodplug.tiny"})
    assert model.name == "tiny"


def test_broken_plugin_is_reported_and_others_still_load(plugin_site, capsys) -> None:
    plugin_site("noiseshift-aaa-broken", "aaa_broken", BROKEN)  # sorts before the good one
    plugin_site("noiseshift-goodplug", "goodplug", GOOD)
    HOST.reload()
    broken = HOST.records["aaa_broken"]
    assert broken.status == "failed"
    assert "RuntimeError: this plugin is broken on purpose" in broken.error
    assert "NOISESHIFT_DISABLE_PLUGINS=aaa_broken" in broken.hint
    assert HOST.records["goodplug"].status == "ok"
    assert "tiny" in DENOISERS
    assert "aaa_broken" in capsys.readouterr().err
    with pytest.raises(UnknownComponentError, match="1 plugin\\(s\\) failed to load \\(aaa_broken\\)"):
        DENOISERS.lookup("nonexistent")


def test_strict_mode_makes_a_broken_plugin_fatal(plugin_site, monkeypatch) -> None:
    plugin_site("noiseshift-aaa-broken", "aaa_broken", BROKEN)
    monkeypatch.setenv("NOISESHIFT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="aaa_broken"):
        HOST.reload()
    monkeypatch.delenv("NOISESHIFT_STRICT_PLUGINS")


def test_disabled_plugins_are_skipped(plugin_site, monkeypatch) -> None:
    plugin_site("noiseshift-goodplug", "goodplug", GOOD)
    monkeypatch.setenv("NOISESHIFT_DISABLE_PLUGINS", "goodplug, other")
    HOST.reload()
    assert HOST.records["goodplug"].status == "disabled"
    assert "tiny" not in DENOISERS
    monkeypatch.setenv("NOISESHIFT_DISABLE_PLUGINS", "")
    monkeypatch.setenv("NOISESHIFT_LOAD_PLUGINS", "")
    HOST.reload()
    assert HOST.records["goodplug"].status == "disabled"
    assert "dncnn" in DENOISERS  # built-ins are not plugins and always load


def test_colliding_plugins_leave_the_short_name_ambiguous(plugin_site) -> None:
    plugin_site("noiseshift-collide-a", "collide_a", COLLIDER.replace("{plugin}", "a"))
    plugin_site("noiseshift-collide-b", "collide_b", COLLIDER.replace("{plugin}", "b"))
    HOST.reload()
    with pytest.raises(AmbiguousNameError) as info:
        ADAPTERS.get("dup")
    assert "'collide_a.dup'" in str(info.value) and "'collide_b.dup'" in str(info.value)
    first, second = ADAPTERS.lookup("collide_a.dup"), ADAPTERS.lookup("collide_b.dup")
    assert first is not second
    assert "from a" in first.__doc__ and "from b" in second.__doc__
    HOST.remove_plugin("collide_b")
    assert ADAPTERS.lookup("dup") is first  # unique again once one provider is gone


def test_plugin_cannot_take_a_builtin_short_name(plugin_site) -> None:
    plugin_site("noiseshift-shadow", "shadow", GOOD.replace('name = "tiny"', 'name = "dncnn"'))
    HOST.reload()
    assert DENOISERS.lookup("dncnn").__module__ == "noiseshift.models.dncnn"
    assert DENOISERS.lookup("shadow.dncnn").__module__ == "ns_test_shadow"
    assert any("also a built-in" in w for w in HOST.records["shadow"].warnings)


def test_unknown_hook_and_invalid_components_fail_atomically(plugin_site) -> None:
    plugin_site("noiseshift-typo", "typo", GOOD.replace("def register_denoisers", "def register_denoiser"))
    bad_class = GOOD + """
class NotADenoiser:
    name = "nope"

@hookimpl
def register_adapters(register):
    register(NotADenoiser)
"""
    plugin_site("noiseshift-badclass", "badclass", bad_class, module="ns_test_badclass")
    HOST.reload()
    typo = HOST.records["typo"]
    assert typo.status == "failed" and "unknown hook 'register_denoiser'" in typo.error
    assert "did you mean 'register_denoisers'" in typo.error
    bad = HOST.records["badclass"]
    assert bad.status == "failed" and "must be a subclass of Adapter" in bad.error
    assert "badclass.tiny" not in DENOISERS  # nothing of a failed plugin stays registered


def test_failed_lookup_suggests_near_names() -> None:
    with pytest.raises(UnknownComponentError, match="Did you mean 'dncnn'"):
        DENOISERS.lookup("DnCNN")
    with pytest.raises(UnknownComponentError, match="charbonnier"):
        LOSSES.build({"type": "charbonier"})


def test_dotted_python_paths_are_never_imported() -> None:
    assert DENOISERS.get("os.system") is None
    with pytest.raises(UnknownComponentError):
        DENOISERS.build({"type": "subprocess.Popen", "args": ["true"]})


def test_build_rejects_unknown_options_listing_accepted_ones() -> None:
    from noiseshift.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unknown option\\(s\\) \\['depht'\\].*'depth'"):
        DENOISERS.build({"type": "dncnn", "depht": 3})


def test_mmengine_config_type_names_survive_base_merging(tmp_path: Path) -> None:
    from mmengine.config import Config

    (tmp_path / "base.py").write_text("model = dict(type='dncnn', depth=5, width=16)\n")
    (tmp_path / "child.py").write_text("_base_ = ['base.py']\nmodel = dict(width=8)\n")
    config = Config.fromfile(str(tmp_path / "child.py"))
    model = DENOISERS.build(config.model)
    assert model.config()["depth"] == 5 and model.config()["width"] == 8


COMMANDS = """
import click
from noiseshift.api import hookimpl

@click.command("hello")
def hello():
    '''Say hello from a plugin.'''
    click.echo("hello from plugin")

@hookimpl
def register_commands(cli):
    cli.add_command(hello)
"""


def _run_cli(site: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(site), **(env or {})}
    return subprocess.run([sys.executable, "-m", "noiseshift.cli", *args], capture_output=True, text=True,
                          env=environment, timeout=120)


def test_cli_survives_a_broken_plugin_and_reports_it(plugin_site) -> None:
    site = plugin_site("noiseshift-aaa-broken", "aaa_broken", BROKEN)
    plugin_site("noiseshift-cmds", "cmds", COMMANDS)
    result = _run_cli(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["aaa_broken"]["status"] == "failed"
    assert records["cmds"]["status"] == "ok" and records["cmds"]["hooks"] == ["register_commands"]
    hello = _run_cli(site, "hello")
    assert hello.returncode == 0 and "hello from plugin" in hello.stdout
    listing = _run_cli(site, "list", "denoisers", "--json")
    assert {row["name"] for row in json.loads(listing.stdout)} >= {"dncnn", "unet", "bm3d", "nlmeans"}
    strict = _run_cli(site, "plugins", env={"NOISESHIFT_STRICT_PLUGINS": "1"})
    assert strict.returncode != 0 and "aaa_broken" in strict.stderr
