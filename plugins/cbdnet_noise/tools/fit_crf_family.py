"""How well does the built-in GGCM family stand in for the 201 DoRF camera response curves?

Fits the first-order generalised gamma curve ``f(r) = r^(a + (s − a)·r)`` (the plugin's
built-in family, see ``noiseshift_cbdnet_noise.crf``) and a plain gamma ``r^g`` to every DoRF
curve by least squares, prints the RMSE distribution and the fitted parameters, and measures
how close the nearest member of the default sampling box is to each DoRF curve. These are the
numbers quoted in the ``crf`` module docstring and in docs/noise_models.md.

Usage::

    python plugins/cbdnet_noise/tools/fit_crf_family.py --crf-dir ../shared/data/crf
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from noiseshift_cbdnet_noise.cbdnet import CBDNetNoise
from noiseshift_cbdnet_noise.crf import load_dorf

DEFAULT_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "crf"


def ggcm(params: np.ndarray, r: np.ndarray) -> np.ndarray:
    exponent, end_slope = params
    return r ** (exponent + (end_slope - exponent) * r)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crf-dir", type=Path, default=DEFAULT_DIR, help="folder with the DoRF .mat files")
    parser.add_argument("--box-steps", type=int, default=40, help="grid steps per axis for the box coverage")
    args = parser.parse_args()

    curves = load_dorf(args.crf_dir).forward.double().numpy()
    r = np.linspace(0.0, 1.0, curves.shape[1])[1:]
    targets = curves[:, 1:]
    (e_low, e_high), (s_low, s_high) = CBDNetNoise.DEFAULT_CRF_EXPONENT, CBDNetNoise.DEFAULT_CRF_END_SLOPE

    ggcm_fit, ggcm_err, gamma_err = [], [], []
    for target in targets:
        fit = least_squares(lambda p: ggcm(p, r) - target, [0.5, 0.5], bounds=([0.05, s_low], [4.0, 4.0]))
        ggcm_fit.append(fit.x)
        ggcm_err.append(rmse(ggcm(fit.x, r), target))
        gamma = least_squares(lambda p: r ** p[0] - target, [0.45], bounds=([0.01], [5.0]))
        gamma_err.append(rmse(r ** gamma.x[0], target))
    params, ggcm_err, gamma_err = np.array(ggcm_fit), np.array(ggcm_err), np.array(gamma_err)

    exponents = np.linspace(e_low, e_high, args.box_steps)
    slopes = np.linspace(s_low, s_high, args.box_steps)
    box = np.stack([ggcm((e, s), r) for e in exponents for s in slopes])
    nearest = np.sqrt(((targets[:, None, :] - box[None]) ** 2).mean(-1)).min(1)

    def summary(values: np.ndarray) -> str:
        return (f"median {np.median(values):.4f}  mean {values.mean():.4f}  "
                f"p90 {np.percentile(values, 90):.4f}  max {values.max():.4f}")

    print(f"DoRF curves: {len(targets)} from {args.crf_dir}")
    print(f"best plain gamma r^g          RMSE {summary(gamma_err)}")
    print(f"best GGCM r^(a+(s-a)r)        RMSE {summary(ggcm_err)}")
    print(f"nearest member of the box     RMSE {summary(nearest)}   "
          f"(box a in [{e_low}, {e_high}], s in [{s_low}, {s_high}])")
    pct = (0, 5, 25, 50, 75, 95, 100)
    print(f"fitted a percentiles {pct}: {np.round(np.percentile(params[:, 0], pct), 3).tolist()}")
    print(f"fitted s percentiles {pct}: {np.round(np.percentile(params[:, 1], pct), 3).tolist()}")
    at_bound = np.mean(params[:, 1] <= s_low + 1e-6)
    inside = np.mean((params[:, 0] >= e_low) & (params[:, 0] <= e_high) & (params[:, 1] <= s_high))
    print(f"fits with s at its lower bound {s_low}: {at_bound:.1%}; fits inside the box: {inside:.1%}")


if __name__ == "__main__":
    main()
