/* aclip-nn.h — dense and attention kernels of the learning core: linear, bias, LayerNorm, GELU,
 * ReLU, softmax, residual add, learned positional embedding, dropout, L2 normalisation, the
 * feature-map transpose, multi-head self-attention and cross-attention pooling.
 *
 * Conventions (docs/kernels.md): contiguous row-major float arrays with the shape of each
 * argument listed above each function; `_forward` writes its output, `_backward` ACCUMULATES
 * (+=) into every gradient it is given and skips a gradient whose pointer is NULL (where "or
 * NULL" is written). Outputs never overlap inputs. Kernels never allocate: scratch space comes
 * from the caller, sized in floats by the matching `_workspace_size` function. `pool` may be
 * NULL (serial). N counts the rows of a [N, C] array (N = B·T for a batch of sequences), n the
 * elements of an elementwise kernel's array.
 *
 * Threads: matrix products are cblas_sgemm calls made from the calling thread (OpenBLAS runs
 * them on its own threads), never inside the pool's loops. The loops of our own give every row
 * or element the same operations wherever a chunk starts, and reduce over rows (bias,
 * LayerNorm and positional-embedding gradients) in a fixed order, so results are bit-identical
 * for any pool size; only OpenBLAS's thread count can change the order of sgemm's additions.
 *
 * Which parts of attention are inside the kernels and which are composed from linear kernels
 * is described above aclip_attention_workspace_size.
 */
#pragma once

#include <glib.h>

#include "aclip-parallel.h"

G_BEGIN_DECLS

/* ---- Linear: out = in · weightᵀ + bias, as torch.nn.Linear ---- */

/*   out:    [N, OC] (written)
 *   in:     [N, IC]
 *   weight: [OC, IC] (nn.Linear.weight)
 *   bias:   [OC], or NULL for none
 */
void aclip_linear_forward (AclipThreadPool *pool, float *out, const float *in, const float *weight,
                           const float *bias, gint64 n_rows, int in_features, int out_features);

/*   d_in:     [N, IC] (+=), or NULL
 *   d_weight: [OC, IC] (+=), or NULL
 *   d_bias:   [OC] (+=), or NULL
 *   d_out:    [N, OC]
 *   in:       [N, IC], the forward's input
 *   weight:   [OC, IC]
 */
void aclip_linear_backward (AclipThreadPool *pool, float *d_in, float *d_weight, float *d_bias,
                            const float *d_out, const float *in, const float *weight, gint64 n_rows,
                            int in_features, int out_features);

/* Linear with a residual connection: out = residual + in · weightᵀ + bias. The residual (plus
 * bias) is written first and sgemm adds the product to it, so the sum costs no extra pass. Its
 * backward is aclip_linear_backward, plus d_residual += d_out (aclip_add_backward).
 *   out:      [N, OC] (written)
 *   residual: [N, OC]
 *   in:       [N, IC]
 *   weight:   [OC, IC]
 *   bias:     [OC], or NULL
 */
void aclip_linear_residual_forward (AclipThreadPool *pool, float *out, const float *residual,
                                    const float *in, const float *weight, const float *bias,
                                    gint64 n_rows, int in_features, int out_features);

/* ---- Bias: out = in + bias, the bias broadcast over rows ---- */

/*   out: [N, C] (written);  in: [N, C];  bias: [C] */
void aclip_bias_forward (AclipThreadPool *pool, float *out, const float *in, const float *bias,
                         gint64 n_rows, int channels);

/*   d_in: [N, C] (+=), or NULL;  d_bias: [C] (+=), or NULL;  d_out: [N, C] */
void aclip_bias_backward (AclipThreadPool *pool, float *d_in, float *d_bias, const float *d_out,
                          gint64 n_rows, int channels);

/* ---- LayerNorm over the last dimension, as torch.nn.LayerNorm ----
 * out = (in − mean)·rstd·weight + bias, rstd = 1/√(var + eps) with the biased variance
 * (nn.LayerNorm's default eps is 1e−5). */

