"""``python -m noiseshift.cli``."""

from . import run

run()
