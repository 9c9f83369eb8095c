"""benchmarks.hd_detail on a real (tiny) stylizer: figures, checks, the picture."""

from __future__ import annotations

import json

import cv2
import numpy as np
import tiny_models as tm

from artcam.benchmarks import hd_detail
from artcam.runtime.fileio import read_image, write_image


def test_identity_stylizer_figures(tmp_path):
    """With a stylizer that returns its input, full resolution is the photo itself: a plain resize from half
    size loses detail, guided upsampling gives most of it back."""
    model = tm.stylizer(tmp_path / "id.onnx", identity=True)
    rng = np.random.default_rng(0)
    photos = []
    for i in range(2):
        img = cv2.resize(rng.integers(0, 255, (24, 32, 3), np.uint8), (256, 192), interpolation=cv2.INTER_NEAREST)
        cv2.putText(img, "artcam", (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2, cv2.LINE_AA)
        write_image(tmp_path / f"p{i}.png", img)
        photos.append(str(tmp_path / f"p{i}.png"))
    out, pic = tmp_path / "hd.json", tmp_path / "sbs.png"
    rc = hd_detail.main(["--model", str(model), "--photos", *photos, "--sizes", "256x192", "--runs", "2",
                         "--no-peer", "--curve", "0.75", "--picture", str(pic), "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())["sizes"][0]
    share = doc["fine_detail_share_of_full"]
    assert share["resize"] < share["guided"] <= 1.05 and abs(share["photo"] - 1.0) < 1e-6
    assert doc["passes_detail_bar"]["resize"] is False
    assert set(doc["speed"]) == {"stylize_full", "stylize_resize", "stylize_guided", "model_ours_full"}
    assert set(doc["detail_curve"]) == {"resize_192", "guided_192"}
    assert read_image(pic).shape[0] > 0
