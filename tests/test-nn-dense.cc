/* test-nn-dense.cc — the dense kernels of core/aclip-nn.h: linear, bias, LayerNorm, GELU, ReLU,
 * softmax, residual add, positional embedding, dropout, L2 normalisation, feature-map
 * transpose.
 *
 * For each kernel: (1) the double reference's backward against central finite differences of
 * its forward; (2) the float kernel against the reference, forward and backward; (3) PyTorch
 * fixtures (tests/reference/make_dense_fixtures.py, float64 PyTorch on float32 inputs);
 * (4) pool sizes 1 and 2 give bit-identical results (OpenBLAS is held at one thread by the test
 * environment, so sgemm's own order is fixed too); (5) calling backward twice doubles every
 * gradient (the accumulation convention).
 *
 * Tolerances. Finite differences: step h = 1e-5 in double, truncation ~h²·f‴ ≈ 1e-10 and
 * rounding ~1e-16/h ≈ 1e-11, so |numeric − analytic| ≤ 1e-8 + 1e-6·|numeric| leaves a wide
 * margin. Float kernels: each is stated at its test from the float rounding it involves.
 */
#include "test-support.h"

#include "aclip-nn.h"
#include "nn-test-helpers.h"

#include <cmath>
#include <cstring>
#include <iostream>
#include <memory>

using namespace dense_reference;
using namespace nn_test;

namespace {

/* ---- Linear ---------------------------------------------------------------------------------- */

TEST (Linear, ReferenceMatchesFiniteDifferences)
{
  auto rng = seeded (1);
  const int n = 4, ic = 5, oc = 3;
  auto x = random_uniform (n * ic, rng), w = random_uniform (oc * ic, rng),
       b = random_uniform (oc, rng), weights = random_uniform (n * oc, rng);
  std::vector<double> d_x (n * ic, 0.0), d_w (oc * ic, 0.0), d_b (oc, 0.0);
  linear_backward (d_x.data (), d_w.data (), d_b.data (), weights.data (), x.data (), w.data (), n,
                   ic, oc);
  auto forward = [&] (const std::vector<double> &xi, const std::vector<double> &wi,
                      const std::vector<double> &bi) {
    std::vector<double> out (n * oc);
    linear_forward (out.data (), xi.data (), wi.data (), bi.data (), n, ic, oc);
    return out;
  };
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (p, w, b); }, x, weights, d_x, kFdStep,
                       kFdAtol, kFdRtol),
             1.0);
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (x, p, b); }, w, weights, d_w, kFdStep,
                       kFdAtol, kFdRtol),
             1.0);
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (x, w, p); }, b, weights, d_b, kFdStep,
                       kFdAtol, kFdRtol),
             1.0);
}

/* Float tolerance for products of length K with factors in [−1, 1]: the worst-case error of a
 * float dot product is about K·2^−24·Σ|a_k·b_k| ≤ 40·6e−8·40 ≈ 1e−4 in the very worst case,
 * typically √K·2^−24·‖a‖‖b‖ ≈ 1e−6. atol 2e−5 with rtol 1e−5 sits between the two. */
const double kGemmAtol = 2e-5, kGemmRtol = 1e-5;

TEST (Linear, KernelMatchesReference)
{
  auto rng = seeded (2);
  const int n = 37, ic = 29, oc = 23;
  auto x = random_inputs (n * ic, rng), w = random_inputs (oc * ic, rng),
       b = random_inputs (oc, rng), d_out = random_inputs (n * oc, rng);
  std::vector<double> out (n * oc), d_x (n * ic, 0.0), d_w (oc * ic, 0.0), d_b (oc, 0.0);
  linear_forward (out.data (), x.data (), w.data (), b.data (), n, ic, oc);
  linear_backward (d_x.data (), d_w.data (), d_b.data (), d_out.data (), x.data (), w.data (), n,
                   ic, oc);

  Pool pool = make_pool (2);
  auto xf = to_float (x), wf = to_float (w), bf = to_float (b), d_outf = to_float (d_out);
  std::vector<float> outf (n * oc), d_xf (n * ic, 0.0f), d_wf (oc * ic, 0.0f), d_bf (oc, 0.0f);
  aclip_linear_forward (pool.get (), outf.data (), xf.data (), wf.data (), bf.data (), n, ic, oc);
  aclip_linear_backward (pool.get (), d_xf.data (), d_wf.data (), d_bf.data (), d_outf.data (),
                         xf.data (), wf.data (), n, ic, oc);
  EXPECT_VECTOR_CLOSE (outf, out, kGemmAtol, kGemmRtol, "out");
  EXPECT_VECTOR_CLOSE (d_xf, d_x, kGemmAtol, kGemmRtol, "d_in");
  EXPECT_VECTOR_CLOSE (d_wf, d_w, kGemmAtol, kGemmRtol, "d_weight");
  EXPECT_VECTOR_CLOSE (d_bf, d_b, kGemmAtol, kGemmRtol, "d_bias");

  /* Without bias, and with only some gradients wanted. */
  std::vector<double> out_no_bias (n * oc);
  linear_forward (out_no_bias.data (), x.data (), w.data (), nullptr, n, ic, oc);
  aclip_linear_forward (pool.get (), outf.data (), xf.data (), wf.data (), nullptr, n, ic, oc);
  EXPECT_VECTOR_CLOSE (outf, out_no_bias, kGemmAtol, kGemmRtol, "out without bias");
  std::vector<float> d_bf_only (oc, 0.0f);
  aclip_linear_backward (pool.get (), nullptr, nullptr, d_bf_only.data (), d_outf.data (),
                         xf.data (), wf.data (), n, ic, oc);
  EXPECT_VECTOR_CLOSE (d_bf_only, d_b, kGemmAtol, kGemmRtol, "d_bias alone");

  /* Linear with a residual: out = residual + linear. */
  auto residual = random_inputs (n * oc, rng);
  auto residualf = to_float (residual);
  std::vector<double> with_residual (n * oc);
  add_forward (with_residual.data (), out.data (), residual.data (), with_residual.size ());
  aclip_linear_residual_forward (pool.get (), outf.data (), residualf.data (), xf.data (),
                                 wf.data (), bf.data (), n, ic, oc);
  EXPECT_VECTOR_CLOSE (outf, with_residual, kGemmAtol, kGemmRtol, "residual out");
}

