// The tiled-weight SIMD loop (layouts in w4_kernels.h), written once and compiled twice: for AVX2 in
// w4_kernels.cpp and for AVX-512 VNNI in w4_vnni.cpp.  A function's instruction set is fixed when it
// is compiled, so each of those files defines W4_TILED_TARGET (the target attribute of everything
// here) before including this one, and everything here has internal linkage: each file keeps its own
// copy, and the AVX2 one never meets an instruction an AVX2-only CPU lacks.
//
// Each 32-bit lane of a vector is one weight row, so a group's sums come out one row per lane and need
// no horizontal reduction.  A 32-byte int4 block is 8 rows × 8 columns: its low nibbles (w + 8 after
// XOR 0x88) meet the token's columns 8c..8c+3 broadcast to every lane, its high nibbles columns
// 8c+4..8c+7.  An int8 block is 8 rows × 4 columns.
//
// AVX2 (VNNI = false): maddubs pairs the bytes into 16 bits.  int4: |·| ≤ 3840 per product pair,
// ≤ 7680 per block; four blocks fit in 16 bits (≤ 30720) before madd widens them.  int8: |w| meets
// the activations given w's sign (exact unless an activation is -128, which launch() keeps from
// here), and each block's pairs are widened at once (a pair reaches 32,512).
//
// VNNI: dpbusd multiplies unsigned by signed bytes and adds each four products straight into 32
// bits, with no 16-bit step to saturate.  So int8 weights take the same offset as int4 ones, w + 128
// (XOR 0x80) against the signed activations, minus 128 · Σx of the group: one instruction per block
// and token instead of AVX2's four, and -128 activations are as exact as any other.
#pragma once
#ifndef W4_TILED_TARGET
#error "define W4_TILED_TARGET (the target attribute) before including w4_tiled.h"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "w4_kernels.h"

#ifndef W4_KEEP_IN_REGISTER
// See w4_kernels.cpp: keeps GCC from turning a chain of accumulations into a tree that spills.
// "v": with AVX-512 the accumulators may live in any of the 32 vector registers.
#define W4_KEEP_IN_REGISTER(v) asm("" : "+v"(v))
#endif

namespace w4 {

int32_t* sums_buffer(int64_t count);    // w4_kernels.cpp: per-thread room for a block's sums

namespace {

W4_TILED_TARGET __attribute__((always_inline))
inline __m256i broadcast4(const int8_t* x) {
    int32_t v;
    std::memcpy(&v, x, 4);
    return _mm256_set1_epi32(v);
}

// One 8 × 8 turn: r[i] holds row i's scales of 8 groups; stores column c (< count) at out[c · stride].
W4_TILED_TARGET __attribute__((always_inline))
inline void transpose8(const __m256 (&r)[8], int64_t count, float* out, int64_t stride) {
    __m256 t[8], h[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);          // columns 0, 1 | 4, 5 of rows i, i+1
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);      // columns 2, 3 | 6, 7
    }
    for (int i = 0; i < 8; i += 4) {
        h[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);          // column 0 | 4 of rows i..i+3
        h[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);      // column 1 | 5
        h[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);  // column 2 | 6
        h[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);  // column 3 | 7
    }
    __m256 column[8];
    for (int c = 0; c < 4; ++c) {
        column[c] = _mm256_permute2f128_ps(h[c], h[c + 4], 0x20);
        column[c + 4] = _mm256_permute2f128_ps(h[c], h[c + 4], 0x31);
    }
    for (int c = 0; c < count; ++c) _mm256_storeu_ps(out + c * stride, column[c]);
}

// out[g · stride + r] = ws[r · groups + g]: eight rows' scales turned so that one group's are a vector
// (8 × 8 transposes; a gather per group would cost more than the group's arithmetic in decode).
// The last groups % 8 are turned the same way from masked loads: copied one float at a time they
// cost decode 11% at K = 768 (6 groups of 128).
W4_TILED_TARGET
void transpose_scales(const float* ws, int64_t groups, float* out, int64_t stride = 8) {
    __m256 r[8];
    int64_t g = 0;
    for (; g + 8 <= groups; g += 8) {
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(ws + i * groups + g);
        transpose8(r, 8, out + g * stride, stride);
    }
    if (g < groups) {
        const int64_t count = groups - g;
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int i = 0; i < 8; ++i) r[i] = _mm256_maskload_ps(ws + i * groups + g, mask);
        transpose8(r, count, out + g * stride, stride);
    }
}

