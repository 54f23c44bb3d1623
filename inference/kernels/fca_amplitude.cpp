// The FCA's amplitude spectrum, gathered at the sampled frequencies, channels-last.
//
// fca_amplitude(z, gather, norm, eps, gamma): z (N, C, h, w') complex64, a real FFT of the
// folded maps; returns (N, P·Q, C) float32 with out[n, i, c] = (|z[n, c]|[gather[i]]·norm +
// eps)^gamma. The amplitude is computed 16 frequencies at a time (|z| without overflow; pow as
// exp(γ·log), relative error ~|γ·log a|·6e-8: 6e-7 for a in 1e-3…1e3; inf and NaN pass
// through) and stored frequency-major, so the gather copies whole channel vectors.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "vector_math.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace livesr {
namespace {

at::Tensor fca_amplitude(const at::Tensor& z, const at::Tensor& gather, double norm, double eps,
                         double gamma) {
  TORCH_CHECK(z.dim() == 4 && z.scalar_type() == at::kComplexFloat && z.is_contiguous(),
              "fca_amplitude: z must be a contiguous complex64 (N, C, h, w) tensor");
  TORCH_CHECK(gather.dim() == 1 && gather.scalar_type() == at::kLong && gather.is_contiguous(),
              "fca_amplitude: gather must be a contiguous int64 vector");
  const int64_t n = z.size(0), c = z.size(1), freqs = z.size(2) * z.size(3);
  const int64_t out_size = gather.size(0);
  const int64_t* g = gather.data_ptr<int64_t>();
  for (int64_t i = 0; i < out_size; ++i)
    TORCH_CHECK(g[i] >= 0 && g[i] < freqs, "fca_amplitude: gather index out of range");
  // amplitudes frequency-major (each frequency's channel vector contiguous), then gathered
  at::Tensor amp = at::empty({n, freqs, c}, z.options().dtype(at::kFloat));
  at::Tensor out = at::empty({n, out_size, c}, amp.options());
  const float* zp = reinterpret_cast<const float*>(z.data_ptr<c10::complex<float>>());
  float* ap = amp.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float fn = static_cast<float>(norm), fe = static_cast<float>(eps);
  const float fg = static_cast<float>(gamma);
  const int64_t blocks = (freqs + L - 1) / L;
  at::parallel_for(0, n * blocks, 1, [&](int64_t begin, int64_t end) {
    alignas(64) float mag[L];
    alignas(64) float pairs[2 * L];
    for (int64_t job = begin; job < end; ++job) {
      const int64_t img = job / blocks, i0 = (job % blocks) * L;
      const int64_t count = std::min(L, freqs - i0);
      for (int64_t ch = 0; ch < c; ++ch) {
        std::fill(pairs, pairs + 2 * L, 1.f);
        std::memcpy(pairs, zp + 2 * ((img * c + ch) * freqs + i0), 2 * count * sizeof(float));
#pragma omp simd
        for (int64_t l = 0; l < L; ++l) {  // hypot: the larger part times √(1 + ratio²)
          const float re = std::fabs(pairs[2 * l]), im = std::fabs(pairs[2 * l + 1]);
          const float hi = std::fmax(re, im), lo = std::fmin(re, im);
          const float ratio = hi > 0.f && hi < __builtin_inff() ? lo / hi : 0.f;
          mag[l] = re == re && im == im ? hi * std::sqrt(1.f + ratio * ratio) : re + im;
        }
        vf a;
        std::memcpy(&a, mag, sizeof a);
        const vf scaled = a * splat(fn) + splat(fe);
        const vf powered = vexp(splat(fg) * vlog(scaled));
        const vf inf = splat(__builtin_inff());
        a = scaled < inf ? powered : scaled;  // inf stays inf, NaN stays NaN
        std::memcpy(mag, &a, sizeof a);
        float* dst = ap + (img * freqs + i0) * c + ch;
        for (int64_t l = 0; l < count; ++l) dst[l * c] = mag[l];
      }
    }
  });
  at::parallel_for(0, n * out_size, 64, [&](int64_t begin, int64_t end) {
    for (int64_t job = begin; job < end; ++job) {
      const int64_t img = job / out_size, i = job % out_size;
      std::memcpy(op + job * c, ap + (img * freqs + g[i]) * c, c * sizeof(float));
    }
  });
  return out;
}

}  // namespace
}  // namespace livesr

TORCH_LIBRARY_FRAGMENT(livesr, m) {
  m.def("fca_amplitude(Tensor z, Tensor gather, float norm, float eps, float gamma) -> Tensor");
}

TORCH_LIBRARY_IMPL(livesr, CPU, m) { m.impl("fca_amplitude", &livesr::fca_amplitude); }
