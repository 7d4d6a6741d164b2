"""Small models that stand for patterns seen in users' own code (the corpus covers library models).

Each is built from code with seeded weights, like every graphmint model.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.library.custom_op("graphmint_tests::scaled_tanh", mutates_args=())
def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    """A user's own operator registered without a fake (meta) kernel, as kernels written in C++ or
    CUDA often are: eager PyTorch and tracing run it, torch.export and Dynamo cannot reason about it."""
    return torch.tanh(x) * 1.5


class CustomOpNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scaled_tanh(self.fc(x))


class StarArgsNet(nn.Module):
    """`forward(self, *args)`: inputs can only be passed positionally."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        x, y = args
        return self.fc(x) * torch.sigmoid(y.sum(dim=1, keepdim=True))


def custom_op_net() -> nn.Module:
    return CustomOpNet()


def star_args_net() -> nn.Module:
    return StarArgsNet()


def keras_normalized() -> object:
    """A Keras model whose Normalization layer tf2onnx turns into extra graph inputs (mean, variance)."""
    import keras
    import numpy as np

    x = keras.Input((8,))
    norm = keras.layers.Normalization(mean=np.linspace(-1, 1, 8), variance=np.linspace(0.5, 2, 8))
    y = keras.layers.Dense(3)(norm(x))
    return keras.Model(x, y)


class ConstantNet(nn.Module):
    """A head behind a collapsed activation, as random initialisation can leave one: `output_0` is the
    bias whatever the input, `output_1` is zero. Any artifact returning constants would pass on them."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dead = torch.relu(-torch.abs(x))  # zero for every input
        return self.fc(dead), dead.sum(dim=1)


def constant_net() -> nn.Module:
    return ConstantNet()


class PoolHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        # a window larger than the map with ceil_mode, as EfficientNet-style heads have: ONNX Runtime
        # computes it as PyTorch does, onnx.reference's AveragePool does not
        self.pool = nn.AvgPool2d(9, stride=8, ceil_mode=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x).flatten(1))


class CeilPoolNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.head = PoolHead()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)))


def ceil_pool_net() -> nn.Module:
    return CeilPoolNet()


class PathGelu(nn.Module):
    """GELU that takes the tanh approximation when traced or exported: the graph holds another code path
    than the eager model runs, as models that branch on `torch.compiler.is_exporting()` do."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        static = torch.jit.is_tracing() or torch.compiler.is_exporting()
        return nn.functional.gelu(x, approximate="tanh" if static else "none")


class Block(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.act = act
        self.fc2 = nn.Linear(64, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(x)))


class DeepDivergent(nn.Module):
    """Three residual blocks; only the middle one's activation (`blocks.1.act`) diverges when exported."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(16, 32)
        self.blocks = nn.Sequential(Block(nn.GELU()), Block(PathGelu()), Block(nn.GELU()))
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(torch.relu(self.stem(x))))


def _scaled(build: type[nn.Module]) -> nn.Module:
    """`build()` from seed 0, its weights tripled: large enough that a GELU sees |x| of a few units."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build()
        for p in model.parameters():
            p.data.mul_(3.0)
    return model


def deep_divergent() -> nn.Module:
    return _scaled(DeepDivergent)


class ConvReLU(nn.Module):
    """Conv2d then ReLU: no reshape and no matmul, so litert-torch keeps its batch dim dynamic."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def conv_relu() -> nn.Module:
    return ConvReLU()


class LearnedPositions(nn.Module):
    """Learned position embeddings added to each token's feature, as BERT adds them: the positions are
    `arange` over the sequence, so a dynamic sequence makes arange's end a symbolic size."""

    def __init__(self) -> None:
        super().__init__()
        self.positions = nn.Embedding(64, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.positions(torch.arange(x.shape[1])).unsqueeze(0) + x.unsqueeze(-1)


def learned_positions() -> nn.Module:
    return LearnedPositions()


class TanhGeluMlp(nn.Module):
    """An MLP with GELU's tanh approximation, as GPT-2-style models and Gemma ("gelu_pytorch_tanh")
    write it: `approximate="tanh"` is an attribute of the graph's gelu op that a backend must honour."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def tanh_gelu_mlp() -> nn.Module:
    return _scaled(TanhGeluMlp)