// Decode (one token) streams each weight byte once; asking for the line 2 KiB ahead keeps more
// misses in flight than the hardware prefetcher does across the 4 KiB pages of the stream.  Measured
// on a 2-core Xeon (AVX-512, AMX), weights from memory, VNNI W4 decode: 768→3072 55 → 40 µs,
// 4096→4096 305 → 260 µs.  (Prefill reuses each block from L2 for every token block: no prefetch.)
// Written as an always-inline function with the loops' target and __builtin_prefetch: as a plain
// inline function around _mm_prefetch, GCC 12 did not inline it into the target-attributed loops,
// judged the call free of side effects and deleted it, so no prefetch reached the machine code
// (tests/test_cpu_kernels.py now counts them in the built extension).
constexpr int64_t kPrefetchAhead = 2048;
W4_TILED_TARGET __attribute__((always_inline))
inline void prefetch_ahead(const uint8_t* at) {
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(at) + kPrefetchAhead), 0, 3);
}

// The group sums of rows 8b..8b+7 × tokens m..m+MR-1 for group g, before the offset correction:
// acc[q] lane r = Σ over the group of x[m + q][k] · (w[8b + r][k] + offset), offset 8 for int4 weights,
// 0 (AVX2, sign trick) or 128 (VNNI) for int8.  quad(q, j) is x[m + q][4j .. 4j + 3] in every lane.
template <bool VNNI, int W_BITS, int MR, typename Quad>
W4_TILED_TARGET __attribute__((always_inline))
inline void group_tile(const uint8_t* wb, int64_t c0, int64_t c1, const Quad& quad, __m256i (&acc)[MR]) {
    const __m256i mask = _mm256_set1_epi8(0x0F), eight88 = _mm256_set1_epi8(static_cast<char>(0x88));
    for (int q = 0; q < MR; ++q) acc[q] = _mm256_setzero_si256();
    if constexpr (VNNI) {
        // Two chains per token, for alternate blocks: a dpbusd waits ~5 cycles for its accumulator,
        // and one chain per token would leave the multipliers idle much of that time.
        const __m256i flip = _mm256_set1_epi8(static_cast<char>(W_BITS == 8 ? 0x80 : 0x88));
        __m256i part[2][MR];
        for (int i = 0; i < 2; ++i)
            for (int q = 0; q < MR; ++q) part[i][q] = _mm256_setzero_si256();
        for (int64_t c = c0; c < c1; c += 4)       // whole steps of four blocks (the groups fits() admits)
            for (int i = 0; i < 4; ++i) {
                if constexpr (MR == 1) prefetch_ahead(wb + (c + i) * 32);
                const __m256i u = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + (c + i) * 32)), flip);
                __m256i (&chain)[MR] = part[i & 1];
                if constexpr (W_BITS == 8) {
                    for (int q = 0; q < MR; ++q) {
                        chain[q] = _mm256_dpbusd_epi32(chain[q], u, quad(q, c + i));
                        W4_KEEP_IN_REGISTER(chain[q]);
                    }
                } else {
                    const __m256i lo = _mm256_and_si256(u, mask), hi = _mm256_and_si256(_mm256_srli_epi16(u, 4), mask);
                    for (int q = 0; q < MR; ++q) {
                        chain[q] = _mm256_dpbusd_epi32(chain[q], lo, quad(q, 2 * (c + i)));
                        chain[q] = _mm256_dpbusd_epi32(chain[q], hi, quad(q, 2 * (c + i) + 1));
                        W4_KEEP_IN_REGISTER(chain[q]);
                    }
                }
            }
        for (int q = 0; q < MR; ++q) acc[q] = _mm256_add_epi32(part[0][q], part[1][q]);
    } else if constexpr (W_BITS == 8) {
        const __m256i ones = _mm256_set1_epi16(1);
        for (int64_t c = c0; c < c1; c += 4)
            for (int i = 0; i < 4; ++i) {
                if constexpr (MR == 1) prefetch_ahead(wb + (c + i) * 32);
                const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + (c + i) * 32));
                const __m256i mag = _mm256_abs_epi8(w);
                for (int q = 0; q < MR; ++q) {
                    const __m256i xs = _mm256_sign_epi8(quad(q, c + i), w);
                    acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(_mm256_maddubs_epi16(mag, xs), ones));
                    W4_KEEP_IN_REGISTER(acc[q]);
                }
            }
    } else {
        const __m256i ones = _mm256_set1_epi16(1);
        for (int64_t c = c0; c < c1; c += 4) {
            __m256i part[MR];
            for (int q = 0; q < MR; ++q) part[q] = _mm256_setzero_si256();
            for (int i = 0; i < 4; ++i) {
                if constexpr (MR == 1) prefetch_ahead(wb + (c + i) * 32);
                __m256i u = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + (c + i) * 32)), eight88);
                __m256i lo = _mm256_and_si256(u, mask), hi = _mm256_and_si256(_mm256_srli_epi16(u, 4), mask);
                for (int q = 0; q < MR; ++q) {
                    part[q] = _mm256_add_epi16(part[q], _mm256_add_epi16(
                        _mm256_maddubs_epi16(lo, quad(q, 2 * (c + i))), _mm256_maddubs_epi16(hi, quad(q, 2 * (c + i) + 1))));
                    W4_KEEP_IN_REGISTER(part[q]);
                }
            }
            for (int q = 0; q < MR; ++q) acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(part[q], ones));
        }
    }
}

