"""Small torch networks for RF tests; loaded by file path as MODEL (``tests/nets/small.py:NAME``)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Untraceable(nn.Module):
    """Data-dependent control flow inside a sub-module: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.gate = Gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.stem(x))


class Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x
        return -x


class Rolled(nn.Module):
    """Uses torch.roll, an op with no geometry rule."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 4, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.roll(self.conv(x), 1, dims=1))


class FunctionalNet(nn.Module):
    """Functional pools, F.pad (W first!), interpolate, cat, slicing: what hooks cannot see."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, (3, 5), stride=(1, 2), padding=(1, 2))
        self.c2 = nn.Conv2d(4, 4, 3, dilation=2, padding=2)
        self.c3 = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.max_pool2d(self.c1(x), 3, 2, 1, ceil_mode=True)
        b = F.pad(self.c2(a), (1, 0, 2, 0))[..., :-2, :-1]
        c = F.interpolate(F.avg_pool2d(b, 2), scale_factor=2, mode="nearest")
        return self.c3(torch.cat([a, c], dim=1))


class SqueezeExcite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Conv2d(8, 2, 1)
        self.fc2 = nn.Conv2d(2, 8, 1)
        self.norm = nn.GroupNorm(2, 8)
        self.out = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(y, 1)))))
        return self.out(self.norm(y * s))


class Conv1dNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv1d(3, 4, 5, stride=2, padding=2)
        self.b = nn.Conv1d(4, 4, 3, dilation=3, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.max_pool1d(self.a(x), 2))


def untraceable() -> nn.Module:
    return Untraceable()


def rolled() -> nn.Module:
    return Rolled()


def functional() -> nn.Module:
    return FunctionalNet()


def squeeze_excite() -> nn.Module:
    return SqueezeExcite()


def not_a_module() -> int:
    return 3
