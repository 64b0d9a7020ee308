// Prefill on Intel AMX (Sapphire Rapids and later): TDPBSSD multiplies 16 × 64 signed int8 tiles into
// 16 × 16 int32 sums exactly (four products per 32-bit sum, no intermediate saturation), 16,384 MACs
// per instruction.  Used for tiled weights (int4 or int8), the scaled epilogue, groups of a multiple
// of 64 and whole pairs of 8-row blocks; bindings.cpp sends everything else to the VNNI loops, which
// every AMX CPU also has.
//
// Per pair of row blocks (16 outputs), the weights are unpacked once into the B-tile form: row q holds
// the 16 outputs' columns 4q..4q+3 (64 bytes), sign-extended from nibbles for int4.  x is laid out
// once per call as contiguous 1 KiB A tiles (amx_pack_tokens).  A group's sums leave the C tile through
// memory and go through the same float epilogue as the other paths (Σ_g float(sum_g) · w_scale in
// order, then · x_scale; separate multiplies and adds), so the results are bit-identical.
#include "w4_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#define W4_TILED_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8")))
#include "w4_tiled.h"       // transpose_scales

namespace w4 {
namespace {

constexpr int kTokens = 16;     // rows of an A and a C tile
constexpr int kOutputs = 16;    // columns of a C tile: two 8-row blocks
constexpr int kStep = 64;       // K values per A tile row and per TDPBSSD

// The tile palette: tiles 0 and 1 accumulate two token tiles, 2 and 3 are their A tiles, 4 the shared
// B tile; all 16 rows × 64 bytes.
struct alignas(64) TileConfig {
    uint8_t palette = 1;
    uint8_t start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

bool request_tiles() {
    // Linux hands out the 8 KiB of tile state only to a process that asks (ARCH_REQ_XCOMP_PERM for
    // XFEATURE_XTILEDATA); without it the first tile instruction faults.
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// The B-tile form of row blocks b and b + 1: (K/4, 64) bytes, row q = the 16 outputs' columns 4q..4q+3.
W4_TILED_TARGET
void unpack_pair(const Problem& p, int64_t b, int8_t* out) {
    if (p.w_bits == 8) {        // a tiled int8 block (b, q) is already 8 outputs × 4 columns
        const int64_t block_bytes = (p.K / 4) * 32;
        const uint8_t* w0 = p.w + b * block_bytes;
        for (int64_t q = 0; q < p.K / 4; ++q) {
            std::memcpy(out + q * 64, w0 + q * 32, 32);
            std::memcpy(out + q * 64 + 32, w0 + block_bytes + q * 32, 32);
        }
        return;
    }
    // int4 block (b, c): byte 4r + i holds columns 8c + i (low nibble) and 8c + 4 + i (high): the low
    // nibbles are B row 2c, the high ones row 2c + 1.  Sign extension: ((v & 15) ^ 8) - 8.
    const int64_t block_bytes = (p.K / 8) * 32;
    const __m256i mask = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(0x08);
    for (int64_t c = 0; c < p.K / 8; ++c)
        for (int nb = 0; nb < 2; ++nb) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.w + (b + nb) * block_bytes + c * 32));
            const __m256i lo = _mm256_sub_epi8(_mm256_xor_si256(_mm256_and_si256(v, mask), eight), eight);
            const __m256i hi = _mm256_sub_epi8(_mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), mask), eight), eight);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (2 * c) * 64 + nb * 32), lo);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (2 * c + 1) * 64 + nb * 32), hi);
        }
}

}  // namespace

// x in A-tile form: tile (i, s) = tokens 16i..16i+15 × columns 64s..64s+63, 1 KiB with rows of 64
// bytes, zero past the last token.  Loaded straight from x (rows 4 KiB apart at K = 4096), every row
// of a tile fell in the same L1 set, and the tile loads, not the multiplies, set the pace.
void amx_pack_tokens(const Problem& p, int8_t* out) {
    const int64_t steps = p.K / kStep, tiles = (p.M + kTokens - 1) / kTokens;
    for (int64_t i = 0; i < tiles; ++i)
        for (int64_t s = 0; s < steps; ++s) {
            int8_t* tile = out + (i * steps + s) * kTokens * kStep;
            for (int t = 0; t < kTokens; ++t) {
                const int64_t m = i * kTokens + t;
                if (m < p.M) std::memcpy(tile + t * kStep, p.x + m * p.K + s * kStep, kStep);
                else std::memset(tile + t * kStep, 0, kStep);
            }
        }
}

