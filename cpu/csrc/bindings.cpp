// torch bindings of the W4 (and W8) kernels: argument checks, the scratch buffers, dispatch and threading.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "w4_kernels.h"

namespace {

enum class Path { Scalar, Avx2, Vnni, Amx, Neon };

// In order of preference (the last one is the fastest), as cpu.kernels.best_path relies on.
std::vector<std::string> available_paths() {
    std::vector<std::string> paths{"scalar"};
    if (w4::has_avx2()) paths.push_back("avx2");
    if (w4::has_vnni()) paths.push_back("vnni");
    if (w4::has_amx()) paths.push_back("amx");
    if (w4::has_neon()) paths.push_back("neon");
    return paths;
}

// The caller (cpu.kernels) picks the path; an unavailable one is refused, never silently replaced.
Path parse_path(const std::string& impl) {
    if (impl == "scalar") return Path::Scalar;
    if (impl == "avx2" && w4::has_avx2()) return Path::Avx2;
    if (impl == "vnni" && w4::has_vnni()) return Path::Vnni;
    if (impl == "amx" && w4::has_amx()) return Path::Amx;
    if (impl == "neon" && w4::has_neon()) return Path::Neon;
    std::string known;
    for (const auto& p : available_paths()) known += (known.empty() ? "" : ", ") + p;
    TORCH_CHECK(false, "kernel path '", impl, "' is not available on this CPU/build; available: ", known);
}

// The SIMD loops step over whole blocks of a group; other group sizes take the scalar loop.
bool fits(Path path, int64_t group, int w_bits) {
    if (w_bits == 8) return path == Path::Scalar || group % w4::kBlock8 == 0;
    switch (path) {
        case Path::Avx2: case Path::Vnni: return group % 64 == 0;
        case Path::Neon: return group % 32 == 0;
        default: return true;
    }
}

// The x86 int8-weight loops negate activations; -128 has no int8 negation (see w4_kernels.h).
bool holds_min_int8(const int8_t* x, int64_t count) {
    return std::find(x, x + count, static_cast<int8_t>(-128)) != x + count;
}

// Reused across calls (grown, never shrunk): the hot path allocates only when a bigger call comes.
struct ScratchBuffers {
    std::vector<int8_t> even, odd;
    std::vector<int32_t> sums, quads;
    std::vector<int8_t> tokens;     // x as AMX A tiles (w4::amx_pack_tokens)
    std::vector<int8_t> x_q;        // linear(): the quantized activations and their steps
    std::vector<float> x_step;
};
thread_local ScratchBuffers scratch;

}  // namespace

struct Dims {
    int64_t M, K, N, G;
    int w_bits;
    bool tiled;
};

// Checks shared by every entry point.  The weights' form comes from dtype and rank: uint8 (N, K/2)
// is packed int4, uint8 (N/8, K/8, 32) tiled int4, int8 (N, K) int8 values, int8 (N/8, K/4, 32)
// tiled int8.
const char* const kOperandForms =
    "need x (M, K) and w: uint8 (N, K/2) packed or (N/8, K/8, 32) tiled, int8 (N, K) or (N/8, K/4, 32) tiled; got ";

// The weights' checks, for activations (M, K) already checked or made here (linear()).
Dims check_weights(const torch::Tensor& w, int64_t M, int64_t K, int64_t group) {
    TORCH_CHECK(w.device().is_cpu(), "w4 kernels run on CPU tensors");
    TORCH_CHECK(w.scalar_type() == torch::kUInt8 || w.scalar_type() == torch::kInt8,
                "weights must be uint8 (packed int4) or int8, got ", w.scalar_type());
    const bool tiled = w.dim() == 3;
    const int w_bits = w.scalar_type() == torch::kInt8 ? 8 : 4;
    TORCH_CHECK(w.dim() == 2 || (tiled && w.size(2) == 32), kOperandForms, "x (", M, ", ", K, ") and ", w.sizes());
    TORCH_CHECK(w.is_contiguous(), "x and w must be contiguous");
    const int64_t N = tiled ? 8 * w.size(0) : w.size(0);
    const int64_t per_row = tiled ? (w_bits == 8 ? 4 : 8) * w.size(1) : (w_bits == 8 ? 1 : 2) * w.size(1);
    TORCH_CHECK(per_row == K && (w_bits == 8 || K % 2 == 0), "shape mismatch: x has K = ", K, " but w holds ",
                per_row, " values per row");
    TORCH_CHECK(group >= 1 && K % group == 0, "group size ", group, " does not divide K = ", K);
    return {M, K, N, K / group, w_bits, tiled};
}

