/* test-optim.cc — the parameter table, AdamW, the schedule, clipping and accumulation
 * (aclip-params.h, aclip-optim.h), against hand-computed values and PyTorch
 * (tests/reference/make_optim_fixtures.py).
 *
 * Tolerances, with the reason:
 * - AdamW against torch.optim.AdamW given the same gradients, 20 steps with a changing
 *   learning rate: bit-identical after every step (tolerance 0). The update mirrors PyTorch's
 *   float operations one for one, fused multiply–adds included (aclip-optim.c).
 * - The 2-layer MLP trained 300 steps (warm-up + cosine schedule, clipping, weight decay) from
 *   PyTorch's initial weights on PyTorch's data: the loss at every step within 1e-7 + 1e-4
 *   relative of PyTorch's, the final parameters within 1e-5 + 1e-4 relative. Both sides
 *   compute in float32 but the forward and backward sum in different orders (our plain loops,
 *   PyTorch's sgemm), a rounding difference of ~1e-7 relative per step that 300 steps carry
 *   along (measured: ~1e-6 relative at the end).
 */
#include "test-support.h"

#include "aclip-error.h"
#include "aclip-optim.h"
#include "aclip-params.h"
#include "reference-training.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

namespace {

const AclipInit kZeros = { ACLIP_INIT_ZEROS, 0.0f, 0, 0 };

AclipParams *
table_with (std::initializer_list<std::pair<const char *, std::vector<int64_t>>> tensors,
            AclipParamsMode mode, AclipInit init = kZeros)
{
  AclipParams *params = aclip_params_new ();
  for (const auto &[name, shape] : tensors) {
    ErrorHolder error;
    EXPECT_GE (aclip_params_add (params, name, (int) shape.size (), shape.data (), init,
                                 ACLIP_PARAM_DECAY, error.out ()),
               0);
  }
  ErrorHolder error;
  EXPECT_TRUE (aclip_params_seal (params, mode, error.out ()));
  return params;
}

/* Distance in units of the last place between two floats of the same sign. */
int64_t
ulps (float a, float b)
{
  int32_t ia, ib;
  std::memcpy (&ia, &a, 4);
  std::memcpy (&ib, &b, 4);
  if ((ia < 0) != (ib < 0))
    return a == b ? 0 : INT64_MAX;
  return std::llabs ((int64_t) ia - (int64_t) ib);
}

} // namespace

/* The parameter table ---------------------------------------------------------------------- */

