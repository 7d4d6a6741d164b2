"""Training steps in static form: `graphmint train-check` (each compiled form of a model's step against
eager and float64, step by step) and `graphmint parity` (a PyTorch model and its Keras twin with the
same weights: forward, ONNX and training alike)."""
