"""The FCA's pieces against direct references: TF1 legacy bilinear resize, the official fftshift
slicing, the amplitude spectrum, and TF's depth_to_space order.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inference.models.depth_to_space import depth_to_space
from inference.models.fca import fftshift2d, resize_bilinear_tf1_legacy, spectrum_amplitude


def tf1_legacy_bilinear_reference(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF1 ``resize_bilinear`` (align_corners=False, no half-pixel centres), pixel by pixel.

    Source coordinate of output i: ``i * in/out`` (float32); lower = floor, upper = lower + 1
    clamped at the edge; linear weights; TF's expression order (width first, then height).
    """
    in_h, in_w = img.shape
    img = img.astype(np.float32)
    sy = np.float32(in_h) / np.float32(out_h)
    sx = np.float32(in_w) / np.float32(out_w)
    out = np.empty((out_h, out_w), np.float32)
    for i in range(out_h):
        y = np.float32(i) * sy
        y0 = int(np.floor(y))
        y1 = min(y0 + 1, in_h - 1)
        wy = np.float32(y - np.float32(y0))
        for j in range(out_w):
            x = np.float32(j) * sx
            x0 = int(np.floor(x))
            x1 = min(x0 + 1, in_w - 1)
            wx = np.float32(x - np.float32(x0))
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * wx
            bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * wx
            out[i, j] = top + (bottom - top) * wy
    return out


@pytest.mark.parametrize(
    ("in_h", "in_w", "out"),
    [(256, 256, 128), (502, 502, 128), (200, 300, 128), (130, 129, 128), (64, 96, 128), (7, 5, 16)],
)
def test_resize_matches_tf1_legacy_reference(in_h: int, in_w: int, out: int) -> None:
    rng = np.random.default_rng(in_h * 1000 + in_w)
    img = rng.random((in_h, in_w), dtype=np.float32) * 10
    ours = resize_bilinear_tf1_legacy(torch.from_numpy(img)[None, None], (out, out))[0, 0]
    expected = tf1_legacy_bilinear_reference(img, out, out)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-5)


def test_resize_small_cases_by_hand() -> None:
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0]])[None, None]
    # 4 -> 2: every second sample, no averaging (not the half-pixel 0.5, 2.5)
    assert resize_bilinear_tf1_legacy(x, (1, 2)).flatten().tolist() == [0.0, 2.0]
    y = torch.tensor([[0.0, 1.0]])[None, None]
    # 2 -> 4: sources 0, 0.5, 1, 1.5 (clamped at the edge)
    assert resize_bilinear_tf1_legacy(y, (1, 4)).flatten().tolist() == [0.0, 0.5, 1.0, 1.0]


def test_resize_is_not_half_pixel_bilinear() -> None:
    img = torch.rand(1, 3, 502, 502, generator=torch.Generator().manual_seed(1))
    ours = resize_bilinear_tf1_legacy(img, (128, 128))
    half_pixel = F.interpolate(img, size=(128, 128), mode="bilinear", align_corners=False)
    assert (ours - half_pixel).abs().max() > 1e-2


def test_resize_identity_and_batch_channels() -> None:
    img = torch.rand(2, 5, 128, 128)
    assert torch.equal(resize_bilinear_tf1_legacy(img, (128, 128)), img)
    out = resize_bilinear_tf1_legacy(torch.rand(2, 5, 256, 200), (128, 128))
    assert out.shape == (2, 5, 128, 128)


@pytest.mark.parametrize(("h", "w"), [(8, 8), (6, 10), (7, 7), (5, 8), (9, 4)])
def test_fftshift_matches_official_slicing(h: int, w: int) -> None:
    x = np.arange(h * w, dtype=np.float32).reshape(h, w)
    # the official fftshift2d, written in NumPy on an (H, W) array
    fs11 = x[-h // 2 : h, -w // 2 : w]
    fs12 = x[-h // 2 : h, 0 : w // 2]
    fs21 = x[0 : h // 2, -w // 2 : w]
    fs22 = x[0 : h // 2, 0 : w // 2]
    expected = np.concatenate(
        [np.concatenate([fs11, fs21], axis=0), np.concatenate([fs12, fs22], axis=0)], axis=1
    )
    ours = fftshift2d(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(ours, expected)
    if h % 2 == 0 and w % 2 == 0:
        np.testing.assert_array_equal(ours, np.fft.fftshift(x))


def test_spectrum_amplitude_matches_numpy() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 12)).astype(np.float32)
    for gamma in (0.8, 0.1):
        expected = (np.abs(np.fft.fft2(x.astype(np.float64))) + 1e-8) ** gamma
        ours = spectrum_amplitude(torch.from_numpy(x), gamma).numpy()
        np.testing.assert_allclose(ours, expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("s", [2, 3])
def test_depth_to_space_tf_order(s: int) -> None:
    n, c, h, w = 2, 3, 4, 5
    x = torch.randn(n, s * s * c, h, w)
    out = depth_to_space(x, s)
    assert out.shape == (n, c, h * s, w * s)
    expected = torch.empty_like(out)
    for i in range(s):
        for j in range(s):
            for ch in range(c):
                # TF: out[n, h*s+i, w*s+j, c] = in[n, h, w, (i*s+j)*C + c]
                expected[:, ch, i::s, j::s] = x[:, (i * s + j) * c + ch]
    assert torch.equal(out, expected)
    assert not torch.equal(out, F.pixel_shuffle(x, s))