TEST (Params, RegistrationLayoutAndLookup)
{
  g_autoptr (AclipParams) params = aclip_params_new ();
  ErrorHolder error;
  const int64_t w[] = { 3, 5 }, b[] = { 3 }, conv[] = { 4, 2, 3, 3 };
  EXPECT_EQ (
      aclip_params_add (params, "layer.weight", 2, w, kZeros, ACLIP_PARAM_DECAY, error.out ()), 0);
  EXPECT_EQ (aclip_params_add (params, "layer.bias", 1, b, kZeros, ACLIP_PARAM_NONE, error.out ()),
             1);
  EXPECT_EQ (
      aclip_params_add (params, "conv.weight", 4, conv, kZeros, ACLIP_PARAM_DECAY, error.out ()),
      2);

  /* Refusals, each with a clear error. */
  EXPECT_EQ (aclip_params_add (params, "layer.bias", 1, b, kZeros, ACLIP_PARAM_NONE, error.out ()),
             -1);
  EXPECT_ERROR_MENTIONS (error.error, "layer.bias", "twice");
  const int64_t bad[] = { 3, 0 };
  EXPECT_EQ (aclip_params_add (params, "bad", 2, bad, kZeros, ACLIP_PARAM_NONE, error.out ()), -1);
  EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE));
  EXPECT_EQ (aclip_params_add (params, "", 1, b, kZeros, ACLIP_PARAM_NONE, error.out ()), -1);
  EXPECT_EQ (aclip_params_add (params, "nodims", 0, b, kZeros, ACLIP_PARAM_NONE, error.out ()), -1);

  EXPECT_EQ (aclip_params_values (params), nullptr);
  ASSERT_TRUE (aclip_params_seal (params, ACLIP_PARAMS_TRAINING, error.out ()));
  EXPECT_EQ (aclip_params_add (params, "late", 1, b, kZeros, ACLIP_PARAM_NONE, error.out ()), -1);
  EXPECT_ERROR_MENTIONS (error.error, "late", "sealed");

  EXPECT_EQ (aclip_params_n_tensors (params), 3);
  EXPECT_EQ (aclip_params_n_elements (params), 15 + 3 + 72);
  /* Each tensor starts on a 64-byte boundary: 15 → 16, 3 → 16, 72 → 80 floats. */
  EXPECT_EQ (aclip_params_info (params, 0)->offset, 0u);
  EXPECT_EQ (aclip_params_info (params, 1)->offset, 16u);
  EXPECT_EQ (aclip_params_info (params, 2)->offset, 32u);
  EXPECT_EQ (aclip_params_n_floats (params), 112u);
  EXPECT_EQ (aclip_params_bytes (params), 4 * 112 * sizeof (float));
  for (int t = 0; t < 3; t++) {
    EXPECT_EQ ((uintptr_t) aclip_params_value (params, t) % 64, 0u);
    EXPECT_EQ ((uintptr_t) aclip_params_grad (params, t) % 64, 0u);
  }
  EXPECT_EQ ((uintptr_t) aclip_params_adam_m (params) % 64, 0u);
  EXPECT_EQ (aclip_params_adam_v (params), aclip_params_adam_m (params) + 112);
  EXPECT_EQ (aclip_params_lookup (params, "conv.weight"), 2);
  EXPECT_EQ (aclip_params_lookup (params, "nope"), -1);
  EXPECT_EQ (aclip_params_value_by_name (params, "layer.bias"), aclip_params_values (params) + 16);
  EXPECT_EQ (aclip_params_grad_by_name (params, "layer.bias"), aclip_params_grads (params) + 16);
  EXPECT_EQ (aclip_params_value_by_name (params, "nope"), nullptr);

  /* Inference tables have values only. */
  g_autoptr (AclipParams) inference = table_with ({ { "w", { 4 } } }, ACLIP_PARAMS_INFERENCE);
  EXPECT_NE (aclip_params_values (inference), nullptr);
  EXPECT_EQ (aclip_params_grads (inference), nullptr);
  EXPECT_EQ (aclip_params_adam_m (inference), nullptr);
  EXPECT_FALSE (aclip_params_is_training (inference));
}