// Rows 8b..8b+7 × tokens m..m+MR-1 over every group, then the epilogue: the scaled one stays in
// registers (lane r: y += float(sum_g) · w_scale[8b + r][g], then y · x_scale, finish()'s order),
// the others store the sums as sums[(q · G + g) · 8 + r] for finish().  (Two blocks sharing the
// token broadcasts, or 6 tokens, measured no faster than 8 rows × 4 tokens on Zen.)
template <bool VNNI, int W_BITS, int MR, bool QUADS>
W4_TILED_TARGET
void tiled_block(const Problem& p, const Scratch& s, int64_t b, int64_t m, int32_t* sums) {
    static_assert(!QUADS || MR == 1, "the broadcast quads are one token's");
    // x[m + q][4j .. 4j + 3] in every lane: loaded from the prepared quads, or broadcast here
    // (copied into locals: read through p and s, the loop reloaded them every step)
    const int8_t* const xm = p.x + m * p.K;
    const int64_t K = p.K;
    const int32_t* const quads = s.x_quads;
    auto quad = [xm, K, quads](int q, int64_t j) W4_TILED_TARGET __attribute__((always_inline)) {
        if constexpr (QUADS) return _mm256_load_si256(reinterpret_cast<const __m256i*>(quads + 8 * j));
        else return broadcast4(xm + q * K + 4 * j);
    };
    constexpr int64_t kColumns = W_BITS == 4 ? 8 : 4;      // columns per 32-byte block
    // the offset the weights carry (see group_tile), taken back as offset · Σx of the group
    constexpr int kOffsetShift = W_BITS == 4 ? 3 : (VNNI ? 7 : -1);
    const int64_t groups = p.K / p.group, blocks_per_group = p.group / kColumns;
    const uint8_t* wb = p.w + b * (p.K / kColumns) * 32;
    const bool scaled = p.epilogue == Epilogue::Scaled;
    float* ws = reinterpret_cast<float*>(sums + MR * 8 * groups);     // the block's scales, group-major
    if (scaled) transpose_scales(p.w_scale + 8 * b * groups, groups, ws);
    __m256 y[MR];
    for (int q = 0; q < MR; ++q) y[q] = _mm256_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
        __m256i acc[MR];
        group_tile<VNNI, W_BITS, MR>(wb, g * blocks_per_group, (g + 1) * blocks_per_group, quad, acc);
        const __m256 ws_g = scaled ? _mm256_loadu_ps(ws + g * 8) : _mm256_setzero_ps();
        for (int q = 0; q < MR; ++q) {
            __m256i sum = acc[q];
            if constexpr (kOffsetShift >= 0)
                sum = _mm256_sub_epi32(sum, _mm256_slli_epi32(_mm256_set1_epi32(s.x_group_sum[g * p.M + m + q]), kOffsetShift));
            if (scaled)
                y[q] = _mm256_add_ps(y[q], _mm256_mul_ps(_mm256_cvtepi32_ps(sum), ws_g));
            else
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + (q * groups + g) * 8), sum);
        }
    }
    for (int q = 0; q < MR; ++q) {
        if (scaled) {
            _mm256_storeu_ps(p.y_out + (m + q) * p.N + 8 * b, _mm256_mul_ps(y[q], _mm256_set1_ps(p.x_scale[m + q])));
        } else {
            for (int r = 0; r < 8; ++r) finish(p, m + q, 8 * b + r, sums + q * groups * 8 + r, 8);
        }
    }
}

