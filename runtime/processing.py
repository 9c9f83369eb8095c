"""Pre- and post-processing in numpy/OpenCV, driven by the model's metadata.

Buffers are kept per shape and reused across frames, so a live stream allocates nothing per frame
once warm. Frames are BGR uint8 (OpenCV's order) everywhere outside the model.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InputError
from .modelfile import ImageInput, ImageOutput


def round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def center_crop_box(h: int, w: int, out_h: int, out_w: int, crop_fraction: float = 0.875) -> tuple[int, int, int, int]:
    """The central region with the target aspect ratio, ``crop_fraction`` of the shorter side (timm-style)."""
    aspect = out_w / out_h
    ch = min(h, w / aspect) * crop_fraction
    cw = ch * aspect
    y0, x0 = int(round((h - ch) / 2)), int(round((w - cw) / 2))
    return y0, x0, max(1, int(round(ch))), max(1, int(round(cw)))


class ImagePreprocessor:
    """BGR uint8 frame -> model tensor, following an :class:`ImageInput` spec."""

    def __init__(self, spec: ImageInput):
        self.spec = spec
        lo, hi = spec.range
        std = np.asarray(spec.std, np.float32)
        mean = np.asarray(spec.mean, np.float32)
        # x = ((pix / 255) * (hi - lo) + lo - mean) / std  ==  pix * scale + shift, per channel
        self.scale = ((hi - lo) / 255.0 / std).astype(np.float32)
        self.shift = ((lo - mean) / std).astype(np.float32)
        self._bufs: dict[tuple, np.ndarray] = {}
        self.pad = (0, 0)  # (bottom, right) padding added by the last call

    def _buf(self, key: tuple, shape: tuple, dtype) -> np.ndarray:
        b = self._bufs.get(key)
        if b is None or b.shape != shape:
            b = self._bufs[key] = np.empty(shape, dtype)
        return b

    def check_size(self, h: int, w: int) -> None:
        s = self.spec
        if s.fixed_size is not None:
            return
        if min(h, w) < s.min_size:
            raise InputError(f"input {w}x{h} is smaller than this model allows (shorter side >= {s.min_size} px)",
                             "use a larger image or --size")
        if max(h, w) > s.max_size:
            raise InputError(f"input {w}x{h} is larger than this model allows (longer side <= {s.max_size} px)",
                             "pass --size N to resize the input first")

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"expected an HxWx3 uint8 BGR frame, got shape {frame.shape} dtype {frame.dtype}")
        s = self.spec
        h, w = frame.shape[:2]
        self.check_size(h, w)
        if s.fixed_size is not None:
            th, tw = s.fixed_size
            if s.resize == "center_crop":
                y0, x0, ch, cw = center_crop_box(h, w, th, tw)
                frame = frame[y0 : y0 + ch, x0 : x0 + cw]
            elif s.resize == "pad":
                scale = min(th / h, tw / w)
                nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
                small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
                frame = cv2.copyMakeBorder(small, 0, th - nh, 0, tw - nw, cv2.BORDER_CONSTANT, value=(114, 114, 114))
            if frame.shape[:2] != (th, tw):
                interp = cv2.INTER_AREA if frame.shape[0] > th else cv2.INTER_LINEAR
                frame = cv2.resize(frame, (tw, th), interpolation=interp)
            self.pad = (0, 0)
        else:
            m = s.multiple
            ph, pw = round_up(h, m) - h, round_up(w, m) - w
            if ph or pw:
                frame = cv2.copyMakeBorder(frame, 0, ph, 0, pw, cv2.BORDER_REFLECT_101)
            self.pad = (ph, pw)
        return self._to_tensor(frame)

    def _to_tensor(self, img: np.ndarray) -> np.ndarray:
        s = self.spec
        H, W = img.shape[:2]
        if s.dtype == "uint8":
            if s.color == "RGB":
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=self._buf(("rgb",), (H, W, 3), np.uint8))
            out = img if s.layout == "NHWC" else img.transpose(2, 0, 1)
            return np.ascontiguousarray(out)[None]
        if s.layout == "NHWC":
            if s.color == "RGB":
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=self._buf(("rgb",), (H, W, 3), np.uint8))
            hwc = self._buf(("f32",), (H, W, 3), np.float32)
            np.multiply(img, self.scale, out=hwc, casting="unsafe")
            hwc += self.shift
            t = hwc[None]
        else:
            # One pass per plane straight from the interleaved BGR frame into the NCHW buffer:
            # about 20x faster than convert-colour, scale the HWC image, then transpose.
            t = self._buf(("nchw",), (1, 3, H, W), np.float32)
            order = (2, 1, 0) if s.color == "RGB" else (0, 1, 2)
            for c, src in enumerate(order):
                plane = t[0, c]
                np.multiply(img[..., src], self.scale[c], out=plane, casting="unsafe")
                plane += self.shift[c]
        return t.astype(np.float16) if s.dtype == "float16" else t


class ImagePostprocessor:
    """Model image tensor (one item of the batch) -> BGR uint8 frame."""

    def __init__(self, spec: ImageOutput):
        self.spec = spec
        lo, hi = spec.range
        self.scale = np.float32(255.0 / (hi - lo))
        self.shift = np.float32(-lo * 255.0 / (hi - lo))
        self._bufs: dict[tuple, np.ndarray] = {}

    def __call__(self, tensor: np.ndarray, crop: tuple[int, int] | None = None) -> np.ndarray:
        t = tensor[0] if tensor.ndim == 4 else tensor
        lo = float(self.spec.range[0])
        if self.spec.layout == "NCHW":
            planes = t if crop is None else t[:, : crop[0], : crop[1]]
            order = (2, 1, 0) if self.spec.color == "RGB" else (0, 1, 2)
            # clip below, then scale with saturation to uint8: one cheap pass per plane
            out = [cv2.convertScaleAbs(cv2.max(np.ascontiguousarray(planes[c], np.float32), lo),
                                       alpha=float(self.scale), beta=float(self.shift)) for c in order]
            return cv2.merge(out)
        hwc = t if crop is None else t[: crop[0], : crop[1]]
        H, W = hwc.shape[:2]
        buf = self._bufs.get((H, W))
        if buf is None:
            buf = self._bufs[(H, W)] = np.empty((H, W, 3), np.float32)
        np.multiply(hwc, self.scale, out=buf, casting="unsafe")
        buf += self.shift
        np.clip(buf, 0, 255, out=buf)
        img = buf.astype(np.uint8)
        return cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if self.spec.color == "RGB" else img


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def blend(stylized: np.ndarray, original: np.ndarray, strength: float) -> np.ndarray:
    """``strength`` 1 = fully stylized, 0 = the original frame."""
    if strength >= 1.0:
        return stylized
    return cv2.addWeighted(stylized, float(strength), original, 1.0 - float(strength), 0.0)


def preserve_color(stylized: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Keep the stylized luminance and the original's colour (YCrCb chroma transfer)."""
    y = cv2.cvtColor(stylized, cv2.COLOR_BGR2YCrCb)
    c = cv2.cvtColor(original, cv2.COLOR_BGR2YCrCb)
    c[..., 0] = y[..., 0]
    return cv2.cvtColor(c, cv2.COLOR_YCrCb2BGR)


def fit_size(h: int, w: int, long_side: int | None) -> tuple[int, int]:
    """Scale (h, w) so the longer side is ``long_side`` (None keeps the size)."""
    if not long_side or max(h, w) == long_side:
        return h, w
    s = long_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))
