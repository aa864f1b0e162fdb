#!/bin/bash
# Mutation check for the engine tests: builds copies of the native addon with one deliberate bug each (never
# touching native/), runs test/engine against each copy in a scratch tree, and prints which test files caught it.
# A mutant that no test catches is either equivalent (see the notes) or a gap in the tests.
#
#   dev/ref/mutation-check.sh [SCRATCH_DIR]      (default /tmp/nrt-mutants; needs native/build from `npm run build`)
#
# Notes: "positions-not-restarting" is an equivalent mutant: RoPE scores depend only on i − j and packed sequences
# never attend across, so shifting a whole sequence's positions changes nothing but rounding.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-/tmp/nrt-mutants}
rm -rf "$W" && mkdir -p "$W/objs" "$W/native/build/Release" "$W/test"
cp -r "$REPO/native/src" "$W/nsrc"
find "$REPO/native/build/Release/obj.target/nrt_native/src" -name '*.o' -exec cp {} "$W/objs/" \;
cp -r "$REPO/src" "$REPO/dev" "$W/"
cp -r "$REPO/test/helpers" "$REPO/test/engine" "$W/test/"
cp "$REPO/vitest.config.ts" "$REPO/package.json" "$W/"
ln -s "$REPO/node_modules" "$W/node_modules"

CXX_FLAGS=(-DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DBUILDING_NODE_EXTENSION -I/usr/include/node
  -I"$REPO/node_modules/node-addon-api" -I/usr/include/x86_64-linux-gnu/openblas-openmp -fPIC -pthread -O2
  -std=gnu++17 -march=native -fopenmp -fexceptions)
BLAS=/usr/lib/x86_64-linux-gnu/openblas-openmp

