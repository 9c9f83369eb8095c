"""Engine file header, cache keys, compatibility messages and optimisation profiles (no TensorRT needed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from artcam.runtime.backends import engine_file as ef
from artcam.runtime.errors import InputError

PROFILE = {"image": ((1, 3, 64, 64), (1, 3, 480, 640), (4, 3, 1088, 1920)), "style": ((1, 8), (1, 8), (4, 8))}


def header(**kw) -> ef.EngineHeader:
    d = dict(trt_version="10.3.0", gpu_name="NVIDIA A100-SXM4-40GB", compute_capability="8.0", precision="fp16",
             profiles=(PROFILE,), onnx_hash="sha256:abc", meta={"artcam.task": '"stylize"'})
    d.update(kw)
    return ef.EngineHeader(**d)


def test_header_round_trip_and_header_only_read(tmp_path):
    h = header(version_compatible=True, workspace_mb=1024)
    p = ef.write_engine_file(tmp_path / "m.engine", h, b"PLANBYTES" * 100)
    got, plan = ef.read_engine_file(p)
    assert got == h and plan == b"PLANBYTES" * 100
    assert ef.read_engine_header(p) == h
    assert got.profiles[0]["image"][2] == (4, 3, 1088, 1920)  # tuples survive JSON


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"NOTANENGINE" + d, "not an artcam engine file"),
    (lambda d: d[:12], "not an artcam engine file"),
    (lambda d: d[:30], "truncated"),
    (lambda d: d[:len(d) - 9], "no TensorRT plan"),
    (lambda d: d[:10] + (99).to_bytes(4, "little") + d[14:], "newer than this artcam"),
    (lambda d: d[:19] + b"!" + d[20:], "header is corrupt"),
])
def test_bad_engine_files_give_clear_errors(tmp_path, mutate, message):
    data = ef.pack_engine(header(), b"PLANBYTES")
    (tmp_path / "bad.engine").write_bytes(mutate(data))
    with pytest.raises(ef.EngineError, match=message):
        ef.read_engine_file(tmp_path / "bad.engine")


def test_cache_key_covers_what_a_plan_depends_on():
    base = header()
    k = base.cache_key()
    assert header(meta={"other": "1"}, workspace_mb=99).cache_key() == k  # metadata/workspace do not matter
    for changed in (header(trt_version="10.3.1"), header(precision="int8"), header(onnx_hash="sha256:def"),
                    header(compute_capability="8.6"), header(gpu_name="NVIDIA A10"), header(profiles=()),
                    header(strongly_typed=True)):
        assert changed.cache_key() != k
    # version-compatible plans key by TensorRT major; hardware-compatible ones not by GPU
    assert header(version_compatible=True, trt_version="10.3.0").cache_key() == \
        header(version_compatible=True, trt_version="10.9.1").cache_key()
    assert header(hardware_compatible=True).cache_key() == \
        header(hardware_compatible=True, gpu_name="NVIDIA H100", compute_capability="9.0").cache_key()


def test_compatibility_messages():
    h = header()
    assert ef.compatibility_problem(h, "10.3.0", "NVIDIA A100-SXM4-40GB", "8.0") is None
    why = ef.compatibility_problem(h, "10.7.0", "NVIDIA A100-SXM4-40GB", "8.0")
    assert "built with TensorRT 10.3.0" in why and "10.7.0" in why
    why = ef.compatibility_problem(h, "10.3.0", "NVIDIA H100 80GB HBM3", "9.0")
    assert "built for NVIDIA A100-SXM4-40GB (compute 8.0)" in why and "H100" in why
    vc = header(version_compatible=True)
    assert ef.compatibility_problem(vc, "10.7.0", "x", "8.0") is None
    assert "newer than this machine's TensorRT 10.1.0" in ef.compatibility_problem(vc, "10.1.0", "x", "8.0")
    hc = header(hardware_compatible=True)
    assert ef.compatibility_problem(hc, "10.3.0", "NVIDIA H100", "9.0") is None
    assert "Ampere or newer" in ef.compatibility_problem(hc, "10.3.0", "Tesla T4", "7.5")
    with pytest.raises(ef.EngineError, match="cannot run here.*rebuild it on this machine"):
        ef.check_compatible(h, "11.0.0", "NVIDIA A100-SXM4-40GB", "8.0", "m.engine")


def test_profile_validation():
    decl = {"image": (-1, 3, -1, -1), "style": (-1, 8)}
    ef.validate_profile(PROFILE, decl)
    bad = [
        ({**PROFILE, "image": ((1, 3, 64, 64), (1, 3, 32, 32), (1, 3, 128, 128))}, "min <= opt <= max"),
        ({**PROFILE, "image": ((1, 4, 64, 64), (1, 4, 64, 64), (1, 4, 64, 64))}, "changes fixed dim 1"),
        ({**PROFILE, "image": ((1, 3, 64), (1, 3, 64), (1, 3, 64))}, "has 3 dims"),
        ({**PROFILE, "imgae": PROFILE["image"]}, "profile names input 'imgae'"),
        ({"image": PROFILE["image"]}, "input 'style' has dynamic dims"),
        ({**PROFILE, "style": ((0, 8), (1, 8), (1, 8))}, "dim below 1"),
    ]
    for prof, msg in bad:
        with pytest.raises(InputError, match=msg):
            ef.validate_profile(prof, decl)


def test_profile_for_image_model_and_shape_args():
    decl = {"image": (-1, 3, -1, -1), "style": (-1, 8)}
    p = ef.profile_for_image_model(decl, imgsz=(480, 640), max_batch=4)
    assert p["image"] == ((1, 3, 480, 640), (1, 3, 480, 640), (4, 3, 480, 640))
    assert p["style"] == ((1, 8), (1, 8), (4, 8))
    ef.validate_profile(p, decl)
    assert ef.profile_for_image_model({"image": (1, 3, 224, 224)}) == {}  # static model needs none
    with pytest.raises(InputError, match="dynamic height/width"):
        ef.profile_for_image_model(decl)
    assert ef.parse_shape_arg("image:1x3x480x640, style:1x8") == {"image": (1, 3, 480, 640), "style": (1, 8)}
    with pytest.raises(InputError, match="NAME:D0xD1"):
        ef.parse_shape_arg("1x3x480x640")
    with pytest.raises(InputError, match="not an integer"):
        ef.parse_shape_arg("image:1x3xHx640")


def test_shapes_outside_profiles_are_input_errors():
    small = {"image": ((1, 3, 64, 64), (1, 3, 256, 256), (1, 3, 512, 512))}
    large = {"image": ((1, 3, 512, 512), (1, 3, 720, 1280), (1, 3, 1088, 1920))}
    assert ef.select_profile([small, large], {"image": (1, 3, 300, 300)}) == 0
    assert ef.select_profile([small, large], {"image": (1, 3, 720, 1280)}) == 1
    with pytest.raises(InputError, match=r"image \[1, 3, 2160, 3840\].*\[1, 3, 1088, 1920\].*--max-shape"):
        ef.select_profile([small, large], {"image": (1, 3, 2160, 3840)})
    with pytest.raises(InputError, match="outside"):
        ef.select_profile([small], {"image": (2, 3, 256, 256)})


def test_engine_cache_store_find_and_explain(tmp_path):
    cache = ef.EngineCache(tmp_path / "cache")
    h = header()
    path = cache.store("stylizer_nano", h, b"PLAN")
    key = h.cache_key()
    assert cache.find("stylizer_nano", key, "10.3.0", h.gpu_name, "8.0") == path
    # same key but this machine moved on: not returned (the caller rebuilds)
    assert cache.find("stylizer_nano", key, "10.4.0", h.gpu_name, "8.0") is None
    other = header(trt_version="10.4.0")
    assert cache.find("stylizer_nano", other.cache_key(), "10.4.0", h.gpu_name, "8.0") is None
    explained = cache.others("stylizer_nano", other.cache_key())
    assert len(explained) == 1 and "TensorRT 10.3.0" in explained[0][1]
    path.write_bytes(b"garbage")  # a corrupt cache entry is ignored, not fatal
    assert cache.find("stylizer_nano", key, "10.3.0", h.gpu_name, "8.0") is None


def test_trt_ep_options(tmp_path):
    o = ef.trt_ep_options(tmp_path / "ort", fp16=True)
    assert o["trt_engine_cache_enable"] and o["trt_fp16_enable"] is True
    assert o["trt_engine_cache_path"] == str(tmp_path / "ort") and (tmp_path / "ort").is_dir()
    from artcam.runtime.backends.onnxrt import provider_chain

    chain = provider_chain("tensorrt", o)
    assert chain[0] == ("TensorrtExecutionProvider", o) and chain[-1] == "CPUExecutionProvider"


def test_runtime_modules_import_without_torch_or_tensorrt():
    code = ("import sys; import artcam.runtime.backends.engine_file, artcam.runtime.backends.trt, "
            "artcam.runtime.backends.trt_build; bad = {'torch', 'tensorrt', 'onnx'} & set(sys.modules); "
            "assert not bad, bad")
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr


def test_engine_meta_reads_the_artcam_metadata_without_tensorrt(tmp_path):
    from artcam.runtime.backends.trt import engine_meta
    from artcam.runtime.modelfile import (
        PREFIX,
        ImageInput,
        ImageOutput,
        ModelMeta,
        parse_model_bytes,
        with_metadata,
    )

    meta = ModelMeta(task="stylize", name="nano", image=ImageInput(multiple=8), output=ImageOutput(name="out"))
    onnx_like = b"\x3a\x00"  # ModelProto with an empty graph field: enough for the wire-format writer
    props = {k: v for k, v in parse_model_bytes(with_metadata(onnx_like, meta.to_props()))[1].items()
             if k.startswith(PREFIX)}
    p = ef.write_engine_file(tmp_path / "m.engine", header(meta=props), b"PLAN")
    got = engine_meta(p)
    assert got.name == "nano" and got.task == "stylize" and got.content_hash.startswith("sha256:")
    assert engine_meta(ef.write_engine_file(tmp_path / "f.engine", header(meta={}), b"PLAN")) is None