TEST (Linear, MatchesPyTorch)
{
  Fixture fx ("dense-linear.bin");
  ASSERT_TRUE (fx.ok ());
  int n = (int) fx["in"].shape[0], ic = (int) fx["in"].shape[1], oc = (int) fx["weight"].shape[0];
  auto x = fx["in"].as_float (), w = fx["weight"].as_float (), b = fx["bias"].as_float (),
       d_out = fx["d_out"].as_float ();
  std::vector<float> out (n * oc), d_x (n * ic, 0.0f), d_w (oc * ic, 0.0f), d_b (oc, 0.0f);
  aclip_linear_forward (nullptr, out.data (), x.data (), w.data (), b.data (), n, ic, oc);
  aclip_linear_backward (nullptr, d_x.data (), d_w.data (), d_b.data (), d_out.data (), x.data (),
                         w.data (), n, ic, oc);
  /* Normal inputs (|x| up to ~3) and K ≤ 13: same bound as above. */
  EXPECT_VECTOR_CLOSE (out, fx["out"].values, kGemmAtol, kGemmRtol, "out");
  EXPECT_VECTOR_CLOSE (d_x, fx["d_in"].values, kGemmAtol, kGemmRtol, "d_in");
  EXPECT_VECTOR_CLOSE (d_w, fx["d_weight"].values, kGemmAtol, kGemmRtol, "d_weight");
  EXPECT_VECTOR_CLOSE (d_b, fx["d_bias"].values, kGemmAtol, kGemmRtol, "d_bias");
}

TEST (Linear, BackwardAccumulatesAndIsThreadIndependent)
{
  auto rng = seeded (3);
  const int n = 2000, ic = 24, oc = 40; /* 80 000 output elements: several parallel chunks */
  auto x = to_float (random_inputs (n * ic, rng)), w = to_float (random_inputs (oc * ic, rng)),
       b = to_float (random_inputs (oc, rng)), d_out = to_float (random_inputs (n * oc, rng));
  std::vector<std::vector<float>> outs, d_xs, d_ws, d_bs;
  for (int threads : { 1, 2 }) {
    Pool pool = make_pool (threads);
    std::vector<float> out (n * oc), d_x (n * ic, 0.0f), d_w (oc * ic, 0.0f), d_b (oc, 0.0f);
    aclip_linear_forward (pool.get (), out.data (), x.data (), w.data (), b.data (), n, ic, oc);
    aclip_linear_backward (pool.get (), d_x.data (), d_w.data (), d_b.data (), d_out.data (),
                           x.data (), w.data (), n, ic, oc);
    outs.push_back (out), d_xs.push_back (d_x), d_ws.push_back (d_w), d_bs.push_back (d_b);
    if (threads == 2) {
      aclip_linear_backward (pool.get (), d_x.data (), d_w.data (), d_b.data (), d_out.data (),
                             x.data (), w.data (), n, ic, oc);
      expect_doubled (d_xs[1], d_x, "d_in", kGemmAtol, kGemmRtol);
      expect_doubled (d_ws[1], d_w, "d_weight", kGemmAtol, kGemmRtol);
      expect_doubled (d_bs[1], d_b, "d_bias");
    }
  }
  EXPECT_TRUE (bit_identical (outs[0], outs[1]));
  EXPECT_TRUE (bit_identical (d_xs[0], d_xs[1]));
  EXPECT_TRUE (bit_identical (d_ws[0], d_ws[1]));
  EXPECT_TRUE (bit_identical (d_bs[0], d_bs[1]));
}

/* ---- Bias ------------------------------------------------------------------------------------ */

TEST (Bias, KernelMatchesReference)
{
  auto rng = seeded (4);
  const int n = 3000, c = 21;
  auto x = random_inputs (n * c, rng), b = random_inputs (c, rng),
       d_out = random_inputs (n * c, rng);
  std::vector<double> out (n * c), d_x (n * c, 0.0), d_b (c, 0.0);
  bias_forward (out.data (), x.data (), b.data (), n, c);
  bias_backward (d_x.data (), d_b.data (), d_out.data (), n, c);
  std::vector<std::vector<float>> d_bs;
  for (int threads : { 1, 2 }) {
    Pool pool = make_pool (threads);
    auto xf = to_float (x), bf = to_float (b), d_outf = to_float (d_out);
    std::vector<float> outf (n * c), d_xf (n * c, 0.0f), d_bf (c, 0.0f);
    aclip_bias_forward (pool.get (), outf.data (), xf.data (), bf.data (), n, c);
    aclip_bias_backward (pool.get (), d_xf.data (), d_bf.data (), d_outf.data (), n, c);
    /* One rounding per element for out. The bias gradient sums 3000 values in [−1, 1] in
     * float: the running sum reaches ~30, where half an ulp is 1.9e−6; 3000 such roundings
     * give ~√3000·1.9e−6·0.6 ≈ 6e−5 typically and 6e−3 at the very worst. atol 1e−3 sits
     * between the two. */
    EXPECT_VECTOR_CLOSE (outf, out, 1e-7, 1e-7, "out");
    EXPECT_EQ (to_double (d_xf), d_x) << "d_in is d_out exactly";
    EXPECT_VECTOR_CLOSE (d_bf, d_b, 1e-3, 0.0, "d_bias");
    d_bs.push_back (d_bf);
    if (threads == 2) {
      aclip_bias_backward (pool.get (), d_xf.data (), d_bf.data (), d_outf.data (), n, c);
      expect_doubled (d_bs[1], d_bf, "d_bias");
    }
  }
  EXPECT_TRUE (bit_identical (d_bs[0], d_bs[1]));
}

/* ---- LayerNorm ------------------------------------------------------------------------------- */

