"""The CPU fallback's W4 kernels: every path this CPU runs equals golden.group_accumulators exactly."""
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import cpu
import golden
from golden.linear import scaled_linear

PATHS = cpu.available_paths()
SRC = Path(cpu.__file__).parent / "csrc"

SHAPES = [  # (M, K, N, group): decode and prefill rows, ragged N (the 4-row SIMD block), every group form
    (1, 128, 8, 64), (1, 4096, 13, 128), (3, 256, 5, 64), (7, 192, 9, 32), (2, 64, 4, 16),
    (4, 768, 17, 768), (1, 2, 1, 2), (16, 512, 3, 128), (6, 256, 7, 64), (8, 1024, 6, 256), (5, 1536, 5, 192),
    (9, 512, 4, 512), (0, 128, 4, 64),
]


def _operands(m, k, n, a_bits, seed):
    rng = np.random.default_rng(seed)
    lo, hi = golden.int_range(a_bits)
    return rng.integers(lo, hi + 1, (m, k)).astype(np.int8), rng.integers(-8, 8, (n, k))


def test_this_machine_has_a_simd_path():
    """CI's machines are x86-64 with AVX2: the fast path must be built in, not silently missing."""
    assert "scalar" in PATHS and len(PATHS) >= 2, PATHS


TILED_SHAPES = [  # tiled int4: N and K multiples of 8; whole and partial 4-row-block chunks and token blocks
    (1, 128, 8, 64), (1, 4096, 16, 128), (5, 256, 8, 64), (4, 768, 24, 768), (16, 512, 8, 128), (6, 1024, 64, 64),
    (8, 1024, 16, 256), (5, 1536, 8, 192), (9, 512, 48, 512), (3, 96, 8, 32), (2, 64, 8, 16), (0, 128, 8, 64),
    (13, 256, 40, 64),  # VNNI: 8-token pairs of row blocks, an odd last block of a chunk, then 4 and 1 tokens
    (1, 512, 24, 64), (1, 768, 40, 128),  # VNNI decode: pairs of row blocks, then an odd one on its own
]

W8_SHAPES = [  # int8 weights: 32-byte blocks on x86, 16 on Arm; other groups take the scalar loop
    (1, 128, 8, 64), (1, 4096, 13, 128), (3, 256, 5, 32), (7, 192, 9, 96), (2, 64, 4, 16), (4, 768, 17, 768),
    (16, 512, 3, 128), (6, 256, 7, 64), (5, 1536, 5, 192), (9, 576, 6, 576), (0, 128, 4, 64), (1, 2, 1, 2),
]
TILED8_SHAPES = [  # tiled int8: N a multiple of 8, K of 4
    (1, 128, 8, 64), (1, 4096, 16, 128), (3, 256, 8, 32), (7, 192, 8, 96), (2, 64, 8, 16), (4, 768, 24, 768),
    (16, 512, 8, 128), (6, 1024, 64, 64), (5, 1536, 8, 192), (9, 576, 16, 576), (0, 128, 8, 64), (1, 4, 8, 4),
    (13, 256, 40, 32), (1, 512, 24, 64), (1, 768, 40, 128),
]


def _w8_operands(m, k, n, a_bits, seed):
    rng = np.random.default_rng(seed)
    lo, hi = golden.int_range(a_bits)
    return rng.integers(lo, hi + 1, (m, k)).astype(np.int8), rng.integers(-128, 128, (n, k)).astype(np.int8)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("a_bits", (4, 8))
@pytest.mark.parametrize("form, shape", [("int4", s) for s in SHAPES] + [("tiled", s) for s in TILED_SHAPES]
                         + [("int8", s) for s in W8_SHAPES] + [("tiled8", s) for s in TILED8_SHAPES])
