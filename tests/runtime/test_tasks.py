"""Pre/post-processing and the classify / stylize / generate tasks against numpy references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tiny_models as tm

from artcam.runtime.errors import InputError
from artcam.runtime.loading import load_model
from artcam.runtime.modelfile import ImageInput, ImageOutput
from artcam.runtime.processing import (
    ImagePostprocessor,
    ImagePreprocessor,
    blend,
    center_crop_box,
    preserve_color,
    softmax,
)
from artcam.runtime.tasks import Classifier, Generator, Stylizer


def frame(h=60, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_preprocess_matches_naive_formula():
    spec = ImageInput(range=(-1, 1), mean=(0.1, 0.2, 0.3), std=(0.5, 0.6, 0.7), multiple=1)
    f = frame()
    got = ImagePreprocessor(spec)(f)
    rgb = f[..., ::-1].astype(np.float64)
    want = ((rgb / 255 * 2 - 1) - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(got[0].transpose(1, 2, 0), want, atol=1e-5)
    # BGR, NHWC and uint8 variants
    bgr = ImagePreprocessor(ImageInput(color="BGR", layout="NHWC"))(f)
    np.testing.assert_allclose(bgr[0], f / 255.0, atol=1e-6)
    u8 = ImagePreprocessor(ImageInput(dtype="uint8"))(f)
    assert u8.dtype == np.uint8 and u8.shape == (1, 3, 60, 80)
    assert ImagePreprocessor(ImageInput(dtype="float16"))(f).dtype == np.float16


def test_buffers_are_reused_across_frames():
    pre = ImagePreprocessor(ImageInput())
    a = pre(frame(seed=1))
    b = pre(frame(seed=2))
    assert a is b  # same buffer: a live stream allocates nothing per frame


def test_pad_to_multiple_and_crop_back():
    pre = ImagePreprocessor(ImageInput(multiple=16))
    x = pre(frame(50, 70))
    assert x.shape == (1, 3, 64, 80) and pre.pad == (14, 10)
    post = ImagePostprocessor(ImageOutput())
    back = post(x, crop=(50, 70))
    assert back.shape == (50, 70, 3)
    np.testing.assert_allclose(back.astype(int), frame(50, 70).astype(int), atol=1)


def test_center_crop_and_fixed_sizes():
    y0, x0, ch, cw = center_crop_box(480, 640, 224, 224)
    assert ch == cw == 420 and y0 == 30 and x0 == 110
    for mode in ("center_crop", "stretch", "pad"):
        t = ImagePreprocessor(ImageInput(fixed_size=(32, 48), resize=mode))(frame(100, 60))
        assert t.shape == (1, 3, 32, 48)


def test_size_limits():
    pre = ImagePreprocessor(ImageInput(min_size=32, max_size=100))
    with pytest.raises(InputError, match="smaller than this model allows"):
        pre(frame(20, 50))
    with pytest.raises(InputError, match="larger than this model allows"):
        pre(frame(80, 120))
    with pytest.raises(InputError, match="HxWx3 uint8"):
        pre(np.zeros((40, 40), np.uint8))


def test_blend_and_preserve_color():
    a, b = frame(seed=3), frame(seed=4)
    np.testing.assert_array_equal(blend(a, b, 1.0), a)
    np.testing.assert_array_equal(blend(a, b, 0.0), b)
    mid = blend(a, b, 0.5).astype(int)
    assert np.abs(mid - (a.astype(int) + b) / 2).max() <= 1
    pc = preserve_color(a, b)
    ya = cv2.cvtColor(a, cv2.COLOR_BGR2YCrCb)[..., 0].astype(int)
    yp = cv2.cvtColor(pc, cv2.COLOR_BGR2YCrCb)[..., 0].astype(int)
    assert np.abs(ya - yp).mean() < 3  # luminance from the stylized image
    np.testing.assert_allclose(softmax(np.array([[0.0, np.log(3)]])), [[0.25, 0.75]])


def test_classifier_top_k_matches_numpy(tmp_path):
    clf = Classifier(load_model(tm.classifier(tmp_path / "c.onnx"), device="cpu"), top_k=2)
    f = frame(40, 40)
    preds = clf.classify(f)
    assert [p.head for p in preds] == ["objects", "style"]
    x = clf.pre(f)
    feat = x.mean(axis=(2, 3))
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 3)).astype(np.float32) * 4
    b = rng.standard_normal(3).astype(np.float32)
    p = softmax(feat @ w + b)[0]
    order = np.argsort(-p)[:2]
    assert preds[0].labels == [("cat", "dog", "car")[i] for i in order]
    np.testing.assert_allclose(preds[0].probs, p[order], rtol=1e-4)
    assert set(clf.timing) == {"pre", "infer", "post"}


def test_stylizer_styles_strength_and_sizes(tmp_path):
    lm = load_model(tm.stylizer(tmp_path / "s.onnx", styles=("warm", "cool"), multiple=8), device="cpu")
    st = Stylizer(lm, style="cool")
    f = frame(50, 70)
    out = st.stylize(f)
    assert out.shape == f.shape and st.style_name == "cool"
    x = (f[..., ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None]
    ref = (tm.reference_stylize(x, 1, 2)[0].transpose(1, 2, 0)[..., ::-1] * 255)
    assert np.abs(out.astype(float) - ref).max() <= 1.0
    st.step_style(1)
    assert st.style_name == "warm"
    st.set_style([0.5, 0.5])
    assert st.style_name == "mix"
    st.set_style("warm:0.25,cool:0.75")
    np.testing.assert_allclose(st.weights, [[0.25, 0.75]])
    with pytest.raises(InputError, match="not a number"):
        st.set_style("warm:lots")
    with pytest.raises(InputError, match="unknown style 'nope'"):
        st.set_style("nope")
    with pytest.raises(InputError, match="out of range"):
        st.set_style(5)
    with pytest.raises(InputError, match="style weights have 3 values"):
        st.set_style([1, 0, 0])
    half = Stylizer(lm, style=0, strength=0.0)
    np.testing.assert_array_equal(half.stylize(f), f)
    small = Stylizer(lm, size=32)
    assert small.stylize(frame(120, 160)).shape == (120, 160, 3)
    with pytest.raises(InputError, match="outside 0..1"):
        Stylizer(lm, strength=1.5)
    with pytest.raises(InputError, match="smaller than this model allows"):
        st.stylize(frame(4, 4))


def test_generator(tmp_path):
    gen = Generator(load_model(tm.generator(tmp_path / "g.onnx", latent=8, size=16, classes=("a", "b")), device="cpu"))
    z = gen.sample_latents(3, seed=7)
    np.testing.assert_array_equal(z, gen.sample_latents(3, seed=7))
    imgs = gen.generate(z, "b")
    assert len(imgs) == 3 and imgs[0].shape == (16, 16, 3) and imgs[0].dtype == np.uint8
    with pytest.raises(InputError, match=r"wants \(N, 8\)"):
        gen.generate(np.zeros((1, 9), np.float32))
    with pytest.raises(InputError, match="unknown class"):
        gen.generate(z, "c")
    plain = Generator(load_model(tm.generator(tmp_path / "g2.onnx"), device="cpu"))
    with pytest.raises(InputError, match="not class-conditional"):
        plain.generate(z, "a")
