"""The training curves as a PNG: training loss and validation NRMSE against the iteration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["plot_curves"]


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    if len(values) < width or width < 2:
        return values
    kernel = np.ones(width) / width
    return np.convolve(values, kernel, mode="valid")


def plot_curves(history: dict[str, Any], path: Path, title: str = "") -> Path | None:
    """Write ``path`` (PNG); ``None`` when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    loss = np.asarray(history.get("loss", []), dtype=float)
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    if len(loss):
        steps = np.arange(1, len(loss) + 1) + int(history.get("first_step", 0))
        width = max(1, len(loss) // 100)
        smooth = _smooth(loss, width)
        ax_loss.plot(steps, loss, color="0.8", lw=0.5, label="per batch")
        ax_loss.plot(steps[width - 1:] if len(smooth) < len(loss) else steps, smooth,
                     color="C0", label=f"mean of {width}")
    ax_loss.set(xlabel="iteration", ylabel="MSE + 0.1·(1 − SSIM)", title="training loss",
                yscale="log")
    ax_loss.legend(loc="upper right")
    val_steps = history.get("val_step", [])
    if val_steps:
        ax_val.plot(val_steps, history["val_nrmse"], "o-", color="C1", label="network")
        baseline = history.get("val_nrmse_baseline")
        if baseline is not None:
            ax_val.axhline(baseline, color="0.4", ls="--", label="input (upsampled)")
        ax_val.legend(loc="best")
    ax_val.set(xlabel="iteration", ylabel="NRMSE", title="validation NRMSE")
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
