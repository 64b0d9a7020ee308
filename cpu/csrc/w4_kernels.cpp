// See w4_kernels.h.  The x86 paths are compiled with per-function target attributes and chosen at
// run time from the CPU's flags, so one binary runs everywhere and uses what the CPU has.
#include "w4_kernels.h"

#include <algorithm>
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
static int32_t* sums_buffer(int64_t count) {
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
__attribute__((target("avx2")))
static inline int32_t hsum_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

// NR weight rows × MR activation rows, one group: each weight block is unpacked once and used MR
// times, each activation block loaded once and used NR times; the NR·MR accumulators stay in registers.
// Products are summed in 16 bits for up to 4 steps of 32 bytes (|one step| ≤ 7680, four ≤ 30720),
// then widened to 32 bits, so the widening costs a quarter of what it would per step.
// STEPS > 0: the group is exactly STEPS ≤ 4 steps (group 64, 128, 192 or 256), known when compiling,
// so the loop unrolls and no 32-bit partials are kept; STEPS = 0: any multiple of 64, at run time.
template <int NR, int MR, int STEPS>
__attribute__((target("avx2"), always_inline))
static inline void tile_avx2(const Problem& p, const Scratch& s, int64_t n, int64_t m, int64_t g, int32_t* sums) {
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
            for (int r = 0; r < NR; ++r)
                part[r * MR + q] = _mm256_add_epi16(part[r * MR + q], _mm256_add_epi16(
                    _mm256_maddubs_epi16(lo[r], e), _mm256_maddubs_epi16(hi[r], o)));
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
    // sums holds this tile's outputs side by side: sums[g·T + t], t = r·MR + q.
    const int32_t* xsum = s.x_group_sum + g * p.M + m;
    if constexpr (T == 8 && (MR == 4 || MR == 1)) {
        // Eight horizontal sums at once: two rounds of hadd, then fold the 128-bit halves.
        __m256i h01 = _mm256_hadd_epi32(acc[0], acc[1]), h23 = _mm256_hadd_epi32(acc[2], acc[3]);
        __m256i h45 = _mm256_hadd_epi32(acc[4], acc[5]), h67 = _mm256_hadd_epi32(acc[6], acc[7]);
        __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
        __m256i total = _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
        // minus 8·Σx: tokens q = 0..3 for both weight rows (MR = 4), or the one token (MR = 1)
        __m256i corr = MR == 4 ? _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xsum)))
                               : _mm256_set1_epi32(xsum[0]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + g * T), _mm256_sub_epi32(total, _mm256_slli_epi32(corr, 3)));
    } else {
        for (int t = 0; t < T; ++t) sums[g * T + t] = hsum_avx2(acc[t]) - 8 * xsum[t % MR];
    }
}

template <int NR, int MR, int STEPS>
__attribute__((target("avx2")))
static void groups_avx2(const Problem& p, const Scratch& s, int64_t n, int64_t m, int32_t* sums) {
    const int64_t groups = p.K / p.group;
    for (int64_t g = 0; g < groups; ++g) tile_avx2<NR, MR, STEPS>(p, s, n, m, g, sums);
}

template <int NR, int MR>
__attribute__((target("avx2")))
static void block_avx2(const Problem& p, const Scratch& s, int64_t n, int64_t m, int32_t* sums) {
    switch (p.group) {
        case 64: groups_avx2<NR, MR, 1>(p, s, n, m, sums); break;
        case 128: groups_avx2<NR, MR, 2>(p, s, n, m, sums); break;
        case 256: groups_avx2<NR, MR, 4>(p, s, n, m, sums); break;
        default: groups_avx2<NR, MR, 0>(p, s, n, m, sums);
    }
    for (int r = 0; r < NR; ++r)
        for (int q = 0; q < MR; ++q) finish(p, m + q, n + r, sums + r * MR + q, NR * MR);
}

__attribute__((target("avx2")))
bool group_sums_avx2(const Problem& p, const Scratch& s, int64_t n0, int64_t n1) {
    int32_t* sums = sums_buffer(8 * (p.K / p.group));
    // Prefill: 2 weight rows × 4 tokens (8 accumulators).  Cache blocking: a chunk of 32 weight rows
    // (64 KiB at K = 4096) stays in L2 while every 4-token block (16 KiB, L1) passes over it, so the
    // weights come from memory once and the activations from L2, not once per weight row.
    int64_t n = n0;
    if (p.M >= 4) {
        constexpr int64_t kChunk = 32;
        for (; n + 2 <= n1; n += kChunk) {
            const int64_t end = n + std::min<int64_t>(kChunk, (n1 - n) / 2 * 2);
            int64_t m = 0;
            for (; m + 4 <= p.M; m += 4)
                for (int64_t r = n; r < end; r += 2) block_avx2<2, 4>(p, s, r, m, sums);
            for (; m < p.M; ++m)
                for (int64_t r = n; r < end; r += 2) block_avx2<2, 1>(p, s, r, m, sums);
            if (end - n < kChunk) { n = end; break; }
        }
    }
    // Decode: 8 weight rows × 1 token, then 4.
    for (; n + 8 <= n1; n += 8)
        for (int64_t m = 0; m < p.M; ++m) block_avx2<8, 1>(p, s, n, m, sums);
    for (; n + 4 <= n1; n += 4)
        for (int64_t m = 0; m < p.M; ++m) block_avx2<4, 1>(p, s, n, m, sums);
    for (; n < n1; ++n)
        for (int64_t m = 0; m < p.M; ++m) block_avx2<1, 1>(p, s, n, m, sums);
    return true;
}

