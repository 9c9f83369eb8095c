"""A model on an ``artcam serve`` (Triton Inference Server) instead of in this process.

:class:`RemoteModel` is the client of one served model (``grpc://HOST:8001`` or ``http://HOST:8000``); the
tasks built on it, which stand in for the local ones in the pipeline, are in ``artcam.runtime.remote_tasks``.
Pre- and post-processing run on the server; the client sends the BGR frame (``?encoding=jpeg`` in the URL
sends JPEG bytes instead: about 20x fewer bytes for a 640x480 frame, at JPEG's loss) and gets the picture
or labels back.

``timing`` keeps the runtime's keys: ``pre`` = encoding the request, ``infer`` = the round trip,
``post`` = reading the answer. The round trip is split into ``server`` (the time the frame's batch
spent in the model function, reported by the server) and ``network`` (the rest: transfer, Triton's
queue and its Python backend hand-off), kept in :attr:`RemoteModel.split` and printed as one line
when the task closes.

``tritonclient`` is imported when a remote model is opened, never with ``artcam.runtime``; without it
the error says which extra to install. The protocol is described in ``artcam.serving.server``.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ..errors import ArtcamError, InputError

META_MODEL = "artcam_meta"
INSTALL_HINT = "install it with: pip install 'artcam[serve]' (or just: pip install 'tritonclient[grpc,http]')"


class RemoteError(ArtcamError):
    """The server cannot be reached, does not serve the model, or refused a request."""


def parse_url(url: str) -> tuple[str, str, dict]:
    """``grpc://host:8001`` -> ("grpc", "host:8001", options); ``http://host`` gets port 8000."""
    u = urlsplit(url)
    if u.scheme not in ("grpc", "http") or not u.hostname:
        raise RemoteError(f"{url!r} is not a server URL", "use grpc://HOST:8001 or http://HOST:8000")
    port = u.port or (8001 if u.scheme == "grpc" else 8000)
    opts = {k: v[-1] for k, v in parse_qs(u.query).items()}
    enc = opts.get("encoding", "raw")
    if enc not in ("raw", "jpeg"):
        raise RemoteError(f"server URL {url!r}: encoding={enc!r}", "use encoding=raw (default) or encoding=jpeg")
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return u.scheme, f"{host}:{port}", opts


