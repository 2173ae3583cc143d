/* test-nn-attention.cc — multi-head self-attention, cross-attention pooling and the
 * pre-LayerNorm transformer block (core/aclip-nn.h, core/aclip-transformer.h).
 *
 * As for the dense kernels: finite differences of the double references, float kernels against
 * the references, PyTorch fixtures (nn.MultiheadAttention and nn.TransformerEncoderLayer in
 * float64 on float32 inputs, tests/reference/make_dense_fixtures.py), bit-identical results on
 * 1 and 2 threads (OpenBLAS held at one thread by the test environment), the accumulation
 * convention, and the key mask: masked keys get exactly zero weight, changing a masked
 * token's key or value changes nothing, and a query with every key masked gives zeros, not NaN.
 */
#include "test-support.h"

#include "aclip-nn.h"
#include "aclip-transformer.h"
#include "nn-test-helpers.h"

#include <algorithm>
#include <cmath>
#include <map>

using namespace dense_reference;
using namespace nn_test;

namespace {

/* Float tolerance of the attention kernels on O(1) inputs: scores are dot products over a head
 * (D ≤ 8 terms, ~1e−7), the exp/softmax adds a few ulps relative, and the outputs and
 * gradients sum over up to T ≈ 13 keys and D per head: errors of a few 1e−7 on values of
 * order 1. atol 1e−5, rtol 1e−5 is one order of magnitude above that. */
const double kAttentionAtol = 1e-5, kAttentionRtol = 1e-5;

/* A key mask [B, T]: sequence 0 unmasked, sequence 1 with some keys masked, sequence 2 (if
 * any) with every key masked. */
std::vector<uint8_t>
example_mask (int batch, int seq_len)
{
  std::vector<uint8_t> mask ((size_t) batch * seq_len, 0);
  for (int b = 1; b < batch; b++)
    for (int t = 0; t < seq_len; t++)
      mask[(size_t) b * seq_len + t] = b == 2 || (t % 3 == 1) || t == seq_len - 1;
  return mask;
}

/* ---- Finite differences of the references ------------------------------------------------- */

TEST (SelfAttention, ReferenceMatchesFiniteDifferences)
{
  auto rng = seeded (101);
  const int b = 2, t = 4, c = 6, h = 2;
  auto qkv = random_uniform ((size_t) b * t * 3 * c, rng, -2.0, 2.0),
       weights = random_uniform ((size_t) b * t * c, rng);
  auto mask = example_mask (b, t);
  std::vector<double> d_qkv (qkv.size (), 0.0);
  self_attention_backward (d_qkv.data (), weights.data (), qkv.data (), mask.data (), b, t, c, h);
  EXPECT_LE (fd_ratio (
                 [&] (auto &p) {
                   std::vector<double> out ((size_t) b * t * c);
                   self_attention_forward (out.data (), nullptr, p.data (), mask.data (), b, t, c,
                                           h);
                   return out;
                 },
                 qkv, weights, d_qkv, kFdStep, kFdAtol, kFdRtol),
             1.0);
}

TEST (CrossAttention, ReferenceMatchesFiniteDifferences)
{
  auto rng = seeded (102);
  const int b = 2, q = 2, t = 5, c = 6, h = 3;
  auto queries = random_uniform ((size_t) q * c, rng, -2.0, 2.0),
       kv = random_uniform ((size_t) b * t * 2 * c, rng, -2.0, 2.0),
       weights = random_uniform ((size_t) b * q * c, rng);
  auto mask = example_mask (b, t);
  std::vector<double> d_queries (queries.size (), 0.0), d_kv (kv.size (), 0.0);
  cross_attention_backward (d_queries.data (), d_kv.data (), weights.data (), queries.data (),
                            kv.data (), mask.data (), b, q, t, c, h);
  auto forward = [&] (const std::vector<double> &qi, const std::vector<double> &kvi) {
    std::vector<double> out ((size_t) b * q * c);
    cross_attention_forward (out.data (), nullptr, qi.data (), kvi.data (), mask.data (), b, q, t,
                             c, h);
    return out;
  };
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (p, kv); }, queries, weights, d_queries,
                       kFdStep, kFdAtol, kFdRtol),
             1.0);
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (queries, p); }, kv, weights, d_kv, kFdStep,
                       kFdAtol, kFdRtol),
             1.0);
}

/* ---- Float kernels against the references ------------------------------------------------- */

struct SelfRun
{
  std::vector<float> out, probs, d_qkv;
};

/* Forward and backward of the self-attention kernel; `store_probs` false runs the inference
 * forward and the recomputing backward. */
