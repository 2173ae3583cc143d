/* test-spectrum-encoder.cc — the spectrum encoder (core/aclip-spectrum-encoder.h), its masked
 * reconstruction pretraining (core/aclip-spectrum-pretrain.h) and `astroclip pretrain-spectra`.
 *
 * - preprocessing against hand-computed values (mean and std over good pixels, the std clip,
 *   window features, a window with no good pixel masked);
 * - the whole encoder, head and loss, forward and every parameter's gradient, against a
 *   PyTorch model of the same architecture (tests/reference/make_spectrum_encoder_fixtures.py);
 * - the weighted loss: a double reference against finite differences, the float kernel against
 *   the reference;
 * - masked keys and bad pixels change nothing; results do not depend on the thread count;
 * - masks: counts, no overlap, determinism, coverage;
 * - a tiny pretraining run beats the trivial baseline on held-out spectra;
 * - the trainer: JSON progress, checkpoints, SIGTERM and a bit-identical resume.
 *
 * Tolerances, with the reason:
 * - fixture tokens: 2e-5 + 1e-4 relative. Float32 through two blocks of width 16, inputs and
 *   outputs O(1) (LayerNorm outputs); measured ~2e-6.
 * - fixture gradients: 1e-5·(largest |gradient| of the tensor) + 1e-3 relative. The loss is a
 *   weighted mean over ~200 pixels, and gradients of small entries are differences of O(1)
 *   float terms; measured ≤ ~1e-5 of each tensor's scale.
 * - weighted loss: as test-losses.cc, 1e-7 + 2e-6 relative (inputs exact in float, sums in
 *   double, one rounding to float); finite differences of the double reference 1e-7 + 1e-6.
 */
#include "test-support.h"

#include "aclip-catalogue.h"
#include "aclip-checkpoint.h"
#include "aclip-optim.h"
#include "aclip-params.h"
#include "aclip-spectrum-encoder.h"
#include "aclip-spectrum-pretrain.h"

#include <gio/gio.h>

#include <algorithm>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>

