"""Make docs/viewer.png: the web viewer of `artcam live --source sample --classify` in the system Chromium.

Run from the checkout with the dev extra installed and Chromium on PATH (apt-get install chromium):
``python docs/viewer_screenshot.py``. Like the tests, the viewer binds 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

OUT = Path(__file__).with_name("viewer.png")


def main() -> None:
    cmd = [sys.executable, "-m", "artcam.runtime.cli", "live", "--source", "sample", "--source-size", "360x480",
           "--style", "the_scream", "--classify", "--classify-every", "5", "--device", "cpu",
           "-o", "http://127.0.0.1:0", "--duration-s", "120"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "ARTCAM_TOKEN": ""})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None:
            m = next((re.search(r"web viewer (http://127\.0\.0\.1:\d+/)", ln) for ln in lines if "web viewer" in ln), None)
            url = m.group(1) if m else None
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("artcam live did not start:\n" + "".join(lines))
            time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1040, "height": 820})
            page.goto(url)
            page.wait_for_function("document.getElementById('stream').naturalWidth > 0")
            page.wait_for_function("document.querySelectorAll('#predictions .head').length > 0", timeout=60_000)
            time.sleep(6)  # a few seconds of statistics, and a picture well inside one photo
            png = OUT.with_suffix(".full.png")
            page.screenshot(path=str(png), full_page=True)
            browser.close()
        Image.open(png).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(OUT, optimize=True)
        png.unlink()
        print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