// VNNI, two row blocks at once (prefill; decode with MR = 1): rows 8b..8b+15 in the 16 lanes of a
// 512-bit vector (blocks b and b + 1 share the token's columns, so one broadcast serves both) × MR
// tokens, one dpbusd per block step and token; the insert that joins the blocks' 32-byte rows is
// shared by the MR tokens.
// One chain per token: with 8 tokens a chain is used every ~4 cycles, about dpbusd's latency.
// next is the byte distance from block b to b + 1.  acc[q] lane 8·nb + r: row 8(b + nb) + r; acc comes
// in holding its start value (the caller's offset correction: one instruction fewer per token and group).
template <int W_BITS, int MR>
W4_TILED_TARGET __attribute__((always_inline))
inline void group_tile_pair(const uint8_t* wb, int64_t next, int64_t c0, int64_t c1, const int8_t* xm, int64_t K,
                            __m512i (&acc)[MR]) {
    const __m512i mask = _mm512_set1_epi8(0x0F);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(W_BITS == 8 ? 0x80 : 0x88));
    // acc += u · x[m + q][4j .. 4j + 3] in every lane, the four bytes read as dpbusd's broadcast operand.
    // In asm because GCC, given the intrinsic, copied accumulators from register to register every step
    // (two extra vector instructions in ten, on the ports dpbusd needs).
    auto dot = [xm, K](__m512i& acc, __m512i u, int q, int64_t j) W4_TILED_TARGET __attribute__((always_inline)) {
        asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u), "m"(*reinterpret_cast<const int32_t*>(xm + q * K + 4 * j)));
    };
    auto step = [wb, next, flip](int64_t c) W4_TILED_TARGET __attribute__((always_inline)) {
        const uint8_t* at = wb + c * 32;
        if constexpr (MR == 1) {
            // Decode streams blocks b and b + 1 side by side.  Past the end of block b, "ahead" would be
            // block b + 1's lines, already on their way: ask for the next pair's (b + 2, b + 3) instead.
            const int64_t skip = c * 32 + kPrefetchAhead >= next ? next : 0;
            prefetch_ahead(at + skip);
            prefetch_ahead(at + next + skip);
        }
        const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at))),
                                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + next)), 1);
        return _mm512_xor_si512(w, flip);
    };
    if constexpr (W_BITS == 8) {
        // Two chains per token, for even and odd steps: one dpbusd per step each would wait on its
        // accumulator's latency.  (int4 steps give each chain two, and their pairs overlap.)
        __m512i odd[MR];
        for (int q = 0; q < MR; ++q) odd[q] = _mm512_setzero_si512();
        for (int64_t c = c0; c < c1; c += 2) {        // blocks per group: a multiple of 8
            const __m512i u0 = step(c);
            for (int q = 0; q < MR; ++q) dot(acc[q], u0, q, c);
            const __m512i u1 = step(c + 1);
            for (int q = 0; q < MR; ++q) dot(odd[q], u1, q, c + 1);
        }
        for (int q = 0; q < MR; ++q) acc[q] = _mm512_add_epi32(acc[q], odd[q]);
        return;
    }
    // int4: the low nibbles meet columns 8c..8c+3, the high ones 8c+4..8c+7
    auto nibbles = [mask](__m512i u, __m512i& lo, __m512i& hi) W4_TILED_TARGET __attribute__((always_inline)) {
        lo = _mm512_and_si512(u, mask);
        hi = _mm512_and_si512(_mm512_srli_epi16(u, 4), mask);
    };
    if constexpr (MR == 1) {
        // Decode: one token has no other tokens' chains to hide dpbusd's latency behind, so its four
        // dot products per two steps go to four chains.  With one chain the loop ran at one step per
        // two latencies, 16 GB/s a core from L2, below what the memory delivers.
        __m512i part[3] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
        for (int64_t c = c0; c < c1; c += 2) {        // blocks per group: a multiple of 4
            __m512i lo, hi;
            nibbles(step(c), lo, hi);
            dot(acc[0], lo, 0, 2 * c);
            dot(part[0], hi, 0, 2 * c + 1);
            nibbles(step(c + 1), lo, hi);
            dot(part[1], lo, 0, 2 * c + 2);
            dot(part[2], hi, 0, 2 * c + 3);
        }
        acc[0] = _mm512_add_epi32(_mm512_add_epi32(acc[0], part[0]), _mm512_add_epi32(part[1], part[2]));
        return;
    }
    for (int64_t c = c0; c < c1; ++c) {
        const __m512i u = step(c);
        {
            __m512i lo, hi;
            nibbles(u, lo, hi);
            for (int q = 0; q < MR; ++q) {
                dot(acc[q], lo, q, 2 * c);
                dot(acc[q], hi, q, 2 * c + 1);
            }
        }
    }
}

