"""The weights the ERF is measured with: random (as built, BatchNorm recalibrated), as they are,
uniform (the linearised all-positive copy: Luo's analytic baseline) or a checkpoint.

At random initialisation the ERF is a property of the architecture (Luo et al.), so the default
needs no trained weights and no download; a checkpoint shows what training did to it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from anchorfit.erf.passes import outputs_module
from anchorfit.errors import AnchorfitError

if TYPE_CHECKING:
    from anchorfit.rf.network import Network

#: the named weight policies; any other value is a checkpoint path
POLICIES = ("random", "as_is", "uniform")


def load_checkpoint(module: nn.Module, path: str | Path) -> str:
    """Load a state dict (or a dict holding one under state_dict/model) into ``module`` or, for a
    detector, its backbone. Returns which one it went into; raises when it does not fit."""
    path = Path(path)
    if not path.is_file():
        raise AnchorfitError("no such checkpoint file", source=path,
                             hint="weights takes random, uniform or a .pt/.pth state dict")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AnchorfitError(f"cannot read the checkpoint: {first}", source=path,
                             hint="expected a file saved with torch.save(model.state_dict(), ...)"
                             ) from None
    if isinstance(data, dict):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise AnchorfitError("the checkpoint holds no state dict of tensors", source=path)
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in data.items()}
    targets = [("model", module)]
    if isinstance(getattr(module, "backbone", None), nn.Module):
        targets.append(("backbone", module.backbone))
    problems = []
    for label, target in targets:
        own = target.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and state[k].shape != own[k].shape]
        if not missing and not unexpected and not shapes:
            target.load_state_dict(state, strict=True)
            return label
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            detail.append(f"{len(shapes)} of another shape (e.g. {shapes[0]})")
        problems.append(f"{label}: " + ", ".join(detail))
    raise AnchorfitError("the checkpoint does not fit the network: " + "; ".join(problems),
                         source=path, hint="is it a checkpoint of this model?")


def redraw_weights(module: nn.Module, generator: torch.Generator) -> None:
    """A new weight draw with the scale of the current one: every conv/linear weight is redrawn as
    N(0, std²) of its own current std (Luo's analysis depends on the weight variance only)."""
    with torch.no_grad():
        for m in module.modules():
            weight = getattr(m, "weight", None)
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and isinstance(
                    weight, torch.Tensor) and weight.numel() > 1:
                std = float(weight.float().std())
                if std > 0:
                    fresh = torch.randn(weight.shape, generator=generator, dtype=torch.float64)
                    weight.copy_((fresh * std).to(weight.dtype))


def materialize(module: nn.Module, seed: int) -> bool:
    """Real tensors for a module built on the meta device (a format reader's network): PyTorch's
    default initialisation under ``seed``. Returns whether anything was done."""
    if not any(t.is_meta for t in list(module.parameters()) + list(module.buffers())):
        return False
    module.to_empty(device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
            if hasattr(m, "reset_running_stats"):
                m.reset_running_stats()
    return True


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def recalibrate_batchnorm(module: nn.Module, batches: Iterator[torch.Tensor]) -> int:
    """Recompute BatchNorm running statistics (cumulative average over ``batches``), then eval.

    At random init the stored statistics are (0, 1), so eval-mode BN is about the identity and
    activations blow up or vanish; research/erf.md §2.6-1. Returns the number of BN layers."""
    bns = batch_norms(module)
    if not bns:
        return 0
    module.eval()
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        with torch.no_grad():
            for x in batches:
                module(x)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        module.eval()
    return len(bns)


def needs_recalibration(module: nn.Module, weights: str) -> bool:
    """Only random weights get their BatchNorm statistics recomputed: ``as_is`` asks for the
    stored ones, a checkpoint brings its own, and the uniform copy has no BatchNorm left."""
    return bool(batch_norms(module)) and weights == "random"


def prepare_module(net: Network, nodes: Sequence[str], weights: str | Path, seed: int,
                   notes: list[str]) -> nn.Module:
    """A private copy of the traced module computing only ``nodes``, with the weight policy
    applied: a checkpoint loaded (into the network's module, which the traced one shares), the
    linearised copy for ``uniform``, PyTorch's seeded initialisation for a module built without
    weights. Appends a note when it had to initialise."""
    if weights not in POLICIES:
        if net.module is None:
            raise AnchorfitError(f"{net.name} has no torch module to load weights into")
        load_checkpoint(net.module, weights)
    if net.traced is None or getattr(net.traced, "gm", None) is None:
        raise AnchorfitError(f"{net.name} has no traced torch module; the ERF needs one",
                             hint="use a torchvision name, a factory, or a format whose reader "
                                  "builds a torch module")
    if weights == "uniform":
        from anchorfit.rf.probe import linearize

        return outputs_module(linearize(net.traced), nodes)
    sub = copy.deepcopy(outputs_module(net.traced.gm, nodes))
    if materialize(sub, seed):
        notes.append("the network was built without weights: PyTorch's default initialisation "
                     f"was used (seed {seed})")
    return sub
