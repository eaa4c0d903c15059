"""The long training run on a borrowed GPU machine, in three steps.

    python -m models.gpu pack                    # here: FER2013 Training + PublicTest into .gpu/ (gitignored)
    # on the GPU machine (the device tool, with carry [".gpu"]), one command of about 8 minutes:
    python -m models.gpu train --minutes 7 --photometric --out "$OUT"
    python -m models.gpu unpack FILES_DIR --to ~/.cache/moodbox/train/gpu/best.pt   # here, then convert

or, to spend a whole lease (15 device-minutes) as on 2026-12-04, two commands on the same warm machine:

    python -m models.gpu session scratch --minutes 7     # runs a and b side by side from random weights
    python -m models.gpu session restart --minutes 4.6   # runs c and d: warm restarts from the better of those

A session runs two side by side, since batches of 48x48 px faces are small work for an H200 (one run alone was
never timed). On the first lease, at batches of 64, each made about 70 epochs in 7 minutes (median 5.9 s an
epoch), the GPU 98% busy. Since then no training step reads anything back from the GPU, and on the second lease
(2026-12-04) a batch of 128 made 137 epochs in 7 minutes (median 2.9 s) and a batch of 256 made 234 (1.7 s). The
256 run scored higher on FER2013 (PrivateTest 72.1% against 71.6%) but far lower on the real photos of realval
(67.1% against 77.4%), and so did its two restarts (73.3% and 67.5%). So both scratch runs now use batches of 128,
with different seeds (see SESSION), and `pack` also packs the device's crops of the realval photos, so that every
GPU run's log shows realval after every epoch (watched only: PublicTest still picks the epoch and the restart).
The restart stage finds the first stage's checkpoints in WORK on the machine, which lasts only while it stays
warm (30 s after a command).

Why it is shaped like this: the GPU machine receives only the work tree plus packed files, 64 MiB in all, with
no `../shared` (fer2013.npz alone is 79 MB), has PyTorch but no TensorFlow, and gives back at most 8 files of at
most 16 MiB. So `pack` stores the 28,709 Training faces as one JPEG (quality 95) mosaic and PublicTest as a
lossless PNG mosaic, with the labels and FER+ votes; `train` rebuilds a fer2013.npz from them and runs
`models.train` with a time budget (the cosine schedule is laid over the minutes given, so the run always ends
in time, with as many epochs as fit); it writes the best weights (the epoch's or their moving average's,
whichever scores higher on PublicTest) in fp16, split into files of at most 16 MiB,
and the training log. `unpack` joins them into a checkpoint that `models.convert` reads on the CPU.
PrivateTest is never packed: it stays for the evaluation here.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACK = ROOT / ".gpu"
SEND_LIMIT = 64 * 2**20  # what the GPU machine receives: the tree plus the pack
FILE_LIMIT = 16 * 2**20  # each file that comes back
FILES_BACK = 8
TILE = 48
WORK = Path(tempfile.gettempdir()) / "moodbox-gpu"  # a session's runs, on the GPU machine, while it stays warm
# A session's two stages, each two runs side by side (what a run adds to `models.train`'s options). Scratch runs
# batches of 128 with the peak learning rate scaled to the batch (0.02 per 64 faces, the linear rule of Goyal et
# al. 2017, with a longer warm-up): on the second lease that made 137 epochs in 7 minutes, and batches of 256,
# though faster, lost ten points of realval. The two differ only in their seed. The restart stage also gets
# --init, the best checkpoint of every run in WORK so far, trains with that run's batch and scales its peak rate
# the same way (RESTART_LR is per 64 faces).
SESSION = {
    "scratch": {
        "a": ["--photometric", "--batch", "128", "--lr", "0.04", "--warmup-epochs", "2"],
        "b": ["--photometric", "--batch", "128", "--lr", "0.04", "--warmup-epochs", "2", "--seed", "20261205"],
    },
    "restart": {
        "c": ["--photometric", "--warmup-epochs", "0.5"],
        "d": ["--photometric", "--warmup-epochs", "0.5", "--seed", "11"],
    },
}
RESTART_LR = {"c": 0.005, "d": 0.01}


def _mosaic(images: np.ndarray) -> np.ndarray:
    n = len(images)
    cols = 128
    rows = -(-n // cols)
    canvas = np.zeros((rows * TILE, cols * TILE), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = img
    return canvas


def _unmosaic(canvas: np.ndarray, n: int) -> np.ndarray:
    cols = canvas.shape[1] // TILE
    rows_cols = (divmod(i, cols) for i in range(n))
    return np.stack([canvas[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] for r, c in rows_cols])


def tree_bytes() -> int:
    """Bytes of what the device tool sends besides the pack: tracked and untracked-but-not-ignored files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return sum((ROOT / p).stat().st_size for p in out.decode().split("\0") if p and (ROOT / p).is_file())


