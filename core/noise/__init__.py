"""Built-in synthetic noise models: additive white ``Gaussian`` and heteroscedastic
``PoissonGaussian`` noise.

Every class here is a ``noiseshift.NoiseModel``; registering them under their ``name`` is done
elsewhere, so importing this package has no side effects beyond importing the classes.
"""

from __future__ import annotations

from .gaussian import Gaussian, PoissonGaussian
from .mixture import Mixture

__all__ = ["Gaussian", "Mixture", "PoissonGaussian"]
