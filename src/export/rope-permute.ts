/**
 * The two layouts of the rows of q_proj / k_proj, per head of size HS (rows of one head: HS, columns: C).
 *
 * - half-split (Hugging Face, nrt; `rotate_half`): row j and row j + HS/2 form rotary pair j.
 * - interleaved (Meta's original, llama2.c, llama.cpp/GGUF): rows 2j and 2j + 1 form rotary pair j.
 *
 * Both rotate pair j by the angle pos · θ^(−2j/HS), so moving between them is a row permutation per head:
 *   halfSplit[h][half·HS/2 + j] = interleaved[h][2j + half]      (half ∈ {0, 1}, j < HS/2)
 * `interleavedToHalfSplit` is Hugging Face's `permute` in convert_llama_weights_to_hf.py (rows 0,2,4,…,1,3,5,…);
 * `halfSplitToInterleaved` is llama.cpp's `LlamaModel.permute` in convert_hf_to_gguf.py. Each undoes the other.
 */

/** (nHeads·HS, C) interleaved rows → half-split rows; returns a new array. */
export function interleavedToHalfSplit(w: Float32Array, nHeads: number, headDim: number): Float32Array {
  const hh = headDim / 2;
  // destination row r = half·HS/2 + j comes from source row 2j + half
  return permuteRows(w, nHeads, headDim, (r) => 2 * (r % hh) + (r >= hh ? 1 : 0));
}

/** (nHeads·HS, C) half-split rows → interleaved rows; returns a new array. */
export function halfSplitToInterleaved(w: Float32Array, nHeads: number, headDim: number): Float32Array {
  const hh = headDim / 2;
  // destination row r = 2j + half comes from source row half·HS/2 + j
  return permuteRows(w, nHeads, headDim, (r) => (r % 2) * hh + (r >> 1));
}

/** out row (h, r) = w row (h, src(r)) for every head h and row r < HS of that head. */
function permuteRows(w: Float32Array, nHeads: number, headDim: number, src: (r: number) => number): Float32Array {
  if (headDim % 2 !== 0) throw new Error(`head size ${headDim} is odd`);
  const rows = nHeads * headDim;
  if (w.length % rows !== 0) throw new Error(`${w.length} values are not ${rows} rows`);
  const cols = w.length / rows;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    for (let r = 0; r < headDim; r++) {
      const from = h * headDim + src(r);
      out.set(w.subarray(from * cols, (from + 1) * cols), (h * headDim + r) * cols);
    }
  }
  return out;
}