TEST (LayerNorm, ReferenceMatchesFiniteDifferences)
{
  auto rng = seeded (5);
  const int n = 3, c = 7;
  const double eps = 1e-5;
  auto x = random_uniform (n * c, rng, -2.0, 2.0), w = random_uniform (c, rng),
       b = random_uniform (c, rng), weights = random_uniform (n * c, rng);
  std::vector<double> d_x (n * c, 0.0), d_w (c, 0.0), d_b (c, 0.0);
  layernorm_backward (d_x.data (), d_w.data (), d_b.data (), weights.data (), x.data (), w.data (),
                      n, c, eps);
  auto forward = [&] (const std::vector<double> &xi, const std::vector<double> &wi,
                      const std::vector<double> &bi) {
    std::vector<double> out (n * c);
    layernorm_forward (out.data (), nullptr, nullptr, xi.data (), wi.data (), bi.data (), n, c,
                       eps);
    return out;
  };
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (p, w, b); }, x, weights, d_x, kFdStep,
                       kFdAtol, kFdRtol),
             1.0);
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (x, p, b); }, w, weights, d_w, kFdStep,
                       kFdAtol, kFdRtol),
             1.0);
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (x, w, p); }, b, weights, d_b, kFdStep,
                       kFdAtol, kFdRtol),
             1.0);
}

struct LayerNormRun
{
  std::vector<float> out, mean, rstd, d_x, d_w, d_b;
};

LayerNormRun
run_layernorm (AclipThreadPool *pool, const std::vector<float> &x, const std::vector<float> &w,
               const std::vector<float> &b, const std::vector<float> &d_out, int n, int c,
               float eps, int repeats = 1)
{
  LayerNormRun r;
  r.out.resize (n * c), r.mean.resize (n), r.rstd.resize (n);
  r.d_x.assign (n * c, 0.0f), r.d_w.assign (c, 0.0f), r.d_b.assign (c, 0.0f);
  std::vector<float> workspace (aclip_layernorm_backward_workspace_size (n, c));
  aclip_layernorm_forward (pool, r.out.data (), r.mean.data (), r.rstd.data (), x.data (),
                           w.data (), b.data (), n, c, eps);
  for (int i = 0; i < repeats; i++)
    aclip_layernorm_backward (pool, r.d_x.data (), r.d_w.data (), r.d_b.data (), d_out.data (),
                              x.data (), r.mean.data (), r.rstd.data (), w.data (), n, c,
                              workspace.data ());
  return r;
}

TEST (LayerNorm, KernelMatchesReference)
{
  auto rng = seeded (6);
  for (int c : { 45, 256 }) {
    const int n = 37;
    const float eps = 1e-5f;
    /* An offset mean makes the variance computation matter. */
    auto x = random_inputs (n * c, rng, -1.0, 3.0), w = random_inputs (c, rng),
         b = random_inputs (c, rng), d_out = random_inputs (n * c, rng);
    std::vector<double> out (n * c), d_x (n * c, 0.0), d_w (c, 0.0), d_b (c, 0.0);
    layernorm_forward (out.data (), nullptr, nullptr, x.data (), w.data (), b.data (), n, c, eps);
    layernorm_backward (d_x.data (), d_w.data (), d_b.data (), d_out.data (), x.data (), w.data (),
                        n, c, eps);
    Pool pool = make_pool (2);
    auto r = run_layernorm (pool.get (), to_float (x), to_float (w), to_float (b), to_float (d_out),
                            n, c, eps);
    /* Normalised values are O(1) with a few roundings each (mean, variance over C terms, the
     * rsqrt): 1e−5 absolute covers them. The input gradient carries rstd ≈ 0.9 and sums over
     * C in its two means; the parameter gradients sum n = 37 terms. */
    EXPECT_VECTOR_CLOSE (r.out, out, 1e-5, 1e-5, "out");
    EXPECT_VECTOR_CLOSE (r.d_x, d_x, 1e-5, 1e-5, "d_in");
    EXPECT_VECTOR_CLOSE (r.d_w, d_w, 1e-5, 1e-5, "d_weight");
    EXPECT_VECTOR_CLOSE (r.d_b, d_b, 1e-5, 1e-5, "d_bias");
  }
}

TEST (LayerNorm, MatchesPyTorch)
{
  Fixture fx ("dense-layernorm.bin");
  ASSERT_TRUE (fx.ok ());
  int n = (int) fx["in"].shape[0], c = (int) fx["in"].shape[1];
  auto r = run_layernorm (nullptr, fx["in"].as_float (), fx["weight"].as_float (),
                          fx["bias"].as_float (), fx["d_out"].as_float (), n, c,
                          (float) fx.scalar ("eps"));
  /* Inputs of scale 2 around 0.5, weights and upstream gradients normal (|·| up to ~3): the
     same rounding budget as above, scaled by 3. */
  EXPECT_VECTOR_CLOSE (r.out, fx["out"].values, 3e-5, 1e-5, "out");
  EXPECT_VECTOR_CLOSE (r.d_x, fx["d_in"].values, 3e-5, 1e-5, "d_in");
  EXPECT_VECTOR_CLOSE (r.d_w, fx["d_weight"].values, 3e-5, 1e-5, "d_weight");
  EXPECT_VECTOR_CLOSE (r.d_b, fx["d_bias"].values, 3e-5, 1e-5, "d_bias");
}

