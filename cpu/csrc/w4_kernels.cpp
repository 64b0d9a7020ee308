// See w4_kernels.h.  The x86 paths are compiled with per-function target attributes and chosen at
// run time from the CPU's flags, so one binary runs everywhere and uses what the CPU has.
#include "w4_kernels.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#define W4_X86 1
#define W4_VNNI "avx512f,avx512bw,avx512vl,avx512vnni"   // what the VNNI paths compile for
#include <immintrin.h>
#endif
#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#define W4_NEON 1
#include <arm_neon.h>
#endif
#if defined(W4_EXPECT_NEON) && !defined(W4_NEON)
#error "built for Arm dot product (W4_EXPECT_NEON) but the NEON path is not compiled in"
#endif

namespace w4 {

static inline int32_t nibble(uint8_t byte, int high) {
    int v = high ? (byte >> 4) : (byte & 0xF);
    return v >= 8 ? v - 16 : v;
}

void prepare(const Problem& p, const Scratch& s) {
    const int64_t half = p.K / 2, groups = p.K / p.group;
    for (int64_t m = 0; m < p.M; ++m) {
        const int8_t* xr = p.x + m * p.K;
        if (s.x_even)
            for (int64_t k = 0; k < half; ++k) {
                s.x_even[m * half + k] = xr[2 * k];
                s.x_odd[m * half + k] = xr[2 * k + 1];
            }
        for (int64_t g = 0; g < groups; ++g) {
            int32_t sum = 0;
            for (int64_t k = g * p.group; k < (g + 1) * p.group; ++k) sum += xr[k];
            s.x_group_sum[g * p.M + m] = sum;
        }
    }
}

void prepare_quads(const Problem& p, const Scratch& s) {
    for (int64_t j = 0; j < p.K / 4; ++j) {
        int32_t v;
        std::memcpy(&v, p.x + 4 * j, 4);
        std::fill(s.x_quads + 8 * j, s.x_quads + 8 * j + 8, v);
    }
}

// The per-token quantizer's scalar pieces (the AVX2 loop uses them for a row's tail):
// the largest |x| of row[from, to) folded into top, false if one is NaN or Inf ...
static bool scan_row(const float* row, int64_t from, int64_t to, float& top) {
    bool ok = true;
    for (int64_t k = from; k < to; ++k) {
        ok &= std::isfinite(row[k]);
        top = std::max(top, std::fabs(row[k]));
    }
    return ok;
}

// ... and q[k] = clamp(round-half-even(row[k] / s)) for k in [from, to).
static void round_row(const float* row, int64_t from, int64_t to, float s, float qmax, int8_t* q) {
    for (int64_t k = from; k < to; ++k) {
        float v = std::nearbyint(row[k] / s);        // the default rounding mode: half to even
        q[k] = static_cast<int8_t>(std::min(std::max(v, -qmax - 1), qmax));
    }
}

static bool quantize_row_scalar(const float* row, int64_t K, float qmax, float floor, int8_t* q, float* scale) {
    float top = 0.0f;
    if (!scan_row(row, 0, K, top)) return false;
    *scale = std::max(top / qmax, floor);
    round_row(row, 0, K, *scale, qmax, q);
    return true;
}

void finish(const Problem& p, int64_t m, int64_t n, const int32_t* sums, int64_t stride) {
    const int64_t groups = p.K / p.group;
    switch (p.epilogue) {
        case Epilogue::Sums: {
            int32_t* o = p.sums_out + (m * p.N + n) * groups;
            for (int64_t g = 0; g < groups; ++g) o[g] = sums[g * stride];
            break;
        }
        case Epilogue::Scaled: {
            const float* ws = p.w_scale + n * groups;
            float acc = 0.0f;
            for (int64_t g = 0; g < groups; ++g) acc += static_cast<float>(sums[g * stride]) * ws[g];
            p.y_out[m * p.N + n] = acc * p.x_scale[m];
            break;
        }
        case Epilogue::Requant: {
            // 128-bit: a 32-bit sum × 16-bit multiplier summed over groups × 16-bit token multiplier
            // can pass 64 bits (golden.requant_bits), and golden switches to exact integers there too.
            const int64_t* wm = p.wmul + n * groups;
            __int128 psum = 0;
            for (int64_t g = 0; g < groups; ++g) psum += static_cast<__int128>(sums[g * stride]) * wm[g];
            __int128 r = (psum * p.tmul[m] + (static_cast<__int128>(1) << (p.shift - 1))) >> p.shift;
            p.q_out[m * p.N + n] = static_cast<int8_t>(r < p.lo ? p.lo : (r > p.hi ? p.hi : r));
            break;
        }
    }
}

// Per-thread room for the group sums of one block of outputs (grown, never shrunk).
int32_t* sums_buffer(int64_t count) {
    thread_local std::vector<int32_t> buf;
    if (static_cast<int64_t>(buf.size()) < count) buf.resize(static_cast<size_t>(count));
    return buf.data();
}

// The loop every one-output-at-a-time path shares: for each output (n, m), the G group sums from
// dot(n, m, g), then the epilogue.  (The AVX2 loops block several outputs and have their own.)
template <typename GroupDot>
static inline void each_output(const Problem& p, int64_t n0, int64_t n1, GroupDot dot) {
    const int64_t groups = p.K / p.group;
    int32_t* sums = sums_buffer(groups);
    for (int64_t n = n0; n < n1; ++n)
        for (int64_t m = 0; m < p.M; ++m) {
            for (int64_t g = 0; g < groups; ++g) sums[g] = dot(n, m, g);
            finish(p, m, n, sums, 1);
        }
}

void group_sums_scalar(const Problem& p, int64_t n0, int64_t n1) {
    each_output(p, n0, n1, [&p](int64_t n, int64_t m, int64_t g) {
        const uint8_t* wr = p.w + n * (p.K / 2);
        const int8_t* xr = p.x + m * p.K;
        int32_t acc = 0;
        for (int64_t k = g * p.group; k < (g + 1) * p.group; ++k)
            acc += static_cast<int32_t>(xr[k]) * nibble(wr[k >> 1], static_cast<int>(k & 1));
        return acc;
    });
}

// Weight (n, k) of the tiled layouts (w4_kernels.h).
static inline int32_t tiled_weight(const Problem& p, int64_t n, int64_t k) {
    if (p.w_bits == 8)
        return reinterpret_cast<const int8_t*>(p.w)[((n >> 3) * (p.K >> 2) + (k >> 2)) * 32 + (n & 7) * 4 + (k & 3)];
    const uint8_t byte = p.w[((n >> 3) * (p.K >> 3) + (k >> 3)) * 32 + (n & 7) * 4 + (k & 3)];
    return nibble(byte, static_cast<int>((k >> 2) & 1));
}

void tiled_sums_scalar(const Problem& p, int64_t n0, int64_t n1) {
    each_output(p, n0, n1, [&p](int64_t n, int64_t m, int64_t g) {
        const int8_t* xr = p.x + m * p.K;
        int32_t acc = 0;
        for (int64_t k = g * p.group; k < (g + 1) * p.group; ++k) acc += static_cast<int32_t>(xr[k]) * tiled_weight(p, n, k);
        return acc;
    });
}

void w8_sums_scalar(const Problem& p, int64_t n0, int64_t n1) {
    each_output(p, n0, n1, [&p](int64_t n, int64_t m, int64_t g) {
        const int8_t* wr = reinterpret_cast<const int8_t*>(p.w) + n * p.K;
        const int8_t* xr = p.x + m * p.K;
        int32_t acc = 0;
        for (int64_t k = g * p.group; k < (g + 1) * p.group; ++k)
            acc += static_cast<int32_t>(xr[k]) * static_cast<int32_t>(wr[k]);
        return acc;
    });
}

// ---------------------------------------------------------------------------------------------
// SIMD form shared by every path: with u = nibble XOR 8 (= w + 8, in 0..15, unsigned),
//   sum x·w = sum x·u − 8 · sum x,
// so an unsigned×signed byte dot product (maddubs, dpbusd, udot-free sdot on NEON) does the work
// and the per-group sum of x (from prepare()) corrects it.  u·x ≤ 15·128, so no 16-bit pair
// saturates.  Low nibbles pair with x's even elements, high nibbles with the odd ones.
// ---------------------------------------------------------------------------------------------

#ifdef W4_X86
// An empty asm that claims to change v: GCC otherwise re-associates an unrolled chain of vector
// accumulations into a tree, computes every product first and spills them all to the stack
// (measured: 8-row × 4-token prefill tiles ran 1.5× slower without it).
#define W4_KEEP_IN_REGISTER(v) asm("" : "+x"(v))

__attribute__((target("avx2")))
static inline int32_t hsum_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

// Lane t of the result is the sum of v[t]'s eight lanes: two rounds of hadd, then fold the halves.
__attribute__((target("avx2"), always_inline))
static inline __m256i hsum8_avx2(const __m256i* v) {
    __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// The AVX2 loops work on tiles of NR weight rows × MR tokens; out[t] with t = r·MR + q is the group
// sum of output (token m + q, row n + r).  A tile function computes one group's T = NR·MR sums.
//
// block_avx2 runs a tile over every group and applies the epilogue.  The scaled epilogue of an
// eight-output tile stays in registers: lane t accumulates y += float(sum_g) · w_scale[n + r][g]
// group by group, then y · x_scale[m + q], the same float operations in the same order as finish()
// (each rounded on its own; no FMA), so it is bit-identical and needs no per-output scalar loop.
template <int NR, int MR, typename Tile>
__attribute__((target("avx2"), always_inline))
static inline void block_avx2(const Problem& p, int64_t n, int64_t m, int32_t* sums, Tile tile) {
    constexpr int T = NR * MR;
    const int64_t groups = p.K / p.group;
    if constexpr (T == 8) {
        if (p.epilogue == Epilogue::Scaled) {
            alignas(32) int32_t lanes[8];
            alignas(32) float y_lanes[8];
            for (int t = 0; t < 8; ++t) lanes[t] = static_cast<int32_t>(t / MR * groups);
            const __m256i w_at = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
            for (int t = 0; t < 8; ++t) lanes[t] = t % MR;
            const __m256i x_at = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
            const float* ws = p.w_scale + n * groups;
            __m256 y = _mm256_setzero_ps();
            for (int64_t g = 0; g < groups; ++g) {
                tile(g, lanes);
                __m256 s = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(lanes)));
                y = _mm256_add_ps(y, _mm256_mul_ps(s, _mm256_i32gather_ps(ws + g, w_at, 4)));
            }
            _mm256_store_ps(y_lanes, _mm256_mul_ps(y, _mm256_i32gather_ps(p.x_scale + m, x_at, 4)));
            for (int t = 0; t < 8; ++t) p.y_out[(m + t % MR) * p.N + n + t / MR] = y_lanes[t];
            return;
        }
    }
    for (int64_t g = 0; g < groups; ++g) tile(g, sums + g * T);
    for (int r = 0; r < NR; ++r)
        for (int q = 0; q < MR; ++q) finish(p, m + q, n + r, sums + r * MR + q, T);
}

