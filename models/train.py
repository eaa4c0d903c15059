"""Train the VGG16 emotion classifier on FER2013 (PyTorch; bf16 on CPUs that have it, or CUDA).

    python -m models.train                 # full run, resumes from its last.pt if present
    python -m models.train --smoke         # about a minute on a subset, for the tests
    python -m models.train --init BEST.pt --epochs 16 --lr 0.005 \
        --out ~/.cache/moodbox/train/finetune  # a second, shorter cosine cycle from a trained model

Checkpoints go outside the work tree (default $MOODBOX_TRAIN_DIR, else ~/.cache/moodbox/train), so a fresh
checkout or `git clean` never loses a run. `last.pt` is written atomically every few minutes, mid-epoch
included, with the data order and augmentation state, so a run killed at any moment resumes where it stopped
when the same command is started again.

Beside the weights it keeps their exponential moving average (--ema), evaluated after every epoch and saved as
`ema_best.pt` when its PublicTest is the best yet: at a high learning rate the raw weights jump between epochs (on
real photos by several points), and the average is the steadier model to check in.

With --realval it also scores both on the real photos of ../shared/data/realval after every epoch (float, the
device's detector and crop, the shipped logit adjustment), so a long run's progress on real faces shows in its log
without a check-in. Those numbers are for watching only: the epoch is still picked by PublicTest alone.

Training split for training, PublicTest to pick the epoch; PrivateTest is never read here.
Targets blend the FER2013 label with the FER+ crowd-vote distribution (--soft-weight).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.augment import augment
from models.fer import CLASS_NAMES, Split, load_split
from models.vgg16_torch import VGG16

DEFAULT_OUT = Path(os.environ.get("MOODBOX_TRAIN_DIR") or Path.home() / ".cache" / "moodbox" / "train")


def save_atomically(obj: dict, path: Path) -> None:
    """torch.save to a temporary file, then rename: a kill mid-write leaves the previous file intact."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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
    p.add_argument(
        "--photometric",
        action="store_true",
        help="also augment with camera-like degradations: tilt, gamma, dim light, blur, low resolution, noise",
    )
    p.add_argument(
        "--minutes",
        type=float,
        default=0.0,
        help="a time budget: the cosine schedule runs over this much time instead of --epochs, which becomes a cap",
    )
    p.add_argument(
        "--resident",
        action="store_true",
        help="hold the data set in tensors and draw and augment batches there, as on a GPU (always on with CUDA; "
        "on a CPU, for the tests to run that path); such a run saves last.pt only between epochs",
    )
    p.add_argument("--train-faces", type=int, default=0, help="train on this many Training faces only (quick checks)")
    p.add_argument(
        "--stop-after-batches", type=int, default=0, help=argparse.SUPPRESS
    )  # tests: save mid-epoch and stop, as a kill right after a save would
    p.add_argument("--save-minutes", type=float, default=5.0, help="write last.pt at least this often, mid-epoch too")
    p.add_argument(
        "--ema",
        type=float,
        default=0.999,
        help="decay of the weights' moving average, per batch (0.999: about 1000 batches); 0 = none",
    )
    p.add_argument(
        "--realval",
        action="store_true",
        help="after every epoch also score the weights and their average on realval (to watch, never to pick)",
    )
    p.add_argument(
        "--realval-crops",
        type=Path,
        help="--realval from the device's crops saved in this file (models.gpu pack) instead of the photos",
    )
    return p.parse_args(argv)


# the post-hoc logit adjustment that suits a network trained with the plain loss (models.checkin's default); the
# shipped model has its head retrained with the logit-adjusted loss instead, which needs none
REALVAL_TAU = 0.5


def realval_watch(enabled: bool, crops: Path | None = None):
    """A function that scores a model on realval's crops, or None. The device's detector finds the faces once (the
    crop does not depend on the classifier's weights); each call then costs one float pass over ~250 crops. With
    `crops` (written by `models.gpu pack`) the faces come from that file instead: the GPU machine has neither the
    photos nor the detector's runtime."""
    if not enabled and crops is None:
        return None
    from models.fer import logit_adjustment
    from models.realval import net_scores, photos_from_crops, realval_dir, run_photos

    t0 = time.time()
    if crops is not None:
        photos, folder = photos_from_crops(crops), crops
    else:
        folder = realval_dir()
        if not (folder / "labels.csv").is_file():
            print(f"--realval: no {folder / 'labels.csv'}; training goes on without it (set MOODBOX_REALVAL to it)")
            return None
        photos = run_photos(Path(__file__).resolve().parent / "emotion_vgg16_int8.tflite", folder)
    shift = logit_adjustment(REALVAL_TAU)
    found = sum(ph.crop is not None for ph in photos)
    print(f"--realval: {found} faces in {len(photos)} photos of {folder} ({time.time() - t0:.0f} s)")

    def watch(model: VGG16) -> dict:
        r = net_scores(photos, model, logit_shift=shift)
        return {k: r[k] for k in ("accuracy_all", "macro_f1", "recall")} | {"logit_adjustment_tau": REALVAL_TAU}

    return watch


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