TEST (LayerNorm, BackwardAccumulatesAndIsThreadIndependent)
{
  auto rng = seeded (7);
  const int n = 1500, c = 67; /* 100 500 elements, 24 blocks of 64 rows */
  auto x = to_float (random_inputs (n * c, rng)), w = to_float (random_inputs (c, rng)),
       b = to_float (random_inputs (c, rng)), d_out = to_float (random_inputs (n * c, rng));
  auto one = run_layernorm (nullptr, x, w, b, d_out, n, c, 1e-5f);
  Pool pool1 = make_pool (1), pool2 = make_pool (2);
  auto single = run_layernorm (pool1.get (), x, w, b, d_out, n, c, 1e-5f);
  auto two = run_layernorm (pool2.get (), x, w, b, d_out, n, c, 1e-5f);
  for (auto *r : { &single, &two }) {
    EXPECT_TRUE (bit_identical (one.out, r->out));
    EXPECT_TRUE (bit_identical (one.mean, r->mean));
    EXPECT_TRUE (bit_identical (one.rstd, r->rstd));
    EXPECT_TRUE (bit_identical (one.d_x, r->d_x));
    EXPECT_TRUE (bit_identical (one.d_w, r->d_w));
    EXPECT_TRUE (bit_identical (one.d_b, r->d_b));
  }
  auto twice = run_layernorm (pool2.get (), x, w, b, d_out, n, c, 1e-5f, 2);
  expect_doubled (two.d_x, twice.d_x, "d_in");
  expect_doubled (two.d_w, twice.d_w, "d_weight");
  expect_doubled (two.d_b, twice.d_b, "d_bias");
}

/* ---- GELU, ReLU ------------------------------------------------------------------------------ */

TEST (Activations, ReferenceMatchesFiniteDifferences)
{
  auto rng = seeded (8);
  auto x = random_uniform (40, rng, -5.0, 5.0), weights = random_uniform (40, rng);
  for (bool tanh_form : { false, true }) {
    std::vector<double> d_x (x.size (), 0.0);
    gelu_backward (d_x.data (), weights.data (), x.data (), x.size (), tanh_form);
    EXPECT_LE (fd_ratio (
                   [&] (auto &p) {
                     std::vector<double> out (p.size ());
                     gelu_forward (out.data (), p.data (), p.size (), tanh_form);
                     return out;
                   },
                   x, weights, d_x, kFdStep, kFdAtol, kFdRtol),
               1.0)
        << (tanh_form ? "tanh" : "erf");
  }
  /* ReLU away from its kink. */
  for (double &value : x)
    if (std::fabs (value) < 1e-3)
      value = 0.5;
  std::vector<double> d_x (x.size (), 0.0);
  relu_backward (d_x.data (), weights.data (), x.data (), x.size ());
  EXPECT_LE (fd_ratio (
                 [&] (auto &p) {
                   std::vector<double> out (p.size ());
                   relu_forward (out.data (), p.data (), p.size ());
                   return out;
                 },
                 x, weights, d_x, kFdStep, kFdAtol, kFdRtol),
             1.0);
}

/* GELU's own erfc/exp (aclip-nn-private.h) against the double definition, densely over
 * [−14, 14] and beyond.
 *  - erf form: relative error ≤ 1e−6 wherever |GELU(x)| ≥ 1e−30 (measured ≈ 3.4e−7, a few
 *    ulps, tails included: x²/2 is carried in two floats).
 *  - tanh form: the float argument 2u = 2√(2/π)(x + 0.044715x³) rounds (about three
 *    roundings, each up to |2u|·2^−24), and e^−2u turns that absolute error into a relative
 *    one: the bound is 5e−7 + 3·|2u|·2^−24 (1e−6 near 0, 1.6e−5 at |2u| = 88; the values
 *    that far out are below 1e−30 anyway).
 *  - where the true value is below 1e−30 (x < −9.3), absolute error ≤ 1e−34 (e^−86.5 and
 *    smaller flush to 0, and the tanh form's e^−2u is clamped at e^88).
 * The derivatives Φ(x) + x·φ(x) cancel near their zero at x ≈ −0.75, so their error is
 * measured against the terms' scale |Φ(x)| + |x·φ(x)| (likewise for the tanh form). */
TEST (Activations, GeluAccuracyOverTheRealLine)
{
  for_each_code_variant ([&] {
    std::vector<double> x;
    for (double value = -14.0; value <= 14.0; value += 1.0 / 512)
      x.push_back ((double) (float) value);
    for (double value : { -1e4, -100.0, -30.0, 30.0, 100.0, 1e4, 0.0, -0.0, 1e-20, -1e-20 })
      x.push_back (value);
    auto xf = to_float (x);
    std::vector<float> d_out (x.size (), 1.0f);
    for (bool tanh_form : { false, true }) {
      AclipGeluForm form = tanh_form ? ACLIP_GELU_TANH : ACLIP_GELU_ERF;
      std::vector<float> out (x.size ()), grad (x.size (), 0.0f);
      aclip_gelu_forward (nullptr, out.data (), xf.data (), x.size (), form);
      aclip_gelu_backward (nullptr, grad.data (), d_out.data (), xf.data (), x.size (), form);
      double worst_value = 0.0, worst_grad = 0.0, worst_tiny = 0.0;
      for (size_t i = 0; i < x.size (); i++) {
        double value = gelu (x[i], tanh_form), derivative = gelu_derivative (x[i], tanh_form);
        ASSERT_TRUE (std::isfinite (out[i]) && std::isfinite (grad[i])) << "x = " << x[i];
        /* Relative errors are divided by this test's bound for x over 1e−6, so that ≤ 1e−6
         * passes everywhere. */
        double allowance = 1.0;
        if (tanh_form) {
          double two_u = 2.0 * 0.79788456080286535588 * (x[i] + 0.044715 * x[i] * x[i] * x[i]);
          allowance = std::max (1.0, (5e-7 + 3.0 * std::fabs (two_u) * 0x1p-24) / 1e-6);
        }
        if (std::fabs (value) >= 1e-30)
          worst_value =
              std::max (worst_value, std::fabs (out[i] - value) / std::fabs (value) / allowance);
        else
          worst_tiny = std::max (worst_tiny, std::fabs (out[i] - value));
        double scale;
        if (tanh_form) {
          double s = gelu (x[i], true) / x[i];
          scale = x[i] == 0.0 ? 0.5 : std::fabs (s) + std::fabs (derivative - s);
        } else {
          double cdf = 0.5 * std::erfc (-x[i] / std::sqrt (2.0));
          scale = std::fabs (cdf) + std::fabs (derivative - cdf);
        }
        if (scale >= 1e-30)
          worst_grad = std::max (worst_grad, std::fabs (grad[i] - derivative) / scale / allowance);
        else
          worst_tiny = std::max (worst_tiny, std::fabs ((double) grad[i] - derivative));
      }
      EXPECT_LE (worst_value, 1e-6) << (tanh_form ? "tanh" : "erf");
      EXPECT_LE (worst_grad, 1e-6) << (tanh_form ? "tanh" : "erf");
      EXPECT_LE (worst_tiny, 1e-34) << (tanh_form ? "tanh" : "erf");
      std::cout << "measured GELU " << (tanh_form ? "tanh" : "erf")
                << " worst relative error (for the tanh form, over its bound times 1e-6): value "
                << worst_value << ", derivative " << worst_grad
                << "; absolute where below 1e-30: " << worst_tiny << "\n";
    }
  });
}

