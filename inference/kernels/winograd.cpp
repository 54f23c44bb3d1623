// Winograd F(m×m, 3×3) convolutions for the CPU (m = 6 or 4): 3×3 kernels, stride 1, zero
// padding 1.
//
// Each m×m output tile is computed from an a×a input tile (a = m + 2) as
// Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A: per tile, a² products of a C-vector with a C×K matrix (one GEMM
// per tile position) instead of the 9m² of a direct convolution (Lavin & Gray 2016).
// Activations are channels-last (N, H, W, C) float32 with C and K multiples of 16; the
// transforms work on 16 channels at a time. The image is cut into chunks of tiles, one per
// task: each task transforms its tiles' inputs, multiplies them (the BLAS sgemm linked into
// libtorch, single-threaded inside the task) and transforms the products back, adding the
// bias and the activation, so a chunk's intermediates stay in the core's cache.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "vector_math.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

// BLAS single-precision GEMM (column-major, Fortran interface), as linked into libtorch
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc);

namespace livesr {
namespace {

enum Activation : int64_t { kNone = 0, kRelu = 1, kGelu = 2 };

// GELU with the exact erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7), as torch's default.
inline vf vgelu(vf x) {
  vf z = x * splat(0.70710678f);
  vf a = z < splat(0.f) ? -z : z;
  vf t = splat(1.f) / (splat(1.f) + splat(0.3275911f) * a);
  vf poly = splat(1.061405429f);
  poly = poly * t + splat(-1.453152027f);
  poly = poly * t + splat(1.421413741f);
  poly = poly * t + splat(-0.284496736f);
  poly = poly * t + splat(0.254829592f);
  vf erf_abs = splat(1.f) - poly * t * vexp(-a * a);
  vf erf = z < splat(0.f) ? -erf_abs : erf_abs;
  return splat(0.5f) * x * (splat(1.f) + erf);
}

inline vf activate(vf x, int64_t activation) {
  if (activation == kRelu) return x < splat(0.f) ? splat(0.f) : x;  // NaN stays NaN
  if (activation == kGelu) return vgelu(x);
  return x;
}

// The transforms of F(m×m, 3×3) along one axis, for m = 4 (points 0, ±1, ±2) and m = 6
// (0, ±1, ±2, ±1/2), tiles of a = m + 2 (Lavin & Gray 2016; the matrices as in wincnn):
// Bᵀ (a × a) for the inputs, Aᵀ (m × a) for the products. Written out so that the symmetric
// pairs of points share their sums and differences.
template <int M>
struct Transforms;

template <>
struct Transforms<4> {
  static constexpr int A = 6;
  // Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
  static inline void input(const vf* d, vf* t) {
    const vf p1 = d[3] - splat(4.f) * d[1], p2 = d[4] - splat(4.f) * d[2];
    const vf q1 = splat(2.f) * (d[3] - d[1]), q2 = d[4] - d[2];
    t[0] = splat(4.f) * d[0] - splat(5.f) * d[2] + d[4];
    t[1] = p2 + p1;
    t[2] = p2 - p1;
    t[3] = q2 + q1;
    t[4] = q2 - q1;
    t[5] = splat(4.f) * d[1] - splat(5.f) * d[3] + d[5];
  }
  // Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
  static inline void output(const vf* m, vf* o) {
    const vf a1 = m[1] + m[2], s1 = m[1] - m[2], a2 = m[3] + m[4], s2 = m[3] - m[4];
    o[0] = m[0] + a1 + a2;
    o[1] = s1 + splat(2.f) * s2;
    o[2] = a1 + splat(4.f) * a2;
    o[3] = s1 + splat(8.f) * s2 + m[5];
  }
};

template <>
struct Transforms<6> {
  static constexpr int A = 8;
  // Bᵀ rows: [1 0 -21/4 0 21/4 0 -1 0], [0 ±1 1 ∓17/4 -17/4 ±1 1 0],
  // [0 ±1/2 1/4 ∓5/2 -5/4 ±2 1 0], [0 ±2 4 ∓5/2 -5 ±1/2 1 0], [0 -1 0 21/4 0 -21/4 0 1]
  static inline void input(const vf* d, vf* t) {
    const vf o1 = d[1] + d[5] - splat(4.25f) * d[3], e1 = d[2] + d[6] - splat(4.25f) * d[4];
    const vf o2 = splat(0.5f) * d[1] - splat(2.5f) * d[3] + splat(2.f) * d[5];
    const vf e2 = splat(0.25f) * d[2] - splat(1.25f) * d[4] + d[6];
    const vf o3 = splat(2.f) * d[1] - splat(2.5f) * d[3] + splat(0.5f) * d[5];
    const vf e3 = splat(4.f) * d[2] - splat(5.f) * d[4] + d[6];
    t[0] = d[0] - d[6] + splat(5.25f) * (d[4] - d[2]);
    t[1] = e1 + o1;
    t[2] = e1 - o1;
    t[3] = e2 + o2;
    t[4] = e2 - o2;
    t[5] = e3 + o3;
    t[6] = e3 - o3;
    t[7] = d[7] - d[1] + splat(5.25f) * (d[3] - d[5]);
  }
  // Aᵀ rows: [1 1 1 1 1 1 1 0], then for j = 1…5: [0 1 (-1)ʲ 2ʲ (-2)ʲ 2⁻ʲ (-1/2)ʲ 0], the last
  // with a 1 at the end
  static inline void output(const vf* m, vf* o) {
    const vf a1 = m[1] + m[2], s1 = m[1] - m[2], a2 = m[3] + m[4], s2 = m[3] - m[4];
    const vf a3 = m[5] + m[6], s3 = m[5] - m[6];
    o[0] = m[0] + a1 + a2 + a3;
    o[1] = s1 + splat(2.f) * s2 + splat(0.5f) * s3;
    o[2] = a1 + splat(4.f) * a2 + splat(0.25f) * a3;
    o[3] = s1 + splat(8.f) * s2 + splat(0.125f) * s3;
    o[4] = a1 + splat(16.f) * a2 + splat(0.0625f) * a3;
    o[5] = s1 + splat(32.f) * s2 + splat(0.03125f) * s3 + m[7];
  }
};

struct Geometry {
  int64_t n, h, w, c, k, tiles_h, tiles_w, tiles;