SelfRun
run_self_attention (AclipThreadPool *pool, const std::vector<float> &qkv,
                    const std::vector<float> &d_out, const uint8_t *mask, int b, int t, int c,
                    int h, bool store_probs = true, int backward_calls = 1)
{
  SelfRun r;
  r.out.resize ((size_t) b * t * c);
  r.probs.assign (store_probs ? (size_t) b * h * t * t : 0, 0.0f);
  r.d_qkv.assign (qkv.size (), 0.0f);
  std::vector<float> workspace (aclip_attention_workspace_size (b, t, t, h));
  float *probs = store_probs ? r.probs.data () : nullptr;
  aclip_self_attention_forward (pool, r.out.data (), probs, qkv.data (), mask, b, t, c, h,
                                workspace.data ());
  for (int i = 0; i < backward_calls; i++)
    aclip_self_attention_backward (pool, r.d_qkv.data (), d_out.data (), probs, qkv.data (), mask,
                                   b, t, c, h, workspace.data ());
  return r;
}

TEST (SelfAttention, KernelMatchesReference)
{
  for_each_code_variant ([&] {
    auto rng = seeded (103);
    const int b = 3, t = 13, c = 24, h = 4;
    auto qkv = random_inputs ((size_t) b * t * 3 * c, rng, -2.0, 2.0),
         d_out = random_inputs ((size_t) b * t * c, rng);
    auto mask = example_mask (b, t);
    std::vector<double> out ((size_t) b * t * c), probs ((size_t) b * h * t * t),
        d_qkv (qkv.size (), 0.0);
    self_attention_forward (out.data (), probs.data (), qkv.data (), mask.data (), b, t, c, h);
    self_attention_backward (d_qkv.data (), d_out.data (), qkv.data (), mask.data (), b, t, c, h);

    Pool pool = make_pool (2);
    auto stored = run_self_attention (pool.get (), to_float (qkv), to_float (d_out), mask.data (),
                                      b, t, c, h);
    EXPECT_VECTOR_CLOSE (stored.out, out, kAttentionAtol, kAttentionRtol, "out");
    EXPECT_VECTOR_CLOSE (stored.probs, probs, kAttentionAtol, kAttentionRtol, "probs");
    EXPECT_VECTOR_CLOSE (stored.d_qkv, d_qkv, kAttentionAtol, kAttentionRtol, "d_qkv");

    /* Without stored probabilities the backward recomputes exactly the same ones. */
    auto recomputed = run_self_attention (pool.get (), to_float (qkv), to_float (d_out),
                                          mask.data (), b, t, c, h, false);
    EXPECT_TRUE (bit_identical (stored.out, recomputed.out));
    EXPECT_TRUE (bit_identical (stored.d_qkv, recomputed.d_qkv));

    /* And without any mask. */
    std::fill (out.begin (), out.end (), 0.0);
    std::fill (d_qkv.begin (), d_qkv.end (), 0.0);
    self_attention_forward (out.data (), probs.data (), qkv.data (), nullptr, b, t, c, h);
    self_attention_backward (d_qkv.data (), d_out.data (), qkv.data (), nullptr, b, t, c, h);
    auto unmasked =
        run_self_attention (pool.get (), to_float (qkv), to_float (d_out), nullptr, b, t, c, h);
    EXPECT_VECTOR_CLOSE (unmasked.out, out, kAttentionAtol, kAttentionRtol, "unmasked out");
    EXPECT_VECTOR_CLOSE (unmasked.probs, probs, kAttentionAtol, kAttentionRtol, "unmasked probs");
    EXPECT_VECTOR_CLOSE (unmasked.d_qkv, d_qkv, kAttentionAtol, kAttentionRtol, "unmasked d_qkv");
  });
}

struct CrossRun
{
  std::vector<float> out, probs, d_queries, d_kv;
};

CrossRun
run_cross_attention (AclipThreadPool *pool, const std::vector<float> &queries,
                     const std::vector<float> &kv, const std::vector<float> &d_out,
                     const uint8_t *mask, int b, int q, int t, int c, int h,
                     bool store_probs = true, int backward_calls = 1)
{
  CrossRun r;
  r.out.resize ((size_t) b * q * c);
  r.probs.assign (store_probs ? (size_t) b * h * q * t : 0, 0.0f);
  r.d_queries.assign (queries.size (), 0.0f);
  r.d_kv.assign (kv.size (), 0.0f);
  std::vector<float> workspace (aclip_attention_workspace_size (b, q, t, h));
  float *probs = store_probs ? r.probs.data () : nullptr;
  aclip_cross_attention_forward (pool, r.out.data (), probs, queries.data (), kv.data (), mask, b,
                                 q, t, c, h, workspace.data ());
  for (int i = 0; i < backward_calls; i++)
    aclip_cross_attention_backward (pool, r.d_queries.data (), r.d_kv.data (), d_out.data (), probs,
                                    queries.data (), kv.data (), mask, b, q, t, c, h,
                                    workspace.data ());
  return r;
}