def test_group_sums_bit_exact(path, a_bits, form, shape):
    """Packed int4, int8 and both tiled forms (W4A8/W4A4, W8A8/W8A4): the exact sums, on every path."""
    m, k, n, group = shape
    w_bits = 8 if form in ("int8", "tiled8") else 4
    if w_bits == 4:
        x, w = _operands(m, k, n, a_bits, seed=m * 31 + n)
        weights = cpu.pack_weights(w) if form == "int4" else cpu.tile_weights(cpu.pack_weights(w))
    else:
        x, w = _w8_operands(m, k, n, a_bits, seed=m * 17 + n)
        weights = torch.from_numpy(w) if form == "int8" else cpu.tile_weights(torch.from_numpy(w))
    got = cpu.group_sums(torch.from_numpy(x), weights, group, a_bits=a_bits, impl=path)
    assert np.array_equal(got.numpy(), golden.group_accumulators(x, w, group, x_bits=a_bits, w_bits=w_bits))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("tiled", (False, True))
@pytest.mark.parametrize("xv, wv", [(-128, -8), (-128, 7), (127, -8), (127, 7), (-8, -8), (7, 7), (0, -8)])
def test_extremes_in_every_lane(path, tiled, xv, wv):
    """Every lane at the int8/int4 corners, over a whole 4096-long group: the int32 bounds of a real K."""
    x, w = np.full((9, 4096), xv, np.int8), np.full((16, 4096), wv)   # VNNI: 8 tokens × 16 rows at once
    weights = cpu.tile_weights(cpu.pack_weights(w)) if tiled else cpu.pack_weights(w)
    got = cpu.group_sums(torch.from_numpy(x), weights, 4096, impl=path)
    assert np.array_equal(got.numpy(), golden.group_accumulators(x, w, 4096))
    assert int(got[0, 0, 0]) == 4096 * xv * wv


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("tiled", (False, True))
@pytest.mark.parametrize("xv, wv", [(-128, -128), (-128, 127), (127, -128), (127, 127), (-127, -128), (-1, -128)])
def test_w8_extremes_in_every_lane(path, tiled, xv, wv):
    """int8 corners over K = 4096: |sum| up to 4096 · 128 · 128.  Most x86 loops negate activations, which
    -128 survives only because activations holding it take the exact scalar loop; the tiled VNNI loop
    offsets the weights instead and takes -128 itself."""
    x, w = np.full((9, 4096), xv, np.int8), np.full((16, 4096), wv, np.int8)   # VNNI: 8 tokens × 16 rows
    weights = cpu.tile_weights(torch.from_numpy(w)) if tiled else torch.from_numpy(w)
    got = cpu.group_sums(torch.from_numpy(x), weights, 4096, impl=path)
    assert np.array_equal(got.numpy(), golden.group_accumulators(x, w, 4096, w_bits=8))
    assert int(got[0, 0, 0]) == 4096 * xv * wv
    x[1, 5] = -128                                        # one -128 among other values
    got = cpu.group_sums(torch.from_numpy(x), weights, 64, impl=path)
    assert np.array_equal(got.numpy(), golden.group_accumulators(x, w, 64, w_bits=8))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("tiled", (False, True))
