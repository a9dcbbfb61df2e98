"""One-channel twins of real torch modules, so the gradient probe runs fast at real input sizes.

The probe needs the *support* of an input gradient, not capacity: every convolution is replaced by
a lazy convolution with the same kernel, stride, padding and dilation and one output channel
(groups 1: a depthwise conv reads the same pixels), every batch norm by the identity (the probe
linearises it to the identity anyway) and every linear layer by a lazy one with one output. The
module's own forward, with its functional ops (FPN's ``F.interpolate`` to a size, adds, pools),
is untouched, so the twin is an independent oracle of the named model's geometry; tests assert
that the engine gives the twin exactly the named model's numbers before probing it.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def one_channel(module: nn.Module) -> nn.Module:
    """Replace, in place, the channel-carrying layers of ``module`` (see the module docstring)."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in list(module.named_children()):
        new: nn.Module | None = None
        if isinstance(child, nn.Conv2d):
            new = nn.LazyConv2d(1, child.kernel_size, child.stride, child.padding,  # type: ignore[arg-type]
                                child.dilation, 1, child.bias is not None,  # type: ignore[arg-type]
                                child.padding_mode)
        elif isinstance(child, nn.ConvTranspose2d):
            new = nn.LazyConvTranspose2d(1, child.kernel_size, child.stride, child.padding,  # type: ignore[arg-type]
                                         child.output_padding, 1, child.bias is not None,  # type: ignore[arg-type]
                                         child.dilation)  # type: ignore[arg-type]
        elif isinstance(child, (nn.BatchNorm2d, FrozenBatchNorm2d)):
            new = nn.Identity()
        elif isinstance(child, nn.Linear):
            new = nn.LazyLinear(1, child.bias is not None)
        if new is not None:
            setattr(module, name, new)
        else:
            one_channel(child)
    return module


def materialise(module: nn.Module, size: tuple[int, int], in_channels: int = 3) -> nn.Module:
    """Run one forward so the lazy layers take their shapes (eval mode; the probe makes its own
    float64 copy)."""
    module.eval()
    with torch.no_grad():
        module(torch.zeros(1, in_channels, *size))
    return module