// tiled_block for blocks b and b + 1 and tokens m..m+MR-1 (VNNI): the scaled epilogue runs on all 16
// rows at once (the blocks' rows are adjacent in y), with the same float operations in the same order.
template <int W_BITS, int MR>
W4_TILED_TARGET
void tiled_pair(const Problem& p, const Scratch& s, int64_t b, int64_t m, int32_t* sums) {
    constexpr int64_t kColumns = W_BITS == 4 ? 8 : 4;
    constexpr int kOffsetShift = W_BITS == 4 ? 3 : 7;
    const int64_t groups = p.K / p.group, blocks_per_group = p.group / kColumns, block_bytes = (p.K / kColumns) * 32;
    const uint8_t* wb = p.w + b * block_bytes;
    const int8_t* xm = p.x + m * p.K;
    const bool scaled = p.epilogue == Epilogue::Scaled;
    float* ws = reinterpret_cast<float*>(sums + 2 * MR * 8 * groups);     // 16 rows' scales per group
    if (scaled)
        for (int nb = 0; nb < 2; ++nb) transpose_scales(p.w_scale + 8 * (b + nb) * groups, groups, ws + 8 * nb, 16);
    __m512 y[MR];
    for (int q = 0; q < MR; ++q) y[q] = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
        __m512i acc[MR];
        for (int q = 0; q < MR; ++q) acc[q] = _mm512_set1_epi32(-s.x_group_sum[g * p.M + m + q] * (1 << kOffsetShift));
        group_tile_pair<W_BITS, MR>(wb, block_bytes, g * blocks_per_group, (g + 1) * blocks_per_group, xm, p.K, acc);
        const __m512 ws_g = scaled ? _mm512_loadu_ps(ws + g * 16) : _mm512_setzero_ps();
        for (int q = 0; q < MR; ++q) {
            const __m512i sum = acc[q];
            if (scaled) {
                y[q] = _mm512_add_ps(y[q], _mm512_mul_ps(_mm512_cvtepi32_ps(sum), ws_g));
            } else {
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + (q * groups + g) * 8), _mm512_castsi512_si256(sum));
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + ((MR + q) * groups + g) * 8), _mm512_extracti64x4_epi64(sum, 1));
            }
        }
    }
    for (int q = 0; q < MR; ++q) {
        if (scaled) {
            _mm512_storeu_ps(p.y_out + (m + q) * p.N + 8 * b, _mm512_mul_ps(y[q], _mm512_set1_ps(p.x_scale[m + q])));
        } else {
            for (int nb = 0; nb < 2; ++nb)
                for (int r = 0; r < 8; ++r) finish(p, m + q, 8 * (b + nb) + r, sums + (nb * MR + q) * groups * 8 + r, 8);
        }
    }
}

