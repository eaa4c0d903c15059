"""Retrain only the classifier head on a trained network's frozen features, unaugmented.

    python -m models.head --init best.pt --out head.pt [--soft-weight 1.0] [--la-loss TAU] [--epochs 4]

The convolutions stay as they are; their 512 features of every Training face and its mirror image are computed
once (cached beside the training runs) and the head (512-512-7) goes on training from its own weights on them,
4 epochs by default. During training the head only ever saw augmented faces under dropout; these few epochs on
clean faces fit it to faces as they come at test time (classifier re-training, Kang et al., ICLR 2020). With the
defaults it is the last stage of the shipped model (the card's row `head-control`); run it on any trained
checkpoint before `models.convert`. It is also a quick way, minutes instead of hours on a CPU, to see how the
class boundaries move with other targets: `--soft-weight` mixes the FER2013 label and the FER+ crowd votes like
`models.train` (0.25 there), and `--la-loss TAU` trains with the logit-adjusted loss (Menon et al., ICLR 2021:
the logits plus TAU x log prior in the loss). `--block5` retrains the last convolution block (three 512-wide
convolutions, 7 M weights) with the head, on the cached output of the fourth block: the same idea one block deeper,
still far cheaper than training (the cached block-4 output is 1 GB). `--teacher CK` (repeatable) distils other
trained networks into the head: their mean probabilities on the same clean faces, each from its own cached
features, make up `--teacher-weight` of the targets. Measure the result with `models.experiments`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from models.fer import PIXEL_MEAN, PIXEL_STD
from models.train import DEFAULT_OUT, blend

KEEP_FEATURE_CACHES = 4  # 117 MB each for a full checkpoint (1 GB with --block5); a check-in at every stop adds one


def frozen_part(net, block5: bool):
    """The layers whose output is cached: all the convolutions, or (block5) those up to the fourth pooling."""
    from torch import nn

    if not block5:
        return net.features
    pools = [i for i, layer in enumerate(net.features) if isinstance(layer, nn.MaxPool2d)]
    return net.features[: pools[3] + 1]


def features(
    checkpoint: Path, cache: Path, faces: int = 0, photometric_copies: int = 0, block5: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The frozen network's features of every Training face (or the first `faces`) and its mirror image, then of
    `photometric_copies` copies of each face under camera-like degradation (`models.augment.real_photo`: gamma,
    dim light, blur or low resolution, noise; half of them mirrored): [(2 + copies) N, 512], with the labels, the
    FER+ soft targets and the seconds it took to compute the features (cached). With `block5` the features are
    the fourth block's output instead, [(2 + copies) N, 512, 3, 3], for retraining the last block with the head."""
    import torch

    from models.augment import real_photo
    from models.evaluate import float_net
    from models.fer import load_split
    from models.train import cpu_has_bf16

    train = load_split("Training")
    if faces:
        train = train.subset(faces, 0)
    views = 2 + photometric_copies
    targets = np.concatenate([train.labels] * views), np.concatenate([train.soft] * views)
    key = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:16] + (f"_{faces}" if faces else "")
    key += f"_pc{photometric_copies}" if photometric_copies else ""
    key += "_b5" if block5 else ""
    path = cache / f"head_features_{key}.npz"
    if path.exists():
        cached = np.load(path)
        path.touch()  # recently used: kept by prune_feature_caches
        return cached["features"], *targets, float(cached["seconds"])
    started = time.time()
    frozen = frozen_part(float_net(checkpoint), block5)
    bf16 = cpu_has_bf16()  # reads /proc/cpuinfo: once, not per batch; emulated bf16 is slow
    out = []
    gen = torch.Generator().manual_seed(20261128)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen)

    with torch.no_grad():
        for view in range(views):
            for i in range(0, len(train), 512):
                x = torch.from_numpy(train.images[i : i + 512]).float().unsqueeze(1)
                if view >= 2:  # a camera-like copy, mirrored or not
                    x = real_photo(torch.where(rand(len(x), 1, 1, 1) < 0.5, torch.flip(x, dims=[3]), x), rand, gen)
                x = torch.flip(x, dims=[3]) if view == 1 else x
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    f = frozen((x - PIXEL_MEAN) / PIXEL_STD)
                out.append(f.float().numpy() if block5 else f.float().flatten(1).numpy())
    feats, seconds = np.concatenate(out), time.time() - started
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, features=feats, seconds=seconds)
    prune_feature_caches(cache)
    return feats, *targets, seconds


