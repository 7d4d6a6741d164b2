"""PyTorch zoo: small models that exercise what static export gets wrong.

Factories build models with the torch RNG as graphmint seeds it; no weights are downloaded.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "ModelWithCustom",
    "SimpleNet",
    "custom_net",
    "seq_classifier",
    "simple_net",
    "small_cnn",
    "transformer_block",
]


class SimpleNet(nn.Module):
    """Linear 10→20, ReLU, Linear 20→2."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(10, 20)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(20, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x)))


class CustomLayer(nn.Module):
    """A layer that owns an nn.Parameter and multiplies by it."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, out_features) * in_features**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weight)


class ModelWithCustom(nn.Module):
    """CustomLayer 10→20, ReLU, Linear 20→2."""

    def __init__(self) -> None:
        super().__init__()
        self.custom = CustomLayer(10, 20)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(20, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.custom(x)))


class SmallCNN(nn.Module):
    """Conv, batch norm, ReLU, pooling, linear on 3×32×32 images."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


class SeqClassifier(nn.Module):
    """Embedding + LSTM over a variable-length token sequence; classifies from the last state."""

    def __init__(self, vocab: int = 1000, embed: int = 32, hidden: int = 48, classes: int = 5) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.embed(ids))
        return self.head(h[-1])


class TransformerBlock(nn.Module):
    """Pre-norm encoder block: multi-head self-attention and a GELU MLP, with residuals."""

    def __init__(self, d_model: int = 64, heads: int = 4, hidden: int = 128) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


def _randomize_batchnorm(model: nn.Module) -> nn.Module:
    """Give BatchNorm non-trivial running statistics so exporters that fold them are really tested."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None  # track_running_stats=True
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def simple_net() -> nn.Module:
    return SimpleNet()


def custom_net() -> nn.Module:
    return ModelWithCustom()


def small_cnn() -> nn.Module:
    return _randomize_batchnorm(SmallCNN())


def seq_classifier() -> nn.Module:
    return SeqClassifier()


def transformer_block() -> nn.Module:
    return TransformerBlock()