TEST (Params, InitialisationIsReproducibleAndFollowsTheRules)
{
  const int64_t big[] = { 256, 128 }, conv[] = { 16, 8, 3, 3 }, vec[] = { 1000 };
  struct Rule
  {
    const char *name;
    const int64_t *shape;
    int n_dims;
    AclipInit init;
  };
  const Rule rules[] = {
    { "zeros", vec, 1, { ACLIP_INIT_ZEROS, 0, 0, 0 } },
    { "ones", vec, 1, { ACLIP_INIT_ONES, 0, 0, 0 } },
    { "constant", vec, 1, { ACLIP_INIT_CONSTANT, 0.25f, 0, 0 } },
    { "normal", big, 2, { ACLIP_INIT_NORMAL, 0.02f, 0, 0 } },
    { "trunc", big, 2, { ACLIP_INIT_TRUNC_NORMAL, 0.5f, 0, 0 } },
    { "uniform", big, 2, { ACLIP_INIT_UNIFORM, 0.3f, 0, 0 } },
    { "fan_in", conv, 4, { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, 0, 0 } },
    { "bias", vec, 1, { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, 72, 0 } },
    { "xavier", big, 2, { ACLIP_INIT_XAVIER_UNIFORM, 1.0f, 0, 0 } },
    { "kaiming", big, 2, { ACLIP_INIT_KAIMING_NORMAL, (float) M_SQRT2, 0, 0 } },
  };
  auto make = [&] (bool extra_first) {
    AclipParams *params = aclip_params_new ();
    ErrorHolder error;
    if (extra_first) /* another tensor registered before: must not shift the others */
      aclip_params_add (params, "extra", 1, vec, rules[3].init, ACLIP_PARAM_NONE, error.out ());
    for (const Rule &rule : rules)
      aclip_params_add (params, rule.name, rule.n_dims, rule.shape, rule.init, ACLIP_PARAM_NONE,
                        error.out ());
    EXPECT_TRUE (aclip_params_seal (params, ACLIP_PARAMS_INFERENCE, error.out ()));
    return params;
  };
  g_autoptr (AclipParams) a = make (false);
  g_autoptr (AclipParams) b = make (true);
  g_autoptr (AclipParams) c = make (false);
  g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (2);
  aclip_params_init (a, 42, nullptr);
  aclip_params_init (b, 42, pool);
  aclip_params_init (c, 43, nullptr);

  for (const Rule &rule : rules) {
    const float *va = aclip_params_value_by_name (a, rule.name);
    const float *vb = aclip_params_value_by_name (b, rule.name);
    const float *vc = aclip_params_value_by_name (c, rule.name);
    const int64_t n = aclip_params_info (a, aclip_params_lookup (a, rule.name))->n_elements;
    EXPECT_EQ (std::memcmp (va, vb, n * sizeof (float)), 0)
        << rule.name << ": depends on the other tensors or on the threads";
    double sum = 0, sum2 = 0, largest = 0;
    int64_t same_other_seed = 0;
    for (int64_t i = 0; i < n; i++) {
      sum += va[i];
      sum2 += (double) va[i] * va[i];
      largest = std::max (largest, (double) std::fabs (va[i]));
      same_other_seed += va[i] == vc[i];
    }
    double mean = sum / n, sd = std::sqrt (sum2 / n - mean * mean);
    const double random_rules_sd_tolerance = 0.05; /* ≥ 1000 draws: sampling error < 3 % */
    switch (rule.init.kind) {
      case ACLIP_INIT_ZEROS:
        EXPECT_EQ (largest, 0.0);
        break;
      case ACLIP_INIT_ONES:
      case ACLIP_INIT_CONSTANT:
        EXPECT_EQ (mean, rule.init.kind == ACLIP_INIT_ONES ? 1.0 : 0.25);
        EXPECT_EQ (sd, 0.0);
        break;
      default: {
        double expected_sd = 0, bound = INFINITY;
        switch (rule.init.kind) {
          case ACLIP_INIT_NORMAL:
            expected_sd = 0.02;
            break;
          case ACLIP_INIT_TRUNC_NORMAL:
            expected_sd = 0.5 * 0.8796; /* σ of N(0,1) truncated to ±2 */
            bound = 1.0;
            break;
          case ACLIP_INIT_UNIFORM:
            bound = 0.3;
            break;
          case ACLIP_INIT_FAN_IN_UNIFORM:
            bound = 1.0 / std::sqrt (72.0); /* 8·3·3 for the conv, given for the bias */
            break;
          case ACLIP_INIT_XAVIER_UNIFORM:
            bound = std::sqrt (6.0 / (128 + 256));
            break;
          case ACLIP_INIT_KAIMING_NORMAL:
            expected_sd = std::sqrt (2.0 / 128);
            break;
          default:
            break;
        }
        if (expected_sd == 0)
          expected_sd = bound / std::sqrt (3.0); /* uniform */
        EXPECT_LE (largest, bound * (1 + 1e-6)) << rule.name;
        EXPECT_NEAR (sd, expected_sd, random_rules_sd_tolerance * expected_sd) << rule.name;
        EXPECT_NEAR (mean, 0.0, 4 * expected_sd / std::sqrt ((double) n)) << rule.name;
        EXPECT_LT (same_other_seed, n / 100) << rule.name << ": the seed makes no difference";
      }
    }
  }

  /* Initialisation resets the training state. */
  g_autoptr (AclipParams) t = table_with ({ { "w", { 8 } } }, ACLIP_PARAMS_TRAINING);
  aclip_params_adam_m (t)[3] = 1.0f;
  aclip_params_set_step (t, 9);
  aclip_params_init (t, 1, nullptr);
  EXPECT_EQ (aclip_params_adam_m (t)[3], 0.0f);
  EXPECT_EQ (aclip_params_get_step (t), 0);
}