TEST (CrossAttention, KernelMatchesReference)
{
  auto rng = seeded (104);
  const int b = 3, q = 3, t = 11, c = 16, h = 4;
  auto queries = random_inputs ((size_t) q * c, rng, -2.0, 2.0),
       kv = random_inputs ((size_t) b * t * 2 * c, rng, -2.0, 2.0),
       d_out = random_inputs ((size_t) b * q * c, rng);
  auto mask = example_mask (b, t);
  std::vector<double> out ((size_t) b * q * c), probs ((size_t) b * h * q * t),
      d_queries (queries.size (), 0.0), d_kv (kv.size (), 0.0);
  cross_attention_forward (out.data (), probs.data (), queries.data (), kv.data (), mask.data (), b,
                           q, t, c, h);
  cross_attention_backward (d_queries.data (), d_kv.data (), d_out.data (), queries.data (),
                            kv.data (), mask.data (), b, q, t, c, h);
  Pool pool = make_pool (2);
  auto stored = run_cross_attention (pool.get (), to_float (queries), to_float (kv),
                                     to_float (d_out), mask.data (), b, q, t, c, h);
  EXPECT_VECTOR_CLOSE (stored.out, out, kAttentionAtol, kAttentionRtol, "out");
  EXPECT_VECTOR_CLOSE (stored.probs, probs, kAttentionAtol, kAttentionRtol, "probs");
  EXPECT_VECTOR_CLOSE (stored.d_queries, d_queries, kAttentionAtol, kAttentionRtol, "d_queries");
  EXPECT_VECTOR_CLOSE (stored.d_kv, d_kv, kAttentionAtol, kAttentionRtol, "d_kv");
  auto recomputed = run_cross_attention (pool.get (), to_float (queries), to_float (kv),
                                         to_float (d_out), mask.data (), b, q, t, c, h, false);
  EXPECT_TRUE (bit_identical (stored.out, recomputed.out));
  EXPECT_TRUE (bit_identical (stored.d_queries, recomputed.d_queries));
  EXPECT_TRUE (bit_identical (stored.d_kv, recomputed.d_kv));
}

/* ---- The key mask --------------------------------------------------------------------------- */

TEST (KeyMask, MaskedKeysHaveZeroWeightAndNoInfluence)
{
  for_each_code_variant ([&] {
    auto rng = seeded (105);
    const int b = 3, t = 10, c = 12, h = 3;
    auto qkv = to_float (random_inputs ((size_t) b * t * 3 * c, rng, -2.0, 2.0));
    auto d_out = to_float (random_inputs ((size_t) b * t * c, rng));
    auto mask = example_mask (b, t);
    auto first = run_self_attention (nullptr, qkv, d_out, mask.data (), b, t, c, h);

    for (int bi = 0; bi < b; bi++)
      for (int hi = 0; hi < h; hi++)
        for (int i = 0; i < t; i++)
          for (int j = 0; j < t; j++) {
            if (mask[(size_t) bi * t + j]) {
              ASSERT_EQ (first.probs[(((size_t) bi * h + hi) * t + i) * t + j], 0.0f)
                  << "masked key " << j << " of sequence " << bi << " has weight";
            }
          }

    /* Every key of sequence 2 is masked: zeros, no NaN, no gradient. */
    for (int i = 0; i < t * c; i++)
      ASSERT_EQ (first.out[(size_t) 2 * t * c + i], 0.0f);
    for (int i = 0; i < t * 3 * c; i++)
      ASSERT_EQ (first.d_qkv[(size_t) 2 * t * 3 * c + i], 0.0f);
    for (float value : first.out)
      ASSERT_TRUE (std::isfinite (value));

    /* Masked tokens' keys and values (never their queries) get zero gradient. */
    for (int bi = 0; bi < b; bi++)
      for (int j = 0; j < t; j++) {
        if (!mask[(size_t) bi * t + j])
          continue;
        for (int ch = c; ch < 3 * c; ch++)
          ASSERT_EQ (first.d_qkv[((size_t) bi * t + j) * 3 * c + ch], 0.0f);
      }

    /* New keys and values for the masked tokens, some huge: nothing else changes. */
    auto changed = qkv;
    for (int bi = 0; bi < b; bi++)
      for (int j = 0; j < t; j++)
        if (mask[(size_t) bi * t + j])
          for (int ch = c; ch < 3 * c; ch++)
            changed[((size_t) bi * t + j) * 3 * c + ch] = (ch % 5 == 0) ? 3e4f : -7.0f * (float) ch;
    auto second = run_self_attention (nullptr, changed, d_out, mask.data (), b, t, c, h);
    EXPECT_EQ (first.out, second.out);
    EXPECT_EQ (first.probs, second.probs);
    EXPECT_EQ (first.d_qkv, second.d_qkv);

    /* The same for cross-attention. */
    const int q = 2;
    auto queries = to_float (random_inputs ((size_t) q * c, rng, -2.0, 2.0));
    auto kv = to_float (random_inputs ((size_t) b * t * 2 * c, rng, -2.0, 2.0));
    auto d_pooled = to_float (random_inputs ((size_t) b * q * c, rng));
    auto cross_first =
        run_cross_attention (nullptr, queries, kv, d_pooled, mask.data (), b, q, t, c, h);
    auto kv_changed = kv;
    for (int bi = 0; bi < b; bi++)
      for (int j = 0; j < t; j++)
        if (mask[(size_t) bi * t + j])
          for (int ch = 0; ch < 2 * c; ch++)
            kv_changed[((size_t) bi * t + j) * 2 * c + ch] = 1e3f * (float) (ch - c);
    auto cross_second =
        run_cross_attention (nullptr, queries, kv_changed, d_pooled, mask.data (), b, q, t, c, h);
    EXPECT_EQ (cross_first.out, cross_second.out);
    EXPECT_EQ (cross_first.probs, cross_second.probs);
    EXPECT_EQ (cross_first.d_queries, cross_second.d_queries);
    EXPECT_EQ (cross_first.d_kv, cross_second.d_kv);
    for (int i = 0; i < q * c; i++)
      ASSERT_EQ (cross_first.out[(size_t) 2 * q * c + i], 0.0f) << "all keys masked";
  });
}