// The row loop both weight forms share.  Prefill (M ≥ 4): 2 weight rows × 4 tokens, with cache
// blocking: a chunk of Rows::kChunk weight rows stays in L2 while every 4-token block (L1) passes
// over it, so the weights come from memory once and the activations from L2, not once per row.
// Decode: 8 weight rows × 1 token, then 4, then 1.  Rows::block<NR, MR>(n, m, sums) is one tile
// over all groups with its epilogue.
template <typename Rows>
__attribute__((target("avx2")))
static void rows_avx2(const Problem& p, const Rows& rows, int64_t n0, int64_t n1) {
    int32_t* sums = sums_buffer(8 * (p.K / p.group));
    int64_t n = n0;
    if (p.M >= 4) {
        for (; n + 2 <= n1; n += Rows::kChunk) {
            const int64_t end = n + std::min<int64_t>(Rows::kChunk, (n1 - n) / 2 * 2);
            int64_t m = 0;
            for (; m + 4 <= p.M; m += 4)
                for (int64_t r = n; r < end; r += 2) rows.template block<2, 4>(r, m, sums);
            for (; m < p.M; ++m)
                for (int64_t r = n; r < end; r += 2) rows.template block<2, 1>(r, m, sums);
            if (end - n < Rows::kChunk) { n = end; break; }
        }
    }
    for (; n + 8 <= n1; n += 8)
        for (int64_t m = 0; m < p.M; ++m) rows.template block<8, 1>(n, m, sums);
    for (; n + 4 <= n1; n += 4)
        for (int64_t m = 0; m < p.M; ++m) rows.template block<4, 1>(n, m, sums);
    for (; n < n1; ++n)
        for (int64_t m = 0; m < p.M; ++m) rows.template block<1, 1>(n, m, sums);
}

