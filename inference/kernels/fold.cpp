// The FCA's fold of a channels-last map, written channels-first for the FFT.
//
// fold_nchw(x, fh, fw): x (N, H, W, C) contiguous → (N, C, H/fh, W/fw) contiguous, each output
// the sum of the fh·fw input pixels congruent to it (the blocks of H/fh rows and W/fw columns
// summed). One pass over x; 16 output columns are summed as channel vectors, then transposed.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

namespace livesr {
namespace {

at::Tensor fold_nchw(const at::Tensor& x, int64_t fold_h, int64_t fold_w) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "fold_nchw: x must be a contiguous float32 (N, H, W, C) tensor");
  const int64_t n = x.size(0), height = x.size(1), width = x.size(2), c = x.size(3);
  TORCH_CHECK(fold_h > 0 && fold_w > 0 && height % fold_h == 0 && width % fold_w == 0,
              "fold_nchw: the folds must divide the height and width");
  const int64_t h = height / fold_h, w = width / fold_w;
  at::Tensor out = at::empty({n, c, h, w}, x.options());
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  constexpr int64_t B = 16;
  const int64_t col_blocks = (w + B - 1) / B;
  at::parallel_for(0, n * h * col_blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(B * c);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t b = job % col_blocks, row = (job / col_blocks) % h, img = job / (col_blocks * h);
      const int64_t x0 = b * B, cols = std::min(B, w - x0);
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t i = 0; i < fold_h; ++i)
        for (int64_t j = 0; j < fold_w; ++j) {
          const float* src = xp + ((img * height + i * h + row) * width + j * w + x0) * c;
          for (int64_t k = 0; k < cols * c; ++k) acc[k] += src[k];
        }
      for (int64_t ch = 0; ch < c; ++ch) {
        float* dst = op + ((img * c + ch) * h + row) * w + x0;
        for (int64_t k = 0; k < cols; ++k) dst[k] = acc[k * c + ch];
      }
    }
  });
  return out;
}

}  // namespace
}  // namespace livesr

TORCH_LIBRARY_FRAGMENT(livesr, m) { m.def("fold_nchw(Tensor x, int fold_h, int fold_w) -> Tensor"); }

TORCH_LIBRARY_IMPL(livesr, CPU, m) { m.impl("fold_nchw", &livesr::fold_nchw); }