/* ---- Threads and accumulation ---------------------------------------------------------------- */

TEST (SelfAttention, ThreadIndependentAndAccumulating)
{
  for_each_code_variant ([&] {
    auto rng = seeded (106);
    const int b = 4, t = 96, c = 32, h = 4; /* 1536 score rows: the row loops split */
    auto qkv = to_float (random_inputs ((size_t) b * t * 3 * c, rng, -2.0, 2.0));
    auto d_out = to_float (random_inputs ((size_t) b * t * c, rng));
    auto mask = example_mask (b, t);
    Pool pool1 = make_pool (1), pool2 = make_pool (2);
    auto one = run_self_attention (pool1.get (), qkv, d_out, mask.data (), b, t, c, h);
    auto two = run_self_attention (pool2.get (), qkv, d_out, mask.data (), b, t, c, h);
    EXPECT_TRUE (bit_identical (one.out, two.out));
    EXPECT_TRUE (bit_identical (one.probs, two.probs));
    EXPECT_TRUE (bit_identical (one.d_qkv, two.d_qkv));
    auto twice = run_self_attention (pool2.get (), qkv, d_out, mask.data (), b, t, c, h, true, 2);
    /* sgemm with beta = 1 may add its partial sums separately (see test-nn-dense.cc). */
    expect_doubled (two.d_qkv, twice.d_qkv, "d_qkv", kAttentionAtol, kAttentionRtol);

    const int q = 3;
    auto queries = to_float (random_inputs ((size_t) q * c, rng, -2.0, 2.0));
    auto kv = to_float (random_inputs ((size_t) b * t * 2 * c, rng, -2.0, 2.0));
    auto d_pooled = to_float (random_inputs ((size_t) b * q * c, rng));
    auto cross_one =
        run_cross_attention (pool1.get (), queries, kv, d_pooled, mask.data (), b, q, t, c, h);
    auto cross_two =
        run_cross_attention (pool2.get (), queries, kv, d_pooled, mask.data (), b, q, t, c, h);
    EXPECT_TRUE (bit_identical (cross_one.out, cross_two.out));
    EXPECT_TRUE (bit_identical (cross_one.d_queries, cross_two.d_queries));
    EXPECT_TRUE (bit_identical (cross_one.d_kv, cross_two.d_kv));
    auto cross_twice = run_cross_attention (pool2.get (), queries, kv, d_pooled, mask.data (), b, q,
                                            t, c, h, true, 2);
    expect_doubled (cross_two.d_queries, cross_twice.d_queries, "d_queries", kAttentionAtol,
                    kAttentionRtol);
    expect_doubled (cross_two.d_kv, cross_twice.d_kv, "d_kv", kAttentionAtol, kAttentionRtol);
  });
}

/* ---- PyTorch: nn.MultiheadAttention composed as linear → attention → linear --------------- */

std::vector<uint8_t>
mask_from (const FixtureTensor &tensor)
{
  std::vector<uint8_t> mask (tensor.values.size ());
  for (size_t i = 0; i < mask.size (); i++)
    mask[i] = tensor.values[i] != 0.0;
  return mask;
}

/* Inputs are normal (|x| up to ~3), the projections' K = C = 12 terms, then the attention
 * engine and another projection: a few 1e−7 relative per stage on values up to ~3. atol and
 * rtol 3e−5 are an order of magnitude above. */
const double kModuleAtol = 3e-5, kModuleRtol = 3e-5;