// Packed int4, one group of an NR × MR tile.  Each weight block is unpacked once and used MR times,
// each activation block loaded once and used NR times; the accumulators stay in registers.
// Products are summed in 16 bits for up to 4 steps of 32 bytes (|one step| ≤ 7680, four ≤ 30720),
// then widened to 32 bits, so the widening costs a quarter of what it would per step.
// STEPS > 0: the group is exactly STEPS ≤ 4 steps (group 64, 128, 192 or 256), known when compiling,
// so the loop unrolls and no 32-bit partials are kept; STEPS = 0: any multiple of 64, at run time.
template <int NR, int MR, int STEPS>
__attribute__((target("avx2"), always_inline))
static inline void tile_avx2(const Problem& p, const Scratch& s, int64_t n, int64_t m, int64_t g, int32_t* out) {
    constexpr int T = NR * MR;
    const int64_t half = p.K / 2, gh = STEPS ? 32 * STEPS : p.group / 2;
    const __m256i mask = _mm256_set1_epi8(0x0F), eight88 = _mm256_set1_epi8(static_cast<char>(0x88));
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[T], part[T];
    for (int t = 0; t < T; ++t) acc[t] = part[t] = _mm256_setzero_si256();
    int steps = 0;
    const uint8_t* wg = p.w + n * half + g * gh;
    const int8_t* eg = s.x_even + m * half + g * gh;
    const int8_t* og = s.x_odd + m * half + g * gh;
    for (int64_t j = 0; j < gh; j += 32) {
        if constexpr (MR == 1) {        // decode: each weight row is used once, so unpack and use it at once
            __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(eg + j));
            __m256i o = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(og + j));
            for (int r = 0; r < NR; ++r) {
                __m256i u = _mm256_xor_si256(
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + r * half + j)), eight88);
                __m256i d = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(u, mask), e),
                                             _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(u, 4), mask), o));
                part[r] = _mm256_add_epi16(part[r], d);
                W4_KEEP_IN_REGISTER(part[r]);
            }
        } else {
            __m256i lo[NR], hi[NR];
            for (int r = 0; r < NR; ++r) {
                // XOR 0x88 turns both two's-complement nibbles into w + 8 at once
                __m256i u = _mm256_xor_si256(
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + r * half + j)), eight88);
                lo[r] = _mm256_and_si256(u, mask);
                hi[r] = _mm256_and_si256(_mm256_srli_epi16(u, 4), mask);
            }
            for (int q = 0; q < MR; ++q) {
                __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(eg + q * half + j));
                __m256i o = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(og + q * half + j));
                for (int r = 0; r < NR; ++r) {
                    part[r * MR + q] = _mm256_add_epi16(part[r * MR + q], _mm256_add_epi16(
                        _mm256_maddubs_epi16(lo[r], e), _mm256_maddubs_epi16(hi[r], o)));
                    W4_KEEP_IN_REGISTER(part[r * MR + q]);
                }
            }
        }
        if (!STEPS && ++steps == 4) {
            for (int t = 0; t < T; ++t) {
                acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(part[t], ones));
                part[t] = _mm256_setzero_si256();
            }
            steps = 0;
        }
    }
    for (int t = 0; t < T; ++t) acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(part[t], ones));
    // minus 8·Σx of the tile's tokens (x_group_sum holds a group's tokens side by side)
    const int32_t* xsum = s.x_group_sum + g * p.M + m;
    if constexpr (T == 8 && (MR == 4 || MR == 1)) {
        __m256i corr = MR == 4 ? _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xsum)))
                               : _mm256_set1_epi32(xsum[0]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_sub_epi32(hsum8_avx2(acc), _mm256_slli_epi32(corr, 3)));
    } else {
        for (int t = 0; t < T; ++t) out[t] = hsum_avx2(acc[t]) - 8 * xsum[t % MR];
    }
}