// Rows [n0, n1) (multiples of 8) for every token: tiled_sums_avx2 and tiled_sums_vnni.
template <bool VNNI>
W4_TILED_TARGET
void tiled_rows(const Problem& p, const Scratch& s, int64_t n0, int64_t n1) {
    // VNNI takes two row blocks at a time (tiled_pair): kPairTokens tokens in prefill, the one token in
    // decode, which in 256-bit single blocks had one dpbusd chain and read memory slower than W8 decode.
    constexpr int kPairTokens = 8;
    // Room for the sums (VNNI: 2 blocks × 8 tokens × 8 rows × G, else 4 tokens × 8 rows × G) and then
    // the turned scales (2 × 8 × G floats).
    static_assert(sizeof(float) == sizeof(int32_t), "the scales share the sums buffer");
    int32_t* sums = sums_buffer((VNNI ? 2 * kPairTokens + 2 : 5) * 8 * (p.K / p.group));
    // Cache blocking as rows_avx2: a chunk of row blocks (64 KiB at K = 4096) stays in L2 while
    // every 4-token block passes over it.  Decode (M = 1) streams each block once.
    constexpr int64_t kChunk = 4;
    auto block = [&](int64_t b, int64_t m, auto tokens) W4_TILED_TARGET {
        constexpr int MR = decltype(tokens)::value;
        if constexpr (MR == 1 && !VNNI) {       // AVX2 decode reads the prepared token quads
            if (s.x_quads) {
                if (p.w_bits == 8) tiled_block<VNNI, 8, 1, true>(p, s, b, m, sums);
                else tiled_block<VNNI, 4, 1, true>(p, s, b, m, sums);
                return;
            }
        }
        if (p.w_bits == 8) tiled_block<VNNI, 8, MR, false>(p, s, b, m, sums);
        else tiled_block<VNNI, 4, MR, false>(p, s, b, m, sums);
    };
    // Tokens m..m+MR-1 over blocks [b0, b1) in pairs; an odd last block in single blocks of up to 4 tokens.
    auto pairs = [&](int64_t b0, int64_t b1, int64_t m, auto tokens) W4_TILED_TARGET {
        constexpr int MR = decltype(tokens)::value;
        int64_t b = b0;
        for (; b + 2 <= b1; b += 2) {
            if (p.w_bits == 8) tiled_pair<8, MR>(p, s, b, m, sums);
            else tiled_pair<4, MR>(p, s, b, m, sums);
        }
        constexpr int kSingle = MR < 4 ? MR : 4;
        for (; b < b1; ++b)
            for (int64_t h = m; h < m + MR; h += kSingle) block(b, h, std::integral_constant<int, kSingle>{});
    };
    for (int64_t b0 = n0 / 8; b0 < n1 / 8; b0 += kChunk) {
        const int64_t b1 = std::min(b0 + kChunk, n1 / 8);
        int64_t m = 0;
        if constexpr (VNNI) {
            if (p.M == 1) {
                pairs(b0, b1, 0, std::integral_constant<int, 1>{});
                m = 1;
            }
            for (; m + kPairTokens <= p.M; m += kPairTokens) pairs(b0, b1, m, std::integral_constant<int, kPairTokens>{});
        }
        for (; m + 4 <= p.M; m += 4)
            for (int64_t b = b0; b < b1; ++b) block(b, m, std::integral_constant<int, 4>{});
        for (; m < p.M; ++m)
            for (int64_t b = b0; b < b1; ++b) block(b, m, std::integral_constant<int, 1>{});
    }
}

}  // namespace
}  // namespace w4