TEST (Params, ArenaIsOneAlignedBlock)
{
  g_autoptr (AclipArena) arena = aclip_arena_new ();
  gsize first = aclip_arena_reserve (arena, 10);
  gsize second = aclip_arena_reserve (arena, 100);
  gsize third = aclip_arena_reserve (arena, 1);
  EXPECT_EQ (first, 0u);
  EXPECT_EQ (second, 16u);
  EXPECT_EQ (third, 16u + 112u);
  ErrorHolder error;
  ASSERT_TRUE (aclip_arena_seal (arena, error.out ()));
  EXPECT_EQ (aclip_arena_n_floats (arena), 144u);
  for (gsize offset : { first, second, third }) {
    EXPECT_EQ ((uintptr_t) aclip_arena_at (arena, offset) % 64, 0u);
    EXPECT_EQ (aclip_arena_at (arena, offset)[0], 0.0f);
  }

  g_autoptr (AclipArena) huge = aclip_arena_new ();
  aclip_arena_reserve (huge, G_MAXSIZE / 4);
  EXPECT_FALSE (aclip_arena_seal (huge, error.out ()));
  EXPECT_NE (error.error, nullptr);
}

/* The schedule ------------------------------------------------------------------------------ */

TEST (Schedule, WarmupThenCosineAtHandComputedSteps)
{
  const AclipLrSchedule schedule = { 1e-3, 1e-5, 10, 110 };
  /* Warm-up: peak·(step + 1)/10. */
  EXPECT_DOUBLE_EQ (aclip_lr_schedule_at (&schedule, 0), 1e-4);
  EXPECT_DOUBLE_EQ (aclip_lr_schedule_at (&schedule, 4), 5e-4);
  EXPECT_DOUBLE_EQ (aclip_lr_schedule_at (&schedule, 9), 1e-3);
  /* Cosine over 100 steps: at its start the peak, a quarter in 1e-5 + 0.99e-3·½(1 + cos π/4)
   * = 8.5501786e-4, half way 1e-5 + 0.99e-3/2 = 5.05e-4, one step before the end
   * 1e-5 + 0.99e-3·½(1 + cos 0.99π) = 1.0244253e-5, then the floor. */
  EXPECT_DOUBLE_EQ (aclip_lr_schedule_at (&schedule, 10), 1e-3);
  EXPECT_NEAR (aclip_lr_schedule_at (&schedule, 35), 8.5501786e-4, 1e-11);
  EXPECT_NEAR (aclip_lr_schedule_at (&schedule, 60), 5.05e-4, 1e-15);
  EXPECT_NEAR (aclip_lr_schedule_at (&schedule, 109), 1.0244253e-5, 1e-12);
  EXPECT_DOUBLE_EQ (aclip_lr_schedule_at (&schedule, 110), 1e-5);
  EXPECT_DOUBLE_EQ (aclip_lr_schedule_at (&schedule, 100000), 1e-5);
  /* No warm-up: the cosine from step 0; 4 steps to zero: 2e-4, 2e-4·½(1 + cos π/4), 1e-4. */
  const AclipLrSchedule plain = { 2e-4, 0.0, 0, 4 };
  EXPECT_DOUBLE_EQ (aclip_lr_schedule_at (&plain, 0), 2e-4);
  EXPECT_NEAR (aclip_lr_schedule_at (&plain, 1), 1.7071068e-4, 1e-11);
  EXPECT_NEAR (aclip_lr_schedule_at (&plain, 2), 1e-4, 1e-15);
  EXPECT_EQ (aclip_lr_schedule_at (&plain, 4), 0.0);
}

/* Clipping ---------------------------------------------------------------------------------- */

