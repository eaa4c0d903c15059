"""Train the VGG16 emotion classifier on FER2013 (PyTorch; bf16 on CPUs that have it, or CUDA).

    python -m models.train                 # full run, resumes from models/checkpoints/last.pt if present
    python -m models.train --smoke         # about a minute on a subset, for the tests
    python -m models.train --init models/checkpoints/best.pt --epochs 16 --lr 0.005 \
        --out models/checkpoints/finetune  # a second, shorter cosine cycle from a trained model

Training split for training, PublicTest to pick the epoch; PrivateTest is never read here.
Targets blend the FER2013 label with the FER+ crowd-vote distribution (--soft-weight).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.augment import augment
from models.fer import CLASS_NAMES, Split, load_split
from models.vgg16_torch import VGG16

DEFAULT_OUT = Path(__file__).resolve().parent / "checkpoints"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=36)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02, help="peak learning rate (SGD, Nesterov)")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument(
        "--soft-weight",
        type=float,
        default=0.25,
        help="weight of the FER+ vote distribution in the target (0 = one-hot FER2013 labels)",
    )
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="checkpoint and log folder")
    p.add_argument(
        "--init",
        type=Path,
        help="start from this checkpoint's weights with a fresh optimiser and schedule (a warm restart)",
    )
    p.add_argument("--no-resume", action="store_true", help="start afresh even if last.pt exists")
    p.add_argument("--smoke", action="store_true", help="1 epoch on 640 training faces, for tests")
    p.add_argument("--max-epochs-this-run", type=int, default=0, help="stop after this many epochs (resume later)")
    return p.parse_args(argv)


def cpu_has_bf16() -> bool:
    try:
        return "avx512_bf16" in Path("/proc/cpuinfo").read_text() or "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def learning_rate(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * peak * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def evaluate(model: VGG16, split: Split, device: torch.device, dtype: torch.dtype | None) -> dict[str, float]:
    model.eval()
    plain, flipped = [], []
    for i in range(0, len(split), 256):
        x = torch.from_numpy(split.images[i : i + 256]).float().unsqueeze(1).to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            p = F.softmax(model(x).float(), 1)
            pf = F.softmax(model(torch.flip(x, dims=[3])).float(), 1)
        plain.append(p.cpu())
        flipped.append(((p + pf) / 2).cpu())
    y = torch.from_numpy(split.labels)
    return {
        "acc": float((torch.cat(plain).argmax(1) == y).float().mean()),
        "acc_flip_tta": float((torch.cat(flipped).argmax(1) == y).float().mean()),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    use_bf16 = args.precision == "bf16" or (args.precision == "auto" and (device.type == "cuda" or cpu_has_bf16()))
    dtype = torch.bfloat16 if use_bf16 else None

    train, val = load_split("Training"), load_split("PublicTest")
    if args.smoke:
        train, val = train.subset(640, args.seed), val.subset(256, args.seed)
        args.epochs, args.warmup_epochs = 1, 0.2
    args.out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    model = VGG16(len(CLASS_NAMES)).to(device).to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        momentum=0.9,
        nesterov=True,
    )

    steps_per_epoch = len(train) // args.batch
    total_steps = steps_per_epoch * args.epochs
    warmup = int(args.warmup_epochs * steps_per_epoch)
    start_epoch, best = 0, {"acc": -1.0}
    if args.init:
        args.init = args.init.resolve()  # the conversion follows it back to the first stage's log
        if not args.init.is_file():
            raise SystemExit(f"--init {args.init}: no such checkpoint; give the best.pt of a finished training run")
        init = torch.load(args.init, map_location=device, weights_only=False)
        model.load_state_dict(init["model"])
        acc = init.get("public_test", {}).get("acc")
        print(f"starting from the weights in {args.init}" + (f" (PublicTest {acc:.4f})" if acc is not None else ""))
    last = args.out / "last.pt"
    if last.exists() and not args.no_resume and not args.smoke:
        state = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, best = state["epoch"] + 1, state["best"]
        print(f"resumed from {last} after epoch {state['epoch'] + 1}; best PublicTest so far {best['acc']:.4f}")

    log_path = args.out / ("smoke_log.jsonl" if args.smoke else "train_log.jsonl")
    epochs_this_run = 0
    for epoch in range(start_epoch, args.epochs):
        model.train()
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)  # same order and augmentation on resume
        order = torch.randperm(len(train), generator=gen).numpy()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", mininterval=10)
        t0, running = time.time(), 0.0
        for b in bar:
            step = epoch * steps_per_epoch + b
            lr = learning_rate(step, total_steps, warmup, args.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = np.sort(order[b * args.batch : (b + 1) * args.batch])
            x = torch.from_numpy(train.images[idx]).float().unsqueeze(1)
            x = augment(x, gen).to(device).contiguous(memory_format=torch.channels_last)
            hard = F.one_hot(torch.from_numpy(train.labels[idx]), len(CLASS_NAMES)).float()
            target = ((1 - args.soft_weight) * hard + args.soft_weight * torch.from_numpy(train.soft[idx])).to(device)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                logits = model(x)
            loss = torch.sum(-target * F.log_softmax(logits.float(), 1), 1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running = 0.98 * running + 0.02 * loss.item() if b else loss.item()
            bar.set_postfix(loss=f"{running:.3f}", lr=f"{lr:.4f}")
        metrics = evaluate(model, val, device, dtype)
        record = {
            "epoch": epoch + 1,
            "loss": running,
            "lr": lr,
            "seconds": round(time.time() - t0, 1),
            "public_test": metrics,
            "precision": "bf16" if dtype else "fp32",
            "device": device.type,
        }
        print(json.dumps(record), flush=True)
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if metrics["acc"] > best["acc"]:
            best = {"acc": metrics["acc"], "epoch": epoch + 1, "acc_flip_tta": metrics["acc_flip_tta"]}
            torch.save(
                {"model": model.state_dict(), "epoch": epoch, "public_test": metrics, "args": vars(args)},
                args.out / ("smoke_best.pt" if args.smoke else "best.pt"),
            )
        if not args.smoke:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch, "best": best}, last)
        epochs_this_run += 1
        if args.max_epochs_this_run and epochs_this_run >= args.max_epochs_this_run:
            break
    return best


if __name__ == "__main__":
    main()
