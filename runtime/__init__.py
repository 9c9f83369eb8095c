"""artcam runtime: numpy, OpenCV and ONNX Runtime only (never torch)."""