TEST (Clip, GlobalNormClippingAsPytorch)
{
  std::vector<float> g = { 3.0f, 0.0f, 4.0f, 12.0f }; /* norm 13 */
  EXPECT_DOUBLE_EQ (aclip_grad_norm (nullptr, g.data (), g.size ()), 13.0);
  /* Below the threshold: untouched. */
  EXPECT_DOUBLE_EQ (aclip_clip_grad_norm (nullptr, g.data (), g.size (), 20.0), 13.0);
  EXPECT_EQ (g[3], 12.0f);
  /* Above: scaled by max/(norm + 1e-6), norm returned as it was. */
  EXPECT_DOUBLE_EQ (aclip_clip_grad_norm (nullptr, g.data (), g.size (), 6.5), 13.0);
  const float factor = (float) (6.5 / (13.0 + 1e-6));
  EXPECT_EQ (g[0], 3.0f * factor);
  EXPECT_EQ (g[3], 12.0f * factor);
  EXPECT_NEAR (aclip_grad_norm (nullptr, g.data (), g.size ()), 6.5, 1e-5);
  /* At exactly the threshold PyTorch still multiplies by max/(norm + 1e-6), just below 1. */
  std::vector<float> at = { 3.0f, 4.0f }; /* norm 5 */
  aclip_clip_grad_norm (nullptr, at.data (), at.size (), 5.0);
  EXPECT_EQ (at[1], 4.0f * (float) (5.0 / (5.0 + 1e-6)));
  EXPECT_LT (at[1], 4.0f);
  /* No clipping requested. */
  EXPECT_NEAR (aclip_clip_grad_norm (nullptr, g.data (), g.size (), 0.0), 6.5, 1e-5);
  /* A non-finite gradient: the norm says so, the gradients stay as they are. */
  g[1] = NAN;
  EXPECT_TRUE (std::isnan (aclip_clip_grad_norm (nullptr, g.data (), g.size (), 1.0)));
  EXPECT_EQ (g[0], 3.0f * factor);
}

TEST (Clip, NormAndUpdateDoNotDependOnThreads)
{
  std::mt19937_64 rng (11);
  std::normal_distribution<float> normal;
  const size_t n = 1000003;
  std::vector<float> g (n);
  for (auto &x : g)
    x = normal (rng);
  g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (2);
  double serial = aclip_grad_norm (nullptr, g.data (), n);
  double parallel = aclip_grad_norm (pool, g.data (), n);
  EXPECT_EQ (serial, parallel);
  EXPECT_NEAR (serial, std::sqrt ((double) n), 0.01 * std::sqrt ((double) n));

  /* A table of several tensors, some with decay, stepped serially and on two threads. */
  auto make = [] {
    AclipParams *params = aclip_params_new ();
    const int64_t shapes[][2] = { { 300, 301 }, { 7, 1 }, { 512, 200 }, { 33, 3 } };
    for (int t = 0; t < 4; t++) {
      ErrorHolder error;
      g_autofree char *name = g_strdup_printf ("t%d", t);
      aclip_params_add (params, name, 2, shapes[t], { ACLIP_INIT_NORMAL, 1.0f, 0, 0 },
                        t % 2 ? ACLIP_PARAM_NONE : ACLIP_PARAM_DECAY, error.out ());
    }
    ErrorHolder error;
    EXPECT_TRUE (aclip_params_seal (params, ACLIP_PARAMS_TRAINING, error.out ()));
    aclip_params_init (params, 5, nullptr);
    return params;
  };
  g_autoptr (AclipParams) one = make ();
  g_autoptr (AclipParams) two = make ();
  const AclipAdamWConfig config = ACLIP_ADAMW_CONFIG_DEFAULT;
  for (int step = 0; step < 3; step++) {
    for (AclipParams *p : { one, two }) {
      float *grads = aclip_params_grads (p);
      for (size_t i = 0; i < aclip_params_n_floats (p); i++)
        grads[i] = 0.01f * aclip_params_values (p)[i] + 0.001f * (float) (i % 17);
    }
    aclip_adamw_step (nullptr, one, &config, 1e-3);
    aclip_adamw_step (pool, two, &config, 1e-3);
  }
  EXPECT_EQ (std::memcmp (aclip_params_values (one), aclip_params_values (two),
                          aclip_params_n_floats (one) * sizeof (float)),
             0);
  EXPECT_EQ (aclip_params_get_step (two), 3);
}

/* AdamW against PyTorch --------------------------------------------------------------------- */