// int8 weights on x86: x·w = |w| · (x with w's sign), an unsigned×signed byte product, so maddubs
// and dpbusd apply.  A pair of such products is at most 2 · 128 · 127 = 32,512 in magnitude (no
// 16-bit saturation) provided no activation is -128, whose negation would wrap; launch() sends
// activations holding -128 to the scalar loop.  No offset correction is needed.
// One group of an NR × MR tile, widened to 32 bits after every 32-byte step.
template <int NR, int MR>
__attribute__((target("avx2"), always_inline))
static inline void tile8_avx2(const Problem& p, int64_t n, int64_t m, int64_t g, int32_t* out) {
    constexpr int T = NR * MR;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_si256();
    const int8_t* wg = reinterpret_cast<const int8_t*>(p.w) + n * p.K + g * p.group;
    const int8_t* xg = p.x + m * p.K + g * p.group;
    for (int64_t j = 0; j < p.group; j += 32) {
        if constexpr (MR == 1) {        // decode: use each weight block as soon as it is loaded
            __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + j));
            for (int r = 0; r < NR; ++r) {
                __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + r * p.K + j));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(
                    _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w)), ones));
                W4_KEEP_IN_REGISTER(acc[r]);
            }
        } else {
            __m256i w[NR], mag[NR];
            for (int r = 0; r < NR; ++r) {
                w[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + r * p.K + j));
                mag[r] = _mm256_abs_epi8(w[r]);
            }
            for (int q = 0; q < MR; ++q) {
                __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + q * p.K + j));
                for (int r = 0; r < NR; ++r) {
                    acc[r * MR + q] = _mm256_add_epi32(acc[r * MR + q], _mm256_madd_epi16(
                        _mm256_maddubs_epi16(mag[r], _mm256_sign_epi8(x, w[r])), ones));
                    W4_KEEP_IN_REGISTER(acc[r * MR + q]);
                }
            }
        }
    }
    if constexpr (T == 8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), hsum8_avx2(acc));
    else for (int t = 0; t < T; ++t) out[t] = hsum_avx2(acc[t]);
}