TEST (Activations, MatchPyTorch)
{
  for_each_code_variant ([&] {
    Fixture fx ("dense-activations.bin");
    ASSERT_TRUE (fx.ok ());
    auto x = fx["in"].as_float (), d_out = fx["d_out"].as_float ();
    size_t n = x.size ();
    struct Case
    {
      const char *name;
      std::function<void (float *, float *)> run;
    } cases[] = {
      { "gelu_erf",
        [&] (float *out, float *d_in) {
          aclip_gelu_forward (nullptr, out, x.data (), n, ACLIP_GELU_ERF);
          aclip_gelu_backward (nullptr, d_in, d_out.data (), x.data (), n, ACLIP_GELU_ERF);
        } },
      { "gelu_tanh",
        [&] (float *out, float *d_in) {
          aclip_gelu_forward (nullptr, out, x.data (), n, ACLIP_GELU_TANH);
          aclip_gelu_backward (nullptr, d_in, d_out.data (), x.data (), n, ACLIP_GELU_TANH);
        } },
      { "relu",
        [&] (float *out, float *d_in) {
          aclip_relu_forward (nullptr, out, x.data (), n);
          aclip_relu_backward (nullptr, d_in, d_out.data (), x.data (), n);
        } },
    };
    for (const Case &test_case : cases) {
      std::vector<float> out (n), d_in (n, 0.0f);
      test_case.run (out.data (), d_in.data ());
      /* The accuracy above (1e−6 relative, 1e−9 absolute near zero) times |x| ≤ 10 and
       * |d_out| ≤ 3. */
      std::string name = test_case.name;
      EXPECT_VECTOR_CLOSE (out, fx["out_" + name].values, 1e-8, 1e-6, ("out " + name).c_str ());
      EXPECT_VECTOR_CLOSE (d_in, fx["d_in_" + name].values, 3e-8, 1e-6, ("d_in " + name).c_str ());
    }
  });
}

TEST (Activations, AccumulateAndAreThreadIndependent)
{
  for_each_code_variant ([&] {
    auto rng = seeded (9);
    const size_t n = 100003; /* odd: a vector tail in the last chunk */
    auto x = to_float (random_inputs (n, rng, -6.0, 6.0)),
         d_out = to_float (random_inputs (n, rng));
    for (int op = 0; op < 3; op++) {
      std::vector<std::vector<float>> outs, grads;
      for (int threads : { 1, 2 }) {
        Pool pool = make_pool (threads);
        std::vector<float> out (n), grad (n, 0.0f);
        for (int repeat = 0; repeat < 2; repeat++) {
          if (op < 2) {
            AclipGeluForm form = op == 0 ? ACLIP_GELU_ERF : ACLIP_GELU_TANH;
            aclip_gelu_forward (pool.get (), out.data (), x.data (), n, form);
            aclip_gelu_backward (pool.get (), grad.data (), d_out.data (), x.data (), n, form);
          } else {
            aclip_relu_forward (pool.get (), out.data (), x.data (), n);
            aclip_relu_backward (pool.get (), grad.data (), d_out.data (), x.data (), n);
          }
          if (repeat == 0)
            grads.push_back (grad);
        }
        expect_doubled (grads.back (), grad, "activation gradient");
        outs.push_back (out);
      }
      EXPECT_TRUE (bit_identical (outs[0], outs[1])) << "op " << op;
      EXPECT_TRUE (bit_identical (grads[0], grads[1])) << "op " << op;
    }
  });
}

TEST (Activations, ReluIsExact)
{
  std::vector<float> x = { -2.0f, -0.0f, 0.0f, 1e-30f, 3.5f, -1e-30f, 7.0f, -7.0f, 0.25f };
  std::vector<float> d_out (x.size (), 1.0f), out (x.size ()), d_in (x.size (), 0.0f);
  aclip_relu_forward (nullptr, out.data (), x.data (), x.size ());
  aclip_relu_backward (nullptr, d_in.data (), d_out.data (), x.data (), x.size ());
  for (size_t i = 0; i < x.size (); i++) {
    EXPECT_EQ (out[i], x[i] > 0.0f ? x[i] : 0.0f);
    EXPECT_EQ (d_in[i], x[i] > 0.0f ? 1.0f : 0.0f) << "the gradient at 0 is 0";
  }
}

/* ---- Softmax --------------------------------------------------------------------------------- */

TEST (Softmax, ReferenceMatchesFiniteDifferences)
{
  auto rng = seeded (10);
  const int n = 3, d = 6;
  auto x = random_uniform (n * d, rng, -3.0, 3.0), weights = random_uniform (n * d, rng);
  std::vector<double> out (n * d), d_x (n * d, 0.0);
  softmax_forward (out.data (), x.data (), n, d);
  softmax_backward (d_x.data (), weights.data (), out.data (), n, d);
  EXPECT_LE (fd_ratio (
                 [&] (auto &p) {
                   std::vector<double> o (n * d);
                   softmax_forward (o.data (), p.data (), n, d);
                   return o;
                 },
                 x, weights, d_x, kFdStep, kFdAtol, kFdRtol),
             1.0);
}

