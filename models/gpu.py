"""The long training run on a borrowed GPU machine, in three steps.

    python -m models.gpu pack                    # here: FER2013 Training + PublicTest into .gpu/ (gitignored)
    # on the GPU machine (the device tool, with carry [".gpu"]), one command of about 8 minutes:
    python -m models.gpu train --minutes 7 --out "$OUT"
    python -m models.gpu unpack FILES_DIR --to ~/.cache/moodbox/train/gpu/best.pt   # here, then convert

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
import subprocess
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
    packed = sum(f.stat().st_size for f in out.iterdir())
    tree = tree_bytes()
    info = {
        "training_faces": int((usage == 0).sum()),
        "publictest_faces": int((usage == 1).sum()),
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
    if log.exists():
        (to.parent / "train_log.jsonl").write_bytes(log.read_bytes())
    return to


def better_of(*checkpoints: Path) -> Path:
    """Of the run's best weights and best weight average, the one with the higher PublicTest accuracy."""
    import torch

    def acc(path: Path) -> float:
        return torch.load(path, map_location="cpu", weights_only=False)["public_test"]["acc"]

    return max((c for c in checkpoints if c.is_file()), key=acc)


def train(pack_dir: Path, out: Path, minutes: float, extra: list[str]) -> dict:
    from models import train as trainer

    work = Path(tempfile.mkdtemp(prefix="moodbox-gpu-"))
    unpack_data(pack_dir, work / "data")
    os.environ["MOODBOX_DATA"] = str(work / "data")
    runs = work / "run"
    argv = ["--minutes", str(minutes), "--no-resume", "--out", str(runs), *extra]
    if "--epochs" not in extra:
        argv += ["--epochs", "300"]
    best = trainer.main(argv)
    files = export(better_of(runs / "best.pt", runs / "ema_best.pt"), out)
    (out / "train_log.jsonl").write_bytes((runs / "train_log.jsonl").read_bytes())
    print(json.dumps({"best": best, "files": [f.name for f in files]}))
    return best


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
    su = sub.add_parser("unpack", help="join a GPU run's weight files into a checkpoint (here)")
    su.add_argument("files", type=Path)
    su.add_argument("--to", type=Path, required=True)
    args, extra = p.parse_known_args(argv)
    if args.step == "pack":
        print(json.dumps(pack(args.out, args.faces, args.quality), indent=2))
    elif args.step == "train":
        train(args.pack, args.out, args.minutes, extra)
    else:
        print(f"wrote {unpack(args.files, args.to)}")


if __name__ == "__main__":
    main()