TEST (SelfAttention, MatchesPyTorchMultiheadAttention)
{
  Fixture fx ("attention-self.bin");
  ASSERT_TRUE (fx.ok ());
  int b = (int) fx["in"].shape[0], t = (int) fx["in"].shape[1], c = (int) fx["in"].shape[2];
  int h = (int) fx.scalar ("n_heads");
  int n = b * t;
  auto x = fx["in"].as_float (), w_in = fx["in_proj_weight"].as_float (),
       b_in = fx["in_proj_bias"].as_float (), w_out = fx["out_proj_weight"].as_float (),
       b_out = fx["out_proj_bias"].as_float (), d_out = fx["d_out"].as_float ();
  auto mask = mask_from (fx["key_mask"]);
  Pool pool = make_pool (2);
  std::vector<float> qkv ((size_t) n * 3 * c), attn ((size_t) n * c), out ((size_t) n * c),
      probs ((size_t) b * h * t * t), workspace (aclip_attention_workspace_size (b, t, t, h));
  aclip_linear_forward (pool.get (), qkv.data (), x.data (), w_in.data (), b_in.data (), n, c,
                        3 * c);
  aclip_self_attention_forward (pool.get (), attn.data (), probs.data (), qkv.data (), mask.data (),
                                b, t, c, h, workspace.data ());
  aclip_linear_forward (pool.get (), out.data (), attn.data (), w_out.data (), b_out.data (), n, c,
                        c);
  EXPECT_VECTOR_CLOSE (out, fx["out"].values, kModuleAtol, kModuleRtol, "out");
  EXPECT_VECTOR_CLOSE (probs, fx["probs"].values, kModuleAtol, kModuleRtol, "probs");

  std::vector<float> d_attn ((size_t) n * c, 0.0f), d_qkv ((size_t) n * 3 * c, 0.0f),
      d_x ((size_t) n * c, 0.0f), d_w_in (w_in.size (), 0.0f), d_b_in (b_in.size (), 0.0f),
      d_w_out (w_out.size (), 0.0f), d_b_out (b_out.size (), 0.0f);
  aclip_linear_backward (pool.get (), d_attn.data (), d_w_out.data (), d_b_out.data (),
                         d_out.data (), attn.data (), w_out.data (), n, c, c);
  aclip_self_attention_backward (pool.get (), d_qkv.data (), d_attn.data (), probs.data (),
                                 qkv.data (), mask.data (), b, t, c, h, workspace.data ());
  aclip_linear_backward (pool.get (), d_x.data (), d_w_in.data (), d_b_in.data (), d_qkv.data (),
                         x.data (), w_in.data (), n, c, 3 * c);
  EXPECT_VECTOR_CLOSE (d_x, fx["d_in"].values, kModuleAtol, kModuleRtol, "d_in");
  EXPECT_VECTOR_CLOSE (d_w_in, fx["d_in_proj_weight"].values, kModuleAtol, kModuleRtol,
                       "d_in_proj_weight");
  EXPECT_VECTOR_CLOSE (d_b_in, fx["d_in_proj_bias"].values, kModuleAtol, kModuleRtol,
                       "d_in_proj_bias");
  EXPECT_VECTOR_CLOSE (d_w_out, fx["d_out_proj_weight"].values, kModuleAtol, kModuleRtol,
                       "d_out_proj_weight");
  EXPECT_VECTOR_CLOSE (d_b_out, fx["d_out_proj_bias"].values, kModuleAtol, kModuleRtol,
                       "d_out_proj_bias");
}

/* Cross-attention pooling over a feature map: tokens = transpose(map), k|v = linear(tokens,
 * in_proj_weight[C:3C]), q = linear(queries, in_proj_weight[0:C]), attention, out_proj. */