/*   out:    [N, C] (written)
 *   mean:   [N] (written, for the backward), or NULL
 *   rstd:   [N] (written, for the backward), or NULL
 *   in:     [N, C]
 *   weight: [C];  bias: [C]
 */
void aclip_layernorm_forward (AclipThreadPool *pool, float *out, float *mean, float *rstd,
                              const float *in, const float *weight, const float *bias,
                              gint64 n_rows, int channels, float eps);

/* Floats of scratch for aclip_layernorm_backward: partial parameter-gradient sums of fixed
 * blocks of 64 rows, added in block order so that the result does not depend on the pool. */
gsize aclip_layernorm_backward_workspace_size (gint64 n_rows, int channels);

/*   d_in:      [N, C] (+=), or NULL
 *   d_weight:  [C] (+=), or NULL
 *   d_bias:    [C] (+=), or NULL
 *   d_out:     [N, C]
 *   in:        [N, C], the forward's input
 *   mean:      [N] and rstd: [N], from the forward
 *   weight:    [C]
 *   workspace: [aclip_layernorm_backward_workspace_size ()], needed for d_weight or d_bias
 */
void aclip_layernorm_backward (AclipThreadPool *pool, float *d_in, float *d_weight, float *d_bias,
                               const float *d_out, const float *in, const float *mean,
                               const float *rstd, const float *weight, gint64 n_rows, int channels,
                               float *workspace);

/* ---- Activations (elementwise) ---- */

typedef enum
{
  ACLIP_GELU_ERF,  /* x·Φ(x), the exact form: PyTorch's nn.GELU () default */
  ACLIP_GELU_TANH, /* ½x(1 + tanh (√(2/π)(x + 0.044715x³))): nn.GELU (approximate='tanh') */
} AclipGeluForm;

/* GELU with our own vectorised erfc and exp, accurate to float precision (relative error
 * ≤ 3.4e−7 measured over the real line for the erf form; tests/test-nn-dense.cc).
 *   out: [n] (written);  in: [n] */
void aclip_gelu_forward (AclipThreadPool *pool, float *out, const float *in, gsize n,
                         AclipGeluForm form);

/*   d_in: [n] (+=);  d_out: [n];  in: [n], the forward's input */
void aclip_gelu_backward (AclipThreadPool *pool, float *d_in, const float *d_out, const float *in,
                          gsize n, AclipGeluForm form);

/* ReLU; the gradient at exactly 0 is 0, as in PyTorch.
 *   out: [n] (written);  in: [n] */
void aclip_relu_forward (AclipThreadPool *pool, float *out, const float *in, gsize n);

/*   d_in: [n] (+=);  d_out: [n];  in: [n], the forward's input */
void aclip_relu_backward (AclipThreadPool *pool, float *d_in, const float *d_out, const float *in,
                          gsize n);

/* ---- Softmax over the last dimension ---- */

/*   out: [N, D] (written);  in: [N, D] */
void aclip_softmax_forward (AclipThreadPool *pool, float *out, const float *in, gint64 n_rows,
                            int length);

/*   d_in: [N, D] (+=);  d_out: [N, D];  out: [N, D], the forward's output */
void aclip_softmax_backward (AclipThreadPool *pool, float *d_in, const float *d_out,
                             const float *out, gint64 n_rows, int length);

/* ---- Residual add: out = a + b ---- */

/*   out: [n] (written);  a: [n];  b: [n] */
void aclip_add_forward (AclipThreadPool *pool, float *out, const float *a, const float *b, gsize n);

/*   d_a: [n] (+=), or NULL;  d_b: [n] (+=), or NULL;  d_out: [n] */
void aclip_add_backward (AclipThreadPool *pool, float *d_a, float *d_b, const float *d_out,
                         gsize n);

/* ---- Learned positional embedding: out[b, t, :] = in[b, t, :] + table[t, :] ----
 * The table may have more rows than T (a model's maximum length): the first T are used. */

/*   out: [B, T, C] (written);  in: [B, T, C];  table: [≥T, C] */
void aclip_positional_embedding_forward (AclipThreadPool *pool, float *out, const float *in,
                                         const float *table, int batch, int seq_len, int channels);

