// Float vectors of 16 lanes (one AVX-512 register; two AVX2 ones) and the few functions on
// them that the kernels need: GCC/Clang vector extensions, so the compiler picks the
// instructions of the CPU it builds for.
#pragma once

#include <cstdint>
#include <cstring>

namespace livesr {

constexpr int64_t L = 16;  // lanes
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf splat(float x) { return vf{} + x; }
inline vi bits(vf x) {
  vi i;
  std::memcpy(&i, &x, sizeof i);
  return i;
}
inline vf floats(vi i) {
  vf x;
  std::memcpy(&x, &i, sizeof x);
  return x;
}

// exp(x), relative error below 3e-7 for x in [-87.3, 88.3]; x is clamped to that range.
inline vf vexp(vf x) {
  x = x < splat(-87.3f) ? splat(-87.3f) : x;
  x = x > splat(88.3f) ? splat(88.3f) : x;
  const vf magic = splat(12582912.f);  // 1.5·2²³: adding it rounds to an integer
  vf n = (x * splat(1.44269504f) + magic) - magic;
  vf r = x - n * splat(0.693145752f) - n * splat(1.42860677e-6f);
  vf p = splat(1.f / 720);
  p = p * r + splat(1.f / 120);
  p = p * r + splat(1.f / 24);
  p = p * r + splat(1.f / 6);
  p = p * r + splat(0.5f);
  p = p * r + splat(1.f);
  p = p * r + splat(1.f);
  return p * floats((__builtin_convertvector(n, vi) + 127) << 23);
}

// log(x) for normal positive x (Cephes logf: mantissa in [√½, √2), a degree-9 polynomial).
inline vf vlog(vf x) {
  const vi b = bits(x);
  vi e = ((b >> 23) & 0xff) - 126;
  vf m = floats((b & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const vi small = m < splat(0.707106781f);
  e = e + small;  // small is -1 where true
  m = m + floats(bits(m) & small) - splat(1.f);
  const vf z = m * m;
  vf y = splat(7.0376836292e-2f);
  y = y * m + splat(-1.1514610310e-1f);
  y = y * m + splat(1.1676998740e-1f);
  y = y * m + splat(-1.2420140846e-1f);
  y = y * m + splat(1.4249322787e-1f);
  y = y * m + splat(-1.6668057665e-1f);
  y = y * m + splat(2.0000714765e-1f);
  y = y * m + splat(-2.4999993993e-1f);
  y = y * m + splat(3.3333331174e-1f);
  const vf ef = __builtin_convertvector(e, vf);
  y = y * m * z + ef * splat(-2.12194440e-4f) - splat(0.5f) * z;
  return m + y + ef * splat(0.693359375f);
}

}  // namespace livesr
