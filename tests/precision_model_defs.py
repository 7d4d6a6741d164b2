"""Models that reduced precision breaks in the ways deployments see, built from code with fixed weights."""

from __future__ import annotations

import torch
from torch import nn


class OutlierChannel(nn.Module):
    """One channel of the hidden activation is ~1000x the others (as in LLM activations), and the
    next layer does not read it: per-tensor int8 spends its 256 levels on that channel and leaves the
    others a level or two."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 8)
        self.fc3 = nn.Linear(8, 4)
        with torch.no_grad():
            self.fc1.bias[0] = 500.0
            self.fc2.weight[:, 0] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class BeyondFp16(nn.Module):
    """An activation of ~1e5 (over fp16's 65504) that the next layer takes back to a normal scale."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)) * 1e5 - 1e5) * 1e-5


def outlier_channel() -> nn.Module:
    torch.manual_seed(0)
    return OutlierChannel().eval()


def beyond_fp16() -> nn.Module:
    torch.manual_seed(0)
    return BeyondFp16().eval()