  struct Tile {
    int64_t image, row, col;  // the image, the tile's row and column of tiles
  };
  Tile tile(int64_t index) const {
    return {index / (tiles_h * tiles_w), (index / tiles_w) % tiles_h, index % tiles_w};
  }
};

// Transforms the inputs of tiles [first, first + count) into v (a², count, C).
template <int M>
void input_tiles(const float* x, const Geometry& g, int64_t first, int64_t count, float* v) {
  using T = Transforms<M>;
  constexpr int A = T::A;
  vf d[A][A], t[A][A], col[A], out[A];
  for (int64_t i = 0; i < count; ++i) {
    const auto [n, th, tw] = g.tile(first + i);
    const int64_t y0 = th * M - 1, x0 = tw * M - 1;
    const bool inside = y0 >= 0 && x0 >= 0 && y0 + A <= g.h && x0 + A <= g.w;
    for (int64_t c0 = 0; c0 < g.c; c0 += L) {
      for (int r = 0; r < A; ++r) {
        const int64_t yy = y0 + r;
        for (int s = 0; s < A; ++s) {
          const int64_t xx = x0 + s;
          if (inside || (yy >= 0 && yy < g.h && xx >= 0 && xx < g.w))
            d[r][s] = load(x + ((n * g.h + yy) * g.w + xx) * g.c + c0);
          else
            d[r][s] = vf{};
        }
      }
      for (int s = 0; s < A; ++s) {
        for (int r = 0; r < A; ++r) col[r] = d[r][s];
        T::input(col, out);
        for (int r = 0; r < A; ++r) t[r][s] = out[r];
      }
      for (int r = 0; r < A; ++r) {
        T::input(t[r], out);
        for (int s = 0; s < A; ++s) store(v + ((r * A + s) * count + i) * g.c + c0, out[s]);
      }
    }
  }
}

// Transforms the products p (a², count, K) of tiles [first, first + count) back into y.
template <int M>
void output_tiles(const float* p, const float* bias, int64_t activation, const Geometry& g,
                  int64_t first, int64_t count, float* y) {
  using T = Transforms<M>;
  constexpr int A = T::A;
  vf q[A][A], r[M][A], col[A], out[M];
  for (int64_t i = 0; i < count; ++i) {
    const auto [n, th, tw] = g.tile(first + i);
    for (int64_t k0 = 0; k0 < g.k; k0 += L) {
      for (int a = 0; a < A; ++a)
        for (int b = 0; b < A; ++b) q[a][b] = load(p + ((a * A + b) * count + i) * g.k + k0);
      for (int b = 0; b < A; ++b) {
        for (int a = 0; a < A; ++a) col[a] = q[a][b];
        T::output(col, out);
        for (int a = 0; a < M; ++a) r[a][b] = out[a];
      }
      const vf b0 = load(bias + k0);
      for (int a = 0; a < M; ++a) {
        const int64_t yy = th * M + a;
        if (yy >= g.h) break;
        T::output(r[a], out);
        for (int b = 0; b < M; ++b) {
          const int64_t xx = tw * M + b;
          if (xx >= g.w) break;
          store(y + ((n * g.h + yy) * g.w + xx) * g.k + k0, activate(out[b] + b0, activation));
        }
      }
    }
  }
}

// Chunks of tiles, one task each: transform, multiply (sgemm per tile position), transform back.
template <int M>
void run_tiles(const float* x, const float* u, const float* bias, int64_t activation,
               const Geometry& g, int64_t chunk, float* y) {
  constexpr int A2 = Transforms<M>::A * Transforms<M>::A;
  const int64_t chunks = (g.tiles + chunk - 1) / chunk;
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> v(A2 * chunk * g.c), p(A2 * chunk * g.k);
    for (int64_t c = begin; c < end; ++c) {
      const int64_t first = c * chunk, count = std::min(chunk, g.tiles - first);
      input_tiles<M>(x, g, first, count, v.data());
      const int m = static_cast<int>(g.k), n = static_cast<int>(count);
      const int k = static_cast<int>(g.c);
      const float one = 1.f, zero = 0.f;
      for (int64_t e = 0; e < A2; ++e)  // row-major (count × C)·(C × K) as column-major Bᵀ·Aᵀ
        sgemm_("N", "N", &m, &n, &k, &one, u + e * g.c * g.k, &m, v.data() + e * count * g.c,
               &k, &zero, p.data() + e * count * g.k, &m);
      output_tiles<M>(p.data(), bias, activation, g, first, count, y);
    }
  });
}

