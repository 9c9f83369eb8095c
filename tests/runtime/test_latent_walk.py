"""Latent walk (numpy only): slerp maths, seeded smooth walks, class blending, grids, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from artcam.runtime.errors import InputError
from artcam.runtime.latent_walk import LatentWalk, make_grid, parse_seed, slerp
from artcam.runtime.modelfile import ImageOutput
from artcam.runtime.processing import ImagePostprocessor


def _angle(u, v):
    return np.arccos(np.clip(u @ v / np.linalg.norm(u) / np.linalg.norm(v), -1, 1))


@pytest.fixture
def ab():
    rng = np.random.default_rng(0)
    return rng.standard_normal(128), rng.standard_normal(128)


def test_slerp_endpoints(ab):
    a, b = ab
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-12)


def test_slerp_moves_at_constant_angular_speed_on_the_great_circle(ab):
    a, b = ab
    omega = _angle(a, b)
    ts = np.linspace(0, 1, 11)
    pts = slerp(a, b, ts)
    assert pts.shape == (11, 128)
    np.testing.assert_allclose([_angle(a, p) for p in pts], ts * omega, atol=1e-9)
    # every point lies in the plane of a and b
    basis, _ = np.linalg.qr(np.stack([a, b], 1))
    resid = pts - (pts @ basis) @ basis.T
    assert np.abs(resid).max() < 1e-9


def test_slerp_norm_behaviour(ab):
    a, b = ab
    ts = np.linspace(0, 1, 21)
    # equal norms stay exactly on the sphere (unlike lerp, which cuts through the interior)
    b_eq = b / np.linalg.norm(b) * np.linalg.norm(a)
    np.testing.assert_allclose(np.linalg.norm(slerp(a, b_eq, ts), axis=1), np.linalg.norm(a), rtol=1e-12)
    lerp_mid = np.linalg.norm((a + b_eq) / 2)
    assert lerp_mid < 0.8 * np.linalg.norm(a)
    # unequal norms: the norm interpolates linearly
    want = (1 - ts) * np.linalg.norm(a) + ts * np.linalg.norm(b)
    np.testing.assert_allclose(np.linalg.norm(slerp(a, b, ts), axis=1), want, rtol=1e-12)


def test_slerp_degenerate_endpoints(ab):
    a, _ = ab
    np.testing.assert_allclose(slerp(a, a * (1 + 1e-12), 0.3), a, rtol=1e-9)  # parallel: no division by 0
    opp = slerp(a, -a, np.linspace(0, 1, 9))  # opposite: still a smooth arc of constant norm
    assert np.isfinite(opp).all()
    np.testing.assert_allclose(np.linalg.norm(opp, axis=1), np.linalg.norm(a), rtol=1e-9)
    np.testing.assert_allclose(opp[-1], -a, atol=1e-9)
    np.testing.assert_allclose(slerp(np.zeros(4), np.ones(4), 0.5), np.full(4, 0.5))
    with pytest.raises(InputError):
        slerp(np.zeros(3), np.zeros(4), 0.5)


def test_slerp_batched_endpoints():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((5, 8)), rng.standard_normal((5, 8))
    out = slerp(a, b, 0.25)
    for i in range(5):
        np.testing.assert_allclose(out[i], slerp(a[i], b[i], 0.25), atol=1e-12)


def test_walk_is_deterministic_by_seed():
    a = LatentWalk(64, seed=7, steps_per_segment=10).take(35)
    b = LatentWalk(64, seed=7, steps_per_segment=10).take(35)
    c = LatentWalk(64, seed=8, steps_per_segment=10).take(35)
    assert a.dtype == np.float32 and a.shape == (35, 64)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    w = LatentWalk(64, seed=7, steps_per_segment=10)
    w.take(12)
    w.reset()
    np.testing.assert_array_equal(w.take(35), a)


def test_walk_is_smooth_and_stays_on_the_latent_shell():
    d, n = 128, 30
    z = LatentWalk(d, seed=3, steps_per_segment=n).take(5 * n + 1).astype(np.float64)
    step = np.linalg.norm(np.diff(z, axis=0), axis=1)
    # a keypoint is ~sqrt(2d) from the next; eased over n frames the largest step is 1.5x the mean
    assert step.max() < 1.6 * np.sqrt(2 * d) / n * 1.5
    # no jumps where segments meet: the frame-to-frame change shrinks towards each keypoint
    at_keys = step[n - 1 :: n][:4]
    assert at_keys.max() < 0.1 * step.max()
    accel = np.linalg.norm(np.diff(z, 2, axis=0), axis=1)
    assert accel.max() < 0.1 * np.sqrt(d)
    norms = np.linalg.norm(z, axis=1)
    assert np.all(np.abs(norms / np.sqrt(d) - 1) < 0.25)
    # the keypoints themselves are standard normal draws
    keys = z[::n]
    assert abs(keys.std() - 1) < 0.1


def test_walk_classes_blend_between_one_hots():
    w = LatentWalk(16, seed=1, steps_per_segment=8, n_classes=4)
    ys = [w.step()[1] for _ in range(40)]
    ys = np.stack(ys)
    np.testing.assert_allclose(ys.sum(1), 1.0, atol=1e-6)
    assert ys.min() >= 0
    assert np.all(np.isin(ys[::8].max(1), [1.0]))  # one-hot at keypoints
    fixed = LatentWalk(16, seed=1, n_classes=4, fixed_class=2)
    assert all(np.array_equal(fixed.step()[1], np.eye(4, dtype=np.float32)[2]) for _ in range(20))
    assert LatentWalk(16).step()[1] is None
    with pytest.raises(InputError):
        LatentWalk(16, n_classes=4, fixed_class=4)


def test_walk_rejects_bad_settings():
    for kw in ({"latent_size": 0}, {"latent_size": 8, "steps_per_segment": 0},
               {"latent_size": 8, "easing": "bounce"}, {"latent_size": 8, "seed": "abc"}):
        with pytest.raises(InputError):
            LatentWalk(**kw)


def test_parse_seed():
    assert parse_seed("42") == 42 and parse_seed(7) == 7
    for bad in ("abc", "1.5", "", "-1", str(2**32)):
        with pytest.raises(InputError):
            parse_seed(bad)


def test_make_grid_and_output_conversion():
    imgs = np.stack([np.full((4, 6, 3), i * 40, np.uint8) for i in range(5)])
    g = make_grid(imgs, 3, pad=1)
    assert g.shape == (2 * 4 + 3, 3 * 6 + 4, 3)
    assert g[1, 1, 0] == 0 and g[1 + 4 + 1, 1, 0] == 120  # row 2 starts with image 3
    post = ImagePostprocessor(ImageOutput(range=(-1.0, 1.0)))  # a generator's tanh range
    out = post(np.array([-1.0, 0.0, 1.0, 2.0], np.float32).reshape(1, 1, 1, 4).repeat(3, 1))
    assert out.shape == (1, 4, 3) and out[0, :, 0].tolist() == [0, 128, 255, 255]
    with pytest.raises(InputError):
        make_grid(np.zeros((0, 4, 4, 3), np.uint8), 2)