// ---------------------------------------------------------------------------------------------
// int8 weights on x86: x·w = |w| · (x with w's sign), an unsigned×signed byte product, so maddubs
// and dpbusd apply.  A pair of such products is at most 2 · 128 · 127 = 32,512 in magnitude (no
// 16-bit saturation) provided no activation is -128, whose negation would wrap; launch() sends
// activations holding -128 to the scalar loop.  No offset correction is needed.
// ---------------------------------------------------------------------------------------------

// NR weight rows × MR tokens over one group, widened to 32 bits after every 32-byte step.
template <int NR, int MR>
__attribute__((target("avx2"), always_inline))
static inline void tile8_avx2(const Problem& p, int64_t n, int64_t m, int64_t g, int32_t* sums) {
    constexpr int T = NR * MR;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_si256();
    const int8_t* wg = reinterpret_cast<const int8_t*>(p.w) + n * p.K + g * p.group;
    const int8_t* xg = p.x + m * p.K + g * p.group;
    for (int64_t j = 0; j < p.group; j += 32) {
        __m256i w[NR], mag[NR];
        for (int r = 0; r < NR; ++r) {
            w[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wg + r * p.K + j));
            mag[r] = _mm256_abs_epi8(w[r]);
        }
        for (int q = 0; q < MR; ++q) {
            __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + q * p.K + j));
            for (int r = 0; r < NR; ++r)
                acc[r * MR + q] = _mm256_add_epi32(acc[r * MR + q], _mm256_madd_epi16(
                    _mm256_maddubs_epi16(mag[r], _mm256_sign_epi8(x, w[r])), ones));
        }
    }
    for (int t = 0; t < T; ++t) sums[g * T + t] = hsum_avx2(acc[t]);
}

template <int NR, int MR>
__attribute__((target("avx2")))
static void block8_avx2(const Problem& p, int64_t n, int64_t m, int32_t* sums) {
    const int64_t groups = p.K / p.group;
    for (int64_t g = 0; g < groups; ++g) tile8_avx2<NR, MR>(p, n, m, g, sums);
    for (int r = 0; r < NR; ++r)
        for (int q = 0; q < MR; ++q) finish(p, m + q, n + r, sums + r * MR + q, NR * MR);
}

__attribute__((target("avx2")))
bool w8_sums_avx2(const Problem& p, int64_t n0, int64_t n1) {
    int32_t* sums = sums_buffer(8 * (p.K / p.group));
    int64_t n = n0;
    if (p.M >= 4) {     // prefill: 2 weight rows × 4 tokens, weight rows in L2-sized chunks as for int4
        constexpr int64_t kChunk = 16;
        for (; n + 2 <= n1; n += kChunk) {
            const int64_t end = n + std::min<int64_t>(kChunk, (n1 - n) / 2 * 2);
            int64_t m = 0;
            for (; m + 4 <= p.M; m += 4)
                for (int64_t r = n; r < end; r += 2) block8_avx2<2, 4>(p, r, m, sums);
            for (; m < p.M; ++m)
                for (int64_t r = n; r < end; r += 2) block8_avx2<2, 1>(p, r, m, sums);
            if (end - n < kChunk) { n = end; break; }
        }
    }
    for (; n + 4 <= n1; n += 4)      // decode: 4 weight rows × 1 token
        for (int64_t m = 0; m < p.M; ++m) block8_avx2<4, 1>(p, n, m, sums);
    for (; n < n1; ++n)
        for (int64_t m = 0; m < p.M; ++m) block8_avx2<1, 1>(p, n, m, sums);
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

bool has_avx2() { return __builtin_cpu_supports("avx2"); }
bool has_vnni() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#else
bool group_sums_avx2(const Problem&, const Scratch&, int64_t, int64_t) { return false; }
bool group_sums_vnni(const Problem&, const Scratch&, int64_t, int64_t) { return false; }
bool w8_sums_avx2(const Problem&, int64_t, int64_t) { return false; }
bool w8_sums_vnni(const Problem&, int64_t, int64_t) { return false; }
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

}  // namespace w4