TEST (CrossAttention, MatchesPyTorchOverAFeatureMap)
{
  Fixture fx ("attention-cross.bin");
  ASSERT_TRUE (fx.ok ());
  const FixtureTensor &map_tensor = fx["feature_map"];
  int b = (int) map_tensor.shape[0], c = (int) map_tensor.shape[1];
  int pixels = (int) (map_tensor.shape[2] * map_tensor.shape[3]);
  int q = (int) fx["queries"].shape[0], h = (int) fx.scalar ("n_heads");
  auto feature_map = map_tensor.as_float (), query_param = fx["queries"].as_float (),
       w_in = fx["in_proj_weight"].as_float (), b_in = fx["in_proj_bias"].as_float (),
       w_out = fx["out_proj_weight"].as_float (), b_out = fx["out_proj_bias"].as_float (),
       d_out = fx["d_out"].as_float ();
  auto mask = mask_from (fx["key_mask"]);
  int n_tokens = b * pixels;
  const float *w_q = w_in.data (), *w_kv = w_in.data () + (size_t) c * c;
  const float *b_q = b_in.data (), *b_kv = b_in.data () + c;

  Pool pool = make_pool (2);
  std::vector<float> tokens ((size_t) n_tokens * c), kv ((size_t) n_tokens * 2 * c),
      queries ((size_t) q * c), pooled ((size_t) b * q * c), out ((size_t) b * q * c),
      probs ((size_t) b * h * q * pixels),
      workspace (aclip_attention_workspace_size (b, q, pixels, h));
  aclip_feature_map_to_tokens_forward (pool.get (), tokens.data (), feature_map.data (), b, c,
                                       pixels);
  aclip_linear_forward (pool.get (), kv.data (), tokens.data (), w_kv, b_kv, n_tokens, c, 2 * c);
  aclip_linear_forward (pool.get (), queries.data (), query_param.data (), w_q, b_q, q, c, c);
  aclip_cross_attention_forward (pool.get (), pooled.data (), probs.data (), queries.data (),
                                 kv.data (), mask.data (), b, q, pixels, c, h, workspace.data ());
  aclip_linear_forward (pool.get (), out.data (), pooled.data (), w_out.data (), b_out.data (),
                        b * q, c, c);
  EXPECT_VECTOR_CLOSE (out, fx["out"].values, kModuleAtol, kModuleRtol, "out");
  EXPECT_VECTOR_CLOSE (probs, fx["probs"].values, kModuleAtol, kModuleRtol, "probs");

  std::vector<float> d_pooled (pooled.size (), 0.0f), d_queries (queries.size (), 0.0f),
      d_kv (kv.size (), 0.0f), d_tokens (tokens.size (), 0.0f), d_map (feature_map.size (), 0.0f),
      d_query_param (query_param.size (), 0.0f), d_w_in (w_in.size (), 0.0f),
      d_b_in (b_in.size (), 0.0f), d_w_out (w_out.size (), 0.0f), d_b_out (b_out.size (), 0.0f);
  aclip_linear_backward (pool.get (), d_pooled.data (), d_w_out.data (), d_b_out.data (),
                         d_out.data (), pooled.data (), w_out.data (), b * q, c, c);
  aclip_cross_attention_backward (pool.get (), d_queries.data (), d_kv.data (), d_pooled.data (),
                                  probs.data (), queries.data (), kv.data (), mask.data (), b, q,
                                  pixels, c, h, workspace.data ());
  aclip_linear_backward (pool.get (), d_query_param.data (), d_w_in.data (), d_b_in.data (),
                         d_queries.data (), query_param.data (), w_q, q, c, c);
  aclip_linear_backward (pool.get (), d_tokens.data (), d_w_in.data () + (size_t) c * c,
                         d_b_in.data () + c, d_kv.data (), tokens.data (), w_kv, n_tokens, c,
                         2 * c);
  aclip_feature_map_to_tokens_backward (pool.get (), d_map.data (), d_tokens.data (), b, c, pixels);
  EXPECT_VECTOR_CLOSE (d_query_param, fx["d_queries"].values, kModuleAtol, kModuleRtol,
                       "d_queries");
  EXPECT_VECTOR_CLOSE (d_map, fx["d_feature_map"].values, kModuleAtol, kModuleRtol,
                       "d_feature_map");
  EXPECT_VECTOR_CLOSE (d_w_in, fx["d_in_proj_weight"].values, kModuleAtol, kModuleRtol,
                       "d_in_proj_weight");
  EXPECT_VECTOR_CLOSE (d_b_in, fx["d_in_proj_bias"].values, kModuleAtol, kModuleRtol,
                       "d_in_proj_bias");
  EXPECT_VECTOR_CLOSE (d_w_out, fx["d_out_proj_weight"].values, kModuleAtol, kModuleRtol,
                       "d_out_proj_weight");
  EXPECT_VECTOR_CLOSE (d_b_out, fx["d_out_proj_bias"].values, kModuleAtol, kModuleRtol,
                       "d_out_proj_bias");
}

/* ---- The transformer block ------------------------------------------------------------------- */

/* state_dict names in the order of aclip_transformer_params_bind. */
const char *const kBlockParameterNames[] = {
  "self_attn.in_proj_weight",
  "self_attn.in_proj_bias",
  "self_attn.out_proj.weight",
  "self_attn.out_proj.bias",
  "linear1.weight",
  "linear1.bias",
  "linear2.weight",
  "linear2.bias",
  "norm1.weight",
  "norm1.bias",
  "norm2.weight",
  "norm2.bias",
};

/* The 12 parameter arrays of a flat block, in bind order, as pointers. */
std::vector<float *>
block_fields (AclipTransformerParams *p)
{
  return { p->attn_in_weight, p->attn_in_bias, p->attn_out_weight, p->attn_out_bias,
           p->mlp_in_weight,  p->mlp_in_bias,  p->mlp_out_weight,  p->mlp_out_bias,
           p->ln1_weight,     p->ln1_bias,     p->ln2_weight,      p->ln2_bias };
}