@pytest.mark.parametrize("m, k", [(5, 512), (9, 512), (1, 576)])  # M = 1 tiled: the decode loop, 9 groups
def test_w8_fused_epilogues_match_golden(path, tiled, m, k):
    n, group = 16 if tiled else 11, 64 if k == 576 else 128
    x, w = _w8_operands(m, k, n, 8, seed=3)
    weights = cpu.tile_weights(torch.from_numpy(w)) if tiled else torch.from_numpy(w)
    x[x == -128] = -127                                   # what golden's symmetric quantizer produces
    rng = np.random.default_rng(4)
    xs, ws = rng.uniform(1e-3, 1e-1, m).astype(np.float32), rng.uniform(1e-3, 1e-1, (n, k // group)).astype(np.float32)
    got = cpu.scaled_matmul(torch.from_numpy(x), weights, group, torch.from_numpy(xs), torch.from_numpy(ws), impl=path)
    exact = scaled_linear(torch.from_numpy(x), torch.from_numpy(xs), torch.from_numpy(w), torch.from_numpy(ws),
                          group, x_max=128, w_max=128)
    assert torch.equal(got, exact)
    acc = golden.group_accumulators(x, w, group, w_bits=8)
    y = golden.group_scaled(acc, ws, xs)
    params = golden.requant_params(ws, xs, golden.output_scale(y, 8), 8)
    q = cpu.requantized_matmul(torch.from_numpy(x), weights, group, params, impl=path)
    assert np.array_equal(q.numpy(), golden.requantize(acc, params.wmul, params.tmul, params.shift, 8))


@pytest.mark.parametrize("path", PATHS)
def test_out_buffer_is_reused(path):
    x, w = _operands(3, 256, 9, 8, seed=5)
    out = torch.empty(3, 9, 4, dtype=torch.int32)
    got = cpu.group_sums(torch.from_numpy(x), cpu.pack_weights(w), 64, impl=path, out=out)
    assert got.data_ptr() == out.data_ptr()
    assert np.array_equal(out.numpy(), golden.group_accumulators(x, w, 64))


def _call(**kw):
    args = dict(x=torch.zeros(2, 128, dtype=torch.int8), w_packed=torch.zeros(3, 64, dtype=torch.uint8), group=64)
    args.update(kw)
    return cpu.group_sums(args.pop("x"), args.pop("w_packed"), args.pop("group"), **args)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(x=torch.zeros(2, 128, dtype=torch.float32)), TypeError, "must be an int8 tensor"),
    (dict(w_packed=torch.zeros(3, 64, dtype=torch.int16)), TypeError, r"uint8 \(packed int4, two per byte\) or int8"),
    (dict(w_packed=torch.zeros(3, 64, dtype=torch.int8)), ValueError, r"int8 weights \(N, K\)"),
    (dict(w_packed=torch.zeros(3, 32, dtype=torch.uint8)), ValueError, "shape mismatch"),
    (dict(x=torch.zeros(1, 2, 128, dtype=torch.int8)), ValueError, "shape mismatch"),
    (dict(x=torch.zeros(128, 2, dtype=torch.int8).t()), ValueError, "must be contiguous"),
    (dict(x=torch.zeros(2, 256, dtype=torch.int8)[:, ::2]), ValueError, "must be contiguous"),
    (dict(group=48), ValueError, "does not divide K = 128"),
    (dict(a_bits=6), ValueError, "4 or 8, not 6"),
    (dict(a_bits=4, x=torch.full((2, 128), 9, dtype=torch.int8)), OverflowError, r"\[-8, 7\]"),
    (dict(impl="sse9"), ValueError, "unknown kernel path"),
    (dict(out=torch.zeros(2, 3, 2, dtype=torch.int64)), ValueError, "out must be a contiguous int32"),
])
def test_bad_input_is_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        _call(**kwargs)


def test_tile_weights_layout_and_refusals():
    """The tiled layouts as documented (int4: byte 4r + i of block (b, c) holds w[8b + r, 8c + i] low and
    w[8b + r, 8c + 4 + i] high; int8: w[8b + r, 4c + i]), and clear refusals of what cannot be tiled."""
    w = np.random.default_rng(2).integers(-8, 8, (16, 24))
    tiled = cpu.tile_weights(cpu.pack_weights(w)).numpy()
    assert tiled.shape == (2, 3, 32)
    codes = w & 0xF
    for b, c, r, i in [(0, 0, 0, 0), (1, 2, 7, 3), (1, 0, 3, 1), (0, 2, 5, 2)]:
        assert tiled[b, c, 4 * r + i] == codes[8 * b + r, 8 * c + i] | codes[8 * b + r, 8 * c + 4 + i] << 4
    w8 = w.astype(np.int8)
    tiled8 = cpu.tile_weights(torch.from_numpy(w8)).numpy()
    assert tiled8.shape == (2, 6, 32)
    for b, c, r, i in [(0, 0, 0, 0), (1, 5, 7, 3), (1, 2, 3, 1)]:
        assert tiled8[b, c, 4 * r + i] == w8[8 * b + r, 4 * c + i]
    with pytest.raises(ValueError, match="K of 4; got N = 16, K = 22"):
        cpu.tile_weights(torch.from_numpy(w8[:, :22].copy()))
    with pytest.raises(ValueError, match="multiples of 8; got N = 12"):
        cpu.tile_weights(cpu.pack_weights(w[:12]))
    with pytest.raises(ValueError, match="K = 20"):
        cpu.tile_weights(cpu.pack_weights(w[:, :20]))
    with pytest.raises(TypeError, match=r"uint8 tensor \(N, K/2\), or int8 weights"):
        cpu.tile_weights(torch.zeros(8, 8, dtype=torch.int16))
    with pytest.raises(ValueError, match=r"shape mismatch: need x \(M, K\) and tiled int4 weights"):
        cpu.group_sums(torch.zeros(2, 32, dtype=torch.int8), cpu.tile_weights(cpu.pack_weights(w)), 8)


