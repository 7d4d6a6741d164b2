"""The serving bundle: packaging published models for Triton / KServe, the inference server, and the
live serve-check that proves the bundle answers as the golden data says."""
