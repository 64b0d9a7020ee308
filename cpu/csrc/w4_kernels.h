// Integer kernels of the CPU fallback: exact int32 group sums of int8 (or int4) activations times
// packed int4 weights, or times int8 weights.  Plain C++ (no torch), so every path also builds with a
// cross compiler.
//
// Layout (golden.pack_int4): weight row n holds K int4 values in K/2 bytes; element 2k is the low
// nibble of byte k, element 2k+1 the high nibble, two's complement.  int8 weights (w_bits = 8) are
// plain rows of K bytes.
//
// Tiled int4 (w_bits = 4, tiled): the same values rearranged for SIMD lanes that each hold one
// output row.  Weights are (N/8, K/8, 32) bytes: block (b, c) holds rows 8b..8b+7 × columns
// 8c..8c+7, and its byte 4r + i holds w[8b + r][8c + i] in the low nibble and w[8b + r][8c + 4 + i]
// in the high nibble (cpu.tile_weights makes it from the packed form).  A 32-byte load is then eight
// rows × eight columns, and a decode call reads each thread's weights as one sequential stream.
// Tiled int8 (w_bits = 8, tiled): (N/8, K/4, 32) bytes, byte 4r + i of block (b, c) = w[8b + r][4c + i].
//
// out[m][n][g] = sum over k in group g of x[m][k] * w[n][k], exactly as golden.group_accumulators.
#pragma once
#include <cstddef>
#include <cstdint>

namespace w4 {

// What happens to the G group sums of one output (m, n) once they are known.
enum class Epilogue {
    Sums,       // int32 out[m][n][g] = the sums themselves
    Scaled,     // float y[m][n] = x_scale[m] · Σ_g sums[g] · w_scale[n][g]   (float32, g in order)
    Requant,    // int8 q[m][n] = clamp((Σ_g sums[g]·wmul[n][g]) · tmul[m] + 2^(shift-1)) >> shift)
};

struct Problem {
    const int8_t* x;        // (M, K) activations, row-major
    const uint8_t* w;       // (N, K/2) packed int4 weights, or (N, K) int8 weights, row-major
    int w_bits;             // 4 or 8
    bool tiled;             // the tiled layouts above (N a multiple of 8; K of 8 for int4, 4 for int8)
    int64_t M, K, N, group;
    Epilogue epilogue;
    int32_t* sums_out;      // Sums: (M, N, G)
    float* y_out;           // Scaled: (M, N)
    const float* x_scale;   //   (M,)
    const float* w_scale;   //   (N, G)
    int8_t* q_out;          // Requant: (M, N)
    const int64_t* wmul;    //   (N, G), unsigned multipliers
    const int64_t* tmul;    //   (M,)
    int shift, lo, hi;      //   rounding shift in [1, 62], clamp range
};

// Apply the problem's epilogue to the G sums of output (m, n): sums[g · stride].
void finish(const Problem& p, int64_t m, int64_t n, const int32_t* sums, int64_t stride);

// Every path computes rows n in [n0, n1) of the output for all M; callers split N across threads.
// The SIMD paths need scratch: x split into even and odd elements and per-group sums of x
// (prepare() fills it once per call, shared by all threads).
struct Scratch {
    int8_t* x_even;         // (M, K/2)
    int8_t* x_odd;          // (M, K/2)
    int32_t* x_group_sum;   // (G, M): the tokens of one group side by side
    int32_t* x_quads;       // decode (M = 1) with tiled weights, or null: (K/4, 8), row j = x[4j..4j+3]
                            // as one int32 in all eight lanes (what the AVX2 loop would broadcast per block)
};

// Fills the scratch; with tiled weights only x_group_sum is used, and x_even/x_odd may be null.
void prepare(const Problem& p, const Scratch& s);

// Fills s.x_quads for a one-token problem (the loops then load each token quad instead of
// broadcasting it again for every 8 rows of weights: decode runs out of vector ALU slots first).
void prepare_quads(const Problem& p, const Scratch& s);

void group_sums_scalar(const Problem& p, int64_t n0, int64_t n1);
bool group_sums_avx2(const Problem& p, const Scratch& s, int64_t n0, int64_t n1);   // false: not built in
bool group_sums_vnni(const Problem& p, const Scratch& s, int64_t n0, int64_t n1);
bool group_sums_neon(const Problem& p, const Scratch& s, int64_t n0, int64_t n1);

// Tiled weights (int4 or int8): the portable loop, AVX2 and AVX-512 VNNI (w4_tiled.h, one loop
// compiled for both).  The SIMD loops need n0 and n1 to be multiples of 8 (whole row blocks), the
// SIMD group sizes of fits() and s.x_group_sum (prepare()).  The VNNI loop is exact for every int8
// activation, -128 included; the AVX2 one not for int8 weights against -128 (see below).
void tiled_sums_scalar(const Problem& p, int64_t n0, int64_t n1);
bool tiled_sums_avx2(const Problem& p, const Scratch& s, int64_t n0, int64_t n1);
bool tiled_sums_vnni(const Problem& p, const Scratch& s, int64_t n0, int64_t n1);   // w4_vnni.cpp

// Prefill on Intel AMX tiles (w4_amx.cpp), where amx_fits(): tiled weights, the scaled epilogue, 16 or
// more tokens (a tile's rows; fewer would be mostly zero padding), N a multiple of 16, groups a
// multiple of 64.  amx_pack_tokens() lays x out as A tiles, amx_tokens_bytes() of them, once per call;
// amx_rows() then reads that form through p.x, rows [n0, n1) in multiples of 16.  The caller must have
// checked has_amx().
bool amx_fits(const Problem& p);
int64_t amx_tokens_bytes(const Problem& p);
void amx_pack_tokens(const Problem& p, int8_t* out);
void amx_rows(const Problem& p, int64_t n0, int64_t n1);

// Which SIMD paths this build contains and this CPU can run.  has_amx() also asks Linux for the tile
// state (once per process), and is false when that is refused.
bool has_avx2();
bool has_vnni();
bool has_amx();
bool has_neon();

// int8 weights: every path reads plain rows.  The x86 paths multiply |w| (unsigned) by x with w's
// sign (_mm256_sign_epi8), which is exact unless an activation is -128 (its negation wraps): the
// caller must send such activations to the scalar loop (bindings.cpp scans for them).
void w8_sums_scalar(const Problem& p, int64_t n0, int64_t n1);
bool w8_sums_avx2(const Problem& p, int64_t n0, int64_t n1);
bool w8_sums_vnni(const Problem& p, int64_t n0, int64_t n1);
bool w8_sums_neon(const Problem& p, int64_t n0, int64_t n1);

// Symmetric per-token quantization of one row, as golden.quant (qparams + quantize, symmetric "row"):
// scale = max(max|x| / qmax, floor), q = clamp(round-half-even(x / scale)).  False, with nothing
// written, when the row holds NaN or Inf.  AVX2 where the CPU has it, else a portable loop.
bool quantize_row(const float* row, int64_t K, int bits, float floor, int8_t* q, float* scale);

// The SIMD paths work on whole 64-element blocks (32 packed bytes) of a group; with int8 weights,
// on whole 32-byte blocks.
constexpr int64_t kBlock = 64;
constexpr int64_t kBlock8 = 32;

}  // namespace w4
