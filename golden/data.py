"""Evaluation text: the shipped WikiText-2 test split, tokenized once and split without overlap."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["WIKITEXT2_TEST", "DataError", "TokenSplit", "load_text", "split_tokens"]

WIKITEXT2_TEST = Path(__file__).resolve().parent / "data" / "wikitext-2-raw-test.txt"


class DataError(ValueError):
    """Evaluation or calibration text that cannot give an honest number."""


@dataclass(frozen=True)
class TokenSplit:
    """Evaluation tokens from the start of the text, calibration tokens from its end."""
    eval_ids: torch.Tensor          # (n_eval,)
    calib_ids: torch.Tensor         # (n_calib,)
    eval_range: tuple[int, int]     # token offsets in the whole tokenized text, [start, stop)
    calib_range: tuple[int, int]

    def describe(self) -> str:
        return (f"eval tokens [{self.eval_range[0]}, {self.eval_range[1]}) from the start, calibration "
                f"tokens [{self.calib_range[0]}, {self.calib_range[1]}) from the end: no overlap")


def load_text(path: str | Path | None = None) -> str:
    path = Path(path) if path is not None else WIKITEXT2_TEST
    if not path.is_file():
        raise DataError(f"text file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc}") from None
    if not text.strip():
        raise DataError(f"text file {str(path)!r} is empty")
    return text


def split_tokens(ids: torch.Tensor, n_eval: int, n_calib: int) -> TokenSplit:
    """Take ``n_eval`` tokens from the start and ``n_calib`` from the end of ``ids`` (1-D)."""
    total = ids.numel()
    if n_eval < 2:
        raise DataError(f"need at least 2 evaluation tokens, asked for {n_eval}")
    if n_eval + n_calib > total:
        raise DataError(f"the text has {total} tokens, too short for {n_eval} evaluation + "
                        f"{n_calib} calibration tokens without overlap")
    eval_range, calib_range = (0, n_eval), (total - n_calib, total)
    return TokenSplit(ids[:n_eval], ids[total - n_calib:], eval_range, calib_range)
