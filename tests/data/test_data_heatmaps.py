"""Heatmap targets against a plain re-derivation of the official formula, and known values."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from fgnet_core.data.heatmaps import au_centres, au_heatmaps, heatmaps_to_aus, landmark_divisor

SIGMA = 20.0


# --------------------------------------------------------------------- reference: the formula, written plainly

def _gaussian(centre, size, sigma):
    grid = np.fromfunction(
        lambda y, x: ((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / -(2.0 * sigma * sigma), (size, size), dtype=int
    )
    g = np.exp(grid)
    g[g < 0.01] = 0
    g[g > 1] = 1
    return g


def _reference(lmk, labels, dataset, size, sigma=SIGMA):
    if size == 128:
        lmk = lmk / 2
    elif size == 64:
        lmk = lmk / 4
    elif size != 256:  # the official code leaves other sizes unscaled; we scale them to the heatmap frame
        lmk = lmk / (256 / size)
    iod = np.linalg.norm(lmk[42] - lmk[39])
    brow_l, brow_r = lmk[17:22].mean(axis=0), lmk[22:27].mean(axis=0)
    eye_l, eye_r = lmk[36:42].mean(axis=0), lmk[42:48].mean(axis=0)
    below = lambda p, k: [p[0], p[1] + k * iod]  # noqa: E731
    pairs = {
        1: (lmk[21], lmk[22]), 2: (lmk[17], lmk[26]), 4: (brow_l, brow_r),
        6: (below(eye_l, 1.0), below(eye_r, 1.0)), 7: (lmk[38], lmk[43]), 9: (lmk[39], lmk[42]),
        10: (lmk[50], lmk[52]), 12: (lmk[48], lmk[54]), 14: (lmk[48], lmk[54]), 15: (lmk[48], lmk[54]),
        17: (below(lmk[56], 0.5), below(lmk[58], 0.5)), 23: (lmk[51], lmk[57]), 24: (lmk[51], lmk[57]),
        25: (lmk[51], lmk[57]), 26: (lmk[56], lmk[58]),
    }
    aus = {"BP4D": [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24], "DISFA": [1, 2, 4, 6, 9, 12, 25, 26]}[dataset]
    out = np.zeros((len(aus), size, size))
    for c, au in enumerate(aus):
        for k, centre in enumerate(pairs[au]):
            if k == 1 and centre[0] == -1:
                continue
            if labels[c] == 1:
                out[c] += _gaussian(centre, size, sigma)
            else:
                out[c] -= _gaussian(centre, size, sigma)
    return np.clip(out, -1.0, 1.0)


def _face(rng, jitter=25.0):
    """68 plausible landmarks in the 256 frame: a mean-ish face shape plus noise."""
    base = np.zeros((68, 2))
    base[0:17] = np.stack([np.linspace(40, 216, 17), 120 + 80 * np.sin(np.linspace(0, np.pi, 17))], 1)
    base[17:27] = np.stack([np.linspace(60, 196, 10), np.full(10, 90.0)], 1)
    base[27:36] = np.stack([np.full(9, 128.0), np.linspace(100, 160, 9)], 1)
    base[36:42] = np.stack([np.linspace(70, 110, 6), np.full(6, 110.0)], 1)
    base[42:48] = np.stack([np.linspace(146, 186, 6), np.full(6, 110.0)], 1)
    angle = np.linspace(0, 2 * np.pi, 20)
    base[48:68] = np.stack([128 + 32 * np.cos(angle), 190 + 12 * np.sin(angle)], 1)
    return base + rng.normal(0, jitter, (68, 2))


@pytest.mark.parametrize("dataset, n_aus", [("BP4D", 12), ("DISFA", 8)])
@pytest.mark.parametrize("size", [128, 64])
def test_matches_reference_on_random_faces(dataset, n_aus, size):
    rng = np.random.default_rng(size + n_aus)
    for trial in range(4):
        lmk = _face(rng) if trial < 3 else rng.uniform(-20, 280, (68, 2))
        labels = rng.integers(0, 2, n_aus)
        got = au_heatmaps(lmk, labels, dataset, size=size, sigma=SIGMA)
        assert got.shape == (n_aus, size, size) and got.dtype == np.float64
        np.testing.assert_allclose(got, _reference(lmk, labels, dataset, size), rtol=0, atol=1e-12)


@pytest.mark.parametrize("size, sigma", [(256, 20.0), (96, 7.5), (128, 3.0)])
def test_matches_reference_on_other_sizes_sigmas_and_dtypes(size, sigma):
    rng = np.random.default_rng(7)
    lmk = _face(rng).astype(np.float32)
    labels = torch.tensor(rng.integers(0, 2, 12), dtype=torch.float32)  # as the official loader passes them
    got = au_heatmaps(lmk, labels, "BP4D", size=size, sigma=sigma)
    np.testing.assert_allclose(got, _reference(lmk, labels.numpy(), "BP4D", size, sigma), rtol=0, atol=1e-12)
    ints = np.round(_face(rng)).astype(np.int64)  # dlib's landmarks are integers
    np.testing.assert_allclose(au_heatmaps(ints, labels, "BP4D", size=size, sigma=sigma),
                               _reference(ints, labels.numpy(), "BP4D", size, sigma), rtol=0, atol=1e-12)


def _spread_face():
    """Landmarks with every Gaussian centre far from the others, on even (256-frame) coordinates."""
    lmk = np.zeros((68, 2))
    lmk[:, 0], lmk[:, 1] = 2.0, 2.0
    lmk[21], lmk[22] = (40, 40), (216, 40)  # AU1 centres, far apart
    lmk[39], lmk[42] = (60, 120), (196, 120)  # IOD = 136 in the 256 frame
    return lmk


def test_peak_is_plus_one_when_present_and_minus_one_when_absent():
    lmk = _spread_face()
    for label, expected in ((1, 1.0), (0, -1.0), (2, -1.0)):  # only a label equal to 1 adds
        labels = np.zeros(12)
        labels[0] = label
        h = au_heatmaps(lmk, labels, "BP4D", size=128)
        assert h[0, 20, 20] == expected  # row y, column x: landmark 21 at (40, 40) / 2
        assert h[0, 20, 108] == expected  # landmark 22 at (216, 40) / 2
        assert h[0, 20, 21] == pytest.approx(expected * np.exp(-1 / (2 * SIGMA**2)), abs=1e-15)


def test_threshold_zeroes_small_values():
    lmk = _spread_face()
    lmk[39], lmk[42] = (20, 20), (240, 240)  # DISFA AU9 centres at (10, 10) and (120, 120) in the 128 frame
    labels = np.zeros(8)
    labels[4] = 1
    h = au_heatmaps(lmk, labels, "DISFA", size=128)[4]
    assert h[10, 70] == pytest.approx(np.exp(-3600 / 800), abs=1e-15)  # 60 px away: 0.0111 kept
    assert h[10, 71] == 0.0  # 61 px away: 0.0096 < 0.01, zeroed
    assert np.exp(-3721 / 800) > 0.009


def test_iod_offsets_for_au6_and_au17():
    lmk = _spread_face()
    lmk[36:42] = (60, 100)
    lmk[42:48] = (180, 100)  # IOD = |lmk42 - lmk39| = 120
    lmk[56], lmk[58] = (100, 180), (156, 180)
    c = au_centres(lmk, "BP4D", size=256)
    np.testing.assert_allclose(c[3], [[60, 220], [180, 220]])  # AU6: one IOD below the eye centres
    np.testing.assert_allclose(c[9], [[100, 240], [156, 240]])  # AU17: half an IOD below 56 and 58
    c128 = au_centres(lmk, "BP4D", size=128)
    np.testing.assert_allclose(c128[3], [[30, 110], [90, 110]])  # IOD measured after scaling
    np.testing.assert_allclose(au_centres(lmk, "DISFA", size=256)[7], [[100, 180], [156, 180]])  # AU26: none


def test_landmark_scaling_to_the_heatmap_frame():
    assert [landmark_divisor(s) for s in (128, 64, 256, 32, 100)] == [2, 4, 1, 8, 2.56]
    lmk = _spread_face()
    np.testing.assert_allclose(au_centres(lmk, "BP4D", 128)[0], [[20, 20], [108, 20]])
    np.testing.assert_allclose(au_centres(lmk, "BP4D", 64)[0], [[10, 10], [54, 10]])
    np.testing.assert_allclose(au_centres(lmk, "BP4D", 256)[0], [[40, 40], [216, 40]])
    np.testing.assert_allclose(au_centres(lmk, "BP4D", 32)[0], [[5, 5], [27, 5]])  # official: unscaled (a bug)
    labels = np.ones(12)
    assert au_heatmaps(lmk, labels, "BP4D", size=64)[0, 10, 10] == 1.0


def test_overlapping_blobs_sum_before_the_final_clip():
    lmk = _spread_face()
    lmk[21] = lmk[22] = (100, 100)  # AU1's two centres coincide at (50, 50) in the 128 frame
    g = np.exp(-(30**2) / (2 * SIGMA**2))  # one blob 30 px away: 0.3247, two blobs: 0.649 (no clip)
    for label, sign in ((1, 1), (0, -1)):
        labels = np.full(12, label)
        h = au_heatmaps(lmk, labels, "BP4D", size=128)[0]
        assert h[50, 50] == sign * 1.0  # 2 clipped to 1
        assert h[50, 80] == pytest.approx(sign * 2 * g, abs=1e-15)
        near = np.exp(-(5**2) / (2 * SIGMA**2))
        assert h[50, 55] == sign * 1.0 and 2 * near > 1  # summed past 1, then clipped


def test_au12_14_15_share_anchors_but_not_labels():
    rng = np.random.default_rng(3)
    lmk = _face(rng)
    labels = np.zeros(12)
    labels[[6, 8]] = 1  # AU12 and AU15 present, AU14 absent
    h = au_heatmaps(lmk, labels, "BP4D")
    np.testing.assert_array_equal(h[6], h[8])
    np.testing.assert_array_equal(h[7], -h[6])
    assert h[6].max() == 1.0


def test_second_centre_at_minus_one_is_skipped():
    lmk = _spread_face()
    lmk[22] = (-2, 40)  # AU1's second centre x becomes exactly -1 at 128
    labels = np.ones(12)
    h = au_heatmaps(lmk, labels, "BP4D", size=128)[0]
    assert h[20, 0] == pytest.approx(np.exp(-(20**2) / (2 * SIGMA**2)))  # only the blob at (20, 20) counts
    np.testing.assert_allclose(h, _reference(lmk, labels, "BP4D", 128)[0], atol=1e-12)


def test_input_checks():
    with pytest.raises(ValueError, match="68, 2"):
        au_heatmaps(np.zeros((5, 2)), np.zeros(12), "BP4D")
    with pytest.raises(ValueError, match="12 labels"):
        au_heatmaps(_spread_face(), np.zeros(8), "BP4D")


# --------------------------------------------------------------------------------------------- read-out

def test_heatmaps_to_aus_recovers_labels_numpy_and_torch():
    rng = np.random.default_rng(11)
    maps, labels = [], []
    for _ in range(6):
        lab = rng.integers(0, 2, 8)
        maps.append(au_heatmaps(_face(rng, jitter=5), lab, "DISFA"))
        labels.append(lab)
    batch, labels = np.stack(maps), np.stack(labels)  # [6, 8, 128, 128], [6, 8]
    out = heatmaps_to_aus(batch)
    assert out.dtype == np.int64 and out.shape == (6, 8)
    np.testing.assert_array_equal(out, labels)
    np.testing.assert_array_equal(heatmaps_to_aus(batch[2]), labels[2])  # [n_aus, H, W]
    t = heatmaps_to_aus(torch.from_numpy(batch).float())
    assert isinstance(t, torch.Tensor) and t.dtype == torch.int64
    np.testing.assert_array_equal(t.numpy(), labels)


def test_heatmaps_to_aus_clamps_before_averaging():
    h = np.full((1, 1, 10, 10), -0.5)
    h[0, 0, 0, 0] = 100.0  # raw mean > 0, clamped mean < 0
    assert heatmaps_to_aus(h)[0, 0] == 0
    assert heatmaps_to_aus(torch.from_numpy(h))[0, 0].item() == 0
    assert heatmaps_to_aus(np.zeros((1, 4, 4)))[0] == 0  # a mean of exactly 0 is absent
    with pytest.raises(ValueError, match="dimensions"):
        heatmaps_to_aus(np.zeros((4, 4)))


def test_heatmaps_to_aus_is_fast():
    batch = np.random.default_rng(0).uniform(-1.5, 1.5, (64, 12, 128, 128)).astype(np.float32)
    heatmaps_to_aus(batch)
    start = time.perf_counter()
    heatmaps_to_aus(batch)
    assert (time.perf_counter() - start) / 64 < 2e-3
