// Token embedding: out(N,C) = table(V,C)[tokens(N)]. Backward ACCUMULATES into dtable (V,C), serially so that
// repeated tokens add up in a fixed order.
#include <cstring>

#include "kernels.h"

namespace nrt {

void embedding_forward(float* out, const int32_t* tokens, const float* table, int N, int C) {
  for (int n = 0; n < N; n++) std::memcpy(out + (long)n * C, table + (long)tokens[n] * C, sizeof(float) * C);
}

// in the forward pass this was: out[n] = table[tokens[n]]
// so now we have: dtable[tokens[n]] += dout[n]
void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int N, int C) {
  for (int n = 0; n < N; n++) {
    float* d = dtable + (long)tokens[n] * C;
    const float* g = dout + (long)n * C;
    for (int i = 0; i < C; i++) d[i] += g[i];
  }
}

}  // namespace nrt