TEST (Softmax, KernelMatchesReferenceAndPyTorch)
{
  for_each_code_variant ([&] {
    auto rng = seeded (11);
    const int n = 29, d = 37;
    auto x = random_inputs (n * d, rng, -20.0, 20.0), d_out = random_inputs (n * d, rng);
    std::vector<double> out (n * d), d_x (n * d, 0.0);
    softmax_forward (out.data (), x.data (), n, d);
    softmax_backward (d_x.data (), d_out.data (), out.data (), n, d);
    auto xf = to_float (x), d_outf = to_float (d_out);
    std::vector<float> outf (n * d), d_xf (n * d, 0.0f);
    aclip_softmax_forward (nullptr, outf.data (), xf.data (), n, d);
    aclip_softmax_backward (nullptr, d_xf.data (), d_outf.data (), outf.data (), n, d);
    /* exp to ~1 ulp of arguments up to 40 (whose own rounding is 40·2^−24 ≈ 2.4e−6 relative),
     * normalised by a float sum: relative 5e−6 on each probability. */
    EXPECT_VECTOR_CLOSE (outf, out, 1e-9, 5e-6, "probabilities");
    EXPECT_VECTOR_CLOSE (d_xf, d_x, 1e-6, 1e-5, "d_in");

    Fixture fx ("dense-softmax.bin");
    ASSERT_TRUE (fx.ok ());
    int fn = (int) fx["in"].shape[0], fd = (int) fx["in"].shape[1];
    auto fin = fx["in"].as_float (), fd_out = fx["d_out"].as_float ();
    std::vector<float> fout (fn * fd), fd_in (fn * fd, 0.0f);
    aclip_softmax_forward (nullptr, fout.data (), fin.data (), fn, fd);
    aclip_softmax_backward (nullptr, fd_in.data (), fd_out.data (), fout.data (), fn, fd);
    EXPECT_VECTOR_CLOSE (fout, fx["out"].values, 1e-9, 5e-6, "PyTorch probabilities");
    EXPECT_VECTOR_CLOSE (fd_in, fx["d_in"].values, 1e-6, 1e-5, "PyTorch d_in");
  });
}

TEST (Softmax, AccumulatesAndIsThreadIndependent)
{
  auto rng = seeded (12);
  const int n = 900, d = 77;
  auto x = to_float (random_inputs (n * d, rng, -5.0, 5.0)),
       d_out = to_float (random_inputs (n * d, rng));
  std::vector<std::vector<float>> outs, grads;
  for (int threads : { 1, 2 }) {
    Pool pool = make_pool (threads);
    std::vector<float> out (n * d), grad (n * d, 0.0f);
    aclip_softmax_forward (pool.get (), out.data (), x.data (), n, d);
    aclip_softmax_backward (pool.get (), grad.data (), d_out.data (), out.data (), n, d);
    outs.push_back (out), grads.push_back (grad);
    aclip_softmax_backward (pool.get (), grad.data (), d_out.data (), out.data (), n, d);
    expect_doubled (grads.back (), grad, "d_in");
  }
  EXPECT_TRUE (bit_identical (outs[0], outs[1]));
  EXPECT_TRUE (bit_identical (grads[0], grads[1]));
  /* Rows sum to 1 and huge inputs do not overflow. */
  std::vector<float> big = { 1e30f, -1e30f, 3e38f, 0.0f, 88.0f, 89.0f, -87.0f };
  std::vector<float> p (big.size ());
  aclip_softmax_forward (nullptr, p.data (), big.data (), 1, (int) big.size ());
  EXPECT_EQ (p[2], 1.0f);
  for (size_t j = 0; j < p.size (); j++)
    EXPECT_TRUE (std::isfinite (p[j]));
}

/* ---- Residual add ------------------------------------------------------------------------------
 */

TEST (Add, ForwardIsExactAndBackwardAccumulates)
{
  auto rng = seeded (13);
  const size_t n = 40001;
  auto a = to_float (random_inputs (n, rng)), b = to_float (random_inputs (n, rng)),
       d_out = to_float (random_inputs (n, rng));
  Pool pool = make_pool (2);
  std::vector<float> out (n), d_a (n, 0.0f), d_b (n, 0.0f);
  aclip_add_forward (pool.get (), out.data (), a.data (), b.data (), n);
  aclip_add_backward (pool.get (), d_a.data (), d_b.data (), d_out.data (), n);
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ (out[i], a[i] + b[i]);
    ASSERT_EQ (d_a[i], d_out[i]);
    ASSERT_EQ (d_b[i], d_out[i]);
  }
  aclip_add_backward (pool.get (), d_a.data (), nullptr, d_out.data (), n);
  expect_doubled (d_out, d_a, "d_a");
  for (size_t i = 0; i < n; i++)
    ASSERT_EQ (d_b[i], d_out[i]) << "a null gradient is skipped, the other untouched";
}

/* ---- Positional embedding ----------------------------------------------------------------------
 */

TEST (PositionalEmbedding, ReferenceMatchesFiniteDifferences)
{
  auto rng = seeded (14);
  const int b = 2, t = 3, c = 4;
  auto x = random_uniform (b * t * c, rng), table = random_uniform (t * c, rng),
       weights = random_uniform (b * t * c, rng);
  std::vector<double> d_x (x.size (), 0.0), d_table (table.size (), 0.0);
  positional_embedding_backward (d_x.data (), d_table.data (), weights.data (), b, t, c);
  auto forward = [&] (const std::vector<double> &xi, const std::vector<double> &ti) {
    std::vector<double> out (b * t * c);
    positional_embedding_forward (out.data (), xi.data (), ti.data (), b, t, c);
    return out;
  };
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (p, table); }, x, weights, d_x, kFdStep,
                       kFdAtol, kFdRtol),
             1.0);
  EXPECT_LE (fd_ratio ([&] (auto &p) { return forward (x, p); }, table, weights, d_table, kFdStep,
                       kFdAtol, kFdRtol),
             1.0);
}