// Rows [n0, n1) (multiples of 16) for every token; p.x is in amx_pack_tokens' form.  Tokens past p.M
// in the last tile are computed and not written.
W4_TILED_TARGET
void amx_rows(const Problem& p, int64_t n0, int64_t n1) {
    const int64_t groups = p.K / p.group, steps = p.group / kStep;
    thread_local std::vector<int8_t> weights;
    thread_local std::vector<float> scales;
    weights.resize(static_cast<size_t>(p.K * kOutputs));
    scales.resize(static_cast<size_t>(kOutputs * groups));
    alignas(64) int32_t c_tiles[2][kTokens][kOutputs];
    alignas(64) float y[2 * kTokens][kOutputs];

    TileConfig cfg;
    for (int t = 0; t < 5; ++t) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    for (int64_t n = n0; n < n1; n += kOutputs) {
        const int64_t b = n / 8;
        unpack_pair(p, b, weights.data());
        for (int nb = 0; nb < 2; ++nb) transpose_scales(p.w_scale + 8 * (b + nb) * groups, groups, scales.data() + 8 * nb, 16);
        for (int64_t m = 0; m < p.M; m += 2 * kTokens) {
            const bool two = m + kTokens < p.M;             // a second token tile
            const int8_t* a0 = p.x + m * p.K;               // tile (m / 16, 0); the next tile follows it
            const int8_t* a1 = a0 + kTokens * p.K;
            for (int64_t g = 0; g < groups; ++g) {
                _tile_zero(0);
                _tile_zero(1);
                for (int64_t s = 0; s < steps; ++s) {
                    const int64_t k = g * p.group + s * kStep;
                    _tile_loadd(4, weights.data() + (k / 4) * 64, 64);
                    _tile_loadd(2, a0 + k * kTokens, kStep);
                    _tile_dpbssd(0, 2, 4);
                    if (two) {
                        _tile_loadd(3, a1 + k * kTokens, kStep);
                        _tile_dpbssd(1, 3, 4);
                    }
                }
                _tile_stored(0, c_tiles[0], 64);
                if (two) _tile_stored(1, c_tiles[1], 64);
                const __m512 ws = _mm512_loadu_ps(scales.data() + g * 16);
                for (int t = 0; t < (two ? 2 : 1) * kTokens; ++t) {
                    const __m512 term = _mm512_mul_ps(
                        _mm512_cvtepi32_ps(_mm512_load_si512(c_tiles[t / kTokens][t % kTokens])), ws);
                    const __m512 acc = g ? _mm512_load_ps(y[t]) : _mm512_setzero_ps();
                    _mm512_store_ps(y[t], _mm512_add_ps(acc, term));
                }
            }
            for (int t = 0; t < (two ? 2 : 1) * kTokens && m + t < p.M; ++t)
                _mm512_storeu_ps(p.y_out + (m + t) * p.N + n, _mm512_mul_ps(_mm512_load_ps(y[t]), _mm512_set1_ps(p.x_scale[m + t])));
        }
    }
    _tile_release();
}

bool amx_fits(const Problem& p) {
    return p.tiled && p.epilogue == Epilogue::Scaled && p.M >= kTokens && p.N % kOutputs == 0 && p.group % kStep == 0;
}

int64_t amx_tokens_bytes(const Problem& p) { return (p.M + kTokens - 1) / kTokens * kTokens * p.K; }

bool has_amx() {
    // The epilogue and the weight unpacking use the VNNI build's AVX-512 subsets (has_vnni's flags).
    static const bool ok = has_vnni() && __builtin_cpu_supports("amx-int8") && __builtin_cpu_supports("amx-tile") &&
                           request_tiles();
    return ok;
}

}  // namespace w4
#else
namespace w4 {
bool amx_fits(const Problem&) { return false; }
int64_t amx_tokens_bytes(const Problem&) { return 0; }
void amx_pack_tokens(const Problem&, int8_t*) {}
void amx_rows(const Problem&, int64_t, int64_t) {}
bool has_amx() { return false; }
}  // namespace w4
#endif