# build FILE SED_EXPR: the addon with FILE (relative to native/src) mutated by SED_EXPR
build() {
  local rel=$1 expr=$2 base objs=""
  rm -rf "$W/work" && mkdir "$W/work" && cp -r "$W/nsrc" "$W/work/src"
  sed -i "$expr" "$W/work/src/$rel"
  if cmp -s "$W/work/src/$rel" "$W/nsrc/$rel"; then echo "mutation did not apply"; return 2; fi
  base=$(basename "$rel" .cc)
  g++ -c -o "$W/work/$base.o" "$W/work/src/$rel" "${CXX_FLAGS[@]}" || return 1
  for o in "$W"/objs/*.o; do
    if [ "$(basename "$o")" = "$base.o" ]; then objs="$objs $W/work/$base.o"; else objs="$objs $o"; fi
  done
  # shellcheck disable=SC2086
  g++ -shared -pthread -rdynamic -o "$W/native/build/Release/nrt_native.node" -Wl,--start-group $objs \
    -Wl,--end-group -fopenmp -Wl,-rpath,$BLAS -L$BLAS -lopenblas -lgomp
}

while IFS='|' read -r name file expr; do
  [ -z "$name" ] && continue
  if ! build "$file" "$expr" >"$W/build.log" 2>&1; then echo "$name: BUILD FAILED ($(tail -1 "$W/build.log"))"; continue; fi
  out=$(cd "$W" && timeout 900 npx vitest run test/engine 2>&1)
  caught=$(echo "$out" | grep -oE "test/engine/[a-z-]+\.test\.ts \([0-9]+ tests? \| [0-9]+ failed" |
    sed -E 's/test\/engine\/([a-z-]+)\.test\.ts \(([0-9]+) tests? \| ([0-9]+) failed/\1 \3\/\2/' | tr '\n' ' ')
  echo "$name: ${caught:-NOT CAUGHT}"
done <<'EOF'
rmsnorm-dx-no-projection|kernels/rmsnorm.cc|s/dx\[i\] += r \* (dy\[i\] \* weight\[i\] - x\[i\] \* r \* dot);/dx[i] += r * (dy[i] * weight[i]);/
rmsnorm-dw-uses-x-not-xhat|kernels/rmsnorm.cc|s/dw\[i\] += dy\[i\] \* xh;/dw[i] += dy[i] * x[i];/
rmsnorm-eps-outside-sqrt|kernels/rmsnorm.cc|s/float r = 1.0f \/ std::sqrt(ss \/ C + eps);/float r = 1.0f \/ (std::sqrt(ss \/ C) + eps);/
swiglu-dg-missing-silu-derivative-term|kernels/swiglu.cc|s/dg\[i\] += dy\[i\] \* u\[i\] \* sg \* (1.0f + g\[i\] \* (1.0f - sg));/dg[i] += dy[i] * u[i] * sg;/
swiglu-forward-sigmoid-of-up|kernels/swiglu.cc|s/o\[i\] = g\[i\] \/ (1.0f + std::exp(-g\[i\])) \* u\[i\];/o[i] = g[i] \/ (1.0f + std::exp(-u[i])) * u[i];/
attention-ds-missing-softmax-centering|kernels/attention.cc|s/const float ds = p\[j\] \* (dp\[j\] - dot) \* scale;/const float ds = p[j] * dp[j] * scale;/
attention-dk-sign|kernels/attention.cc|s/dk\[e\] += ds \* q\[e\];/dk[e] -= ds * q[e];/
attention-forward-window-plus-one|kernels/attention.cc|0,/window_lo(i, window)/s//window_lo(i, window + 1)/
gqa-kv-head-mapping-modulo|kernels/attention.cc|s/kv = h \/ group;/kv = h % NKV;/
rope-backward-wrong-rotation|kernels/rope.cc|s/rope_apply(dx, pos, N, stride, col0, nheads, HS, theta, -1.0f);/rope_apply(dx, pos, N, stride, col0, nheads, HS, theta, 1.0f);/
rope-inv-freq-exponent|kernels/rope.cc|s/(float)(2 \* d) \/ (float)HS/(float)(d) \/ (float)HS/
embedding-backward-overwrites|kernels/embedding.cc|s/d\[i\] += g\[i\];/d[i] = g[i];/
xent-backward-ignores-weight-on-target|kernels/xent.cc|s/x\[target\[n\]\] -= wn;/x[target[n]] -= 1.0f;/
tied-lm-head-grad-dropped|model.cc|s/matmul_backward(dh.data(), G + o.lm_head,/matmul_backward(dh.data(), c.tied ? nullptr : G + o.lm_head,/
positions-not-restarting (equivalent)|model.cc|s/A.pos\[i\] = i - A.seq_start\[s\];/A.pos[i] = i;/
kvcache-window-plus-one|sampler.cc|s/pi - c.window + 1 > 0 ? pi - c.window + 1 : 0/pi - c.window > 0 ? pi - c.window : 0/
sampler-seed-ignored|sampler.cc|s/opt.seed \* 0xD1B54A32D192ED03ull/0 * 0xD1B54A32D192ED03ull/
sampler-topk-keeps-smallest|sampler.cc|s/return x\[a\] > x\[b\] || (x\[a\] == x\[b\] \&\& a < b);/return x[a] < x[b] || (x[a] == x[b] \&\& a < b);/
sampler-logp-scaled|sampler.cc|s/\*logp = (float)(((double)x\[tok\] - mx) - lse);/*logp = (float)(((double)x[tok] - mx) * 1.01 - lse);/
optim-no-bias-correction|optim.cc|s/const float mh = m\[i\] \/ bc1, vh = v\[i\] \/ bc2;/const float mh = m[i], vh = v[i];/
optim-decay-on-norms-too|optim.cc|s/const float wd = t.decay ? h.weight_decay : 0.0f;/const float wd = h.weight_decay;/
optim-clip-ignored|optim.cc|s/const float gi = g\[i\] \* scale;/const float gi = g[i];/
EOF
rm -rf "$W/work"
