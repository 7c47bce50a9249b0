"""Process groups for 1..N GPUs (``torchrun``) and the few collectives the training loop uses.

We do not wrap the networks in ``DistributedDataParallel``: the loop has four phases per step with different
trainable sets, double backward (R1, path length) and frozen-D generator passes, which DDP handles poorly.
Instead, like StyleGAN2-ADA, every rank computes gradients on its share of the global batch and one
``all_reduce`` of the flattened gradients averages them before each optimiser step; parameters start equal
(broadcast from rank 0) and therefore stay equal. NCCL on GPUs, gloo on CPU (tests).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world``, its ``device``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def init_distributed(device: str | None = None, *, timeout_s: float = 1800.0) -> DistContext:
    """Join the process group torchrun describes in the environment (or run single-process).

    Args:
        device: ``"cuda"``, ``"cpu"`` or None (cuda when available).
        timeout_s: collective timeout.

    Returns:
        The :class:`DistContext`; with more than one process the default group is initialised.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda:
        dev = torch.device("cuda", local_rank if world > 1 else torch.cuda.current_device())
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
            **({"device_id": dev} if use_cuda else {}),
        )
    return DistContext(rank=rank, world=world, local_rank=local_rank, device=dev)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not ctx.distributed:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def all_reduce_grads(params: list[nn.Parameter], ctx: DistContext) -> None:
    """Average gradients over ranks with one flattened all_reduce (missing grads count as zero)."""
    if not ctx.distributed:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        if p.grad is None:
            p.grad = flat[offset : offset + n].view_as(p).clone()
        else:
            p.grad.copy_(flat[offset : offset + n].view_as(p))
        offset += n


def make_all_reduce(ctx: DistContext, *, mean: bool = False):
    """A callable that sums (or averages) a tensor in place across ranks; identity when single-process."""

    def reduce(t: Tensor) -> Tensor:
        if ctx.distributed:
            dist.all_reduce(t)
            if mean:
                t /= ctx.world
        return t

    return reduce


def gather_objects(obj, ctx: DistContext) -> list:
    """``[obj from rank 0, rank 1, ...]`` (a list of one when single-process)."""
    if not ctx.distributed:
        return [obj]
    out: list = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()