// The two weight forms as rows_avx2 sees them.
struct Int4Rows {
    const Problem& p;
    const Scratch& s;
    static constexpr int64_t kChunk = 32;       // 64 KiB of packed rows at K = 4096
    template <int NR, int MR, int STEPS>
    __attribute__((target("avx2"))) void run(int64_t n, int64_t m, int32_t* sums) const {
        block_avx2<NR, MR>(p, n, m, sums, [this, n, m](int64_t g, int32_t* out) __attribute__((target("avx2"))) {
            tile_avx2<NR, MR, STEPS>(p, s, n, m, g, out);
        });
    }
    template <int NR, int MR>
    __attribute__((target("avx2"))) void block(int64_t n, int64_t m, int32_t* sums) const {
        switch (p.group) {
            case 64: run<NR, MR, 1>(n, m, sums); break;
            case 128: run<NR, MR, 2>(n, m, sums); break;
            case 256: run<NR, MR, 4>(n, m, sums); break;
            default: run<NR, MR, 0>(n, m, sums);
        }
    }
};

struct Int8Rows {
    const Problem& p;
    static constexpr int64_t kChunk = 16;       // 64 KiB of rows at K = 4096
    template <int NR, int MR>
    __attribute__((target("avx2"))) void block(int64_t n, int64_t m, int32_t* sums) const {
        block_avx2<NR, MR>(p, n, m, sums, [this, n, m](int64_t g, int32_t* out) __attribute__((target("avx2"))) {
            tile8_avx2<NR, MR>(p, n, m, g, out);
        });
    }
};

