"""Make docs/mt_wiener_sim.png: the real raw set MT.mrc, reconstructed as a user would.

    python docs/mt_wiener_sim.py [path/to/MT.mrc]

Wide-field; Wiener-SIM estimated blind (each orientation on its own); Wiener-SIM with the
pattern prior (one |k|, orientations 60° apart, the phase step known), the frame order
detected; and the shipped DFCAN-SIM. The second row shows each image's spectrum (log power).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from inference.predict.image_io import read_image
from inference.registry import build_reconstructor
from inference.training.demo_weights import demo_weights_path
from inference.wiener_sim import OTFModel, ReconstructionPlan, SIMOptics, estimate_calibration
from inference.wiener_sim import upsample_widefield as upsample
from inference.wiener_sim.frame_order import detect_order, to_orientation_major
from inference.wiener_sim.priors import PatternPrior

FIGURE = Path(__file__).with_name("mt_wiener_sim.png")
DEFAULT_MRC = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dlsr" / "MT.mrc"
OPTICS = SIMOptics(na=1.49, emission_um=0.525, pixel_um=0.0626)


def main(path: Path = DEFAULT_MRC) -> Path:
    raw = read_image(path)
    order = detect_order(raw, OPTICS)
    print(order.describe())
    raw = to_orientation_major(raw, order.order)
    otf = OTFModel(OPTICS)
    blind = estimate_calibration(raw, OPTICS, strict=False)
    prior = estimate_calibration(raw, OPTICS, strict=False, prior=PatternPrior())
    print("blind:\n" + blind.summary() + "\nwith the prior:\n" + prior.summary())
    dfcan = build_reconstructor("dfcan-sim", weights=demo_weights_path("dfcan-sim"),
                                backend="torch", device="cpu").reconstructor
    images = [
        (upsample(raw, 2, prior.background), "wide-field (mean of the 9 frames)"),
        (ReconstructionPlan(blind, otf).reconstruct(raw),
         f"Wiener-SIM, blind: {len(blind.notes)} orientation(s) not found"),
        (ReconstructionPlan(prior, otf).reconstruct(raw),
         f"Wiener-SIM with the prior (joint fit {prior.joint_confidence:.2f})"),
        (dfcan.reconstruct(raw), "DFCAN-SIM (shipped weights)"),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(18, 9.4))
    for column, (image, title) in enumerate(images):
        low, high = np.percentile(image, [0.5, 99.8])
        axes[0, column].imshow(image, cmap="gray", vmin=low, vmax=high)
        axes[0, column].set_title(title, fontsize=9)
        spectrum = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))))
        axes[1, column].imshow(spectrum, cmap="magma",
                               vmin=np.percentile(spectrum, 5), vmax=spectrum.max())
        for ax in axes[:, column]:
            ax.axis("off")
    fig.suptitle(f"MT.mrc (62.6 nm pixels, NA 1.49); {order.describe()}; with the prior the "
                 "three orientations are at "
                 + ", ".join(f"{a:.1f}°" for a in np.degrees(prior.angles_rad))
                 + f", |k| {prior.frequency_per_um.mean():.3f}/µm", fontsize=9)
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=90)
    return FIGURE


if __name__ == "__main__":
    print(main(Path(sys.argv[1])) if len(sys.argv) > 1 else main())