def server_message(msg: str) -> str:
    """The model's own one-line error out of pytriton's "Model execute error: Traceback ..." text."""
    if "Traceback (most recent call last)" not in msg:
        return " ".join(msg.split())
    found = re.findall(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$", msg, flags=re.M)
    if not found:
        return " ".join(msg.split())[-300:]
    kind, text = found[-1]
    return text.strip() if kind in ("InputError", "ModelError", "ArtcamError") else f"{kind}: {text.strip()}"


def _client_modules(protocol: str):
    try:
        if protocol == "grpc":
            import tritonclient.grpc as mod
        else:
            import tritonclient.http as mod
        from tritonclient.utils import InferenceServerException
    except ImportError as e:
        raise RemoteError(f"a served model needs tritonclient ({e.name or e})", INSTALL_HINT) from None
    return mod, InferenceServerException


class RemoteModel:
    """One model on one server: connect, describe, infer one frame, with timing and clear errors."""

    def __init__(self, url: str, name: str, task: str, timeout_s: float = 30.0):
        self.url, self.name, self.task, self.timeout_s = url, name, task, timeout_s
        self.protocol, self.address, opts = parse_url(url)
        self.encoding = opts.get("encoding", "raw")
        self._mod, self._exc = _client_modules(self.protocol)
        self.split = {"server": [], "network": []}  # ms per request
        self._local = threading.local()  # the HTTP client (gevent) works only in the thread that made it
        self._clients: list = []
        self.desc = self._describe()

    @property
    def client(self):
        c = getattr(self._local, "client", None)
        if c is None:
            try:
                if self.protocol == "grpc":
                    c = self._mod.InferenceServerClient(self.address)
                else:
                    c = self._mod.InferenceServerClient(self.address, connection_timeout=self.timeout_s,
                                                        network_timeout=self.timeout_s)
            except Exception as e:
                raise self._error("cannot open a client for", e) from None
            self._local.client = c
            self._clients.append(c)
        return c

    # -- errors -----------------------------------------------------------------------------------
    def _error(self, what: str, e: BaseException) -> RemoteError:
        text = " ".join(str(e).split())[:300] or type(e).__name__
        hint = (f"is `artcam serve {self.name}` running and reachable at {self.address}? "
                f"Its ports are HTTP 8000 and gRPC 8001 by default")
        return RemoteError(f"{what} the server at {self.url}: {text}", hint)

    # -- protocol -----------------------------------------------------------------------------------
    def _input(self, name: str, arr: np.ndarray, dtype: str):
        x = self._mod.InferInput(name, list(arr.shape), dtype)
        x.set_data_from_numpy(arr)
        return x

    def _call(self, model: str, inputs, params: dict | None = None, outputs: list[str] | None = None):
        kw = {}
        if outputs:
            kw["outputs"] = [self._mod.InferRequestedOutput(o) for o in outputs]
        if params:
            kw["parameters"] = params
        if self.protocol == "grpc":
            kw["client_timeout"] = self.timeout_s
        try:
            return self.client.infer(model, inputs, **kw)
        except self._exc as e:
            msg = server_message(e.message() if callable(getattr(e, "message", None)) else str(e))
            if "unknown model" in msg or "is not found" in msg or "not ready" in msg:
                raise RemoteError(f"the server at {self.url} does not serve model {model!r}: {msg}",
                                  f"start it with `artcam serve {model}`, or pick one of: "
                                  f"{', '.join(self._served_names()) or 'none'}") from None
            if "queue size" in msg.lower():
                raise RemoteError(f"the server at {self.url} is full and rejected the request ({msg})",
                                  "slow down, add servers, or start the server with a longer queue") from None
            if any(s in msg for s in ("UNAVAILABLE", "failed to connect", "Socket closed", "Connection refused",
                                      "Broken pipe", "onnection reset", "DEADLINE_EXCEEDED")):
                raise self._error("lost", e) from None
            raise RemoteError(f"the server at {self.url} refused the request for {model!r}: {msg}") from None
        except (OSError, ConnectionError) as e:
            raise self._error("lost", e) from None
        except Exception as e:  # geventhttpclient and grpc raise their own types for a dead peer
            raise self._error("lost", e) from None

    def _served_names(self) -> list[str]:
        try:
            return [m["name"] for m in self._meta("*").get("models", [])]
        except Exception:
            return []

    def _meta(self, name: str) -> dict:
        arr = np.array([[name.encode()]], dtype=object)
        res = self._call(META_MODEL, [self._input("name", arr, "BYTES")], outputs=["json"])
        return json.loads(res.as_numpy("json").reshape(-1)[0])

    def _describe(self) -> dict:
        try:
            live = self.client.is_server_live()
        except Exception as e:
            raise self._error("cannot reach", e) from None
        if not live:
            raise RemoteError(f"the server at {self.url} is not live yet", "wait for `artcam serve` to say ready")
        try:
            d = self._meta(self.name)
        except RemoteError as e:
            if META_MODEL in e.message:
                raise RemoteError(f"the server at {self.url} is not an artcam server (no {META_MODEL!r} model)",
                                  "start one with `artcam serve MODEL`") from None
            raise
        if "error" in d:
            raise RemoteError(f"the server at {self.url} does not serve model {self.name!r}",
                              f"it serves: {', '.join(d.get('models', [])) or 'nothing'}; "
                              f"start one with `artcam serve {self.name}`")
        if d.get("task") != self.task:
            raise RemoteError(f"model {self.name!r} on {self.url} is a {d.get('task')} model, "
                              f"but this needs a {self.task} model")
        return d

    def infer(self, frame: np.ndarray, params: dict | None, outputs: list[str]) -> tuple[object, dict]:
        """One frame -> (Triton result, timing ms: pre, infer, post + server, network)."""
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"expected an HxWx3 uint8 BGR frame, got {getattr(frame, 'shape', '?')} "
                             f"{getattr(frame, 'dtype', type(frame).__name__)}")
        t0 = time.perf_counter()
        if self.encoding == "jpeg":
            import cv2

            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
            x = self._input("jpeg", np.array([[buf.tobytes()]], dtype=object), "BYTES")
        else:
            x = self._input("image", np.ascontiguousarray(frame)[None], "UINT8")
        t1 = time.perf_counter()
        res = self._call(self.name, [x], params, outputs + ["server_ms"])
        t2 = time.perf_counter()
        server = float(res.as_numpy("server_ms").reshape(-1)[0])
        rtt = (t2 - t1) * 1e3
        timing = {"pre": (t1 - t0) * 1e3, "infer": rtt, "server": server, "network": max(0.0, rtt - server)}
        if len(self.split["server"]) < 100_000:
            self.split["server"].append(server)
            self.split["network"].append(timing["network"])
        return res, timing

    def reset_split(self) -> None:
        for v in self.split.values():
            v.clear()

    def summary(self) -> str:
        n = len(self.split["server"])
        if not n:
            return ""
        s, w = np.median(self.split["server"]), np.median(self.split["network"])
        return (f"artcam: remote {self.name} on {self.url}: {n} requests, median round trip split into "
                f"server {s:.1f} ms + network/queue {w:.1f} ms")

    def close(self) -> None:
        line = self.summary()
        if line:
            print(line, file=sys.stderr)
        self.reset_split()
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients = []
        self._local = threading.local()