__attribute__((target("avx2")))
bool group_sums_avx2(const Problem& p, const Scratch& s, int64_t n0, int64_t n1) {
    rows_avx2(p, Int4Rows{p, s}, n0, n1);
    return true;
}

__attribute__((target("avx2")))
bool w8_sums_avx2(const Problem& p, int64_t n0, int64_t n1) {
    rows_avx2(p, Int8Rows{p}, n0, n1);
    return true;
}

// ---------------------------------------------------------------------------------------------
// Tiled weights: the loop of w4_tiled.h, compiled here for AVX2 (w4_vnni.cpp compiles it for VNNI).
// ---------------------------------------------------------------------------------------------
}  // namespace w4 (the header opens its own)
#define W4_TILED_TARGET __attribute__((target("avx2")))
#include "w4_tiled.h"
namespace w4 {

__attribute__((target("avx2")))
bool tiled_sums_avx2(const Problem& p, const Scratch& s, int64_t n0, int64_t n1) {
    tiled_rows<false>(p, s, n0, n1);
    return true;
}

__attribute__((target(W4_VNNI)))
bool w8_sums_vnni(const Problem& p, int64_t n0, int64_t n1) {
    each_output(p, n0, n1, [&p](int64_t n, int64_t m, int64_t g) __attribute__((target(W4_VNNI))) {
        const int8_t* wr = reinterpret_cast<const int8_t*>(p.w) + n * p.K;
        const int8_t* xr = p.x + m * p.K;
        __m256i acc = _mm256_setzero_si256();
        for (int64_t j = g * p.group; j < (g + 1) * p.group; j += 32) {
            __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + j));
            __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + j));
            acc = _mm256_dpbusd_epi32(acc, _mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
        }
        return hsum_avx2(acc);
    });
    return true;
}

__attribute__((target(W4_VNNI)))
bool group_sums_vnni(const Problem& p, const Scratch& s, int64_t n0, int64_t n1) {
    each_output(p, n0, n1, [&p, &s](int64_t n, int64_t m, int64_t g) __attribute__((target(W4_VNNI))) {
        const int64_t half = p.K / 2, gh = p.group / 2;
        const __m256i mask = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(0x08);
        const uint8_t* wr = p.w + n * half;
        const int8_t* xe = s.x_even + m * half;
        const int8_t* xo = s.x_odd + m * half;
        __m256i acc = _mm256_setzero_si256();
        for (int64_t j = g * gh; j < (g + 1) * gh; j += 32) {
            __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + j));
            __m256i lo = _mm256_xor_si256(_mm256_and_si256(packed, mask), eight);
            __m256i hi = _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(packed, 4), mask), eight);
            acc = _mm256_dpbusd_epi32(acc, lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xe + j)));
            acc = _mm256_dpbusd_epi32(acc, hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xo + j)));
        }
        return hsum_avx2(acc) - 8 * s.x_group_sum[g * p.M + m];
    });
    return true;
}

// The same quantizer eight floats at a time: a division, max and round-half-even are exact IEEE
// operations in any order, so the integers and the scale equal the scalar loop's (and golden's).
// Without this, every nearbyint was a libm call: 25 µs for one 4096-wide token, per layer.
__attribute__((target("avx2")))
static bool quantize_row_avx2(const float* row, int64_t K, float qmax, float floor, int8_t* q, float* scale) {
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)), largest = _mm256_set1_ps(FLT_MAX);
    const int64_t whole = K / 32 * 32;
    __m256 top = _mm256_setzero_ps();
    int finite = -1;
    for (int64_t k = 0; k < whole; k += 8) {
        const __m256 a = _mm256_and_ps(_mm256_loadu_ps(row + k), magnitude);
        finite &= _mm256_movemask_ps(_mm256_cmp_ps(a, largest, _CMP_LE_OQ));     // false for NaN and Inf
        top = _mm256_max_ps(top, a);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, top);
    float t = 0.0f;
    for (float v : lanes) t = std::max(t, v);
    const bool ok = scan_row(row, whole, K, t);
    if ((finite & 0xFF) != 0xFF || !ok) return false;
    const float s = std::max(t / qmax, floor);
    *scale = s;
    const __m256 step = _mm256_set1_ps(s), hi = _mm256_set1_ps(qmax), lo = _mm256_set1_ps(-qmax - 1);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t k = 0; k < whole; k += 32) {
        __m256i v[4];
        for (int i = 0; i < 4; ++i) {
            __m256 r = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(row + k + 8 * i), step),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v[i] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
        }
        // packs work within 128-bit lanes: the bytes come out in 4-byte pieces ordered 0,2,4,6,1,3,5,7
        __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), _mm256_permutevar8x32_epi32(bytes, order));
    }
    round_row(row, whole, K, s, qmax, q);
    return true;
}

