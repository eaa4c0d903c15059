"""Batch augmentation for 48x48 grey faces, on tensors (cheap next to a VGG16 step)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """x: float [N,1,H,W] pixels 0..255. Random flip, rotation, scale, shift, brightness, contrast, erasing."""
    n, _, h, w = x.shape
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen).to(dev)

    angle = (rand(n) * 2 - 1) * math.radians(15)
    scale = 1 + (rand(n) * 2 - 1) * 0.15
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0).to(dev)
    shift = (rand(n, 2) * 2 - 1) * 0.12
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 1 + (rand(n, 1, 1, 1) * 2 - 1) * 0.3
    brightness = (rand(n, 1, 1, 1) * 2 - 1) * 25
    x = (x - mean) * contrast + mean + brightness

    # Random erasing: one rectangle of 2-20% of the area in half the images, filled with noise.
    area = (0.02 + rand(n) * 0.18) * h * w
    aspect = torch.exp((rand(n) * 2 - 1) * math.log(3))
    eh = torch.sqrt(area * aspect).clamp(1, h - 1)
    ew = torch.sqrt(area / aspect).clamp(1, w - 1)
    y0 = rand(n) * (h - eh)
    x0 = rand(n) * (w - ew)
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    box = (
        (ys >= y0.view(n, 1, 1))
        & (ys < (y0 + eh).view(n, 1, 1))
        & (xs >= x0.view(n, 1, 1))
        & (xs < (x0 + ew).view(n, 1, 1))
    )
    box &= (rand(n) < 0.5).view(n, 1, 1)
    noise = rand(n, 1, h, w) * 255
    x = torch.where(box.unsqueeze(1), noise, x)
    return x.clamp(0, 255)