/*   d_in:    [B, T, C] (+=), or NULL
 *   d_table: [≥T, C] (+= on its first T rows), or NULL
 *   d_out:   [B, T, C]
 */
void aclip_positional_embedding_backward (AclipThreadPool *pool, float *d_in, float *d_table,
                                          const float *d_out, int batch, int seq_len, int channels);

/* ---- Dropout ----
 * Element i is kept when the (counter + i)-th output of splitmix64 seeded with `seed` (as a
 * 64-bit integer u) satisfies u ≥ p·2^64; kept elements are scaled by 1/(1 − p). The mask is
 * a function of (seed, counter, i) only, whatever the threads; a caller advances `counter` by
 * n between calls to draw fresh masks. The mask (1 kept, 0 dropped) is saved for the
 * backward. 0 ≤ p < 1; p = 0 keeps everything. */

/*   out: [n] (written);  mask: [n] (written);  in: [n] */
void aclip_dropout_forward (AclipThreadPool *pool, float *out, guint8 *mask, const float *in,
                            gsize n, float p, guint64 seed, guint64 counter);

/*   d_in: [n] (+=);  d_out: [n];  mask: [n], from the forward */
void aclip_dropout_backward (AclipThreadPool *pool, float *d_in, const float *d_out,
                             const guint8 *mask, gsize n, float p);

/* ---- L2 normalisation of rows: out = in / max (‖in‖₂, eps), as F.normalize (dim=-1) ---- */

/*   out: [N, C] (written);  norm: [N] (written: ‖in‖₂, for the backward), or NULL;  in: [N, C] */
void aclip_l2_normalize_forward (AclipThreadPool *pool, float *out, float *norm, const float *in,
                                 gint64 n_rows, int channels, float eps);

/*   d_in: [N, C] (+=);  d_out: [N, C];  out: [N, C] and norm: [N], from the forward */
void aclip_l2_normalize_backward (AclipThreadPool *pool, float *d_in, const float *d_out,
                                  const float *out, const float *norm, gint64 n_rows, int channels,
                                  float eps);

/* ---- Feature map to token sequence: out[b, p, c] = in[b, c, p], p = y·W + x ----
 * Lets cross-attention pooling attend over a convolutional feature map [B, C, H, W]. */

/*   out: [B, H·W, C] (written);  in: [B, C, H·W] */
void aclip_feature_map_to_tokens_forward (AclipThreadPool *pool, float *out, const float *in,
                                          int batch, int channels, int n_pixels);

/*   d_in: [B, C, H·W] (+=);  d_out: [B, H·W, C] */
void aclip_feature_map_to_tokens_backward (AclipThreadPool *pool, float *d_in, const float *d_out,
                                           int batch, int channels, int n_pixels);

/* ---- Multi-head attention ----
 *
 * Inside the kernels: the scaled dot products of every head, the masked softmax and the
 * weighted sum of the values. For each sequence b and head h, head h owning channels
 * [h·D, (h+1)·D), D = C/H:
 *
 *   probs[b, h] = softmax over the keys not masked of (q_h · k_hᵀ / √D)
 *   out[b, :, h·D:(h+1)·D] = probs[b, h] · v_h
 *
 * the heads' outputs concatenated along channels. Composed outside, from aclip_linear_*: the
 * input projection(s) producing q, k and v, and the output projection. nn.MultiheadAttention
 * is thus linear (in_proj_weight [3C, C], rows q | k | v, used as is) → attention kernel →
 * linear (out_proj).
 *
 * Key mask: key_mask[b, j] ≠ 0 marks key j of sequence b as padding or bad (as PyTorch's
 * key_padding_mask = True). A masked key gets exactly zero weight, so its key and value never
 * reach the output (provided they are finite: 0·NaN is NaN inside the product) and receive
 * exactly zero gradient. A query whose keys are all masked attends to nothing: its
 * probabilities and its output are exactly zero (PyTorch would give NaN), and it passes no
 * gradient.
 *
 * Memory: `probs` keeps every head's probability matrix for the backward, [B, H, Tq, Tk]
 * (164 MB at B = 32, H = 8, T = 400), which saves recomputing them. Pass NULL to the forward
 * when no backward follows (inference), and NULL to the backward to have them recomputed from
 * q and k into the workspace (one more q·kᵀ product and softmax per head; the same bits). The
 * workspace holds the scores and score gradients of a group of sequences at a time (two
 * buffers of at most 8 MB, or one sequence's H·Tq·Tk floats if larger), so that the softmax of
 * many heads runs in one parallel loop between the per-head sgemm calls.
 */

