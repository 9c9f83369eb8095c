"""One request's own error, in a Triton batch: a client mistake is a 400 for that request only.

pytriton 0.7 has no per-request errors in a batched model: an exception from the infer function fails
every request of the batch with HTTP 500 and the server's traceback, so with dynamic batching one
camera's bad frame broke the frames of the others batched with it. artcam's infer function therefore
never raises for a request: it answers a bad one with a single output, ``artcam_error`` (BYTES,
``"<CODE> <one line>"``), and the Python backend's response wrapper (pytriton's ``proxy/model.py``,
which pytriton copies into the model store for the backend stub) turns that output into a Triton error
response with that code: ``INVALID_ARG`` is HTTP 400 / gRPC INVALID_ARGUMENT, ``INTERNAL`` is 500.
Tracebacks go to the server's log (stderr), never to the client.

:func:`install` adds those few lines to the copied file (both ways pytriton ships it to the server);
if the copy does not have the function it expects (another pytriton version) it says so once and
leaves it as it is: the bad request's error then reaches its batch as before.
"""

from __future__ import annotations

import numpy as np

from artcam.runtime.errors import ArtcamError

OUTPUT = "artcam_error"
INVALID_ARG, INTERNAL = "INVALID_ARG", "INTERNAL"

_ANCHOR = "def _wrap_response(response: Response, requested_outputs_names, model_outputs_dict):\n"
_CHECK = '''    if response.data is not None and "artcam_error" in response.data:  # added by artcam.serving.request_errors
        _text = response.data["artcam_error"].reshape(-1)[0]
        _text = _text.decode("utf-8", "replace") if isinstance(_text, bytes) else str(_text)
        _code, _, _message = _text.partition(" ")
        _code = getattr(pb_utils.TritonError, _code, pb_utils.TritonError.INTERNAL)
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(_message, _code))
'''


def error_response(message: str, code: str = INVALID_ARG) -> dict[str, np.ndarray]:
    """The infer function's answer for one failed request."""
    line = " ".join(str(message).split())
    return {OUTPUT: np.array([[f"{code} {line}".encode()]], dtype=object)}


def client_error(e: ArtcamError) -> dict[str, np.ndarray]:
    return error_response(str(e), INVALID_ARG)


def with_request_errors(model_py: str) -> str | None:
    """pytriton's ``proxy/model.py`` with the ``artcam_error`` check; None if its shape is unknown."""
    if _CHECK in model_py:
        return model_py
    if model_py.count(_ANCHOR) != 1 or "pb_utils" not in model_py:
        return None
    return model_py.replace(_ANCHOR, _ANCHOR + _CHECK)


_installed = False


def install(log) -> bool:
    """Patch pytriton's ``Model`` (this process only) so the model files it ships carry the check."""
    global _installed
    if _installed:
        return True
    import pathlib

    from pytriton.models import model as pm

    src = (pathlib.Path(pm.__file__).parent.parent / "proxy" / "model.py").read_text()
    if with_request_errors(src) is None:
        log("this pytriton's model proxy is not the one artcam knows: a bad request fails the requests "
            "batched with it (run with --no-dynamic-batching to keep them apart)")
        return False
    generate, files = pm.Model.generate_model, pm.Model.get_proxy_model_files

    def generate_model(self, model_repository):
        generate(self, model_repository)
        path = pathlib.Path(model_repository) / self.model_name / str(self.model_version) / "model.py"
        path.write_text(with_request_errors(path.read_text()))

    def get_proxy_model_files(self):
        out = files(self)
        key = f"file:{self.model_version}/model.py"
        out[key] = with_request_errors(out[key].decode()).encode()
        return out

    pm.Model.generate_model, pm.Model.get_proxy_model_files = generate_model, get_proxy_model_files
    _installed = True
    return True