struct BlockRun
{
  std::vector<float> out, d_in, d_params;
};

BlockRun
run_block (AclipThreadPool *pool, const AclipTransformerConfig &config,
           const std::vector<float> &params, const std::vector<float> &in,
           const std::vector<float> &d_out, const uint8_t *mask, int b, int t,
           bool store_probs = true, int backward_calls = 1)
{
  std::vector<float> params_copy = params;
  std::vector<float> d_params (params.size (), 0.0f);
  AclipTransformerParams p, g;
  aclip_transformer_params_bind (&p, &config, params_copy.data ());
  aclip_transformer_params_bind (&g, &config, d_params.data ());
  std::vector<float> activation_memory (
      aclip_transformer_activations_size (&config, b, t, store_probs));
  AclipTransformerActivations activations;
  aclip_transformer_activations_bind (&activations, &config, b, t, store_probs,
                                      activation_memory.data ());
  std::vector<float> workspace (aclip_transformer_workspace_size (&config, b, t));
  BlockRun r;
  r.out.resize (in.size ());
  r.d_in.assign (in.size (), 0.0f);
  aclip_transformer_block_forward (pool, &config, &p, &activations, r.out.data (), in.data (), mask,
                                   b, t, workspace.data ());
  for (int i = 0; i < backward_calls; i++)
    aclip_transformer_block_backward (pool, &config, &p, &g, &activations, r.d_in.data (),
                                      d_out.data (), in.data (), mask, b, t, workspace.data ());
  r.d_params = d_params;
  return r;
}

/* The block is about ten float stages deep (LayerNorm, four linears with K ≤ 96, attention,
 * GELU, residuals), each rounding at ~1e−7 relative on values of order 1 to 10; the K-term
 * sums and LayerNorm's rstd grow that to a few 1e−6 at worst (the parameter gradients also sum
 * over the B·T tokens). atol 2e−5 with rtol 2e−5 is an order of magnitude above that. */
const double kBlockAtol = 2e-5, kBlockRtol = 2e-5;

void
check_block_against_pytorch (const char *fixture_name)
{
  Fixture fx (fixture_name);
  ASSERT_TRUE (fx.ok ());
  int b = (int) fx["in"].shape[0], t = (int) fx["in"].shape[1], c = (int) fx["in"].shape[2];
  AclipTransformerConfig config = { c, (int) fx.scalar ("n_heads"), (int) fx.scalar ("hidden"),
                                    (float) fx.scalar ("eps"), ACLIP_GELU_ERF };
  std::vector<float> params (aclip_transformer_params_size (&config));
  AclipTransformerParams p;
  aclip_transformer_params_bind (&p, &config, params.data ());
  auto fields = block_fields (&p);
  for (size_t i = 0; i < fields.size (); i++) {
    auto values = fx[kBlockParameterNames[i]].as_float ();
    std::copy (values.begin (), values.end (), fields[i]);
  }
  auto mask = mask_from (fx["key_mask"]);
  bool any_masked = std::any_of (mask.begin (), mask.end (), [] (uint8_t m) { return m != 0; });
  Pool pool = make_pool (2);
  auto run = run_block (pool.get (), config, params, fx["in"].as_float (), fx["d_out"].as_float (),
                        any_masked ? mask.data () : nullptr, b, t);
  EXPECT_VECTOR_CLOSE (run.out, fx["out"].values, kBlockAtol, kBlockRtol, "out");
  EXPECT_VECTOR_CLOSE (run.d_in, fx["d_in"].values, kBlockAtol, kBlockRtol, "d_in");
  std::vector<float> d_params = run.d_params;
  AclipTransformerParams g;
  aclip_transformer_params_bind (&g, &config, d_params.data ());
  auto grad_fields = block_fields (&g);
  for (size_t i = 0; i < grad_fields.size (); i++) {
    std::string name = std::string ("d_") + kBlockParameterNames[i];
    const FixtureTensor &expected = fx[name];
    std::vector<float> actual (grad_fields[i], grad_fields[i] + expected.size ());
    EXPECT_VECTOR_CLOSE (actual, expected.values, kBlockAtol, kBlockRtol, name.c_str ());
  }
}

TEST (TransformerBlock, MatchesPyTorchEncoderLayer)
{
  check_block_against_pytorch ("transformer-block.bin");
}

TEST (TransformerBlock, MatchesPyTorchEncoderLayerWithKeyPaddingMask)
{
  check_block_against_pytorch ("transformer-block-masked.bin");
}

