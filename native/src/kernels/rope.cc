// Rotary position embedding, Hugging Face half-split form (rotate_half):
//   for d < HS/2, angle = pos * theta^(-2d/HS):
//   y[d]      = x[d] cos - x[d + HS/2] sin
//   y[d+HS/2] = x[d + HS/2] cos + x[d] sin
// Frequencies are computed in float32 as transformers does. In place on x(N, stride).
#include <cmath>
#include <vector>

#include "kernels.h"

namespace nrt {

static void rope_apply(float* x, const int32_t* pos, int N, int stride, int col0, int nheads, int HS, float theta,
                       float sign) {
  int half = HS / 2;
  std::vector<float> inv_freq(half);
  for (int d = 0; d < half; d++) inv_freq[d] = 1.0f / std::pow(theta, (float)(2 * d) / (float)HS);
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

}  // namespace nrt
