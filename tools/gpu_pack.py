"""Pack what a stylizer recipe trains on into one small folder, for a GPU box without network or our data.

Such a box may take only a small upload beside the source tree and cannot reach a package registry
(``--budget-mb`` caps the pack, 32 MiB by default). So the photos travel as WebP copies with their short side
cut to what the training crops use (crops of image_size + 2 margins, scaled up to 1.6×: 288 px covers the
shipped recipes), the recipe's paintings as JPEG at their Gram scale, and VGG-19's weights as a plain file
(``$ARTCAM_VGG19_WEIGHTS`` on the other side). ``tools/gpu_stylizer.sh`` trains from the folder.

    python tools/gpu_pack.py --out runs/gpu_pack --init runs/dvgg/last.pt

The folder is published whole or not at all; unreadable photos are skipped and counted.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2

from artcam.runtime.cli import ArgParser, run_script
from artcam.runtime.errors import ArtcamError
from artcam.runtime.fileio import data_root, read_image
from artcam.training.common import TrainingError
from artcam.training.perceptual import vgg19_weights_file
from artcam.training.recipe import load_recipe
from artcam.training.stylize import SCHEMA, content_photos, style_files

MANIFEST = "manifest.json"


def _fit(bgr, short: int | None = None, long: int | None = None):
    h, w = bgr.shape[:2]
    s = min(1.0, (short / min(h, w)) if short else (long / max(h, w)))
    return bgr if s >= 1.0 else cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def pack(recipes: list[str], out: Path, root: str, short_side: int, quality: int, budget_mb: float,
         init: str = "", teacher: str = "", overrides: list[str] = (), command: list[str] = ()) -> dict:
    out = Path(out)
    if out.exists():
        raise TrainingError(f"{out} already exists", "remove it or pass another --out")
    data = None
    styles: dict[str, Path] = {}
    for spec in recipes:
        r = load_recipe(spec, SCHEMA, list(overrides))
        r["data"]["root"] = root or r["data"]["root"] or str(data_root())
        if data is not None and (r["data"]["content"], r["data"]["exclude"]) != (data["content"], data["exclude"]):
            raise TrainingError(f"recipe {spec} trains on other photos than {recipes[0]}", "pack them one at a time")
        data = data or r["data"]
        for name, path in zip(r["data"]["styles"], style_files(r["data"])):
            styles[name] = path
    photos = content_photos(data)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent if str(out.parent) else "."))
    try:
        (tmp / "photos").mkdir()
        (tmp / "styles").mkdir()
        skipped = 0
        for i, p in enumerate(photos):
            try:
                bgr = read_image(p)
            except ArtcamError:
                skipped += 1
                continue
            ok, buf = cv2.imencode(".webp", _fit(bgr, short=short_side), [cv2.IMWRITE_WEBP_QUALITY, quality])
            if not ok:
                raise TrainingError("OpenCV cannot write WebP here", "use an OpenCV build with WebP")
            (tmp / "photos" / f"{i:05d}_{p.stem}.webp").write_bytes(buf.tobytes())
        for name, p in styles.items():  # the trainer reads styles/NAME.jpg; Grams are taken at style_size
            cv2.imwrite(str(tmp / "styles" / f"{name}.jpg"), _fit(read_image(p), long=max(512, data["style_size"])),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
        shutil.copyfile(vgg19_weights_file(), tmp / "vgg19.bin")
        for src, dst in ((init, "init_student.pt"), (teacher, "teacher.pt")):
            if src:
                shutil.copyfile(src, tmp / dst)
        size = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        doc = {"recipes": list(recipes), "photos": len(photos) - skipped, "photos_skipped": skipped,
               "paintings": sorted(styles), "short_side": short_side, "webp_quality": quality,
               "init_student": bool(init), "teacher": bool(teacher), "bytes": size,
               "source": str(Path(data["root"]).resolve()), "command": list(command)}
        if size > budget_mb * 2**20:
            raise TrainingError(f"the pack is {size / 2**20:.1f} MiB, over --budget-mb {budget_mb:g}",
                                "lower --short-side or --quality (the source tree travels too)")
        (tmp / MANIFEST).write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return doc


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python tools/gpu_pack.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder to create (copy it to the GPU box)")
    p.add_argument("--recipe", nargs="+", default=["stylizer_teacher", "stylizer_nano"],
                   help="recipes whose photos and paintings to pack (default: teacher and student)")
    p.add_argument("--data", default="", help="data root (default: $ARTCAM_DATA, else ../shared/data)")
    p.add_argument("--short-side", type=int, default=288, help="photos' short side in pixels")
    p.add_argument("--quality", type=int, default=70, help="WebP quality of the photos")
    p.add_argument("--budget-mb", type=float, default=32.0, help="refuse a larger pack (MiB)")
    p.add_argument("--init", default="", help="a student checkpoint to start from (copied as init_student.pt)")
    p.add_argument("--teacher", default="", help="a trained teacher checkpoint (copied; the job then skips it)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides (e.g. data.exclude=[...])")
    a = p.parse_intermixed_args(argv)
    command = ["python", "tools/gpu_pack.py", *(sys.argv[1:] if argv is None else argv)]
    doc = pack(a.recipe, Path(a.out), a.data, a.short_side, a.quality, a.budget_mb, a.init, a.teacher, a.overrides,
               command)
    print(f"packed {doc['photos']} photos ({doc['photos_skipped']} unreadable, skipped), {len(doc['paintings'])} "
          f"paintings, VGG-19 weights; {doc['bytes'] / 2**20:.1f} MiB in {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_script(main)
