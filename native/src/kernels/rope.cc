// Rotary position embedding, Hugging Face half-split form (rotate_half):
//   for d < HS/2, angle = pos * theta^(-2d/HS):
//   y[d]      = x[d] cos - x[d + HS/2] sin
//   y[d+HS/2] = x[d + HS/2] cos + x[d] sin
// Frequencies are computed in float32 as transformers does. In place on x(N, stride).
// rope_forward/rope_backward compute each angle's cos and sin where they use it; the *_table variants take them
// from rope_angles(), computed once per batch and shared by every layer, q and k, forward and backward (the same
// float32 values, so both paths give the same bits).
#include <cmath>
#include <vector>

#include "kernels.h"

namespace nrt {

void rope_inv_freq(float* inv_freq, int HS, float theta) {
  for (int d = 0; d < HS / 2; d++) inv_freq[d] = 1.0f / std::pow(theta, (float)(2 * d) / (float)HS);
}
static void inv_freqs(float* inv_freq, int HS, float theta) { rope_inv_freq(inv_freq, HS, theta); }

void rope_scale_linear(float* inv_freq, int HS, float factor) {
  for (int d = 0; d < HS / 2; d++) inv_freq[d] /= factor;
}

void rope_scale_llama3(float* inv_freq, int HS, float factor, float low_freq, float high_freq, float orig_max) {
  const float low_wavelen = orig_max / low_freq, high_wavelen = orig_max / high_freq;
  const float pi2 = 2.0f * 3.14159265358979323846f;
  for (int d = 0; d < HS / 2; d++) {
    const float f = inv_freq[d], wavelen = pi2 / f;
    if (wavelen > low_wavelen) {
      inv_freq[d] = f / factor;
    } else if (!(wavelen < high_wavelen)) {
      const float s = (orig_max / wavelen - low_freq) / (high_freq - low_freq);
      inv_freq[d] = (1.0f - s) * f / factor + s * f;
    }
  }
}

static void rope_apply(float* x, const int32_t* pos, int N, int stride, int col0, int nheads, int HS, float theta,
                       float sign) {
  int half = HS / 2;
  std::vector<float> inv_freq(half);
  inv_freqs(inv_freq.data(), HS, theta);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    float* row = x + (long)n * stride + col0;
    for (int d = 0; d < half; d++) {
      float ang = (float)pos[n] * inv_freq[d];
      float c = std::cos(ang), s = sign * std::sin(ang);
      for (int h = 0; h < nheads; h++) {
        float* v = row + h * HS;
        float a = v[d], b = v[d + half];
        v[d] = a * c - b * s;
        v[d + half] = b * c + a * s;
      }
    }
  }
}

void rope_forward(float* x, const int32_t* pos, int N, int stride, int col0, int nheads, int HS, float theta) {
  rope_apply(x, pos, N, stride, col0, nheads, HS, theta, 1.0f);
}

// in the forward pass this was: y = R(angle) x, R orthogonal
// so now we have: dx = R(angle)^T dy = R(-angle) dy
void rope_backward(float* dx, const int32_t* pos, int N, int stride, int col0, int nheads, int HS, float theta) {
  rope_apply(dx, pos, N, stride, col0, nheads, HS, theta, -1.0f);
}

void rope_angles(float* cos, float* sin, const int32_t* pos, int N, int HS, float theta) {
  std::vector<float> inv_freq(HS / 2);
  inv_freqs(inv_freq.data(), HS, theta);
  rope_angles_freq(cos, sin, pos, N, HS, inv_freq.data());
}

void rope_angles_freq(float* cos, float* sin, const int32_t* pos, int N, int HS, const float* inv_freq) {
  const int half = HS / 2;
  for (int n = 0; n < N; n++)
    for (int d = 0; d < half; d++) {
      const float ang = (float)pos[n] * inv_freq[d];
      cos[(long)n * half + d] = std::cos(ang);
      sin[(long)n * half + d] = std::sin(ang);
    }
}

static void rope_apply_table(float* x, const float* cos, const float* sin, int N, int stride, int col0, int nheads,
                             int HS, float sign) {
  const int half = HS / 2;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* __restrict c = cos + (long)n * half;
    const float* __restrict s = sin + (long)n * half;
    for (int h = 0; h < nheads; h++) {
      float* __restrict a = x + (long)n * stride + col0 + h * HS;
      float* __restrict b = a + half;
#pragma omp simd
      for (int d = 0; d < half; d++) {
        const float ad = a[d], bd = b[d], sd = sign * s[d];
        a[d] = ad * c[d] - bd * sd;
        b[d] = bd * c[d] + ad * sd;
      }
    }
  }
}

void rope_forward_table(float* x, const float* cos, const float* sin, int N, int stride, int col0, int nheads,
                        int HS) {
  rope_apply_table(x, cos, sin, N, stride, col0, nheads, HS, 1.0f);
}

void rope_backward_table(float* dx, const float* cos, const float* sin, int N, int stride, int col0, int nheads,
                         int HS) {
  rope_apply_table(dx, cos, sin, N, stride, col0, nheads, HS, -1.0f);
}

}  // namespace nrt