/* Floats of scratch for both directions of self-attention (n_queries = n_keys = T) or
 * cross-attention (n_queries = Q, n_keys = T). */
gsize aclip_attention_workspace_size (int batch, int n_queries, int n_keys, int n_heads);

/* Self-attention, non-causal, over packed projections qkv[b, t] = (q | k | v), each C wide:
 * the output of linear (in, in_proj_weight [3C, C]).
 *   out:       [B, T, C] (written), the heads' outputs concatenated
 *   probs:     [B, H, T, T] (written), or NULL
 *   qkv:       [B, T, 3C]
 *   key_mask:  [B, T], or NULL for none
 *   workspace: [aclip_attention_workspace_size (B, T, T, H)]
 */
void aclip_self_attention_forward (AclipThreadPool *pool, float *out, float *probs,
                                   const float *qkv, const guint8 *key_mask, int batch, int seq_len,
                                   int channels, int n_heads, float *workspace);

/*   d_qkv:     [B, T, 3C] (+=)
 *   d_out:     [B, T, C]
 *   probs:     [B, H, T, T] from the forward, or NULL (recomputed)
 *   qkv:       [B, T, 3C];  key_mask: [B, T] or NULL, as in the forward
 *   workspace: [aclip_attention_workspace_size (B, T, T, H)]
 */
void aclip_self_attention_backward (AclipThreadPool *pool, float *d_qkv, const float *d_out,
                                    const float *probs, const float *qkv, const guint8 *key_mask,
                                    int batch, int seq_len, int channels, int n_heads,
                                    float *workspace);

/* Cross-attention pooling: Q learned queries, shared by the batch, attend to a sequence of T
 * tokens (or the H·W pixels of a feature map, after aclip_feature_map_to_tokens_forward).
 * `queries` are the projected queries, linear (query_param [Q, C], in_proj_weight rows 0..C),
 * and `kv` the projected keys and values, linear (tokens [B, T, C], in_proj_weight rows
 * C..3C); the caller applies the output projection to `out`.
 *   out:       [B, Q, C] (written), the heads' outputs concatenated
 *   probs:     [B, H, Q, T] (written), or NULL
 *   queries:   [Q, C]
 *   kv:        [B, T, 2C], keys | values
 *   key_mask:  [B, T], or NULL
 *   workspace: [aclip_attention_workspace_size (B, Q, T, H)]
 */
void aclip_cross_attention_forward (AclipThreadPool *pool, float *out, float *probs,
                                    const float *queries, const float *kv, const guint8 *key_mask,
                                    int batch, int n_queries, int seq_len, int channels,
                                    int n_heads, float *workspace);

/*   d_queries: [Q, C] (+=, summed over the batch), or NULL
 *   d_kv:      [B, T, 2C] (+=), or NULL
 *   d_out:     [B, Q, C]
 *   probs:     [B, H, Q, T] from the forward, or NULL (recomputed)
 *   queries, kv, key_mask: as in the forward
 *   workspace: [aclip_attention_workspace_size (B, Q, T, H)]
 */
void aclip_cross_attention_backward (AclipThreadPool *pool, float *d_queries, float *d_kv,
                                     const float *d_out, const float *probs, const float *queries,
                                     const float *kv, const guint8 *key_mask, int batch,
                                     int n_queries, int seq_len, int channels, int n_heads,
                                     float *workspace);

/* For tests and benchmarks: run the baseline code of the instruction-set-dependent loops
 * (GELU, softmax) even on CPUs with AVX2 and FMA, where a faster variant is otherwise chosen
 * at run time. Set it while no kernel runs. */
void aclip_nn_use_baseline_code (gboolean use_baseline);

G_END_DECLS