def prune_feature_caches(cache: Path, keep: int = KEEP_FEATURE_CACHES) -> list[Path]:
    """Delete all but the `keep` most recently used feature caches (they are keyed by the checkpoint's bytes, so
    every new best checkpoint of a long run adds one). Returns what was deleted."""
    files = sorted(cache.glob("head_features_*.npz"), key=lambda f: f.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
    return files[keep:]


def teacher_probabilities(teachers: list[Path], cache: Path, faces: int = 0) -> np.ndarray:
    """The teachers' mean probabilities (plain softmax, no logit adjustment) for every Training face and its
    mirror image, in the order of `features`: each teacher's head on its own cached features."""
    import torch

    from models.evaluate import float_net

    out = []
    for teacher in teachers:
        feats = torch.from_numpy(features(teacher, cache, faces)[0])
        net = float_net(teacher)
        with torch.no_grad():
            out.append(torch.cat([torch.softmax(net.head(f), 1) for f in feats.split(4096)]).numpy())
    return np.mean(out, 0)


def train_head(
    checkpoint: Path,
    out: Path,
    soft_weight: float = 0.25,
    la_tau: float = 0.0,
    epochs: int = 4,
    lr: float = 0.002,
    cache: Path = DEFAULT_OUT,
    seed: int = 20261128,
    faces: int = 0,
    photometric_copies: int = 0,
    block5: bool = False,
    teachers: tuple[Path, ...] = (),
    teacher_weight: float = 0.5,
) -> dict:
    import torch
    import torch.nn.functional as F

    from models.fer import CLASS_NAMES, logit_adjustment
    from models.vgg16_torch import VGG16

    if teachers and (photometric_copies or block5):
        raise SystemExit("--teacher works on the plain features: not with --photometric-copies or --block5")
    if not 0 <= teacher_weight <= 1:
        raise SystemExit(f"--teacher-weight {teacher_weight}: give the teachers' share of the targets, 0 to 1")
    feats, labels, soft, feature_seconds = features(checkpoint, cache, faces, photometric_copies, block5)
    started = time.time()
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    net = VGG16()
    net.load_state_dict(state["model"])
    frozen = len(frozen_part(net, block5))
    # what trains: the head on the 512 features, or (block5) the last block and the head on the fourth block's output
    head = torch.nn.Sequential(*net.features[frozen:], net.head).train()
    shape = feats.shape[1:] if feats.ndim == 4 else (512, 1, 1)
    x, y = torch.from_numpy(feats), torch.from_numpy(labels)
    target = blend(y, torch.from_numpy(soft), soft_weight)
    if teachers:
        taught = torch.from_numpy(teacher_probabilities(list(teachers), cache, faces))
        target = (1 - teacher_weight) * target + teacher_weight * taught
    # logit_adjustment gives -tau log prior; the logit-adjusted loss adds +tau log prior to the logits in training
    shift = -torch.from_numpy(logit_adjustment(la_tau)) if la_tau else torch.zeros(len(CLASS_NAMES))
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    steps = epochs * (len(x) // 128)
    losses = []
    for step in range(steps):
        for g in opt.param_groups:  # cosine from lr to 0
            g["lr"] = 0.5 * lr * (1 + np.cos(np.pi * step / steps))
        idx = torch.randint(0, len(x), (128,), generator=gen)
        logits = head(x[idx].view(-1, *shape)) + shift
        loss = torch.sum(-target[idx] * F.log_softmax(logits, 1), 1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    head.eval()
    args = {"init": str(checkpoint), "soft_weight": soft_weight, "la_tau": la_tau, "epochs": epochs, "lr": lr}
    args["photometric_copies"] = photometric_copies
    args["block5"] = block5
    if teachers:
        args["teachers"], args["teacher_weight"] = [str(t) for t in teachers], teacher_weight
    args["minutes"] = round((feature_seconds + time.time() - started) / 60, 1)  # features included, cached or not
    record = {"model": net.state_dict(), "epoch": state.get("epoch"), "head_only": args}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(record, out)
    return {**args, "out": str(out), "loss_last_epoch": float(np.mean(losses[-(len(x) // 128) :]))}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", type=Path, required=True, help="a trained checkpoint (best.pt)")
    p.add_argument("--out", type=Path, required=True, help="where the checkpoint with the new head goes")
    p.add_argument("--soft-weight", type=float, default=0.25, help="weight of the FER+ votes in the targets")
    p.add_argument("--la-loss", type=float, default=0.0, metavar="TAU", help="logit-adjusted loss with this tau")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument(
        "--photometric-copies",
        type=int,
        default=0,
        metavar="N",
        help="also train on N camera-like copies of each face (gamma, dim light, blur, noise)",
    )
    p.add_argument(
        "--block5",
        action="store_true",
        help="retrain the last convolution block (512x3) with the head, on the cached output of the fourth block",
    )
    p.add_argument(
        "--teacher",
        type=Path,
        action="append",
        default=[],
        help="distil from this trained checkpoint too (repeat for an ensemble): its probabilities on the same clean "
        "faces, from its own cached features, blended into the targets",
    )
    p.add_argument("--teacher-weight", type=float, default=0.5, help="the teachers' share of the targets")
    args = p.parse_args(argv)
    for flag, path in [("--init", args.init)] + [("--teacher", t) for t in args.teacher]:
        if not path.is_file():
            raise SystemExit(f"{flag} {path}: no such checkpoint")
    result = train_head(
        args.init,
        args.out,
        args.soft_weight,
        args.la_loss,
        args.epochs,
        args.lr,
        photometric_copies=args.photometric_copies,
        block5=args.block5,
        teachers=tuple(args.teacher),
        teacher_weight=args.teacher_weight,
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