Dims check_operands(const torch::Tensor& x, const torch::Tensor& w, int64_t group) {
    TORCH_CHECK(x.device().is_cpu() && w.device().is_cpu(), "w4 kernels run on CPU tensors");
    TORCH_CHECK(x.scalar_type() == torch::kInt8, "activations must be int8, got ", x.scalar_type());
    TORCH_CHECK(x.dim() == 2, kOperandForms, x.sizes(), " and ", w.sizes());
    TORCH_CHECK(x.is_contiguous(), "x and w must be contiguous");
    return check_weights(w, x.size(0), x.size(1), group);
}

const char* dtype_name(torch::ScalarType type) {
    switch (type) {
        case torch::kInt8: return "int8";
        case torch::kInt32: return "int32";
        case torch::kInt64: return "int64";
        case torch::kFloat32: return "float32";
        default: return "other";
    }
}

torch::Tensor output(c10::optional<torch::Tensor> out, torch::IntArrayRef shape, torch::ScalarType type) {
    if (!out.has_value()) return torch::empty(shape, type);
    TORCH_CHECK(out->scalar_type() == type && out->is_contiguous() && out->sizes() == shape,
                "out must be a contiguous ", dtype_name(type), " tensor of shape ", shape, "; got ",
                dtype_name(out->scalar_type()), " ", out->sizes());
    return *out;
}

template <typename T>
const T* table(const torch::Tensor& t, torch::ScalarType type, torch::IntArrayRef shape, const char* name) {
    TORCH_CHECK(t.scalar_type() == type && t.is_contiguous() && t.sizes() == shape,
                name, " must be a contiguous ", dtype_name(type), " tensor of shape ", shape, "; got ",
                dtype_name(t.scalar_type()), " ", t.sizes());
    return t.data_ptr<T>();
}

// The AMX prefill loop (w4::amx_rows) where it applies; false leaves the problem to the other loops.
bool launch_amx(const w4::Problem& p) {
    if (!w4::amx_fits(p)) return false;
    w4::Problem tiles = p;
    scratch.tokens.resize(static_cast<size_t>(w4::amx_tokens_bytes(p)));
    w4::amx_pack_tokens(p, scratch.tokens.data());
    tiles.x = scratch.tokens.data();
    const int64_t blocks = p.N / 16;
    const int64_t grain = std::max<int64_t>(1, blocks / (4 * at::get_num_threads()));
    at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) { w4::amx_rows(tiles, 16 * b0, 16 * b1); });
    return true;
}

// Which loop the calling thread's last kernel call ran, for tests and for users asking where a layer
// went: "amx tiles", or the path's name with "tiled" or "rows" for the weight form.
thread_local std::string last_loop_name = "none";

std::string last_loop() { return last_loop_name; }

const char* path_name(Path path) {
    switch (path) {
        case Path::Avx2: return "avx2";
        case Path::Vnni: return "vnni";
        case Path::Amx: return "amx";
        case Path::Neon: return "neon";
        default: return "scalar";
    }
}