def test_unavailable_path_names_the_available_ones():
    missing = [p for p in cpu.PATHS if p not in PATHS]
    assert missing, "every path is available here; nothing to refuse"
    with pytest.raises(ValueError, match="available: scalar"):
        _call(impl=missing[0])


def test_arm_dot_product_path_compiles():
    """The NEON path cannot run here; it must at least build for an Armv8.2 edge CPU with dot product."""
    cxx = shutil.which("aarch64-linux-gnu-g++")
    assert cxx, "aarch64-linux-gnu-g++ is missing: `make install` installs it (Debian g++-aarch64-linux-gnu)"
    for source in ("w4_kernels.cpp", "w4_vnni.cpp", "w4_amx.cpp"):     # every kernel source the extension builds
        obj = subprocess.run([cxx, "-std=c++17", "-O2", "-march=armv8.2-a+dotprod", "-ffp-contract=off", "-Wall", "-Werror",
                              "-c", str(SRC / source), "-o", "/dev/null", "-DW4_EXPECT_NEON"],
                             capture_output=True, text=True)
        assert obj.returncode == 0, f"{source}: {obj.stderr}"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the x86 decode loops' prefetch; this is not x86")
def test_decode_loops_keep_their_software_prefetch():
    """The tiled decode loops ask for weights 2 KiB ahead (w4_tiled.h).  Once, the compiler silently
    deleted every one of those prefetches and decode read memory 15-40% slower, with every result still
    exact: so count them in the machine code of the extension as built."""
    objdump = shutil.which("objdump")
    assert objdump, "objdump is missing: it comes with binutils, which g++ (the extension's compiler) needs"
    listing = subprocess.run([objdump, "-d", "--no-show-raw-insn", cpu._w4.__file__], capture_output=True, text=True,
                             check=True).stdout
    # AVX2 and VNNI decode, int4 and int8 weights: at least one prefetch each
    assert listing.count("prefetcht0") >= 4, "the decode loops' software prefetches are missing from cpu._w4"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("tiled, shape", [(False, s) for s in [(1, 4096, 13, 128), (5, 256, 9, 64), (3, 96, 7, 32),
                                                                (0, 128, 4, 64)]]
                         + [(True, s) for s in [(1, 4096, 16, 64), (5, 256, 8, 64), (7, 1024, 24, 128),
                                                (4, 768, 16, 768), (3, 96, 8, 32), (0, 128, 8, 64),
                                                (1, 768, 16, 128), (1, 1152, 8, 128), (1, 320, 8, 64),
                                                (1, 768, 40, 128), (13, 512, 40, 64)]])
def test_fused_scaling_matches_golden(path, tiled, shape):
    """The fused float epilogue is golden.linear.scaled_linear bit for bit: the same exact sums, scaled by the
    same float32 operations in the same order (and close to golden's float64 view of the same numbers).
    Tiled shapes reach the in-register epilogue with 64 groups (eight 8 × 8 scale transposes) and with
    group counts that leave a remainder (24 rows, 8 groups; 6 groups), and decode (M = 1, the loop that
    loads prepared token quads) with 6, 9 and 5 groups (the masked-load turn of the last groups % 8)."""
    m, k, n, group = shape
    x, w = _operands(m, k, n, 8, seed=n)
    rng = np.random.default_rng(n)
    xs, ws = rng.uniform(1e-3, 1e-1, m).astype(np.float32), rng.uniform(1e-3, 1e-1, (n, k // group)).astype(np.float32)
    weights = cpu.tile_weights(cpu.pack_weights(w)) if tiled else cpu.pack_weights(w)
    got = cpu.scaled_matmul(torch.from_numpy(x), weights, group, torch.from_numpy(xs), torch.from_numpy(ws), impl=path)
    exact = scaled_linear(torch.from_numpy(x), torch.from_numpy(xs), torch.from_numpy(w.astype(np.int8)),
                          torch.from_numpy(ws), group, x_max=128, w_max=8)
    assert got.shape == (m, n) and torch.equal(got, exact)
    ref = golden.group_scaled(golden.group_accumulators(x, w, group), ws, xs)
    assert np.allclose(got.numpy(), ref, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(ref).max(initial=0))))