bool has_avx2() { return __builtin_cpu_supports("avx2"); }
bool has_vnni() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#else
bool group_sums_avx2(const Problem&, const Scratch&, int64_t, int64_t) { return false; }
bool group_sums_vnni(const Problem&, const Scratch&, int64_t, int64_t) { return false; }
bool w8_sums_avx2(const Problem&, int64_t, int64_t) { return false; }
bool tiled_sums_avx2(const Problem&, const Scratch&, int64_t, int64_t) { return false; }
bool w8_sums_vnni(const Problem&, int64_t, int64_t) { return false; }
static bool quantize_row_avx2(const float*, int64_t, float, float, int8_t*, float*) { return false; }
bool has_avx2() { return false; }
bool has_vnni() { return false; }
#endif

#ifdef W4_NEON
// Signed dot products: the nibbles are sign-extended (shift left 4, arithmetic shift right 4), so
// no offset correction is needed here; x_group_sum is unused.
bool group_sums_neon(const Problem& p, const Scratch& s, int64_t n0, int64_t n1) {
    each_output(p, n0, n1, [&p, &s](int64_t n, int64_t m, int64_t g) {
        const int64_t half = p.K / 2, gh = p.group / 2;
        const uint8_t* wr = p.w + n * half;
        const int8_t* xe = s.x_even + m * half;
        const int8_t* xo = s.x_odd + m * half;
        int32x4_t acc = vdupq_n_s32(0);
        for (int64_t j = g * gh; j < (g + 1) * gh; j += 16) {
            int8x16_t packed = vreinterpretq_s8_u8(vld1q_u8(wr + j));
            int8x16_t lo = vshrq_n_s8(vshlq_n_s8(packed, 4), 4);
            int8x16_t hi = vshrq_n_s8(packed, 4);
            acc = vdotq_s32(acc, lo, vld1q_s8(xe + j));
            acc = vdotq_s32(acc, hi, vld1q_s8(xo + j));
        }
        return vaddvq_s32(acc);
    });
    return true;
}

// int8 weights: signed × signed dot products, exact for every int8 value.
bool w8_sums_neon(const Problem& p, int64_t n0, int64_t n1) {
    each_output(p, n0, n1, [&p](int64_t n, int64_t m, int64_t g) {
        const int8_t* wr = reinterpret_cast<const int8_t*>(p.w) + n * p.K;
        const int8_t* xr = p.x + m * p.K;
        int32x4_t acc = vdupq_n_s32(0);
        for (int64_t j = g * p.group; j < (g + 1) * p.group; j += 16)
            acc = vdotq_s32(acc, vld1q_s8(wr + j), vld1q_s8(xr + j));
        return vaddvq_s32(acc);
    });
    return true;
}
bool has_neon() { return true; }
#else
bool group_sums_neon(const Problem&, const Scratch&, int64_t, int64_t) { return false; }
bool w8_sums_neon(const Problem&, int64_t, int64_t) { return false; }
bool has_neon() { return false; }
#endif

bool quantize_row(const float* row, int64_t K, int bits, float floor, int8_t* q, float* scale) {
    static const bool avx2 = has_avx2();
    const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
    return avx2 ? quantize_row_avx2(row, K, qmax, floor, q, scale) : quantize_row_scalar(row, K, qmax, floor, q, scale);
}

}  // namespace w4