void launch(w4::Problem& p, const std::string& impl) {
    Path path = parse_path(impl);
    if (path == Path::Amx) {
        if (launch_amx(p)) {
            last_loop_name = "amx tiles";
            return;
        }
        path = Path::Vnni;      // every AMX CPU has VNNI: its loops take what the AMX loop does not
    }
    if (!fits(path, p.group, p.w_bits)) path = Path::Scalar;
    // Tiled weights have SIMD loops for AVX2 and VNNI; elsewhere (Arm) the portable loop.
    if (p.tiled && path != Path::Avx2 && path != Path::Vnni) path = Path::Scalar;
    // The int8-weight loops that negate activations (all but the tiled VNNI one) cannot take -128.
    if (p.w_bits == 8 && (path == Path::Avx2 || (path == Path::Vnni && !p.tiled)) && holds_min_int8(p.x, p.M * p.K))
        path = Path::Scalar;
    last_loop_name = std::string(path_name(path)) + (p.tiled ? " tiled" : " rows");
    const int64_t G = p.K / p.group;
    w4::Scratch s{nullptr, nullptr, nullptr, nullptr};
    // Σx per group: the int4 loops' offset correction, and the tiled VNNI loop's for int8 too.
    if (path != Path::Scalar && (p.w_bits == 4 || (p.tiled && path == Path::Vnni))) {
        scratch.sums.resize(static_cast<size_t>(p.M * G));
        if (!p.tiled) {
            scratch.even.resize(static_cast<size_t>(p.M * p.K / 2));
            scratch.odd.resize(static_cast<size_t>(p.M * p.K / 2));
        }
        s = {p.tiled ? nullptr : scratch.even.data(), p.tiled ? nullptr : scratch.odd.data(), scratch.sums.data()};
        w4::prepare(p, s);
    }
    if (p.tiled && path == Path::Avx2 && p.M == 1) {
        // AVX2 decode: K/4 quads × 8 lanes, from a 32-byte boundary: a load split across two cache lines
        // costs twice, and a vector's own alignment is only 16.  (VNNI decode broadcasts from x in its
        // dpbusd, so it needs no table.)
        scratch.quads.resize(static_cast<size_t>(2 * p.K + 8));
        const auto at = reinterpret_cast<uintptr_t>(scratch.quads.data());
        s.x_quads = reinterpret_cast<int32_t*>((at + 31) & ~static_cast<uintptr_t>(31));
        w4::prepare_quads(p, s);
    }
    // Threads split output channels in whole row blocks of the SIMD loops (4 rows; 8 when tiled, whose
    // loop needs them).  at::parallel_for cuts its range anywhere, so it is given the range of blocks.
    const int64_t block = p.tiled ? 8 : 4, blocks = (p.N + block - 1) / block;
    const int64_t grain = std::max<int64_t>(1, blocks / (4 * at::get_num_threads()));
    at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
        const int64_t n0 = b0 * block, n1 = std::min(b1 * block, p.N);
        if (p.tiled) {
            if (path == Path::Avx2) w4::tiled_sums_avx2(p, s, n0, n1);
            else if (path == Path::Vnni) w4::tiled_sums_vnni(p, s, n0, n1);
            else w4::tiled_sums_scalar(p, n0, n1);
            return;
        }
        if (p.w_bits == 8) {
            switch (path) {
                case Path::Avx2: w4::w8_sums_avx2(p, n0, n1); break;
                case Path::Vnni: w4::w8_sums_vnni(p, n0, n1); break;
                case Path::Neon: w4::w8_sums_neon(p, n0, n1); break;
                default: w4::w8_sums_scalar(p, n0, n1);
            }
            return;
        }
        switch (path) {
            case Path::Avx2: w4::group_sums_avx2(p, s, n0, n1); break;
            case Path::Vnni: w4::group_sums_vnni(p, s, n0, n1); break;
            case Path::Neon: w4::group_sums_neon(p, s, n0, n1); break;
            default: w4::group_sums_scalar(p, n0, n1);
        }
    });
}

w4::Problem problem(const int8_t* x, const torch::Tensor& w, const Dims& d, int64_t group, w4::Epilogue e) {
    w4::Problem p{};
    p.x = x;
    p.w = static_cast<const uint8_t*>(w.data_ptr());
    p.w_bits = d.w_bits;
    p.tiled = d.tiled;
    p.M = d.M; p.K = d.K; p.N = d.N; p.group = group;
    p.epilogue = e;
    return p;
}

