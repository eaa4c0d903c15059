"""Batch augmentation for 48x48 grey faces, on tensors (cheap next to a VGG16 step)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment(
    x: torch.Tensor, gen: torch.Generator, photometric: bool = False, host_gen: torch.Generator | None = None
) -> torch.Tensor:
    """x: float [N,1,H,W] pixels 0..255. Random flip, rotation, scale, shift, brightness, contrast, erasing.

    With `photometric`, also what separates a FER2013 web crop from a camera frame in a room: a small
    perspective tilt, gamma, dim light, blur or a lower resolution, and sensor noise (see `real_photo`).
    `gen` draws on x's device. The one draw that must be a Python number (the batch's lower resolution) comes
    from `host_gen` (a CPU generator; default `gen`), so that on a GPU nothing waits for the device.
    """
    n, _, h, w = x.shape
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen, device=gen.device).to(dev)

    if photometric:
        x = _tilt(x, rand)

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
    if photometric:
        x = real_photo(x.clamp(0, 255), rand, host_gen or gen)

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


def _tilt(x: torch.Tensor, rand) -> torch.Tensor:
    """A small perspective change (a face turned or tilted up to about 10 degrees), in half the images."""
    n, _, h, w = x.shape
    k = 0.12
    # The corners (-1,-1) (1,-1) (1,1) (-1,1), made on the device: a tensor or an index from the host would be a copy
    # that waits for the GPU.
    i = torch.arange(4, device=x.device)
    src = torch.stack([((i == 1) | (i == 2)).float() * 2 - 1, (i >= 2).float() * 2 - 1], 1).expand(n, 4, 2)
    dst = src + (rand(n, 4, 2) * 2 - 1) * k * (rand(n, 1, 1) < 0.5)
    # Solve for the homography mapping output corners (dst) to input corners (src), per image.
    rows = []
    for i in range(4):
        u, v = dst[:, i, 0], dst[:, i, 1]
        X, Y = src[:, i, 0], src[:, i, 1]
        z, o = torch.zeros_like(u), torch.ones_like(u)
        rows.append(torch.stack([u, v, o, z, z, z, -u * X, -v * X], 1))
        rows.append(torch.stack([z, z, z, u, v, o, -u * Y, -v * Y], 1))
    a = torch.stack(rows, 1)
    b = src.reshape(n, 8)
    hcoef = torch.linalg.solve_ex(a, b.unsqueeze(2))[0].squeeze(2)  # _ex: no check that syncs with a GPU
    hm = torch.cat([hcoef, torch.ones(n, 1, device=x.device)], 1).view(n, 3, 3)
    ys, xs = torch.meshgrid(
        torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=x.device),
        torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=x.device),
        indexing="ij",
    )
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, h * w, 3)
    mapped = pts @ hm.transpose(1, 2)
    grid = (mapped[..., :2] / mapped[..., 2:].clamp(min=1e-3)).view(n, h, w, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def real_photo(x: torch.Tensor, rand, host_gen: torch.Generator) -> torch.Tensor:
    """Camera-like degradations, each in part of the batch: gamma, dim light, blur or low resolution, noise.

    Every branch runs on the whole batch and `torch.where` keeps it where drawn, with no test of the draws in
    Python (on a GPU such a test waits for the device).
    """
    n, _, h, w = x.shape
    dev = x.device
    # Gamma 0.6-1.6 (over- and under-exposed faces) in half the images.
    gamma = torch.exp((rand(n, 1, 1, 1) * 2 - 1) * math.log(1.6))
    gamma = torch.where(rand(n, 1, 1, 1) < 0.5, gamma, torch.ones_like(gamma))
    x = 255.0 * (x / 255.0).clamp(1e-4, 1) ** gamma
    # Dim light: a quarter of the images at 35-80% brightness with the contrast that goes with it.
    dim = torch.where(rand(n, 1, 1, 1) < 0.25, 0.35 + rand(n, 1, 1, 1) * 0.45, torch.ones(n, 1, 1, 1, device=dev))
    x = x * dim
    # Blur (a Gaussian, sigma 0.4-1.2 px) in a quarter, or a lower resolution (down to 24-40 px and back) in another.
    pick = rand(n)
    blur = pick < 0.25
    sigma = 0.4 + rand(n) * 0.8
    r = torch.arange(-2, 3, device=dev, dtype=x.dtype)
    k1 = torch.exp(-(r.view(1, 5) ** 2) / (2 * sigma.view(n, 1) ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)
    kern = (k1.view(n, 5, 1) * k1.view(n, 1, 5)).unsqueeze(1)
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
    blurred = F.conv2d(padded.view(1, n, h + 4, w + 4), kern, groups=n).view(n, 1, h, w)
    x = torch.where(blur.view(n, 1, 1, 1), blurred, x)
    low = (pick >= 0.25) & (pick < 0.45)
    side = int(24 + float(torch.rand(1, generator=host_gen)) * 16)
    small = F.interpolate(x, size=(side, side), mode="area")
    back = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    x = torch.where(low.view(n, 1, 1, 1), back, x)
    # Sensor noise (sigma 2-8 grey levels) in a third.
    noisy = (rand(n, 1, 1, 1) < 0.33).float()
    sigma = 2 + rand(n, 1, 1, 1) * 6
    uniform = rand(n, 1, h, w) + rand(n, 1, h, w) + rand(n, 1, h, w) - 1.5  # ~N(0, 0.5)
    x = x + noisy * sigma * uniform * 2
    return x.clamp(0, 255)