TEST (PositionalEmbedding, KernelMatchesReferenceAndPyTorch)
{
  Fixture fx ("dense-positional.bin");
  ASSERT_TRUE (fx.ok ());
  int b = (int) fx["in"].shape[0], t = (int) fx["in"].shape[1], c = (int) fx["in"].shape[2];
  auto x = fx["in"].as_float (), table = fx["table"].as_float (), d_out = fx["d_out"].as_float ();
  std::vector<float> out (x.size ()), d_x (x.size (), 0.0f), d_table (table.size (), 0.0f);
  aclip_positional_embedding_forward (nullptr, out.data (), x.data (), table.data (), b, t, c);
  aclip_positional_embedding_backward (nullptr, d_x.data (), d_table.data (), d_out.data (), b, t,
                                       c);
  /* One float addition per element (sums of b = 3 for the table): a few ulps of values ≤ 10. */
  EXPECT_VECTOR_CLOSE (out, fx["out"].values, 1e-6, 1e-6, "out");
  EXPECT_VECTOR_CLOSE (d_x, fx["d_in"].values, 1e-6, 1e-6, "d_in");
  EXPECT_VECTOR_CLOSE (d_table, fx["d_table"].values, 1e-6, 1e-6,
                       "d_table (rows beyond T stay zero)");

  /* Larger, against the reference, on 1 and 2 threads, twice. */
  auto rng = seeded (15);
  const int lb = 7, lt = 300, lc = 40;
  auto lx = random_inputs (lb * lt * lc, rng), ltable = random_inputs ((lt + 5) * lc, rng),
       ld_out = random_inputs (lb * lt * lc, rng);
  std::vector<double> rout (lx.size ()), rd_x (lx.size (), 0.0), rd_table (ltable.size (), 0.0);
  positional_embedding_forward (rout.data (), lx.data (), ltable.data (), lb, lt, lc);
  positional_embedding_backward (rd_x.data (), rd_table.data (), ld_out.data (), lb, lt, lc);
  std::vector<std::vector<float>> tables;
  for (int threads : { 1, 2 }) {
    Pool pool = make_pool (threads);
    auto fxs = to_float (lx), ftable = to_float (ltable), fd_out = to_float (ld_out);
    std::vector<float> fout (lx.size ()), fd_x (lx.size (), 0.0f), fd_table (ltable.size (), 0.0f);
    aclip_positional_embedding_forward (pool.get (), fout.data (), fxs.data (), ftable.data (), lb,
                                        lt, lc);
    aclip_positional_embedding_backward (pool.get (), fd_x.data (), fd_table.data (),
                                         fd_out.data (), lb, lt, lc);
    EXPECT_VECTOR_CLOSE (fout, rout, 1e-7, 1e-7, "out");
    EXPECT_EQ (to_double (fd_x), rd_x) << "d_in is d_out exactly";
    EXPECT_VECTOR_CLOSE (fd_table, rd_table, 1e-6, 1e-6, "d_table");
    tables.push_back (fd_table);
    aclip_positional_embedding_backward (pool.get (), nullptr, fd_table.data (), fd_out.data (), lb,
                                         lt, lc);
    expect_doubled (tables.back (), fd_table, "d_table");
  }
  EXPECT_TRUE (bit_identical (tables[0], tables[1]));
}

/* ---- Dropout ------------------------------------------------------------------------------------
 */

TEST (Dropout, MaskFollowsTheCounterBasedDefinition)
{
  auto rng = seeded (16);
  const size_t n = 50000;
  const float p = 0.3f;
  auto x = to_float (random_inputs (n, rng));
  std::vector<std::vector<float>> outs;
  std::vector<std::vector<uint8_t>> masks;
  for (int threads : { 1, 2 }) {
    Pool pool = make_pool (threads);
    std::vector<float> out (n);
    std::vector<uint8_t> mask (n);
    aclip_dropout_forward (pool.get (), out.data (), mask.data (), x.data (), n, p, 1234, 99);
    outs.push_back (out), masks.push_back (mask);
  }
  EXPECT_TRUE (bit_identical (outs[0], outs[1]));
  EXPECT_EQ (masks[0], masks[1]);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ ((bool) masks[0][i], dropout_keeps (1234, 99, i, p)) << "element " << i;
    kept += masks[0][i];
    ASSERT_EQ (outs[0][i], masks[0][i] ? x[i] * (1.0f / (1.0f - p)) : 0.0f);
  }
  /* Binomial(n, 0.7): standard deviation √(n·0.21) ≈ 102; allow 5σ. */
  EXPECT_NEAR ((double) kept, 0.7 * n, 5 * std::sqrt (n * 0.21));

  /* Element i depends on counter + i only: shifting the counter shifts the mask. */
  std::vector<float> shifted (n - 10);
  std::vector<uint8_t> shifted_mask (n - 10);
  aclip_dropout_forward (nullptr, shifted.data (), shifted_mask.data (), x.data () + 10, n - 10, p,
                         1234, 109);
  EXPECT_TRUE (std::equal (shifted_mask.begin (), shifted_mask.end (), masks[0].begin () + 10));
  /* Another seed, another mask. */
  std::vector<uint8_t> other_mask (n);
  aclip_dropout_forward (nullptr, shifted.data (), other_mask.data (), x.data (), n - 10, p, 1235,
                         99);
  EXPECT_FALSE (std::equal (other_mask.begin (), other_mask.begin () + 1000, masks[0].begin ()));
}

TEST (Dropout, BackwardUsesTheMaskAndAccumulates)
{
  auto rng = seeded (17);
  const size_t n = 40000;
  const float p = 0.5f;
  auto x = to_float (random_inputs (n, rng)), d_out = to_float (random_inputs (n, rng));
  std::vector<float> out (n), d_x (n, 0.0f);
  std::vector<uint8_t> mask (n);
  Pool pool = make_pool (2);
  aclip_dropout_forward (pool.get (), out.data (), mask.data (), x.data (), n, p, 7, 0);
  aclip_dropout_backward (pool.get (), d_x.data (), d_out.data (), mask.data (), n, p);
  auto once = d_x;
  std::vector<double> reference (n, 0.0);
  dropout_backward (reference.data (), to_double (d_out).data (), mask.data (), n, p);
  EXPECT_VECTOR_CLOSE (d_x, reference, 1e-30, 1e-7, "d_in");
  aclip_dropout_backward (pool.get (), d_x.data (), d_out.data (), mask.data (), n, p);
  expect_doubled (once, d_x, "d_in");

  /* p = 0 keeps everything unchanged. */
  aclip_dropout_forward (pool.get (), out.data (), mask.data (), x.data (), n, 0.0f, 7, 0);
  EXPECT_TRUE (bit_identical (out, x));
}