AMX_SHAPES = [  # (M, K, N, group) the AMX loop takes: tiled, N % 16 == 0, group % 64 == 0, M >= 16
    (16, 512, 16, 64),      # one token tile, one pair of row blocks
    (21, 1024, 48, 128),    # a partly filled second tile; three pairs split across threads
    (40, 512, 32, 64),      # two tiles, then a single tile
    (48, 768, 16, 192),     # three multiplies per group
    (16, 256, 32, 256),     # one group: no group before the last to turn into floats
    (33, 4096, 16, 128),    # a 4096-long row; one token in the third tile
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("w_bits", (4, 8))
@pytest.mark.parametrize("shape", AMX_SHAPES)
def test_prefill_shapes_match_golden(path, w_bits, shape):
    """Prefill with the scaled epilogue on tiled weights: on an AMX CPU, the shapes the tile loop takes
    (every path runs them too).  int8 activations include -128, and int8 weights -128 and 127."""
    m, k, n, group = shape
    rng = np.random.default_rng(m * k + n)
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    x[0, :] = -128                                                  # a whole token at the corner
    if w_bits == 4:
        w = rng.integers(-8, 8, (n, k))
        w[0, :], w[1, :] = -8, 7
        weights, w8 = cpu.tile_weights(cpu.pack_weights(w)), torch.from_numpy(w.astype(np.int8))
    else:
        w = rng.integers(-128, 128, (n, k)).astype(np.int8)
        w[0, :], w[1, :] = -128, 127
        weights, w8 = cpu.tile_weights(torch.from_numpy(w)), torch.from_numpy(w)
    xs, ws = rng.uniform(1e-3, 1e-1, m).astype(np.float32), rng.uniform(1e-3, 1e-1, (n, k // group)).astype(np.float32)
    got = cpu.scaled_matmul(torch.from_numpy(x), weights, group, torch.from_numpy(xs), torch.from_numpy(ws), impl=path)
    exact = scaled_linear(torch.from_numpy(x), torch.from_numpy(xs), w8, torch.from_numpy(ws), group,
                          x_max=128, w_max=8 if w_bits == 4 else 128)
    assert got.shape == (m, n) and torch.equal(got, exact)
    if path == "amx":       # the tile loop ran, not the VNNI loop the AMX path falls back to
        assert cpu.last_loop() == "amx tiles"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("out_bits", golden.requant.OUT_BITS)
@pytest.mark.parametrize("kind", ["random", "max", "min", "random tiled"])
def test_fused_requantization_bit_exact(path, out_bits, kind):
    m, k, n, group = (9, 512, 16, 64) if "tiled" in kind else (6, 512, 11, 64)   # tiled 9: VNNI's 8-token pairs
    if kind.startswith("random"):
        x, w = _operands(m, k, n, 8, seed=3)
        rng = np.random.default_rng(4)
        top = (1 << golden.requant.MULT_BITS) - 1
        wmul, tmul = rng.integers(1, top + 1, (n, k // group)), rng.integers(1, top + 1, m)
        from sim.stimulus import spread_shift
        shift = spread_shift(golden.group_accumulators(x, w, group), wmul, tmul, out_bits)
    else:       # the widest products: 128-bit intermediate territory, every output on a rail
        x = np.full((m, k), -128, np.int8)
        w = np.full((n, k), -8 if kind == "max" else 7)
        wmul, tmul, shift = np.full((n, k // group), 65535), np.full(m, 65535), 1
    params = golden.RequantParams(wmul, tmul, shift, out_bits)
    weights = cpu.tile_weights(cpu.pack_weights(w)) if "tiled" in kind else cpu.pack_weights(w)
    got = cpu.requantized_matmul(torch.from_numpy(x), weights, group, params, impl=path).numpy()
    ref = golden.requantize(golden.group_accumulators(x, w, group), wmul, tmul, shift, out_bits)
    assert np.array_equal(got, ref)
    if not kind.startswith("random"):
        assert np.isin(ref, golden.int_range(out_bits)).all()


def test_requantization_refuses_bad_parameters():
    x, w = torch.zeros(2, 128, dtype=torch.int8), torch.zeros(3, 64, dtype=torch.uint8)
    ok = dict(wmul=np.ones((3, 2), int), tmul=np.ones(2, int), shift=4, out_bits=8)
    for change, error, message in [(dict(out_bits=6), ValueError, "4 or 8"), (dict(shift=0), ValueError, r"\[1, 62\]"),
                                   (dict(wmul=np.ones((3, 3), int)), ValueError, r"wmul must be a contiguous int64"),
                                   (dict(tmul=np.full(2, 1 << 16)), OverflowError, "tmul")]:
        with pytest.raises(error, match=message):
            cpu.requantized_matmul(x, w, 64, golden.RequantParams(**{**ok, **change}))


def test_a_cpu_without_fast_paths_warns_once_and_stays_exact(monkeypatch):
    """On a CPU with none of the SIMD paths, auto falls back to the scalar loop with one warning."""
    import cpu.kernels as kernels
    monkeypatch.setattr(kernels, "available_paths", lambda: ["scalar"])
    monkeypatch.setattr(kernels, "_warned", False)
    x, w = _operands(3, 256, 5, 8, seed=9)
    with pytest.warns(RuntimeWarning, match="portable scalar loop"):
        got = cpu.group_sums(torch.from_numpy(x), cpu.pack_weights(w), 64)
    assert np.array_equal(got.numpy(), golden.group_accumulators(x, w, 64))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the second call must not warn again
        cpu.group_sums(torch.from_numpy(x), cpu.pack_weights(w), 64)


@pytest.mark.parametrize("bits", (4, 8))
@pytest.mark.parametrize("width", (512, 4109, 21))
def test_quantize_rows_equals_golden(bits, width):
    """The compiled per-token quantizer gives golden's integers and steps bit for bit, ties included: in the
    SIMD loop's 32-wide steps, in the scalar tail after them (4109), and in a row shorter than one step."""
    from golden.quant import QuantSpec, qparams, quantize
    rng = np.random.default_rng(bits)
    x = torch.from_numpy(rng.standard_normal((9, width)).astype(np.float32)) * torch.logspace(-3, 3, 9)[:, None]
    x[1] = 0.0                                                  # all-zero row: the minimum step
    x[2, :8] = torch.tensor([0.5, -0.5, 1.5, -2.5, 3.5, 7.0, -7.0, 1.0]) * 2   # exact halves after scaling
    x[3, 5] = 3069.0                                            # one outlier, as SmolLM2's sink token
    x[4, -1] = -4000.0                                          # the outlier in the last column (the tail)
    x[5, -9:] = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5, 127.0]) * (x[5].abs().max() / 127)
    spec = QuantSpec(bits, symmetric=True, granularity="row")
    scale, zero = qparams(x, spec)
    q, s = cpu.quantize_rows(x.contiguous(), bits)
    assert torch.equal(s, scale.reshape(-1)) and torch.equal(q.to(torch.int32), quantize(x, spec, scale, zero))


@pytest.mark.parametrize("column", (0, 37, 255, 260))
@pytest.mark.parametrize("bad", (float("nan"), float("inf"), -float("inf")))
def test_quantize_rows_refuses_nan_and_inf_anywhere(column, bad):
    """In the SIMD steps (0, 37, 255) and in the scalar tail (260 of 261) of the second row."""
    x = torch.randn(3, 261)
    x[1, column] = bad
    with pytest.raises(ValueError, match="NaN/Inf"):
        cpu.quantize_rows(x)


def test_quantize_rows_refuses_bad_input():
    with pytest.raises(ValueError, match="NaN/Inf"):
        cpu.quantize_rows(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="4 or 8"):
        cpu.quantize_rows(torch.zeros(1, 4), 6)
    with pytest.raises(TypeError, match="float32"):
        cpu.quantize_rows(torch.zeros(1, 4, dtype=torch.float64))
