"""benchmarks.hd_detail on a real (tiny) stylizer: figures, checks, the picture."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import tiny_models as tm

from artcam.benchmarks import hd_detail
from artcam.runtime.fileio import read_image, write_image


def _photos(tmp_path, n: int = 2) -> list[str]:
    rng = np.random.default_rng(0)
    photos = []
    for i in range(n):
        img = cv2.resize(rng.integers(0, 255, (24, 32, 3), np.uint8), (256, 192), interpolation=cv2.INTER_NEAREST)
        cv2.putText(img, "artcam", (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2, cv2.LINE_AA)
        write_image(tmp_path / f"p{i}.png", img)
        photos.append(str(tmp_path / f"p{i}.png"))
    return photos


def test_identity_stylizer_figures(tmp_path):
    """With a stylizer that returns its input, full resolution is the photo itself: a plain resize from half
    size loses detail, guided upsampling gives most of it back."""
    model = tm.stylizer(tmp_path / "id.onnx", identity=True)
    photos = _photos(tmp_path)
    out, pic = tmp_path / "hd.json", tmp_path / "sbs.png"
    rc = hd_detail.main(["--model", str(model), "--photos", *photos, "--imgsz", "192x256", "--runs", "2",
                         "--no-peer", "--curve", "0.75", "--picture", str(pic), "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())["sizes"][0]
    assert doc["imgsz"] == [192, 256]
    share = doc["fine_detail_share_of_full"]
    assert share["resize"] < share["guided"] <= 1.05 and abs(share["photo"] - 1.0) < 1e-6
    assert doc["passes_detail_bar"]["resize"] is False
    assert set(doc["speed"]) == {"stylize_full", "stylize_resize", "stylize_guided", "model_ours_full"}
    assert set(doc["detail_curve"]) == {"resize_192", "guided_192"}
    assert read_image(pic).shape[0] > 0


def test_old_wxh_sizes_still_work_with_one_line(tmp_path, capsys):
    """``--sizes WxH`` (the first spelling) measures the same frame size as ``--imgsz HxW`` and says so once."""
    model = tm.stylizer(tmp_path / "id.onnx", identity=True)
    out = tmp_path / "hd.json"
    rc = hd_detail.main(["--model", str(model), "--photos", *_photos(tmp_path, 1), "--sizes", "256x192",
                         "--runs", "1", "--no-peer", "--curve", "", "--json", str(out)])
    assert rc == 0 and json.loads(out.read_text())["sizes"][0]["imgsz"] == [192, 256]
    err = [x for x in capsys.readouterr().err.splitlines() if "deprecated" in x]
    assert len(err) == 1 and "--imgsz 192x256 (HxW)" in err[0]


def test_also_measures_a_second_stylizer_at_full_resolution(tmp_path):
    """``--also``: another stylizer of the same styles beside the model, its detail share and cost ratio; one
    with other styles is refused."""
    model = tm.stylizer(tmp_path / "id.onnx", identity=True)
    photos = _photos(tmp_path, 1)
    out, pic = tmp_path / "hd.json", tmp_path / "sbs.png"
    rc = hd_detail.main(["--model", str(model), "--also", str(model), "--photos", *photos, "--imgsz", "192x256",
                         "--runs", "2", "--no-peer", "--curve", "", "--picture", str(pic), "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())["sizes"][0]
    assert abs(doc["fine_detail_share_of_full"]["also"] - 1.0) < 1e-6 and doc["passes_detail_bar"]["also"]
    assert doc["psnr_db_to_full_median"]["also"] > 100 and doc["psnr_db_to_full_median"]["resize"] < 60
    assert {"stylize_also", "model_also_full"} <= set(doc["speed"]) and doc["model_ratio_also_over_ours"] > 0
    assert read_image(pic).shape[1] == 5 * 192  # photo, full, resize, guided, the second stylizer
    other = tm.stylizer(tmp_path / "other.onnx", styles=("a", "b", "c"))
    with pytest.raises(SystemExit, match="are not"):
        hd_detail.main(["--model", str(model), "--also", str(other), "--photos", *photos, "--imgsz", "192x256",
                        "--runs", "1", "--no-peer", "--curve", ""])
