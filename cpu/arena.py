"""Where the fallback keeps its weights: memory in 2 MiB pages (Linux transparent huge pages).

Decode reads every weight byte of a layer once per token, and a model's layers are far larger than the
caches, so each call streams its weights from memory.  In 4 KiB pages that stream crosses a page every
4 KiB: each crossing costs a TLB miss and restarts the hardware prefetcher, which tracks streams within
a page.  Measured on this project's 2-core Xeon (AVX-512 VNNI), one W4A8 768→3072 decode call with its
weights in memory: 74 µs in 4 KiB pages, 58 µs in 2 MiB pages (4096→4096: 387 → 337 µs).

:class:`WeightArena` hands out tensors carved from large anonymous mappings that are aligned to 2 MiB
and marked ``MADV_HUGEPAGE``, so the kernel backs them with huge pages where it can (transparent huge
pages ``always`` or ``madvise``).  Where it cannot (THP ``never``, no ``madvise``, not Linux) the same
calls give ordinary memory: only speed differs, never values.

A mapping lives as long as any tensor carved from it (the tensors hold the buffer), so dropping a model
frees its weights; the arena itself keeps only the mapping it is filling.  A tensor carved from a
mapping shares its storage: ``torch.save`` of such a tensor writes the whole mapping (up to 64 MiB), so
save the export (``golden.export``), or ``clone()`` first.

:func:`huge_page_bytes` tells how much of the mapping holding a tensor the kernel did back with huge
pages, for checking a machine's setting.
"""
from __future__ import annotations

import mmap
import threading
from pathlib import Path

import torch

__all__ = ["HUGE_PAGE", "WeightArena", "huge_page_bytes", "huge_page_summary", "huge_pages_mode", "weight_arena"]

HUGE_PAGE = 2 << 20
_ALIGN = 64                 # each tensor starts on a cache line, as torch's own allocator gives
_THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def huge_pages_mode() -> str:
    """The kernel's transparent-huge-page setting: ``"always"``, ``"madvise"``, ``"never"``, or
    ``"unavailable"`` (no such setting, e.g. not Linux)."""
    try:
        text = _THP_SETTING.read_text()
    except OSError:
        return "unavailable"
    chosen = [word[1:-1] for word in text.split() if word.startswith("[")]
    return chosen[0] if chosen else "unavailable"


def _mappings() -> list[tuple[int, int, int]]:
    """``(start, end, AnonHugePages bytes)`` of every mapping in ``/proc/self/smaps``; empty where the
    system does not say."""
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return []
    found, span = [], None
    for line in lines:
        head = line.split()[0] if line else ""
        if "-" in head and not head.endswith(":"):          # a mapping's first line: start-end perms ...
            span = tuple(int(part, 16) for part in head.split("-"))
        elif span is not None and head == "AnonHugePages:":
            found.append((*span, int(line.split()[1]) * 1024))
            span = None
    return found


def _holding(address: int, mappings: list[tuple[int, int, int]]) -> tuple[int, int, int] | None:
    return next((m for m in mappings if m[0] <= address < m[1]), None)


def huge_page_bytes(tensor: torch.Tensor) -> int:
    """Bytes of huge pages (``AnonHugePages`` of ``/proc/self/smaps``) in the mapping that holds
    ``tensor``'s first byte; 0 where there are none or the system does not say.  The mapping is the one
    smaps lists: Linux merges adjacent anonymous mappings with the same flags, so two arena mappings
    side by side are one there, and count together."""
    found = _holding(tensor.data_ptr(), _mappings())
    return found[2] if found else 0


def huge_page_summary(tensors: list[torch.Tensor]) -> tuple[int, int]:
    """``(bytes of the tensors, bytes of huge pages in the mappings holding them)``, each mapping counted
    once: what ``python -m cpu.run`` reports of a model's kernel weights.  Reads ``smaps`` once."""
    mappings, total, holding = _mappings(), 0, {}
    for t in tensors:
        total += t.numel() * t.element_size()
        found = _holding(t.data_ptr(), mappings)
        if found:
            holding[found[0]] = found[2]
    return total, sum(holding.values())


class WeightArena:
    """Bump allocator over huge-page mappings of ``chunk_bytes`` (rounded up to 2 MiB; a bigger request
    gets a mapping of its own size).  Thread-safe; tensors are never freed one by one, only with their
    mapping."""

    def __init__(self, chunk_bytes: int = 64 << 20):
        if chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        self.chunk_bytes = -(-chunk_bytes // HUGE_PAGE) * HUGE_PAGE
        self._lock = threading.Lock()
        self._base: torch.Tensor | None = None      # the mapping being filled, as uint8
        self._used = 0
        #: True once a mapping was marked MADV_HUGEPAGE; False where that is refused or unknown.
        self.advised = False

    def _map(self, nbytes: int) -> torch.Tensor:
        size = -(-nbytes // HUGE_PAGE) * HUGE_PAGE
        # One huge page more than needed, so that a 2 MiB-aligned start exists inside the mapping.
        region = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        advice = getattr(mmap, "MADV_HUGEPAGE", None)
        if advice is not None:
            try:
                region.madvise(advice)
                self.advised = True
            except OSError:         # a kernel built without THP: ordinary pages, same values
                pass
        whole = torch.frombuffer(region, dtype=torch.uint8)     # holds `region` while any view lives
        start = -whole.data_ptr() % HUGE_PAGE
        return whole[start:start + size]

    def empty(self, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised contiguous tensor in the arena."""
        count = 1
        for dim in shape:
            count *= int(dim)
        nbytes = count * torch.empty((), dtype=dtype).element_size()
        with self._lock:
            if self._base is None or self._used + nbytes > self._base.numel():
                self._base = self._map(max(nbytes, self.chunk_bytes))
                self._used = 0
            view = self._base[self._used:self._used + nbytes]
            self._used = -(-(self._used + nbytes) // _ALIGN) * _ALIGN
        return view.view(dtype).view(tuple(shape))

    def place(self, tensor: torch.Tensor) -> torch.Tensor:
        """A contiguous copy of ``tensor`` in the arena (same dtype, shape and values)."""
        if not isinstance(tensor, torch.Tensor) or tensor.device.type != "cpu":
            raise TypeError(f"the weight arena holds CPU tensors; got {type(tensor).__name__}"
                            f"{'' if not isinstance(tensor, torch.Tensor) else ' on ' + str(tensor.device)}")
        out = self.empty(tensor.shape, tensor.dtype)
        out.copy_(tensor)
        return out


_default: WeightArena | None = None
_default_lock = threading.Lock()


def weight_arena() -> WeightArena:
    """The process's arena, where :class:`cpu.model.CpuLinear` keeps its weights and scales."""
    global _default
    with _default_lock:
        if _default is None:
            _default = WeightArena()
        return _default
