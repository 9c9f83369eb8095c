"""The model file: metadata round trip, every validation error, content hash, foreign models."""

from __future__ import annotations

import json

import pytest
import tiny_models as tm

from artcam.runtime.errors import ModelError
from artcam.runtime.loading import ForeignFlags, load_model
from artcam.runtime.modelfile import (
    ImageInput,
    ImageOutput,
    LatentInput,
    LogitsOutput,
    ModelMeta,
    StyleInput,
    from_props,
    parse_model_bytes,
    read_model_file,
    with_metadata,
)


def classifier_meta(**kw):
    base = dict(task="classify", name="c", image=ImageInput(fixed_size=(32, 32)), heads=(LogitsOutput("out", ("a", "b")),))
    base.update(kw)
    return ModelMeta(**base)


def test_round_trip_through_props():
    m = ModelMeta(task="stylize", name="s", image=ImageInput(multiple=8, mean=(0.1, 0.2, 0.3)),
                  style=StyleInput(styles=("a", "b")), output=ImageOutput("stylized"),
                  provenance={"command": "artcam train stylize", "data": "photos"})
    back = from_props(m.to_props())
    assert back == m
    assert back.image.mean == (0.1, 0.2, 0.3) and back.styles == ("a", "b")


def test_file_round_trip_and_hash(tmp_path):
    p = tm.classifier(tmp_path / "c.onnx")
    data, meta = read_model_file(p)
    assert meta.task == "classify" and [h.head for h in meta.heads] == ["objects", "style"]
    digest, props = parse_model_bytes(data)
    assert meta.content_hash == digest == json.loads(props["artcam.content_hash"])
    # re-attaching metadata keeps the hash: it covers the graph, not the metadata
    again = with_metadata(data, meta.to_props())
    assert parse_model_bytes(again)[0] == digest


@pytest.mark.parametrize("kw, msg", [
    (dict(task="paint"), "task 'paint'"),
    (dict(name=""), "empty model name"),
    (dict(image=ImageInput(layout="CHW")), "layout"),
    (dict(image=ImageInput(dtype="int4")), "dtype"),
    (dict(image=ImageInput(color="YUV")), "colour order"),
    (dict(image=ImageInput(std=(1, 0, 1))), "std has a zero"),
    (dict(image=ImageInput(mean=(0, 0))), "mean and std"),
    (dict(image=ImageInput(range=(1, 1))), "pixel range"),
    (dict(image=ImageInput(min_size=64, max_size=32)), "size limits"),
    (dict(image=ImageInput(multiple=0)), "size limits"),
    (dict(image=ImageInput(fixed_size=(0, 3))), "fixed size"),
    (dict(image=ImageInput(resize="squash")), "resize mode"),
    (dict(image=None), "needs an image input"),
    (dict(heads=()), "at least one labelled output"),
    (dict(heads=(LogitsOutput("o", ()),)), "has no labels"),
    (dict(heads=(LogitsOutput("o", ("a",), kind="scores"),)), "kind"),
    (dict(schema=99), "newer than this artcam"),
])
def test_validation_errors(kw, msg):
    with pytest.raises(ModelError, match=msg):
        classifier_meta(**kw)


def test_task_specific_requirements():
    with pytest.raises(ModelError, match="stylizer needs"):
        ModelMeta(task="stylize", name="s", image=ImageInput())
    with pytest.raises(ModelError, match="at least one style"):
        ModelMeta(task="stylize", name="s", image=ImageInput(), output=ImageOutput(), style=StyleInput(styles=()))
    with pytest.raises(ModelError, match="generator needs"):
        ModelMeta(task="generate", name="g", output=ImageOutput())
    with pytest.raises(ModelError, match="latent size"):
        ModelMeta(task="generate", name="g", latent=LatentInput(size=0), output=ImageOutput())
    with pytest.raises(ModelError, match="output range"):
        ModelMeta(task="generate", name="g", latent=LatentInput(), output=ImageOutput(range=(1, 1)))


def test_bad_props():
    with pytest.raises(ModelError, match="not JSON"):
        from_props({"artcam.task": "{oops", "artcam.name": '"x"'})
    with pytest.raises(ModelError, match="task and name are required"):
        from_props({"artcam.name": '"x"'})
    with pytest.raises(ModelError, match="unknown fields"):
        from_props({"artcam.task": '"classify"', "artcam.name": '"x"', "artcam.colour": '"red"'})
    with pytest.raises(ModelError, match="image has unknown fields"):
        from_props({"artcam.task": '"stylize"', "artcam.name": '"x"', "artcam.image": '{"sise": 3}',
                    "artcam.output": "{}"})
    assert from_props({"other.key": "1"}) is None


def test_corrupt_and_truncated_files(tmp_path):
    p = tm.stylizer(tmp_path / "s.onnx")
    data = bytearray(p.read_bytes())
    # flip one byte inside the weights: the content hash no longer matches
    i = data.find(b"tiny_stylizer")
    data[i] ^= 0x20
    bad = tmp_path / "flipped.onnx"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt or was modified"):
        read_model_file(bad)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(p.read_bytes()[: len(data) // 2])
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        load_model(cut)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model at all")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        load_model(junk)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.onnx")


def test_foreign_model_needs_flags(tmp_path):
    p = tm.classifier(tmp_path / "foreign.onnx", meta=False)
    with pytest.raises(ModelError, match="--task"):
        load_model(p)
    with pytest.raises(ModelError, match="--labels"):
        load_model(p, flags=ForeignFlags(task="classify"))
    lm = load_model(p, flags=ForeignFlags(task="classify", labels=("cat", "dog", "car"), size=(32, 32)))
    assert lm.meta.labels == ("cat", "dog", "car") and lm.meta.image.fixed_size == (32, 32)
    # metadata attached to a foreign model without the onnx package
    meta = classifier_meta(heads=(LogitsOutput("objects", ("cat", "dog", "car")),), image=ImageInput(fixed_size=(32, 32)))
    out = tmp_path / "adopted.onnx"
    out.write_bytes(with_metadata(p.read_bytes(), meta.to_props()))
    assert read_model_file(out)[1].labels == ("cat", "dog", "car")


def test_wrong_task_and_mismatched_io(tmp_path):
    p = tm.stylizer(tmp_path / "s.onnx")
    with pytest.raises(ModelError, match="is a stylize model, but this command needs a classify model"):
        load_model(p, task="classify")
    data, meta = read_model_file(p)
    wrong = ModelMeta(task="stylize", name="s", image=ImageInput(name="img"), output=ImageOutput("stylized"))
    q = tmp_path / "wrong_io.onnx"
    q.write_bytes(with_metadata(data, wrong.to_props()))
    with pytest.raises(ModelError, match="metadata names input 'img'"):
        load_model(q)