torch::Tensor group_sums(const torch::Tensor& x, const torch::Tensor& w, int64_t group, const std::string& impl,
                         c10::optional<torch::Tensor> out) {
    auto d = check_operands(x, w, group);
    torch::Tensor result = output(out, {d.M, d.N, d.G}, torch::kInt32);
    auto p = problem(x.data_ptr<int8_t>(), w, d, group, w4::Epilogue::Sums);
    p.sums_out = result.data_ptr<int32_t>();
    launch(p, impl);
    return result;
}

torch::Tensor scaled(const torch::Tensor& x, const torch::Tensor& w, int64_t group, const torch::Tensor& x_scale,
                     const torch::Tensor& w_scale, const std::string& impl, c10::optional<torch::Tensor> out) {
    auto d = check_operands(x, w, group);
    torch::Tensor result = output(out, {d.M, d.N}, torch::kFloat32);
    auto p = problem(x.data_ptr<int8_t>(), w, d, group, w4::Epilogue::Scaled);
    p.x_scale = table<float>(x_scale, torch::kFloat32, {d.M}, "x_scale");
    p.w_scale = table<float>(w_scale, torch::kFloat32, {d.N, d.G}, "w_scale");
    p.y_out = result.data_ptr<float>();
    launch(p, impl);
    return result;
}

torch::Tensor requantized(const torch::Tensor& x, const torch::Tensor& w, int64_t group, const torch::Tensor& wmul,
                          const torch::Tensor& tmul, int64_t shift, int64_t out_bits, const std::string& impl,
                          c10::optional<torch::Tensor> out) {
    auto d = check_operands(x, w, group);
    TORCH_CHECK(shift >= 1 && shift <= 62, "shift must be in [1, 62], not ", shift);
    TORCH_CHECK(out_bits == 4 || out_bits == 8, "output bits must be 4 or 8, not ", out_bits);
    torch::Tensor result = output(out, {d.M, d.N}, torch::kInt8);
    auto p = problem(x.data_ptr<int8_t>(), w, d, group, w4::Epilogue::Requant);
    p.wmul = table<int64_t>(wmul, torch::kInt64, {d.N, d.G}, "wmul");
    p.tmul = table<int64_t>(tmul, torch::kInt64, {d.M}, "tmul");
    p.shift = static_cast<int>(shift);
    p.lo = -(1 << (out_bits - 1));
    p.hi = (1 << (out_bits - 1)) - 1;
    p.q_out = result.data_ptr<int8_t>();
    launch(p, impl);
    return result;
}

// quantize_rows() into q (M, K) and scale (M,).
void quantize_into(const float* x, int64_t M, int64_t K, int64_t bits, double min_scale, int8_t* q, float* scale) {
    TORCH_CHECK(bits == 4 || bits == 8, "activation bits must be 4 or 8, not ", bits);
    const float floor = static_cast<float>(min_scale);
    std::atomic<bool> finite{true};
    at::parallel_for(0, M, 1, [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m)
            if (!w4::quantize_row(x + m * K, K, static_cast<int>(bits), floor, q + m * K, scale + m)) finite = false;
    });
    TORCH_CHECK(finite.load(), "activations hold NaN/Inf values; refusing to quantize");
}

// Symmetric per-token quantization exactly as golden.quant (qparams + quantize, symmetric "row"):
// scale = max(max|x|, in float32) / qmax, at least min_scale; q = clamp(round-half-even(x / scale)).
std::vector<torch::Tensor> quantize_rows(const torch::Tensor& x, int64_t bits, double min_scale) {
    TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.dim() == 2 && x.is_contiguous(),
                "x must be a contiguous float32 CPU tensor (M, K)");
    const int64_t M = x.size(0), K = x.size(1);
    torch::Tensor q = torch::empty({M, K}, torch::kInt8), scale = torch::empty({M}, torch::kFloat32);
    quantize_into(x.data_ptr<float>(), M, K, bits, min_scale, q.data_ptr<int8_t>(), scale.data_ptr<float>());
    return {q, scale};
}