namespace {

AclipSpectrumEncoderConfig
tiny_config (int n_wave, int window, int stride)
{
  AclipSpectrumEncoderConfig config;
  aclip_spectrum_encoder_config_init_default (&config);
  config.n_wave = n_wave;
  config.window = window;
  config.stride = stride;
  config.width = 16;
  config.n_layers = 2;
  config.n_heads = 4;
  config.mlp_hidden = 32;
  return config;
}

/* A table with the encoder under "spectrum." and the head under "spectrum_pretrain.". */
AclipParams *
make_params (const AclipSpectrumEncoderConfig &config, AclipParamsMode mode, guint64 seed)
{
  ErrorHolder error;
  AclipParams *params = aclip_params_new ();
  EXPECT_TRUE (aclip_spectrum_encoder_register (&config, params, "spectrum.", error.out ()))
      << (error ? error->message : "");
  EXPECT_TRUE (aclip_spectrum_pretrain_register (&config, params, "spectrum_pretrain.",
                                                 error.out ()));
  EXPECT_TRUE (aclip_params_seal (params, mode, error.out ()));
  aclip_params_init (params, seed, nullptr);
  return params;
}

/* ---- Configuration ------------------------------------------------------------------------ */

TEST (SpectrumEncoderConfig, DefaultAndPaperSizes)
{
  AclipSpectrumEncoderConfig config;
  aclip_spectrum_encoder_config_init_default (&config);
  EXPECT_EQ (config.n_wave, 7781);
  EXPECT_EQ (aclip_spectrum_encoder_config_n_windows (&config), 388);
  EXPECT_EQ (aclip_spectrum_encoder_config_n_tokens (&config), 389);
  EXPECT_EQ (config.width, 128);
  EXPECT_EQ (config.n_layers, 4);
  EXPECT_EQ (config.n_heads, 4);
  EXPECT_EQ (config.mlp_hidden, 512);
  AclipSpectrumMaskConfig mask;
  aclip_spectrum_mask_config_init (&mask, &config);
  EXPECT_EQ (mask.n_runs, 6);
  EXPECT_EQ (mask.run_length, 25);

  aclip_spectrum_encoder_config_init_paper (&config);
  EXPECT_EQ (aclip_spectrum_encoder_config_n_windows (&config), 777);
  EXPECT_EQ (config.width, 768);
  EXPECT_EQ (config.n_layers, 6);
  EXPECT_EQ (config.n_heads, 6);
  aclip_spectrum_mask_config_init (&mask, &config);
  EXPECT_EQ (mask.n_runs, 6);
  EXPECT_EQ (mask.run_length, 50);

  /* The paper's 43M parameters. */
  g_autoptr (AclipParams) params = aclip_params_new ();
  ASSERT_TRUE (aclip_spectrum_encoder_register (&config, params, "spectrum.", nullptr));
  gint64 n = aclip_params_n_elements (params);
  std::printf ("[measured] paper-size spectrum encoder: %" G_GINT64_FORMAT " parameters\n", n);
  EXPECT_GT (n, 42000000);
  EXPECT_LT (n, 44000000);
}

TEST (SpectrumEncoderConfig, KeyFileRoundTripAndValidation)
{
  AclipSpectrumEncoderConfig config = tiny_config (100, 10, 5), loaded;
  config.std_min = 0.3f;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  aclip_spectrum_encoder_config_save (&config, key_file);
  ErrorHolder error;
  ASSERT_TRUE (aclip_spectrum_encoder_config_load (&loaded, key_file, error.out ()));
  EXPECT_TRUE (aclip_spectrum_encoder_config_equal (&config, &loaded));

  g_key_file_remove_key (key_file, ACLIP_SPECTRUM_ENCODER_GROUP, "heads", nullptr);
  EXPECT_FALSE (aclip_spectrum_encoder_config_load (&loaded, key_file, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "heads");

  AclipSpectrumEncoderConfig bad = config;
  bad.n_heads = 3;
  EXPECT_FALSE (aclip_spectrum_encoder_config_validate (&bad, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "16", "3 heads");
  bad = config;
  bad.window = 101;
  EXPECT_FALSE (aclip_spectrum_encoder_config_validate (&bad, error.out ()));
  bad = config;
  bad.std_min = 0.0f;
  EXPECT_FALSE (aclip_spectrum_encoder_config_validate (&bad, error.out ()));
}

/* ---- Preprocessing ------------------------------------------------------------------------ */

TEST (SpectrumPreprocess, HandComputedWithBadPixels)
{
  /* 12 pixels, windows of 4 with stride 2: windows start at 0, 2, 4, 6, 8. Pixels 0–7 are
   * good: {2, 4, 6, 8, 2, 4, 6, 8}, mean 5, population variance 5. Pixel 8 has a NaN flux
   * with a positive ivar, pixels 9–11 ivar 0 and absurd fluxes: all bad, so window 4 (pixels
   * 8–11) has no good pixel. */
  AclipSpectrumEncoderConfig config = tiny_config (12, 4, 2);
  ASSERT_EQ (aclip_spectrum_encoder_config_n_windows (&config), 5);
  const float nan = std::nanf ("");
  const float flux[12] = { 2, 4, 6, 8, 2, 4, 6, 8, nan, 1e30f, -50, 50 };
  const float ivar[12] = { 1, 1, 1, 1, 4, 4, 4, 4, 1, 0, 0, 0 };
  float features[5 * 8], stats[2];
  guint8 key_mask[6];
  aclip_spectrum_preprocess (&config, features, stats, key_mask, flux, ivar);

  const double std = std::sqrt (5.0);
  EXPECT_FLOAT_EQ (stats[0], 5.0f);
  EXPECT_FLOAT_EQ (stats[1], (float) std);
  const guint8 expected_mask[6] = { 0, 0, 0, 0, 0, 1 };
  for (int t = 0; t < 6; t++)
    EXPECT_EQ (key_mask[t], expected_mask[t]) << "token " << t;
  /* Weights s/(1 + s), s = ivar·std² = 5 ivar: 5/6 for ivar 1, 20/21 for ivar 4. */
  const double w1 = 5.0 / 6.0, w4 = 20.0 / 21.0;
  const double expected[5][8] = {
    { -3 / std, -1 / std, 1 / std, 3 / std, w1, w1, w1, w1 },  /* pixels 0–3 */
    { 1 / std, 3 / std, -3 / std, -1 / std, w1, w1, w4, w4 },  /* pixels 2–5 */
    { -3 / std, -1 / std, 1 / std, 3 / std, w4, w4, w4, w4 },  /* pixels 4–7 */
    { 1 / std, 3 / std, 0, 0, w4, w4, 0, 0 },                  /* pixels 6–9 */
    { 0, 0, 0, 0, 0, 0, 0, 0 },                                /* pixels 8–11: all bad */
  };
  for (int j = 0; j < 5; j++)
    for (int k = 0; k < 8; k++)
      EXPECT_NEAR (features[j * 8 + k], expected[j][k], 1e-6) << "window " << j << " k " << k;
}

TEST (SpectrumPreprocess, StdClippedAndNoGoodPixel)
{
  AclipSpectrumEncoderConfig config = tiny_config (8, 4, 4);
  /* Flat: 3 ± 0.01, population std 0.01, clipped to 0.2. */
  const float flux[8] = { 3.01f, 2.99f, 3.01f, 2.99f, 3.01f, 2.99f, 3.01f, 2.99f };
  const float ivar[8] = { 100, 100, 100, 100, 100, 100, 100, 100 };
  float features[2 * 8], stats[2];
  guint8 key_mask[3];
  aclip_spectrum_preprocess (&config, features, stats, key_mask, flux, ivar);
  EXPECT_NEAR (stats[0], 3.0f, 1e-6);
  EXPECT_FLOAT_EQ (stats[1], 0.2f);
  const double s = 100 * 0.2 * 0.2; /* 4: w = 0.8 */
  EXPECT_NEAR (features[0], (3.01f - 3.0) / 0.2, 1e-5);
  EXPECT_NEAR (features[1], (2.99f - 3.0) / 0.2, 1e-5);
  EXPECT_NEAR (features[4], s / (1 + s), 1e-6);
  EXPECT_EQ (key_mask[0] + key_mask[1] + key_mask[2], 0);

  /* No good pixel at all: mean 0, std = the clip, every window masked, zero features. */
  const float none[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
  aclip_spectrum_preprocess (&config, features, stats, key_mask, flux, none);
  EXPECT_EQ (stats[0], 0.0f);
  EXPECT_FLOAT_EQ (stats[1], 0.2f);
  EXPECT_EQ (key_mask[0], 0);
  EXPECT_EQ (key_mask[1], 1);
  EXPECT_EQ (key_mask[2], 1);
  for (float v : features)
    EXPECT_EQ (v, 0.0f);
}

/* ---- The weighted loss --------------------------------------------------------------------- */

double
reference_weighted_mse (const std::vector<double> &pred, const std::vector<double> &target,
                        const std::vector<double> &weight, const std::vector<guint8> &mask,
                        int64_t k)
{
  double num = 0.0, den = 0.0;
  for (size_t r = 0; r < mask.size (); r++)
    if (mask[r])
      for (int64_t j = 0; j < k; j++) {
        size_t i = r * k + j;
        num += weight[i] * (pred[i] - target[i]) * (pred[i] - target[i]);
        den += weight[i];
      }
  return den > 0 ? num / den : 0.0;
}

std::vector<double>
reference_weighted_mse_grad (const std::vector<double> &pred, const std::vector<double> &target,
                             const std::vector<double> &weight, const std::vector<guint8> &mask,
                             int64_t k)
{
  double den = 0.0;
  for (size_t r = 0; r < mask.size (); r++)
    if (mask[r])
      for (int64_t j = 0; j < k; j++)
        den += weight[r * k + j];
  std::vector<double> grad (pred.size (), 0.0);
  for (size_t r = 0; r < mask.size (); r++)
    if (mask[r])
      for (int64_t j = 0; j < k; j++) {
        size_t i = r * k + j;
        grad[i] = 2.0 * weight[i] * (pred[i] - target[i]) / den;
      }
  return grad;
}

TEST (SpectrumLoss, WeightedMseReferenceFiniteDifferencesAndKernel)
{
  const int64_t n = 9, k = 7;
  std::mt19937_64 rng (7);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform;
  std::vector<double> pred (n * k), target (n * k), weight (n * k);
  for (size_t i = 0; i < pred.size (); i++) {
    pred[i] = (float) normal (rng);
    target[i] = (float) normal (rng);
    weight[i] = (float) (uniform (rng) < 0.2 ? 0.0 : uniform (rng));
  }
  std::vector<guint8> mask = { 1, 0, 1, 1, 0, 0, 1, 1, 0 };

  /* The reference's gradient against central differences. */
  std::vector<double> grad = reference_weighted_mse_grad (pred, target, weight, mask, k);
  for (size_t i = 0; i < pred.size (); i++) {
    std::vector<double> plus = pred, minus = pred;
    plus[i] += 1e-5;
    minus[i] -= 1e-5;
    double fd = (reference_weighted_mse (plus, target, weight, mask, k) -
                 reference_weighted_mse (minus, target, weight, mask, k)) /
                2e-5;
    EXPECT_NEAR (fd, grad[i], 1e-7 + 1e-6 * std::fabs (grad[i])) << "element " << i;
  }

  /* The float kernel against the reference, with dloss = 0.5. */
  std::vector<float> fp (pred.begin (), pred.end ()), ft (target.begin (), target.end ());
  std::vector<float> fw (weight.begin (), weight.end ()), dpred (n * k, 0.25f);
  double weight_sum = 0.0;
  double loss = aclip_weighted_mse_forward (fp.data (), ft.data (), fw.data (), mask.data (), n, k,
                                            &weight_sum);
  double expected = reference_weighted_mse (pred, target, weight, mask, k);
  EXPECT_NEAR (loss, expected, 1e-7 + 2e-6 * std::fabs (expected));
  aclip_weighted_mse_backward (dpred.data (), fp.data (), ft.data (), fw.data (), mask.data (), n,
                               k, 0.5f);
  std::vector<double> expected_d (n * k);
  for (size_t i = 0; i < expected_d.size (); i++)
    expected_d[i] = 0.25 + 0.5 * grad[i]; /* accumulates */
  EXPECT_CLOSE_TO_REFERENCE (dpred.data (), expected_d.data (), expected_d.size (), 1e-7, 2e-6,
                             "weighted MSE gradient");

  /* Nothing counted: loss 0, no gradient. */
  std::vector<guint8> none (n, 0);
  std::vector<float> untouched (n * k, 0.0f);
  EXPECT_EQ (aclip_weighted_mse_forward (fp.data (), ft.data (), fw.data (), none.data (), n, k,
                                         &weight_sum),
             0.0);
  EXPECT_EQ (weight_sum, 0.0);
  aclip_weighted_mse_backward (untouched.data (), fp.data (), ft.data (), fw.data (), none.data (),
                               n, k, 1.0f);
  for (float v : untouched)
    EXPECT_EQ (v, 0.0f);
}

/* ---- Masks --------------------------------------------------------------------------------- */

TEST (SpectrumMask, RunsCountedDisjointDeterministicAndCovering)
{
  AclipSpectrumEncoderConfig config;
  aclip_spectrum_encoder_config_init_default (&config);
  AclipSpectrumMaskConfig mask;
  aclip_spectrum_mask_config_init (&mask, &config);
  const int n_windows = aclip_spectrum_encoder_config_n_windows (&config);
  std::vector<guint8> replace (n_windows + 1), again (n_windows + 1);
  std::vector<int> coverage (n_windows + 1, 0);
  const int n_draws = 4000;
  for (int d = 0; d < n_draws; d++) {
    aclip_spectrum_mask_draw (&mask, n_windows, 11, (guint64) d / 8, (guint64) d % 8,
                              replace.data ());
    EXPECT_EQ (replace[0], 0);
    int total = 0, runs = 0;
    for (int t = 1; t <= n_windows; t++) {
      total += replace[t];
      coverage[t] += replace[t];
      if (replace[t] && (t == 1 || !replace[t - 1]))
        runs++;
    }
    ASSERT_EQ (total, mask.n_runs * mask.run_length) << "draw " << d;
    /* Touching runs merge, so at most n_runs maximal runs, each a multiple of run_length. */
    EXPECT_LE (runs, mask.n_runs);
    if (d < 20) {
      aclip_spectrum_mask_draw (&mask, n_windows, 11, (guint64) d / 8, (guint64) d % 8,
                                again.data ());
      EXPECT_EQ (replace, again);
    }
  }
  /* Every window is masked sometimes; the middle ones near the average rate 150/388. */
  for (int t = 1; t <= n_windows; t++)
    EXPECT_GT (coverage[t], 0) << "window " << t - 1 << " is never masked";
  double mid = 0.0;
  for (int t = 150; t < 250; t++)
    mid += coverage[t];
  mid /= 100.0 * n_draws;
  EXPECT_NEAR (mid, 150.0 / 388.0, 0.05);

  /* Another seed gives another mask. */
  aclip_spectrum_mask_draw (&mask, n_windows, 11, 0, 0, replace.data ());
  aclip_spectrum_mask_draw (&mask, n_windows, 12, 0, 0, again.data ());
  EXPECT_NE (replace, again);

  /* The runs must fit. */
  AclipSpectrumMaskConfig too_many = { 10, 50 };
  ErrorHolder error;
  EXPECT_FALSE (aclip_spectrum_mask_config_validate (&too_many, n_windows, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "388");
}

/* ---- The encoder against PyTorch ----------------------------------------------------------- */

class SpectrumFixture : public ::testing::Test
{
protected:
  void
  SetUp () override
  {
    fixture_ = std::make_unique<Fixture> ("spectrum-encoder.bin");
    ASSERT_TRUE (fixture_->ok ());
    const Fixture &f = *fixture_;
    aclip_spectrum_encoder_config_init_default (&config_);
    config_.n_wave = (int) f.scalar ("n_wave");
    config_.window = (int) f.scalar ("window");
    config_.stride = (int) f.scalar ("stride");
    config_.width = (int) f.scalar ("width");
    config_.n_layers = (int) f.scalar ("layers");
    config_.n_heads = (int) f.scalar ("heads");
    config_.mlp_hidden = (int) f.scalar ("hidden");
    config_.std_min = (float) f.scalar ("std_min");
    config_.layernorm_eps = (float) f.scalar ("eps");
    batch_ = (int) f["flux"].shape[0];
    tokens_ = aclip_spectrum_encoder_config_n_tokens (&config_);
    flux_ = f["flux"].as_float ();
    ivar_ = f["ivar"].as_float ();
    for (double v : f["replace"].values)
      replace_.push_back ((guint8) (v != 0.0));
  }

  /* A training table holding the fixture's parameters. */
  AclipParams *
  load_params ()
  {
    AclipParams *params = make_params (config_, ACLIP_PARAMS_TRAINING, 1);
    for (int t = 0; t < aclip_params_n_tensors (params); t++) {
      const AclipParamInfo *info = aclip_params_info (params, t);
      const FixtureTensor &tensor = (*fixture_)[info->name];
      EXPECT_EQ (tensor.size (), info->n_elements) << info->name;
      if (tensor.size () != info->n_elements)
        continue;
      float *value = aclip_params_value (params, t);
      for (int64_t i = 0; i < info->n_elements; i++)
        value[i] = (float) tensor.values[i];
    }
    return params;
  }

  std::unique_ptr<Fixture> fixture_;
  AclipSpectrumEncoderConfig config_;
  int batch_ = 0, tokens_ = 0;
  std::vector<float> flux_, ivar_;
  std::vector<guint8> replace_;
};

TEST_F (SpectrumFixture, ForwardAndGradientsMatchPyTorch)
{
  const Fixture &f = *fixture_;
  g_autoptr (AclipParams) params = load_params ();
  ErrorHolder error;
  /* max_batch above the batch: a smaller batch uses part of the buffers. */
  g_autoptr (AclipSpectrumEncoder) encoder =
      aclip_spectrum_encoder_new (&config_, params, "spectrum.", batch_ + 2, TRUE, error.out ());
  ASSERT_NE (encoder, nullptr) << error->message;
  g_autoptr (AclipSpectrumPretrainer) pretrainer =
      aclip_spectrum_pretrainer_new (encoder, params, "spectrum_pretrain.", error.out ());
  ASSERT_NE (pretrainer, nullptr) << error->message;

  AclipSpectrumPretrainLoss loss;
  aclip_params_zero_grads (params);
  aclip_spectrum_pretrainer_forward (pretrainer, nullptr, flux_.data (), ivar_.data (),
                                     replace_.data (), batch_, &loss);
  aclip_spectrum_pretrainer_backward (pretrainer, nullptr, 1.0f);

  const int c = config_.width;
  const size_t n_features = f["features"].values.size ();
  EXPECT_CLOSE_TO_REFERENCE (aclip_spectrum_encoder_features (encoder),
                             f["features"].values.data (), n_features, 1e-6, 1e-6, "features");
  EXPECT_CLOSE_TO_REFERENCE (aclip_spectrum_encoder_stats (encoder), f["stats"].values.data (),
                             (size_t) 2 * batch_, 1e-6, 1e-6, "stats");
  const guint8 *key_mask = aclip_spectrum_encoder_key_mask (encoder);
  int n_masked_keys = 0;
  for (int i = 0; i < batch_ * tokens_; i++) {
    EXPECT_EQ (key_mask[i], (guint8) f["key_mask"].values[i]) << "token " << i;
    n_masked_keys += key_mask[i];
  }
  EXPECT_EQ (n_masked_keys, 2); /* the fixture's pixels 20–31 are bad: windows 5 and 6 */
  const float *tokens = aclip_spectrum_encoder_tokens (encoder);
  const size_t n_tokens = (size_t) batch_ * tokens_ * c;
  double max_error = 0.0;
  for (size_t i = 0; i < n_tokens; i++)
    max_error = std::max (max_error, std::fabs (tokens[i] - f["tokens"].values[i]));
  std::printf ("[measured] tokens: max |error| %.3g\n", max_error);
  EXPECT_CLOSE_TO_REFERENCE (tokens, f["tokens"].values.data (), n_tokens, 2e-5, 1e-4, "tokens");
  EXPECT_NEAR (loss.loss, f.scalar ("loss"), 1e-5 * f.scalar ("loss"));
  EXPECT_GT (loss.n_masked, 0);

  double worst_relative = 0.0; /* max |error| / the tensor's largest |gradient| */
  for (int t = 0; t < aclip_params_n_tensors (params); t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    const FixtureTensor &expected = f[std::string ("d_") + info->name];
    ASSERT_EQ (expected.size (), info->n_elements) << info->name;
    double scale = 0.0;
    for (double v : expected.values)
      scale = std::max (scale, std::fabs (v));
    size_t worst = 0;
    const float *grad = aclip_params_grad (params, t);
    for (int64_t i = 0; i < info->n_elements; i++)
      worst_relative =
          std::max (worst_relative, std::fabs (grad[i] - expected.values[i]) / (scale + 1e-30));
    double ratio = tolerance_ratio (grad, expected.values.data (), (size_t) info->n_elements,
                                    1e-5 * scale + 1e-9, 1e-3, &worst);
    EXPECT_LE (ratio, 1.0) << "d " << info->name << " element " << worst << ": " << grad[worst]
                           << " vs " << expected.values[worst];
  }
  std::printf ("[measured] gradients: max |error| / tensor scale %.3g\n", worst_relative);
}

TEST_F (SpectrumFixture, ThreadsChangeNothing)
{
  /* Our loops are pool-independent; sgemm runs on one OpenBLAS thread in the tests. */
  g_autoptr (AclipParams) serial = load_params ();
  g_autoptr (AclipParams) threaded = load_params ();
  g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (3);
  AclipParams *tables[2] = { serial, threaded };
  AclipThreadPool *pools[2] = { nullptr, pool };
  std::vector<float> tokens[2];
  for (int i = 0; i < 2; i++) {
    g_autoptr (AclipSpectrumEncoder) encoder =
        aclip_spectrum_encoder_new (&config_, tables[i], "spectrum.", batch_, TRUE, nullptr);
    g_autoptr (AclipSpectrumPretrainer) pretrainer =
        aclip_spectrum_pretrainer_new (encoder, tables[i], "spectrum_pretrain.", nullptr);
    AclipSpectrumPretrainLoss loss;
    aclip_params_zero_grads (tables[i]);
    aclip_spectrum_pretrainer_forward (pretrainer, pools[i], flux_.data (), ivar_.data (),
                                       replace_.data (), batch_, &loss);
    aclip_spectrum_pretrainer_backward (pretrainer, pools[i], 1.0f);
    const float *t = aclip_spectrum_encoder_tokens (encoder);
    tokens[i].assign (t, t + (size_t) batch_ * tokens_ * config_.width);
  }
  EXPECT_EQ (tokens[0], tokens[1]);
  EXPECT_EQ (0, std::memcmp (aclip_params_grads (serial), aclip_params_grads (threaded),
                             aclip_params_n_floats (serial) * sizeof (float)));
}

TEST_F (SpectrumFixture, BackwardFromALayerEqualsTheFullBackwardAboveIt)
{
  /* Fine-tuning the last layers stops the backward below them: the gradients it computes must
   * be the full backward's, bit for bit, and every other gradient must stay zero. */
  const int n_layers = config_.n_layers;
  const size_t n_out = (size_t) batch_ * tokens_ * config_.width;
  std::vector<float> d_tokens (n_out);
  for (size_t i = 0; i < n_out; i++)
    d_tokens[i] = (float) std::sin (0.37 * (double) i) * 0.01f;
  auto gradients = [&] (int first_layer, AclipParams *params) {
    g_autoptr (AclipSpectrumEncoder) encoder =
        aclip_spectrum_encoder_new (&config_, params, "spectrum.", batch_, TRUE, nullptr);
    ASSERT_NE (encoder, nullptr);
    aclip_params_zero_grads (params);
    aclip_spectrum_encoder_forward (encoder, nullptr, flux_.data (), ivar_.data (), nullptr,
                                    batch_);
    std::memcpy (aclip_spectrum_encoder_d_tokens (encoder), d_tokens.data (),
                 n_out * sizeof (float));
    aclip_spectrum_encoder_backward_from (encoder, nullptr, first_layer);
  };
  g_autoptr (AclipParams) full = load_params ();
  gradients (0, full);
  for (int first_layer : { n_layers - 1, n_layers }) {
    g_autoptr (AclipParams) part = load_params ();
    gradients (first_layer, part);
    int n_trained = 0;
    for (int t = 0; t < aclip_params_n_tensors (part); t++) {
      const AclipParamInfo *info = aclip_params_info (part, t);
      std::string name = info->name;
      bool trained = name.rfind ("spectrum.final_norm.", 0) == 0;
      for (int l = first_layer; l < n_layers; l++)
        trained |= name.rfind ("spectrum.blocks." + std::to_string (l) + ".", 0) == 0;
      const float *got = aclip_params_grad (part, t);
      if (trained) {
        n_trained++;
        EXPECT_EQ (0, std::memcmp (got, aclip_params_grad (full, t),
                                   (size_t) info->n_elements * sizeof (float)))
            << name << " from layer " << first_layer;
      } else {
        EXPECT_EQ (*std::max_element (got, got + info->n_elements,
                                      [] (float a, float b) { return std::fabs (a) < std::fabs (b); }),
                   0.0f)
            << name << " got a gradient from layer " << first_layer;
      }
    }
    EXPECT_GE (n_trained, 2) << "from layer " << first_layer;
  }
}

TEST_F (SpectrumFixture, BadPixelsAndMaskedKeysChangeNothing)
{
  g_autoptr (AclipParams) params = load_params ();
  g_autoptr (AclipSpectrumEncoder) encoder =
      aclip_spectrum_encoder_new (&config_, params, "spectrum.", batch_, FALSE, nullptr);
  ASSERT_NE (encoder, nullptr);
  const size_t n_out = (size_t) batch_ * tokens_ * config_.width;
  aclip_spectrum_encoder_forward (encoder, nullptr, flux_.data (), ivar_.data (), nullptr, batch_);
  std::vector<float> before (aclip_spectrum_encoder_tokens (encoder),
                             aclip_spectrum_encoder_tokens (encoder) + n_out);
  std::vector<guint8> key_mask (aclip_spectrum_encoder_key_mask (encoder),
                                aclip_spectrum_encoder_key_mask (encoder) + batch_ * tokens_);

  /* Any flux at a bad pixel — huge, NaN, infinite — changes no bit of the output. */
  std::vector<float> flux = flux_;
  const float odd[4] = { 1e30f, std::nanf (""), -INFINITY, 12345.0f };
  int n_bad = 0;
  for (size_t i = 0; i < flux.size (); i++)
    if (ivar_[i] == 0.0f)
      flux[i] = odd[n_bad++ % 4];
  ASSERT_GT (n_bad, 0);
  aclip_spectrum_encoder_forward (encoder, nullptr, flux.data (), ivar_.data (), nullptr, batch_);
  EXPECT_EQ (0, std::memcmp (before.data (), aclip_spectrum_encoder_tokens (encoder),
                             n_out * sizeof (float)));

  /* A masked key (a window with no good pixel) influences no other token of its spectrum:
   * changing its positional embedding leaves every other token's output exactly as it was.
   * (The positional embedding is shared, so the other spectra, where that window is good,
   * change.) */
  int masked_t = -1, masked_b = -1;
  for (int i = 0; i < batch_ * tokens_; i++)
    if (key_mask[i])
      masked_b = i / tokens_, masked_t = i % tokens_;
  ASSERT_GE (masked_t, 1);
  float *pos = aclip_params_value_by_name (params, "spectrum.pos_embed");
  for (int k = 0; k < config_.width; k++)
    pos[masked_t * config_.width + k] += 3.0f;
  aclip_spectrum_encoder_forward (encoder, nullptr, flux_.data (), ivar_.data (), nullptr, batch_);
  const float *after = aclip_spectrum_encoder_tokens (encoder);
  const int b = masked_b;
  for (int t = 0; t < tokens_; t++) {
    const float *x = after + ((size_t) b * tokens_ + t) * config_.width;
    const float *y = before.data () + ((size_t) b * tokens_ + t) * config_.width;
    bool same = std::memcmp (x, y, config_.width * sizeof (float)) == 0;
    if (t == masked_t)
      EXPECT_FALSE (same) << "the masked token's own output should change";
    else
      EXPECT_TRUE (same) << "token " << t << " of spectrum " << b << " changed";
  }
}

TEST (SpectrumEncoder, RestoreCopiesTheEncoderFromACheckpoint)
{
  TempDir dir;
  AclipSpectrumEncoderConfig config = tiny_config (60, 10, 5);
  g_autoptr (AclipParams) trained = make_params (config, ACLIP_PARAMS_INFERENCE, 5);
  ErrorHolder error;
  ASSERT_TRUE (aclip_checkpoint_save (dir.path ("a.ckpt").c_str (), "", trained, FALSE, nullptr,
                                      nullptr, error.out ()));
  g_autoptr (AclipCheckpoint) checkpoint =
      aclip_checkpoint_open (dir.path ("a.ckpt").c_str (), error.out ());
  ASSERT_NE (checkpoint, nullptr);

  /* A table with the encoder and something else: only the encoder is copied. */
  g_autoptr (AclipParams) other = aclip_params_new ();
  ASSERT_TRUE (aclip_spectrum_encoder_register (&config, other, "spectrum.", nullptr));
  const gint64 shape[1] = { 3 };
  AclipInit ones = { ACLIP_INIT_ONES, 0, 0, 0 };
  ASSERT_GE (aclip_params_add (other, "head.x", 1, shape, ones, ACLIP_PARAM_NONE, nullptr), 0);
  ASSERT_TRUE (aclip_params_seal (other, ACLIP_PARAMS_TRAINING, nullptr));
  aclip_params_init (other, 99, nullptr);
  ASSERT_TRUE (aclip_spectrum_encoder_restore (other, "spectrum.", checkpoint, error.out ()));
  const char *name = "spectrum.blocks.1.linear1.weight";
  int index = aclip_params_lookup (other, name);
  EXPECT_EQ (0, std::memcmp (aclip_params_value_by_name (other, name),
                             aclip_params_value_by_name (trained, name),
                             aclip_params_info (other, index)->n_elements * sizeof (float)));
  EXPECT_EQ (aclip_params_value_by_name (other, "head.x")[0], 1.0f);

  /* Another width: refused, naming the tensor, and nothing copied. */
  AclipSpectrumEncoderConfig wider = config;
  wider.width = 32;
  g_autoptr (AclipParams) mismatched = make_params (wider, ACLIP_PARAMS_INFERENCE, 3);
  EXPECT_FALSE (aclip_spectrum_encoder_restore (mismatched, "spectrum.", checkpoint, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "spectrum.embed.weight", "[32, 20]", "[16, 20]");
}

/* ---- A tiny pretraining run ----------------------------------------------------------------- */

/* Spectra with a shared structure: a few broad components with random amplitudes, lines at
 * fixed places, noise from ivar, and some bad pixels. */
void
synthetic_spectra (int n, int n_wave, guint64 seed, std::vector<float> *flux,
                   std::vector<float> *ivar)
{
  std::mt19937_64 rng (seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform;
  flux->assign ((size_t) n * n_wave, 0.0f);
  ivar->assign ((size_t) n * n_wave, 0.0f);
  for (int s = 0; s < n; s++) {
    double level = 5 + 20 * uniform (rng), slope = normal (rng), line = 3 * uniform (rng);
    double phase = 6.283 * uniform (rng), noise = 0.05 + 0.3 * uniform (rng);
    for (int i = 0; i < n_wave; i++) {
      double x = (double) i / n_wave;
      double value = level * (1 + 0.5 * slope * x + 0.3 * std::sin (12 * x + phase));
      for (double centre : { 0.2, 0.45, 0.7, 0.9 })
        value += level * line * std::exp (-0.5 * std::pow ((x - centre) / 0.004, 2));
      double sigma = noise * level;
      bool bad = uniform (rng) < 0.01;
      (*flux)[(size_t) s * n_wave + i] = (float) (value + sigma * normal (rng));
      (*ivar)[(size_t) s * n_wave + i] = bad ? 0.0f : (float) (1.0 / (sigma * sigma));
    }
  }
}

TEST (SpectrumPretrain, TinyRunBeatsTheBaseline)
{
  const int n_wave = 400, n_train = 256, n_val = 64, batch = 16, steps = 200;
  AclipSpectrumEncoderConfig config = tiny_config (n_wave, 8, 4); /* 99 windows */
  config.width = 32;
  config.n_heads = 2;
  config.mlp_hidden = 64;
  AclipSpectrumMaskConfig mask;
  aclip_spectrum_mask_config_init (&mask, &config);
  const int n_windows = aclip_spectrum_encoder_config_n_windows (&config);
  const int t_len = n_windows + 1;
  std::vector<float> train_flux, train_ivar, val_flux, val_ivar;
  synthetic_spectra (n_train, n_wave, 1, &train_flux, &train_ivar);
  synthetic_spectra (n_val, n_wave, 2, &val_flux, &val_ivar);

  g_autoptr (AclipParams) params = make_params (config, ACLIP_PARAMS_TRAINING, 3);
  g_autoptr (AclipSpectrumEncoder) encoder =
      aclip_spectrum_encoder_new (&config, params, "spectrum.", batch, TRUE, nullptr);
  g_autoptr (AclipSpectrumPretrainer) pretrainer =
      aclip_spectrum_pretrainer_new (encoder, params, "spectrum_pretrain.", nullptr);
  ASSERT_NE (pretrainer, nullptr);
  std::vector<guint8> replace ((size_t) batch * t_len);

  auto validate = [&] (double *baseline) {
    double sum = 0, weights = 0, base = 0;
    for (int first = 0; first < n_val; first += batch) {
      for (int b = 0; b < batch; b++)
        aclip_spectrum_mask_draw (&mask, n_windows, 77, first + b, 0, &replace[b * t_len]);
      AclipSpectrumPretrainLoss loss;
      aclip_spectrum_pretrainer_forward (pretrainer, nullptr, &val_flux[(size_t) first * n_wave],
                                         &val_ivar[(size_t) first * n_wave], replace.data (),
                                         batch, &loss);
      sum += loss.loss * loss.weight_sum;
      base += loss.baseline * loss.weight_sum;
      weights += loss.weight_sum;
    }
    *baseline = base / weights;
    return sum / weights;
  };

  double baseline = 0;
  double initial = validate (&baseline);
  AclipAdamWConfig adamw = ACLIP_ADAMW_CONFIG_DEFAULT;
  AclipLrSchedule schedule = { 3e-3, 3e-4, 20, steps };
  for (int step = 0; step < steps; step++) {
    int first = (step * batch) % n_train;
    for (int b = 0; b < batch; b++)
      aclip_spectrum_mask_draw (&mask, n_windows, 5, step, b, &replace[b * t_len]);
    AclipSpectrumPretrainLoss loss;
    aclip_params_zero_grads (params);
    aclip_spectrum_pretrainer_forward (pretrainer, nullptr, &train_flux[(size_t) first * n_wave],
                                       &train_ivar[(size_t) first * n_wave], replace.data (),
                                       batch, &loss);
    ASSERT_TRUE (std::isfinite (loss.loss));
    aclip_spectrum_pretrainer_backward (pretrainer, nullptr, 1.0f);
    aclip_clip_grad_norm (nullptr, aclip_params_grads (params), aclip_params_n_floats (params),
                          1.0);
    aclip_adamw_step (nullptr, params, &adamw, aclip_lr_schedule_at (&schedule, step));
  }
  double final_baseline = 0;
  double final = validate (&final_baseline);
  std::printf ("[measured] tiny pretraining: validation loss %.4f → %.4f, baseline (zeros) %.4f\n",
               initial, final, baseline);
  EXPECT_EQ (baseline, final_baseline);
  /* The noise alone leaves a weighted MSE of about 0.3 on these spectra. */
  EXPECT_LT (final, 0.7 * baseline);
  EXPECT_LT (final, 0.7 * initial);
}

} // namespace

/* ---- astroclip pretrain-spectra -------------------------------------------------------------- */

namespace {

/* A tiny encoder and run, a few milliseconds a step. */
std::vector<std::string>
tiny_run_arguments (const std::string &catalogue, const std::string &out)
{
  return { "pretrain-spectra", "--catalogue", catalogue, "--out", out, "--width", "16",
           "--layers", "1", "--heads", "2", "--mlp-hidden", "32", "--window", "80", "--stride",
           "40", "--steps", "300", "--batch-size", "8", "--validate-every", "100",
           "--max-validation", "16", "--threads", "1", "--progress", "json", "--save-every", "0",
           "--seed", "3" };
}

std::vector<std::string>
split_lines (const std::string &text)
{
  std::vector<std::string> lines;
  gchar **parts = g_strsplit (text.c_str (), "\n", -1);
  for (gchar **p = parts; *p; p++)
    if (**p)
      lines.emplace_back (*p);
  g_strfreev (parts);
  return lines;
}

/* Every stdout line is one JSON object with an "event" (the plugin's contract). */
void
expect_json_lines (const std::vector<std::string> &lines)
{
  for (const auto &line : lines) {
    EXPECT_EQ (line.rfind ("{\"event\":\"", 0), 0u) << line;
    EXPECT_EQ (line.back (), '}') << line;
  }
}

std::vector<std::string>
events_named (const std::vector<std::string> &lines, const std::string &event)
{
  std::vector<std::string> found;
  for (const auto &line : lines)
    if (line.find ("{\"event\":\"" + event + "\"") == 0)
      found.push_back (line);
  return found;
}

std::string
simulate_small_catalogue (const TempDir &dir)
{
  std::string path = dir.path ("small.fits"), out, err;
  EXPECT_EQ (run_astroclip ({ "simulate", "--n", "300", "--image-size", "16", "--seed", "5",
                              "--out", path },
                            &out, &err),
             0)
      << err;
  return path;
}

/* Every tensor's values, bit for bit. */
void
expect_same_values (const std::string &a_path, const std::string &b_path)
{
  ErrorHolder error;
  g_autoptr (AclipCheckpoint) a = aclip_checkpoint_open (a_path.c_str (), error.out ());
  ASSERT_NE (a, nullptr) << error->message;
  g_autoptr (AclipCheckpoint) b = aclip_checkpoint_open (b_path.c_str (), error.out ());
  ASSERT_NE (b, nullptr) << error->message;
  EXPECT_EQ (aclip_checkpoint_get_step (a), aclip_checkpoint_get_step (b));
  ASSERT_EQ (aclip_checkpoint_n_tensors (a), aclip_checkpoint_n_tensors (b));
  for (int t = 0; t < aclip_checkpoint_n_tensors (a); t++) {
    const char *name = aclip_checkpoint_tensor_name (a, t);
    int index = aclip_checkpoint_lookup (b, name);
    ASSERT_GE (index, 0) << name;
    int n_dims = 0;
    const gint64 *shape = aclip_checkpoint_tensor_shape (a, t, &n_dims);
    gint64 n = 1;
    for (int d = 0; d < n_dims; d++)
      n *= shape[d];
    EXPECT_EQ (0, std::memcmp (aclip_checkpoint_tensor_values (a, t),
                               aclip_checkpoint_tensor_values (b, index), n * sizeof (float)))
        << name << " differs";
  }
}

} // namespace

TEST (PretrainSpectra, StopsOnSigtermAndResumesBitIdentically)
{
  TempDir dir;
  const std::string catalogue = simulate_small_catalogue (dir);
  const std::string straight = dir.path ("straight.ckpt"), interrupted = dir.path ("stop.ckpt");

  /* 1. Uninterrupted. */
  std::string out, err;
  ASSERT_EQ (run_astroclip (tiny_run_arguments (catalogue, straight), &out, &err), 0) << err;
  std::vector<std::string> lines = split_lines (out);
  expect_json_lines (lines);
  std::vector<std::string> metrics = events_named (lines, "metric");
  /* val_loss and val_baseline at steps 0, 100, 200 and 300. */
  EXPECT_EQ (metrics.size (), 8u);
  ASSERT_FALSE (events_named (lines, "done").empty ());
  EXPECT_NE (events_named (lines, "done").back ().find ("\"status\":\"finished\""),
             std::string::npos);
  EXPECT_EQ (events_named (lines, "checkpoint").size (), 1u);

  /* The checkpoint says what it is. */
  {
    ErrorHolder error;
    g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (straight.c_str (), error.out ());
    ASSERT_NE (checkpoint, nullptr);
    EXPECT_EQ (aclip_checkpoint_get_step (checkpoint), 300);
    EXPECT_TRUE (aclip_checkpoint_has_training_state (checkpoint));
    g_autoptr (GKeyFile) key_file = g_key_file_new ();
    ASSERT_TRUE (g_key_file_load_from_data (key_file, aclip_checkpoint_get_text (checkpoint), -1,
                                            G_KEY_FILE_NONE, nullptr));
    AclipSpectrumEncoderConfig config;
    ASSERT_TRUE (aclip_spectrum_encoder_config_load (&config, key_file, error.out ()));
    EXPECT_EQ (config.width, 16);
    EXPECT_EQ (config.window, 80);
    g_autofree char *stage = g_key_file_get_string (key_file, "training", "stage", nullptr);
    EXPECT_STREQ (stage, "pretrain-spectra");
    EXPECT_EQ (g_key_file_get_int64 (key_file, "training", "step", nullptr), 300);
    EXPECT_TRUE (g_key_file_has_key (key_file, "training", "val_loss", nullptr));
    EXPECT_TRUE (aclip_checkpoint_lookup (checkpoint, "spectrum.blocks.0.linear1.weight") >= 0);
    EXPECT_TRUE (aclip_checkpoint_lookup (checkpoint, "spectrum_pretrain.head.weight") >= 0);
  }

  /* 2. The same run, stopped by SIGTERM once it reports its first step. */
  std::vector<std::string> arguments = tiny_run_arguments (catalogue, interrupted);
  std::vector<const char *> argv = { g_getenv ("ASTROCLIP") };
  for (const auto &argument : arguments)
    argv.push_back (argument.c_str ());
  argv.push_back (nullptr);
  ErrorHolder error;
  g_autoptr (GSubprocess) process = g_subprocess_newv (
      argv.data (), (GSubprocessFlags) (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE),
      error.out ());
  ASSERT_NE (process, nullptr) << error->message;
  g_autoptr (GDataInputStream) stream =
      g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  std::vector<std::string> stopped_lines;
  bool signalled = false;
  while (true) {
    gsize length = 0;
    g_autofree char *line =
        g_data_input_stream_read_line_utf8 (stream, &length, nullptr, error.out ());
    if (line == nullptr)
      break;
    stopped_lines.emplace_back (line);
    if (!signalled && stopped_lines.back ().find ("{\"event\":\"step\"") == 0) {
      g_subprocess_send_signal (process, SIGTERM);
      signalled = true;
    }
  }
  ASSERT_TRUE (g_subprocess_wait (process, nullptr, error.out ()));
  ASSERT_TRUE (signalled);
  EXPECT_TRUE (g_subprocess_get_if_exited (process));
  EXPECT_EQ (g_subprocess_get_exit_status (process), 0);
  expect_json_lines (stopped_lines);
  std::vector<std::string> done = events_named (stopped_lines, "done");
  ASSERT_EQ (done.size (), 1u);
  EXPECT_NE (done[0].find ("\"status\":\"stopped\""), std::string::npos) << done[0];
  ASSERT_EQ (events_named (stopped_lines, "checkpoint").size (), 1u);
  gint64 stopped_at = 0;
  {
    g_autoptr (AclipCheckpoint) checkpoint =
        aclip_checkpoint_open (interrupted.c_str (), error.out ());
    ASSERT_NE (checkpoint, nullptr) << error->message;
    stopped_at = aclip_checkpoint_get_step (checkpoint);
  }
  std::printf ("[measured] SIGTERM after the first step event: stopped at step %" G_GINT64_FORMAT
               "\n",
               stopped_at);
  EXPECT_GE (stopped_at, 1);
  EXPECT_LT (stopped_at, 300);

  /* 3. A conflicting option is refused on --resume; the checkpoint is left as it was. */
  std::vector<std::string> conflicting = tiny_run_arguments (catalogue, interrupted);
  conflicting.push_back ("--resume");
  conflicting.push_back ("--lr");
  conflicting.push_back ("0.1");
  EXPECT_EQ (run_astroclip (conflicting, &out, &err), 2);
  EXPECT_NE (err.find ("--lr"), std::string::npos) << err;

  /* 4. Resume (the settings come from the checkpoint) and finish: the same bits as the
   * uninterrupted run. */
  ASSERT_EQ (run_astroclip ({ "pretrain-spectra", "--out", interrupted, "--resume", "--threads",
                              "1", "--progress", "json" },
                            &out, &err),
             0)
      << err;
  lines = split_lines (out);
  expect_json_lines (lines);
  bool mentions_resume = false;
  for (const auto &line : events_named (lines, "message"))
    mentions_resume |= line.find ("resuming at step " + std::to_string (stopped_at)) !=
                       std::string::npos;
  EXPECT_TRUE (mentions_resume) << out;
  done = events_named (lines, "done");
  ASSERT_EQ (done.size (), 1u);
  EXPECT_NE (done[0].find ("\"status\":\"finished\""), std::string::npos);
  expect_same_values (straight, interrupted);

  /* 5. Resuming a finished run does nothing and succeeds. */
  EXPECT_EQ (run_astroclip ({ "pretrain-spectra", "--out", interrupted, "--resume", "--progress",
                              "json" },
                            &out, &err),
             0)
      << err;
  EXPECT_NE (out.find ("already reached its last step"), std::string::npos) << out;
}

TEST (PretrainSpectra, RefusesBadArguments)
{
  TempDir dir;
  std::string out, err;
  EXPECT_EQ (run_astroclip ({ "pretrain-spectra", "--out", dir.path ("x.ckpt") }, &out, &err), 2);
  EXPECT_NE (err.find ("--catalogue"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "pretrain-spectra", "--catalogue", "nothing.fits", "--out",
                              dir.path ("x.ckpt"), "--preset", "huge" },
                            &out, &err),
             1);
  EXPECT_EQ (run_astroclip ({ "pretrain-spectra", "--catalogue", "a.fits", "--out", "b.ckpt",
                              "--steps", "5", "--epochs", "1" },
                            &out, &err),
             2);
}