def blend(labels: torch.Tensor, soft: torch.Tensor, soft_weight: float) -> torch.Tensor:
    """The training targets: the FER2013 label, blended with the FER+ vote distribution."""
    return (1 - soft_weight) * F.one_hot(labels.long(), len(CLASS_NAMES)).float() + soft_weight * soft


class WeightAverage:
    """An exponential moving average of a model's weights and batch-norm statistics, updated after each step.

    The decay ramps up from about 0.2 over the first updates ((1 + n) / (10 + n)), so a fresh run's average is not
    held at its random start; a run resumed from a checkpoint without one starts it from the weights it has.
    """

    def __init__(self, model: VGG16, decay: float) -> None:
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        # State-dict tensors share storage with the modules': the average is updated in place, from the live weights.
        pairs = zip(self.model.state_dict().values(), model.state_dict().values(), strict=True)
        self._average, self._live = map(list, zip(*((a, b) for a, b in pairs if a.is_floating_point()), strict=True))

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        weight = 1 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._average, self._live, weight)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "decay": self.decay, "updates": self.updates}

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]


@torch.no_grad()
def evaluate(model: VGG16, split: Split, device: torch.device, dtype: torch.dtype | None) -> dict[str, float]:
    """Single-crop accuracy; `models.evaluate` measures mirror averaging on the checkpoint that is checked in."""
    model.eval()
    plain = []
    for i in range(0, len(split), 256):
        x = torch.from_numpy(split.images[i : i + 256]).float().unsqueeze(1).to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            plain.append(F.softmax(model(x).float(), 1).cpu())
    y = torch.from_numpy(split.labels)
    return {"acc": float((torch.cat(plain).argmax(1) == y).float().mean())}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every training batch has the same shape: pick the fastest kernels once
    use_bf16 = args.precision == "bf16" or (args.precision == "auto" and (device.type == "cuda" or cpu_has_bf16()))
    dtype = torch.bfloat16 if use_bf16 else None

    train, val = load_split("Training"), load_split("PublicTest")
    if args.train_faces:
        train, val = train.subset(args.train_faces, args.seed), val.subset(min(len(val), args.train_faces), args.seed)
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

    # On a GPU (or with --resident) the whole data set lives on the device (28,709 faces are 66 MB), and
    # augmentation runs there too.
    resident = device.type == "cuda" or args.resident
    images = torch.from_numpy(train.images).to(device) if resident else None
    labels = torch.from_numpy(train.labels).to(device) if resident else None
    soft = torch.from_numpy(train.soft).to(device) if resident else None
    # ... and so do the targets: no step reads anything back from the GPU (each read would stall the queue of
    # kernels, and batches of 48x48 faces are small work: launching them is much of the time).
    targets = blend(labels, soft, args.soft_weight) if resident else None
    steps_per_epoch = len(train) // args.batch
    total_steps = steps_per_epoch * args.epochs
    warmup = int(args.warmup_epochs * steps_per_epoch)
    start_epoch, start_batch, best, resume_state = 0, 0, {"acc": -1.0}, None
    best_ema = {"acc": -1.0}
    if args.init:
        args.init = args.init.resolve()  # the conversion follows it back to the first stage's log
        if not args.init.is_file():
            raise SystemExit(f"--init {args.init}: no such checkpoint; give the best.pt of a finished training run")
        init = torch.load(args.init, map_location=device, weights_only=False)
        model.load_state_dict(init["model"])
        acc = init.get("public_test", {}).get("acc")
        print(f"starting from the weights in {args.init}" + (f" (PublicTest {acc:.4f})" if acc is not None else ""))
    last, state = args.out / "last.pt", None
    if last.exists() and not args.no_resume and not args.smoke:
        state = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, best = state["epoch"] + 1, state["best"]
        best_ema = state.get("best_ema", best_ema)
        if state.get("torch_rng") is not None:
            torch.set_rng_state(state["torch_rng"])
        if state.get("batch"):  # saved mid-epoch: continue that epoch at the next batch
            start_epoch, start_batch, resume_state = state["epoch"], state["batch"], state
            print(f"resumed from {last} in epoch {start_epoch + 1} at batch {start_batch}/{steps_per_epoch}")
        else:
            print(f"resumed from {last} after epoch {state['epoch'] + 1}; best PublicTest so far {best['acc']:.4f}")

    ema = WeightAverage(model, args.ema) if args.ema > 0 else None
    if ema is not None and state is not None:
        if state.get("ema"):
            ema.load(state["ema"])
        else:
            print("the checkpoint has no weight average: the average starts from its weights")

    def saved(extra: dict) -> dict:
        """What last.pt holds: the weights, the optimiser, the average and where the run is."""
        kept = {"model": model.state_dict(), "optimizer": opt.state_dict(), "best": best, "best_ema": best_ema}
        kept["torch_rng"] = torch.get_rng_state()  # dropout's masks: a resumed run draws the ones it would have
        return kept | ({"ema": ema.state()} if ema is not None else {}) | extra

    watch = realval_watch(args.realval, args.realval_crops)
    log_path = args.out / ("smoke_log.jsonl" if args.smoke else "train_log.jsonl")
    run_start, out_of_time, batches_this_run = time.time(), False, 0
    epochs_this_run = 0
    for epoch in range(start_epoch, args.epochs):
        model.train()
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)  # same order and augmentation on resume
        order = torch.randperm(len(train), generator=gen).numpy()
        order_dev = torch.from_numpy(order).to(device) if resident else None
        aug_gen = torch.Generator(device).manual_seed(args.seed * 1000 + epoch) if resident else gen
        first, t0, running, spent = 0, time.time(), 0.0, 0.0
        if resume_state is not None:
            gen.set_state(resume_state["generator"])
            first, running, spent = start_batch, resume_state["running_loss"], resume_state["seconds"]
            resume_state = None
        bar = tqdm(range(first, steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", mininterval=10)
        saved_at = time.time()
        for b in bar:
            step = epoch * steps_per_epoch + b
            if args.minutes:  # schedule by elapsed time, so the run ends inside a borrowed machine's time
                spent_frac = (time.time() - run_start) / (args.minutes * 60)
                if spent_frac >= 1:
                    out_of_time = True
                    break
                done = warmup + spent_frac * (total_steps - warmup)
                lr = learning_rate(step if step < warmup else int(done), total_steps, warmup, args.lr)
            else:
                lr = learning_rate(step, total_steps, warmup, args.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            if resident:
                gi = torch.sort(order_dev[b * args.batch : (b + 1) * args.batch]).values
                x, target = images[gi].float().unsqueeze(1), targets[gi]
            else:
                idx = np.sort(order[b * args.batch : (b + 1) * args.batch])
                x = torch.from_numpy(train.images[idx]).float().unsqueeze(1)
                target = blend(torch.from_numpy(train.labels[idx]), torch.from_numpy(train.soft[idx]), args.soft_weight)
            x = augment(x, aug_gen, photometric=args.photometric, host_gen=gen)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                logits = model(x)
            loss = torch.sum(-target * F.log_softmax(logits.float(), 1), 1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update()
            running = 0.98 * running + 0.02 * loss.detach() if b else loss.detach()  # stays on the GPU there
            if not resident or b % 50 == 0:
                bar.set_postfix(loss=f"{float(running):.3f}", lr=f"{lr:.4f}")
            batches_this_run += 1
            stop_now = bool(args.stop_after_batches) and batches_this_run >= args.stop_after_batches
            due = time.time() - saved_at > args.save_minutes * 60 or stop_now
            if due and not (args.smoke or resident) and b + 1 < steps_per_epoch:
                mid = {"epoch": epoch, "batch": b + 1, "generator": gen.get_state(), "running_loss": float(running)}
                save_atomically(saved(mid | {"seconds": spent + time.time() - t0}), last)
                saved_at = time.time()
                if stop_now:
                    print(f"stopped in epoch {epoch + 1} after batch {b + 1}; saved {last}")
                    return best
        # Single crop only: a mirrored pass cost about 3% of a CPU epoch (41 s of 1446 here) and nothing picked by it.
        metrics = evaluate(model, val, device, dtype)
        ema_metrics = evaluate(ema.model, val, device, dtype) if ema is not None else None
        watched = {}
        if watch is not None:
            watched["realval"] = watch(model)
            if ema is not None:
                watched["realval_ema"] = watch(ema.model)
        record = {
            "epoch": epoch + 1,
            "loss": float(running),
            "lr": lr,
            "seconds": round(spent + time.time() - t0, 1),
            "public_test": metrics,
            **({"public_test_ema": ema_metrics} if ema_metrics else {}),
            **watched,
            "precision": "bf16" if dtype else "fp32",
            "device": device.type,
        }
        print(json.dumps(record), flush=True)
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if metrics["acc"] > best["acc"]:
            best = {"acc": metrics["acc"], "epoch": epoch + 1}
            save_atomically(
                {"model": model.state_dict(), "epoch": epoch, "public_test": metrics, "args": vars(args)},
                args.out / ("smoke_best.pt" if args.smoke else "best.pt"),
            )
        if ema_metrics and ema_metrics["acc"] > best_ema["acc"]:
            best_ema = {"acc": ema_metrics["acc"], "epoch": epoch + 1}
            save_atomically(
                {"model": ema.model.state_dict(), "epoch": epoch, "public_test": ema_metrics, "args": vars(args)}
                | {"ema": {"decay": ema.decay, "updates": ema.updates}},
                args.out / ("smoke_ema_best.pt" if args.smoke else "ema_best.pt"),
            )
        if not (args.smoke or args.minutes):  # a time-budgeted run is not resumed (its schedule is the clock)
            save_atomically(saved({"epoch": epoch}), last)
        epochs_this_run += 1
        if out_of_time or (args.max_epochs_this_run and epochs_this_run >= args.max_epochs_this_run):
            break
    return best


if __name__ == "__main__":
    main()
