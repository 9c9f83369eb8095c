"""artcam models behind a real Triton Inference Server (``artcam serve``; the ``serve`` extra).

A layer on top of the runtime: it imports ``artcam.runtime`` (tasks, ONNX Runtime sessions, model
files), the runtime never imports it. No torch. The matching client is
``artcam.runtime.backends.remote`` (``artcam live --remote grpc://host:8001``).
"""