TEST (AdamW, MatchesTorchAdamWStepByStep)
{
  Fixture f ("optim-adamw.bin");
  ASSERT_TRUE (f.ok ());
  const AclipAdamWConfig config = { f.scalar ("beta1"), f.scalar ("beta2"), f.scalar ("eps"),
                                    f.scalar ("weight_decay") };
  const int64_t w_shape[] = { f["weight"].shape[0], f["weight"].shape[1] };
  const int64_t b_shape[] = { f["bias"].shape[0] };
  g_autoptr (AclipParams) params = aclip_params_new ();
  ErrorHolder error;
  ASSERT_EQ (
      aclip_params_add (params, "weight", 2, w_shape, kZeros, ACLIP_PARAM_DECAY, error.out ()), 0);
  ASSERT_EQ (aclip_params_add (params, "bias", 1, b_shape, kZeros, ACLIP_PARAM_NONE, error.out ()),
             1);
  ASSERT_TRUE (aclip_params_seal (params, ACLIP_PARAMS_TRAINING, error.out ()));
  const int64_t nw = f["weight"].size (), nb = f["bias"].size ();
  auto w0 = f["weight"].as_float (), b0 = f["bias"].as_float ();
  std::copy (w0.begin (), w0.end (), aclip_params_value (params, 0));
  std::copy (b0.begin (), b0.end (), aclip_params_value (params, 1));

  const int n_steps = (int) f["lr"].size ();
  int64_t worst_ulps = 0;
  double worst_abs = 0.0;
  for (int step = 0; step < n_steps; step++) {
    for (int64_t i = 0; i < nw; i++)
      aclip_params_grad (params, 0)[i] = (float) f["grad_weight"].values[step * nw + i];
    for (int64_t i = 0; i < nb; i++)
      aclip_params_grad (params, 1)[i] = (float) f["grad_bias"].values[step * nb + i];
    aclip_adamw_step (nullptr, params, &config, f["lr"].values[step]);
    for (int t = 0; t < 2; t++) {
      const float *got = aclip_params_value (params, t);
      const FixtureTensor &want = f[t == 0 ? "weight_after" : "bias_after"];
      const int64_t n = t == 0 ? nw : nb;
      for (int64_t i = 0; i < n; i++) {
        float expected = (float) want.values[step * n + i];
        int64_t distance = ulps (got[i], expected);
        double error_abs = std::fabs ((double) got[i] - expected);
        worst_ulps = std::max (worst_ulps, distance);
        worst_abs = std::max (worst_abs, error_abs);
        EXPECT_EQ (distance, 0) << "step " << step + 1 << " tensor " << t << " element " << i
                                << ": " << got[i] << " vs PyTorch " << expected;
      }
    }
  }
  EXPECT_EQ (aclip_params_get_step (params), n_steps);
  std::printf ("[measured] AdamW vs torch.optim.AdamW, %d steps: worst %lld ulps, max |error| "
               "%.3g\n",
               n_steps, (long long) worst_ulps, worst_abs);
}

/* A tiny training run against PyTorch -------------------------------------------------------- */