TEST (TransformerBlock, ReferenceMatchesFiniteDifferences)
{
  auto rng = seeded (107);
  TransformerShape shape = { 8, 2, 16, 1e-5, false };
  const int b = 2, t = 3;
  auto params = random_uniform (transformer_params_size (shape), rng, -0.5, 0.5);
  auto in = random_uniform ((size_t) b * t * shape.channels, rng, -2.0, 2.0);
  auto weights = random_uniform (in.size (), rng);
  std::vector<uint8_t> mask = { 0, 0, 0, 0, 1, 0 };
  std::vector<double> d_in (in.size (), 0.0), d_params (params.size (), 0.0);
  transformer_block_backward (d_in.data (), d_params.data (), weights.data (), params.data (),
                              in.data (), mask.data (), b, t, shape);
  auto forward = [&] (const std::vector<double> &pi, const std::vector<double> &xi) {
    std::vector<double> out (xi.size ());
    transformer_block_forward (out.data (), pi.data (), xi.data (), mask.data (), b, t, shape);
    return out;
  };
  EXPECT_LE (fd_ratio ([&] (auto &x) { return forward (params, x); }, in, weights, d_in, kFdStep,
                       kFdAtol, kFdRtol),
             1.0);
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (p, in); }, params, weights, d_params,
                       kFdStep, kFdAtol, kFdRtol),
             1.0);
}

TEST (TransformerBlock, KernelMatchesReference)
{
  for_each_code_variant ([&] {
    auto rng = seeded (108);
    for (bool tanh_form : { false, true }) {
      TransformerShape shape = { 24, 3, 96, 1e-5, tanh_form };
      AclipTransformerConfig config = { 24, 3, 96, 1e-5f,
                                        tanh_form ? ACLIP_GELU_TANH : ACLIP_GELU_ERF };
      const int b = 3, t = 9;
      ASSERT_EQ (transformer_params_size (shape), aclip_transformer_params_size (&config));
      auto params = random_inputs (transformer_params_size (shape), rng, -0.3, 0.3);
      auto in = random_inputs ((size_t) b * t * shape.channels, rng, -2.0, 2.0);
      auto d_out = random_inputs (in.size (), rng);
      auto mask = example_mask (b, t);
      std::vector<double> out (in.size ()), d_in (in.size (), 0.0), d_params (params.size (), 0.0);
      transformer_block_forward (out.data (), params.data (), in.data (), mask.data (), b, t,
                                 shape);
      transformer_block_backward (d_in.data (), d_params.data (), d_out.data (), params.data (),
                                  in.data (), mask.data (), b, t, shape);
      Pool pool = make_pool (2);
      auto run = run_block (pool.get (), config, to_float (params), to_float (in), to_float (d_out),
                            mask.data (), b, t);
      EXPECT_VECTOR_CLOSE (run.out, out, kBlockAtol, kBlockRtol, "out");
      EXPECT_VECTOR_CLOSE (run.d_in, d_in, kBlockAtol, kBlockRtol, "d_in");
      EXPECT_VECTOR_CLOSE (run.d_params, d_params, kBlockAtol, kBlockRtol, "d_params");
    }
  });
}

TEST (TransformerBlock, ThreadIndependentAccumulatingAndRecomputing)
{
  auto rng = seeded (109);
  AclipTransformerConfig config = { 32, 4, 128, 1e-5f, ACLIP_GELU_ERF };
  const int b = 3, t = 40;
  auto params = to_float (random_inputs (aclip_transformer_params_size (&config), rng, -0.3, 0.3));
  auto in = to_float (random_inputs ((size_t) b * t * config.channels, rng, -2.0, 2.0));
  auto d_out = to_float (random_inputs (in.size (), rng));
  auto mask = example_mask (b, t);
  Pool pool1 = make_pool (1), pool2 = make_pool (2);
  auto one = run_block (pool1.get (), config, params, in, d_out, mask.data (), b, t);
  auto two = run_block (pool2.get (), config, params, in, d_out, mask.data (), b, t);
  EXPECT_TRUE (bit_identical (one.out, two.out));
  EXPECT_TRUE (bit_identical (one.d_in, two.d_in));
  EXPECT_TRUE (bit_identical (one.d_params, two.d_params));
  /* The backward recomputing the attention probabilities gives the same bits. */
  auto recomputed = run_block (pool2.get (), config, params, in, d_out, mask.data (), b, t, false);
  EXPECT_TRUE (bit_identical (two.out, recomputed.out));
  EXPECT_TRUE (bit_identical (two.d_in, recomputed.d_in));
  EXPECT_TRUE (bit_identical (two.d_params, recomputed.d_params));
  auto twice = run_block (pool2.get (), config, params, in, d_out, mask.data (), b, t, true, 2);
  expect_doubled (two.d_in, twice.d_in, "d_in", kBlockAtol, kBlockRtol);
  expect_doubled (two.d_params, twice.d_params, "d_params", kBlockAtol, kBlockRtol);
  for (float value : two.d_params)
    ASSERT_TRUE (std::isfinite (value));
}

} // namespace