// The whole quantized layer in one call, so a decode step pays one crossing from Python, not four
// (quantize, kernel, bias add, reshape cost ~10 µs there; a small decode layer's kernel takes ~5-60 µs).
// The same operations in the same order as the separate calls and golden.qmodel.QuantLinear:
// per-token quantization, scaled group sums, then y += bias, each rounded on its own in float32.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, int64_t group, const torch::Tensor& w_scale,
                     c10::optional<torch::Tensor> bias, int64_t a_bits, double min_scale, const std::string& impl) {
    TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && x.dim() >= 1 && x.is_contiguous(),
                "x must be a contiguous float32 CPU tensor (..., K), got ", x.scalar_type(), " ", x.sizes());
    const int64_t K = x.size(-1);
    TORCH_CHECK(K >= 1, "x must have at least one input feature, got ", x.sizes());
    const int64_t M = x.numel() / K;
    // The quantized activations and their steps live in this thread's scratch: the call allocates only y.
    // Quantized first, as by the separate calls: a bad bit width or NaN is reported before the weights.
    scratch.x_q.resize(static_cast<size_t>(M * K));
    scratch.x_step.resize(static_cast<size_t>(M));
    quantize_into(x.data_ptr<float>(), M, K, a_bits, min_scale, scratch.x_q.data(), scratch.x_step.data());
    auto d = check_weights(w, M, K, group);
    const int64_t N = d.N;
    torch::Tensor y = torch::empty({M, N}, torch::kFloat32);
    auto p = problem(scratch.x_q.data(), w, d, group, w4::Epilogue::Scaled);
    p.x_scale = scratch.x_step.data();
    p.w_scale = table<float>(w_scale, torch::kFloat32, {N, d.G}, "w_scale");
    p.y_out = y.data_ptr<float>();
    launch(p, impl);
    if (bias.has_value()) {
        const float* b = table<float>(*bias, torch::kFloat32, {N}, "bias");
        float* yp = y.data_ptr<float>();
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) yp[m * N + n] += b[n];
    }
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape.back() = N;
    return y.view(shape);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "Exact int4- and int8-weight group sums on the CPU (scalar, AVX2, AVX-512 VNNI, NEON dot product)";
    m.def("group_sums", &group_sums, "int32 group sums (M, N, K/group) of int8 x (M, K) and packed int4 w (N, K/2) or int8 w (N, K)",
          py::arg("x"), py::arg("w"), py::arg("group"), py::arg("impl"), py::arg("out") = py::none());
    m.def("scaled", &scaled, "float32 (M, N): x_scale[m] * sum_g sums[m, n, g] * w_scale[n, g]",
          py::arg("x"), py::arg("w"), py::arg("group"), py::arg("x_scale"), py::arg("w_scale"),
          py::arg("impl"), py::arg("out") = py::none());
    m.def("requantized", &requantized, "int8 (M, N): golden.requantize of the group sums",
          py::arg("x"), py::arg("w"), py::arg("group"), py::arg("wmul"), py::arg("tmul"), py::arg("shift"),
          py::arg("out_bits"), py::arg("impl"), py::arg("out") = py::none());
    m.def("quantize_rows", &quantize_rows, "int8 (M, K) and float32 scales (M,): golden's symmetric per-token quantizer",
          py::arg("x"), py::arg("bits"), py::arg("min_scale"));
    m.def("linear", &linear, "float32 (..., N): quantize_rows, scaled and + bias of float32 x (..., K) in one call",
          py::arg("x"), py::arg("w"), py::arg("group"), py::arg("w_scale"), py::arg("bias"), py::arg("a_bits"),
          py::arg("min_scale"), py::arg("impl"));
    m.def("available_paths", &available_paths, "kernel paths this build and CPU can run");
    m.def("last_loop", &last_loop, "the loop this thread's last kernel call ran: 'amx tiles', or '<path> tiled|rows'");
}
