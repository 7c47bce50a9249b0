"""Worker entry: ``python -m core.training --run-dir DIR [--resume] [--kimg K] [--device cpu|cuda]``.

Launched by :mod:`core.training.jobs` (directly for one process, through ``torchrun`` for several). A new
run reads ``DIR/config.json``; ``--resume`` continues from the latest checkpoint. Exit status: 0 when
finished or stopped by SIGTERM/SIGINT (after saving), 3 when the run diverged (NaN/inf), 2 for user errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.errors import StyleScopeError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.training", description=__doc__)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--kimg", type=float, default=None)
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)

    from core.training.config import TrainConfig
    from core.training.loop import TrainingDivergedError, train

    run_dir = Path(args.run_dir)
    try:
        config = None
        if not args.resume:
            config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        status = train(config, run_dir, resume=args.resume, kimg=args.kimg, device=args.device)
    except TrainingDivergedError as e:
        print(f"stylescope train: {e}", file=sys.stderr)
        return 3
    except (StyleScopeError, OSError) as e:
        print(f"stylescope train: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"state": status["state"], "kimg": status["kimg"], "run_dir": str(run_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
