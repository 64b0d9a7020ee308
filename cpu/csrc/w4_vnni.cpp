// The tiled-weight loop of w4_tiled.h compiled for AVX-512 VNNI (256-bit vectors: the same tiles as
// AVX2, with dpbusd and 32 vector registers).  Its own file because a function's instruction set is
// fixed when it is compiled: w4_kernels.cpp compiles the same loop for AVX2.
#include "w4_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define W4_TILED_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#include "w4_tiled.h"

namespace w4 {
W4_TILED_TARGET
bool tiled_sums_vnni(const Problem& p, const Scratch& s, int64_t n0, int64_t n1) {
    tiled_rows<true>(p, s, n0, n1);
    return true;
}
}  // namespace w4
#else
namespace w4 {
bool tiled_sums_vnni(const Problem&, const Scratch&, int64_t, int64_t) { return false; }
}  // namespace w4
#endif