/* ---- L2 normalisation --------------------------------------------------------------------------
 */

TEST (L2Normalize, ReferenceMatchesFiniteDifferences)
{
  auto rng = seeded (18);
  const int n = 3, c = 5;
  const double eps = 1e-6;
  auto x = random_uniform (n * c, rng), weights = random_uniform (n * c, rng);
  for (int i = 0; i < c; i++)
    x[2 * c + i] *= 1e-8; /* a row below eps: the divisor is the constant eps */
  std::vector<double> d_x (n * c, 0.0);
  l2_normalize_backward (d_x.data (), weights.data (), x.data (), n, c, eps);
  EXPECT_LE (fd_ratio (
                 [&] (auto &p) {
                   std::vector<double> out (n * c);
                   l2_normalize_forward (out.data (), p.data (), n, c, eps);
                   return out;
                 },
                 x, weights, d_x, 1e-7, kFdAtol, kFdRtol),
             1.0);
}

TEST (L2Normalize, KernelMatchesReferenceAndPyTorch)
{
  Fixture fx ("dense-l2norm.bin");
  ASSERT_TRUE (fx.ok ());
  int n = (int) fx["in"].shape[0], c = (int) fx["in"].shape[1];
  float eps = (float) fx.scalar ("eps");
  auto x = fx["in"].as_float (), d_out = fx["d_out"].as_float ();
  std::vector<float> out (x.size ()), norm (n), d_x (x.size (), 0.0f);
  aclip_l2_normalize_forward (nullptr, out.data (), norm.data (), x.data (), n, c, eps);
  aclip_l2_normalize_backward (nullptr, d_x.data (), d_out.data (), out.data (), norm.data (), n, c,
                               eps);
  /* Unit vectors from a float norm (sum of C = 11 squares, sqrt, reciprocal): a few ulps; the
   * gradient has 1/‖x‖ ≈ 0.3 (1e6 in the row below eps, where it is d_out/eps exactly up to
   * one rounding). */
  EXPECT_VECTOR_CLOSE (out, fx["out"].values, 1e-7, 1e-6, "out");
  EXPECT_VECTOR_CLOSE (d_x, fx["d_in"].values, 1e-6, 1e-6, "d_in");

  auto rng = seeded (19);
  const int ln = 2000, lc = 33;
  auto lx = random_inputs (ln * lc, rng), ld_out = random_inputs (ln * lc, rng);
  std::vector<double> rout (lx.size ()), rd_x (lx.size (), 0.0);
  l2_normalize_forward (rout.data (), lx.data (), ln, lc, 1e-12);
  l2_normalize_backward (rd_x.data (), ld_out.data (), lx.data (), ln, lc, 1e-12);
  std::vector<std::vector<float>> grads;
  for (int threads : { 1, 2 }) {
    Pool pool = make_pool (threads);
    auto fx_in = to_float (lx), fd_out = to_float (ld_out);
    std::vector<float> fout (lx.size ()), fnorm (ln), fd_x (lx.size (), 0.0f);
    aclip_l2_normalize_forward (pool.get (), fout.data (), fnorm.data (), fx_in.data (), ln, lc,
                                1e-12f);
    aclip_l2_normalize_backward (pool.get (), fd_x.data (), fd_out.data (), fout.data (),
                                 fnorm.data (), ln, lc, 1e-12f);
    EXPECT_VECTOR_CLOSE (fout, rout, 1e-7, 1e-6, "out");
    EXPECT_VECTOR_CLOSE (fd_x, rd_x, 1e-6, 1e-5, "d_in");
    grads.push_back (fd_x);
    aclip_l2_normalize_backward (pool.get (), fd_x.data (), fd_out.data (), fout.data (),
                                 fnorm.data (), ln, lc, 1e-12f);
    expect_doubled (grads.back (), fd_x, "d_in");
  }
  EXPECT_TRUE (bit_identical (grads[0], grads[1]));
}

/* ---- Feature map to tokens ---------------------------------------------------------------------
 */

TEST (FeatureMapToTokens, IsAnExactTranspose)
{
  auto rng = seeded (20);
  const int b = 3, c = 37, pixels = 5 * 7;
  auto map = random_inputs (b * c * pixels, rng), d_tokens = random_inputs (b * c * pixels, rng);
  std::vector<double> tokens (map.size ()), d_map (map.size (), 0.0);
  feature_map_to_tokens_forward (tokens.data (), map.data (), b, c, pixels);
  feature_map_to_tokens_backward (d_map.data (), d_tokens.data (), b, c, pixels);
  Pool pool = make_pool (2);
  auto mapf = to_float (map), d_tokensf = to_float (d_tokens);
  std::vector<float> tokensf (map.size ()), d_mapf (map.size (), 0.0f);
  aclip_feature_map_to_tokens_forward (pool.get (), tokensf.data (), mapf.data (), b, c, pixels);
  aclip_feature_map_to_tokens_backward (pool.get (), d_mapf.data (), d_tokensf.data (), b, c,
                                        pixels);
  EXPECT_EQ (to_double (tokensf), tokens);
  EXPECT_EQ (to_double (d_mapf), d_map);
  auto once = d_mapf;
  aclip_feature_map_to_tokens_backward (pool.get (), d_mapf.data (), d_tokensf.data (), b, c,
                                        pixels);
  expect_doubled (once, d_mapf, "d_map");
}

} // namespace
