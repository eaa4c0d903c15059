"""Average the weights of several checkpoints of one training lineage (a "model soup", Wortsman et al., ICML 2022).

    python -m models.soup A.pt B.pt [C.pt ...] --out soup.pt

Meant for weights that share a basin: a run and its warm restarts from it (`models.train --init`,
`models.gpu session restart`). Weights from separate random starts, as a rule, do not average into a working
network. Every
float tensor, the batch-norm statistics too, is the plain mean; counters are taken from the first checkpoint. The
result is measured like any other (`models.experiments`, `models.checkin`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def soup(checkpoints: list[Path], out: Path) -> Path:
    import torch

    if len(checkpoints) < 2:
        raise SystemExit("models.soup: give at least two checkpoints to average")
    states = [torch.load(c, map_location="cpu", weights_only=False) for c in checkpoints]
    first = states[0]["model"]
    for path, state in zip(checkpoints[1:], states[1:], strict=True):
        if state["model"].keys() != first.keys() or any(state["model"][k].shape != v.shape for k, v in first.items()):
            raise SystemExit(f"models.soup: {path} is not the same network as {checkpoints[0]}")
    model = {
        k: (sum(s["model"][k] for s in states) / len(states) if v.is_floating_point() else v) for k, v in first.items()
    }
    args = dict(states[0].get("args") or {})
    args.pop("init", None)  # the conversion would follow it back to a run that is not this one's only parent
    soup_of = [str(c) for c in checkpoints]
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "epoch": states[0].get("epoch", -1), "args": args, "soup_of": soup_of}, out)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    for c in a.checkpoints:
        if not c.is_file():
            raise SystemExit(f"models.soup: no such checkpoint {c}")
    print(f"wrote {soup(a.checkpoints, a.out)}")


if __name__ == "__main__":
    main()