TEST (AdamW, TinyMlpReachesPytorchLoss)
{
  Fixture f ("optim-mlp.bin");
  ASSERT_TRUE (f.ok ());
  const int n = (int) f["x"].shape[0], n_in = (int) f["x"].shape[1];
  const int n_hidden = (int) f["w1"].shape[0], n_out = (int) f["w2"].shape[0];
  TinyMlp mlp (n_in, n_hidden, n_out, n, ACLIP_PARAMS_TRAINING);
  const char *names[] = { "w1", "b1", "w2", "b2" };
  for (int t = 0; t < 4; t++) {
    auto values = f[names[t]].as_float ();
    ASSERT_EQ ((int64_t) values.size (), aclip_params_info (mlp.params, t)->n_elements);
    std::copy (values.begin (), values.end (), aclip_params_value (mlp.params, t));
  }
  auto x = f["x"].as_float (), y = f["y"].as_float ();
  const int steps = (int) f.scalar ("steps");
  const AclipLrSchedule schedule = { f.scalar ("peak_lr"), f.scalar ("final_lr"),
                                     (gint64) f.scalar ("warmup"), steps };
  const AclipAdamWConfig config = { 0.9, 0.999, 1e-8, f.scalar ("weight_decay") };
  const double max_norm = f.scalar ("max_norm");
  const FixtureTensor &torch_losses = f["losses"];
  const FixtureTensor &torch_norms = f["grad_norms"];

  std::vector<float> losses;
  int clipped = 0;
  double worst_norm_ratio = 0.0;
  for (int step = 0; step < steps; step++) {
    aclip_params_zero_grads (mlp.params);
    losses.push_back (mlp.loss (x.data (), y.data (), n, true));
    double norm = aclip_clip_grad_norm (nullptr, aclip_params_grads (mlp.params),
                                        aclip_params_n_floats (mlp.params), max_norm);
    clipped += norm > max_norm;
    worst_norm_ratio = std::max (worst_norm_ratio, std::fabs (norm - torch_norms.values[step]) /
                                                       torch_norms.values[step]);
    aclip_adamw_step (nullptr, mlp.params, &config,
                      aclip_lr_schedule_at (&schedule, aclip_params_get_step (mlp.params)));
  }
  losses.push_back (mlp.loss (x.data (), y.data (), n, false));
  ASSERT_EQ ((int64_t) losses.size (), torch_losses.size ());

  double worst = 0.0;
  for (int step = 0; step <= steps; step++) {
    double ratio = tolerance_ratio (&losses[step], &torch_losses.values[step], 1, 1e-7, 1e-4);
    worst = std::max (worst, std::fabs (losses[step] - torch_losses.values[step]) /
                                 torch_losses.values[step]);
    EXPECT_LE (ratio, 1.0) << "step " << step << ": loss " << losses[step] << ", PyTorch "
                           << torch_losses.values[step];
    if (step % 50 == 0)
      std::printf ("[measured] MLP step %3d: loss %.7g, PyTorch %.7g\n", step, losses[step],
                   torch_losses.values[step]);
  }
  EXPECT_LT (losses[steps], 0.01 * losses[0]) << "training did not converge";
  EXPECT_GT (clipped, 0) << "the run should exercise clipping";
  const char *finals[] = { "final_w1", "final_b1", "final_w2", "final_b2" };
  double worst_param = 0.0;
  for (int t = 0; t < 4; t++) {
    const FixtureTensor &want = f[finals[t]];
    const float *got = aclip_params_value (mlp.params, t);
    worst_param = std::max (
        worst_param, tolerance_ratio (got, want.values.data (), want.values.size (), 1e-5, 1e-4));
    EXPECT_CLOSE_TO_REFERENCE (got, want.values.data (), want.values.size (), 1e-5, 1e-4,
                               finals[t]);
  }
  std::printf ("[measured] MLP vs PyTorch: worst relative loss difference %.3g over steps "
               "0..%d; gradient norms within %.3g relative; %d clipped steps; final "
               "parameters worst error / tolerance %.3g\n",
               worst, steps, worst_norm_ratio, clipped, worst_param);
}

/* Gradient accumulation ------------------------------------------------------------------- */

TEST (AdamW, AccumulatedMicroBatchesGiveTheFullBatchGradient)
{
  const int n = 64, micro = 16, n_in = 5, n_out = 3;
  std::mt19937_64 rng (3);
  std::normal_distribution<float> normal;
  std::vector<float> x (n * n_in), y (n * n_out);
  for (auto &v : x)
    v = normal (rng);
  for (auto &v : y)
    v = normal (rng);
  TinyMlp mlp (n_in, 12, n_out, n, ACLIP_PARAMS_TRAINING);
  aclip_params_init (mlp.params, 99, nullptr);
  const size_t floats = aclip_params_n_floats (mlp.params);

  aclip_params_zero_grads (mlp.params);
  mlp.loss (x.data (), y.data (), n, true);
  std::vector<double> full (aclip_params_grads (mlp.params),
                            aclip_params_grads (mlp.params) + floats);

  /* K micro-batches with dloss = 1/K ... */
  const int K = n / micro;
  aclip_params_zero_grads (mlp.params);
  for (int k = 0; k < K; k++)
    mlp.loss (x.data () + k * micro * n_in, y.data () + k * micro * n_out, micro, true, 1.0f / K);
  EXPECT_CLOSE_TO_REFERENCE (aclip_params_grads (mlp.params), full.data (), floats, 1e-7, 1e-5,
                             "accumulated with dloss = 1/K");
  /* ... or dloss = 1 and one scaling of the block. */
  aclip_params_zero_grads (mlp.params);
  for (int k = 0; k < K; k++)
    mlp.loss (x.data () + k * micro * n_in, y.data () + k * micro * n_out, micro, true);
  aclip_scale_floats (nullptr, aclip_params_grads (mlp.params), floats, 1.0f / K);
  EXPECT_CLOSE_TO_REFERENCE (aclip_params_grads (mlp.params), full.data (), floats, 1e-7, 1e-5,
                             "accumulated then scaled");
}