// y = activation(conv3x3(x) + bias) by F(m×m, 3×3), m = 4 or 6. x: (N, H, W, C); u: (a², C, K),
// G g Gᵀ per tile position; bias: (K); returns (N, H, W, K).
at::Tensor conv3x3(const at::Tensor& x, const at::Tensor& u, const at::Tensor& bias,
                   int64_t activation, int64_t m, int64_t chunk) {
  TORCH_CHECK(m == 4 || m == 6, "winograd conv3x3: output tiles are 4×4 or 6×6, not ", m);
  const int64_t a2 = (m + 2) * (m + 2);
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "winograd conv3x3: x must be a contiguous float32 (N, H, W, C) tensor");
  TORCH_CHECK(u.dim() == 3 && u.size(0) == a2 && u.size(1) == x.size(3) && u.is_contiguous() &&
                  u.scalar_type() == at::kFloat,
              "winograd conv3x3: u must be a contiguous float32 (", a2, ", C, K) tensor");
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == u.size(2) && bias.is_contiguous() &&
                  bias.scalar_type() == at::kFloat,
              "winograd conv3x3: bias must be a contiguous float32 (K) tensor");
  TORCH_CHECK(x.size(3) > 0 && u.size(2) > 0 && x.size(3) % L == 0 && u.size(2) % L == 0,
              "winograd conv3x3: channels must be positive multiples of 16");
  TORCH_CHECK(activation >= kNone && activation <= kGelu, "winograd conv3x3: bad activation");
  TORCH_CHECK(chunk > 0, "winograd conv3x3: chunk must be positive");
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), u.size(2), 0, 0, 0};
  g.tiles_h = (g.h + m - 1) / m;
  g.tiles_w = (g.w + m - 1) / m;
  g.tiles = g.n * g.tiles_h * g.tiles_w;
  at::Tensor y = at::empty({g.n, g.h, g.w, g.k}, x.options());
  if (m == 4)
    run_tiles<4>(x.data_ptr<float>(), u.data_ptr<float>(), bias.data_ptr<float>(), activation, g,
                 chunk, y.data_ptr<float>());
  else
    run_tiles<6>(x.data_ptr<float>(), u.data_ptr<float>(), bias.data_ptr<float>(), activation, g,
                 chunk, y.data_ptr<float>());
  return y;
}

}  // namespace
}  // namespace livesr

TORCH_LIBRARY_FRAGMENT(livesr, m) {
  m.def("conv3x3(Tensor x, Tensor u, Tensor bias, int activation, int m, int chunk) -> Tensor");
}

TORCH_LIBRARY_IMPL(livesr, CPU, m) { m.impl("conv3x3", &livesr::conv3x3); }