def pack(out: Path = PACK, faces: int = 0, quality: int = 95) -> dict:
    """Write the pack; `faces` > 0 packs only that many Training faces (for the tests)."""
    from models.fer import data_dir

    d = np.load(data_dir() / "fer2013.npz")
    v = np.load(data_dir() / "ferplus_votes.npz")
    keep = np.nonzero(d["usage"] != 2)[0]  # Training and PublicTest; PrivateTest never leaves this machine
    if faces:
        train_rows = keep[d["usage"][keep] == 0][:faces]
        public_rows = keep[d["usage"][keep] == 1][: max(64, faces // 4)]
        keep = np.concatenate([train_rows, public_rows])
    usage = d["usage"][keep]
    out.mkdir(parents=True, exist_ok=True)
    for name in out.iterdir():
        name.unlink()
    t0 = time.time()
    train_jpg = cv2.imencode(".jpg", _mosaic(d["images"][keep][usage == 0]), [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    public_png = cv2.imencode(".png", _mosaic(d["images"][keep][usage == 1]), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1]
    (out / "training.jpg").write_bytes(train_jpg.tobytes())
    (out / "publictest.png").write_bytes(public_png.tobytes())
    np.savez_compressed(
        out / "labels.npz",
        labels=d["labels"][keep],
        usage=usage,
        votes=v["votes"][keep],
        columns=v["columns"],
        class_names=d["class_names"],
    )
    info_realval = pack_realval(out / "realval.npz")
    packed = sum(f.stat().st_size for f in out.iterdir())
    tree = tree_bytes()
    info = {
        "training_faces": int((usage == 0).sum()),
        "publictest_faces": int((usage == 1).sum()),
        "realval_faces": info_realval,
        "pack_bytes": packed,
        "tree_bytes": tree,
        "total_bytes": packed + tree,
        "limit_bytes": SEND_LIMIT,
        "seconds": round(time.time() - t0, 1),
    }
    (out / "pack.json").write_text(json.dumps(info, indent=2) + "\n")
    if packed + tree > SEND_LIMIT:
        raise SystemExit(
            f"the tree ({tree / 2**20:.1f} MiB) and the pack ({packed / 2**20:.1f} MiB) exceed the GPU machine's "
            f"{SEND_LIMIT / 2**20:.0f} MiB: lower --quality or remove large untracked files"
        )
    return info


def pack_realval(path: Path) -> int:
    """The device's crops of the realval photos (detector and crop run here), so that a GPU run can watch realval
    after every epoch like a CPU run with --realval. Watched only: the epoch is still picked by PublicTest. Returns
    how many faces were packed; 0, with a line saying why, when the photos are not here."""
    from models.realval import realval_dir, run_photos, save_crops

    folder = realval_dir()
    if not (folder / "labels.csv").is_file():
        print(f"pack: no {folder / 'labels.csv'}, so GPU runs will not watch realval (set MOODBOX_REALVAL)")
        return 0
    return save_crops(run_photos(HERE / "emotion_vgg16_int8.tflite", folder), path)


def unpack_data(pack_dir: Path, data_dir: Path) -> None:
    """Rebuild fer2013.npz and ferplus_votes.npz (Training and PublicTest only) from a pack."""
    meta = np.load(pack_dir / "labels.npz")
    usage = meta["usage"]
    train = cv2.imdecode(np.fromfile(pack_dir / "training.jpg", np.uint8), cv2.IMREAD_GRAYSCALE)
    public = cv2.imdecode(np.fromfile(pack_dir / "publictest.png", np.uint8), cv2.IMREAD_GRAYSCALE)
    images = np.zeros((len(usage), TILE, TILE), np.uint8)
    images[usage == 0] = _unmosaic(train, int((usage == 0).sum()))
    images[usage == 1] = _unmosaic(public, int((usage == 1).sum()))
    data_dir.mkdir(parents=True, exist_ok=True)
    np.savez(data_dir / "fer2013.npz", images=images, labels=meta["labels"], usage=usage)
    np.savez(data_dir / "ferplus_votes.npz", votes=meta["votes"], columns=meta["columns"])


def export(checkpoint: Path, out: Path) -> list[Path]:
    """The checkpoint's weights in fp16, in files of at most 16 MiB, plus a manifest."""
    import torch

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["model"].items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    blob = buf.getvalue()
    chunk = FILE_LIMIT - 4096
    parts = [blob[i : i + chunk] for i in range(0, len(blob), chunk)]
    if len(parts) > FILES_BACK - 2:
        raise SystemExit(f"{len(parts)} weight files would not fit in the {FILES_BACK} files a GPU run returns")
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i, part in enumerate(parts):
        files.append(out / f"weights.part{i}")
        files[-1].write_bytes(part)
    args = {k: str(v) if isinstance(v, Path) else v for k, v in (ckpt.get("args") or {}).items()}
    manifest = {"parts": len(parts), "epoch": ckpt["epoch"], "public_test": ckpt.get("public_test"), "args": args}
    if ckpt.get("ema"):
        manifest["ema"] = ckpt["ema"]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    files.append(out / "manifest.json")
    return files


def unpack(files_dir: Path, to: Path) -> Path:
    """Join the weight files from a GPU run into a checkpoint for models.convert and models.evaluate."""
    import torch

    manifest = json.loads((files_dir / "manifest.json").read_text())
    blob = b"".join((files_dir / f"weights.part{i}").read_bytes() for i in range(manifest["parts"]))
    state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    to.parent.mkdir(parents=True, exist_ok=True)
    args = dict(manifest.get("args") or {})
    args.pop("init", None)
    ckpt = {"model": state, "epoch": manifest["epoch"], "public_test": manifest["public_test"], "args": args}
    torch.save(ckpt | ({"ema": manifest["ema"]} if manifest.get("ema") else {}), to)
    log = files_dir / "train_log.jsonl"
    if log.exists():  # named after the checkpoint, so that runs unpacked into one folder keep their own logs
        to.with_name(to.stem + ".train_log.jsonl").write_bytes(log.read_bytes())
    return to


def _checkpoint_args(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False).get("args") or {}


def better_of(*checkpoints: Path) -> Path:
    """Of the run's best weights and best weight average, the one with the higher PublicTest accuracy."""
    import torch

    def acc(path: Path) -> float:
        return torch.load(path, map_location="cpu", weights_only=False)["public_test"]["acc"]

    return max((c for c in checkpoints if c.is_file()), key=acc)


def train(pack_dir: Path, out: Path, minutes: float, extra: list[str], work: Path | None = None) -> dict:
    from models import train as trainer

    work = work or Path(tempfile.mkdtemp(prefix="moodbox-gpu-"))
    unpack_data(pack_dir, work / "data")
    os.environ["MOODBOX_DATA"] = str(work / "data")
    runs = work / "run"
    argv = ["--minutes", str(minutes), "--no-resume", "--out", str(runs), *extra]
    if (pack_dir / "realval.npz").is_file() and "--realval-crops" not in extra:
        argv += ["--realval-crops", str(pack_dir / "realval.npz")]
    if "--epochs" not in extra:  # only a cap: the schedule runs over the minutes, and no run comes near this
        argv += ["--epochs", "1000"]
    best = trainer.main(argv)
    files = export(better_of(runs / "best.pt", runs / "ema_best.pt"), out)
    (out / "train_log.jsonl").write_bytes((runs / "train_log.jsonl").read_bytes())
    print(json.dumps({"best": best, "files": [f.name for f in files]}))
    return best


def session(stage: str, pack_dir: Path, out: Path, minutes: float, extra: list[str], work: Path = WORK) -> dict:
    """Run a stage's two trainings side by side, each into out/NAME, and print what each reached."""
    runs = SESSION[stage]
    init: list[str] = []
    batch = 64
    if stage == "restart":
        found = sorted(work.glob("*/run/*best.pt"))
        if not found:
            raise SystemExit(
                f"session restart: no checkpoints in {work}; run `session scratch` first, on the same machine "
                "while it is still warm (it goes back 30 s after a command, and its files with it)"
            )
        init = ["--init", str(better_of(*found))]
        batch = int(_checkpoint_args(Path(init[1])).get("batch") or 64)
        print(f"restarting from {init[1]} (batch {batch})", flush=True)
    for name in runs:
        if (work / name).exists():
            raise SystemExit(f"session {stage}: {work / name} exists; this stage has already run on this machine")
    procs, logs = {}, []
    for name, options in runs.items():
        (work / name).mkdir(parents=True)
        cmd = [sys.executable, "-m", "models.gpu", "train", "--pack", str(pack_dir), "--out", str(out / name)]
        cmd += ["--minutes", str(minutes), "--work", str(work / name), *options, *init]
        if name in RESTART_LR:
            cmd += ["--batch", str(batch), "--lr", f"{RESTART_LR[name] * batch / 64:g}"]
        cmd += extra
        logs.append((work / name / "stdout.log").open("w"))
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, stdout=logs[-1], stderr=subprocess.STDOUT)
    summary = {}
    for name, proc in procs.items():
        rc = proc.wait()
        epochs = []
        log_path = work / name / "run" / "train_log.jsonl"
        if log_path.is_file():
            epochs = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
        summary[name] = {"returncode": rc, "epochs": len(epochs)}
        if epochs:
            summary[name] |= {
                "median_epoch_s": statistics.median(e["seconds"] for e in epochs),
                "best_public_test": max(e["public_test"]["acc"] for e in epochs),
                "best_public_test_ema": max(e.get("public_test_ema", {}).get("acc", 0.0) for e in epochs),
            }
            # realval of the weights the run exports (the epoch's or the average's, whichever PublicTest picks):
            # watched, never used to pick
            scored = [
                (e[test]["acc"], e.get(watched))
                for e in epochs
                for test, watched in (("public_test", "realval"), ("public_test_ema", "realval_ema"))
                if test in e
            ]
            at_best = max(scored, key=lambda t: t[0])[1]
            if at_best:
                summary[name]["realval_at_best"] = at_best["accuracy_all"]
        if rc:
            tail = (work / name / "stdout.log").read_text()[-2000:].replace("\r", "\n")
            print(f"== run {name} failed (exit {rc}):\n{tail}", flush=True)
    for log in logs:
        log.close()
    print(json.dumps({"stage": stage, "minutes": minutes, "runs": summary}, indent=2), flush=True)
    if all(r["returncode"] for r in summary.values()):
        raise SystemExit(f"session {stage}: every run failed")
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    sp = sub.add_parser("pack", help="pack the training data for the GPU machine (here)")
    sp.add_argument("--out", type=Path, default=PACK)
    sp.add_argument("--faces", type=int, default=0, help="only this many Training faces (tests)")
    sp.add_argument("--quality", type=int, default=95)
    st = sub.add_parser("train", help="train from a pack (on the GPU machine); other options go to models.train")
    st.add_argument("--pack", type=Path, default=PACK)
    st.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-out")))
    st.add_argument("--minutes", type=float, default=7.0, help="the training's time budget")
    st.add_argument("--work", type=Path, help="where the data and the run go (default: a new temporary folder)")
    ss = sub.add_parser("session", help="two trainings side by side (on the GPU machine); see above")
    ss.add_argument("stage", choices=sorted(SESSION))
    ss.add_argument("--pack", type=Path, default=PACK)
    ss.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-out")))
    ss.add_argument("--minutes", type=float, default=7.0, help="each training's time budget")
    ss.add_argument("--work", type=Path, default=WORK, help="where the runs go, for the restart stage to find")
    su = sub.add_parser("unpack", help="join a GPU run's weight files into a checkpoint (here)")
    su.add_argument("files", type=Path)
    su.add_argument("--to", type=Path, required=True)
    args, extra = p.parse_known_args(argv)
    if args.step == "pack":
        print(json.dumps(pack(args.out, args.faces, args.quality), indent=2))
    elif args.step == "train":
        train(args.pack, args.out, args.minutes, extra, args.work)
    elif args.step == "session":
        session(args.stage, args.pack, args.out, args.minutes, extra, args.work)
    else:
        print(f"wrote {unpack(args.files, args.to)}")


if __name__ == "__main__":
    main()
