/* test-losses.cc — the losses of aclip-loss.h: the double references against central finite
 * differences, the float kernels against the references, and both against PyTorch fixtures
 * (tests/reference/make_loss_fixtures.py).
 *
 * Tolerances, with the reason:
 * - finite differences: |fd − analytic| ≤ 1e-7 + 1e-6·|analytic| (step 1e-5 in double: the
 *   truncation error is ~1e-10 and the rounding error ~1e-11 for these O(1) functions);
 * - float kernels, masked MSE, MSE and cross-entropy: loss and gradients within 1e-7 + 2e-6
 *   relative (inputs exact in float, sums in double; the outputs are rounded to float once,
 *   a relative 6e-8, and cross-entropy's probabilities pass through float before p − 1);
 * - InfoNCE: logits come from a float sgemm (D products in float, an error up to D·2⁻²⁴·s for
 *   unit rows, ~√D·2⁻²⁴·s typically) and the probabilities are stored in float, so loss and
 *   gradients within 1e-6 + 1e-5 relative for D ≤ 128, s ≤ 15.5. */
#include "test-support.h"

#include "aclip-loss.h"
#include "reference-training.h"

#include <cmath>
#include <cstdio>
#include <random>

namespace {

/* Tolerances (atol, rtol), reasons at the top of the file. */
const double kExactAtol = 1e-7, kExactRtol = 2e-6;
const double kInfonceAtol = 1e-6, kInfonceRtol = 1e-5;

std::vector<double>
random_values (std::mt19937_64 &rng, size_t n, double scale = 1.0)
{
  std::normal_distribution<double> normal (0.0, scale);
  std::vector<double> values (n);
  for (auto &v : values)
    v = (double) (float) normal (rng); /* exact in float, so the float kernel sees the same */
  return values;
}

std::vector<double>
normalised_rows (std::vector<double> x, int64_t rows, int64_t cols)
{
  for (int64_t r = 0; r < rows; r++) {
    double norm = 0.0;
    for (int64_t c = 0; c < cols; c++)
      norm += x[r * cols + c] * x[r * cols + c];
    for (int64_t c = 0; c < cols; c++)
      x[r * cols + c] = (double) (float) (x[r * cols + c] / std::sqrt (norm));
  }
  return x;
}

std::vector<float>
to_float (const std::vector<double> &x)
{
  return std::vector<float> (x.begin (), x.end ());
}

/* Checks within atol + rtol·|reference| and prints the measured worst error. */
void
expect_close (const std::string &what, const float *actual, const double *reference, size_t n,
              double atol, double rtol)
{
  size_t worst = 0;
  double ratio = tolerance_ratio (actual, reference, n, atol, rtol, &worst);
  double max_abs = 0.0;
  for (size_t i = 0; i < n; i++)
    max_abs = std::max (max_abs, std::fabs ((double) actual[i] - reference[i]));
  std::printf ("[measured] %s: max |error| %.3g, worst error / tolerance %.3g\n", what.c_str (),
               max_abs, ratio);
  EXPECT_LE (ratio, 1.0) << what << ": element " << worst << " is " << actual[worst]
                         << ", reference " << reference[worst];
}

void
expect_scalar_close (const std::string &what, float actual, double reference, double atol,
                     double rtol)
{
  expect_close (what, &actual, &reference, 1, atol, rtol);
}

/* Central differences of f at x (modified in place and restored), against `analytic`. */
template <typename F>
void
check_finite_differences (const std::string &what, std::vector<double> &x,
                          const std::vector<double> &analytic, F f)
{
  const double h = 1e-5;
  double worst = 0.0;
  for (size_t i = 0; i < x.size (); i++) {
    double saved = x[i];
    x[i] = saved + h;
    double up = f ();
    x[i] = saved - h;
    double down = f ();
    x[i] = saved;
    double fd = (up - down) / (2 * h);
    double ratio = std::fabs (fd - analytic[i]) / (1e-7 + 1e-6 * std::fabs (analytic[i]));
    worst = std::max (worst, ratio);
    EXPECT_LE (ratio, 1.0) << what << "[" << i << "]: finite difference " << fd << ", analytic "
                           << analytic[i];
  }
  std::printf ("[measured] %s finite differences: worst error / tolerance %.3g\n", what.c_str (),
               worst);
}

} // namespace

/* Finite differences of the references ---------------------------------------------------- */

TEST (LossReference, MaskedMseMatchesFiniteDifferences)
{
  std::mt19937_64 rng (1);
  const int64_t n = 9, c = 4;
  auto pred = random_values (rng, n * c), target = random_values (rng, n * c);
  std::vector<uint8_t> mask = { 1, 0, 0, 1, 1, 0, 1, 1, 0 };
  std::vector<double> dpred;
  reference_masked_mse (pred, target, mask, n, c, &dpred);
  check_finite_differences ("masked MSE", pred, dpred, [&] {
    return reference_masked_mse (pred, target, mask, n, c, nullptr);
  });
}

TEST (LossReference, InfonceMatchesFiniteDifferences)
{
  std::mt19937_64 rng (2);
  const int64_t B = 6, D = 5;
  auto a = normalised_rows (random_values (rng, B * D), B, D);
  auto b = normalised_rows (random_values (rng, B * D), B, D);
  std::vector<double> log_scale = { std::log (4.0) };
  std::vector<double> da, db;
  double dlog = 0.0;
  reference_infonce (a, b, B, D, log_scale[0], &da, &db, &dlog);
  auto loss = [&] {
    return reference_infonce (a, b, B, D, log_scale[0], nullptr, nullptr, nullptr);
  };
  check_finite_differences ("InfoNCE da", a, da, loss);
  check_finite_differences ("InfoNCE db", b, db, loss);
  check_finite_differences ("InfoNCE dlog_scale", log_scale, { dlog }, loss);
}

TEST (LossReference, CrossEntropyMatchesFiniteDifferences)
{
  std::mt19937_64 rng (3);
  const int64_t n = 7, k = 5;
  auto logits = random_values (rng, n * k, 2.0);
  std::vector<int32_t> targets = { 4, -1, 0, 2, 2, -1, 1 };
  std::vector<double> dlogits;
  reference_cross_entropy (logits, targets, n, k, &dlogits);
  check_finite_differences ("cross-entropy", logits, dlogits, [&] {
    return reference_cross_entropy (logits, targets, n, k, nullptr);
  });
}

/* Float kernels against the references ---------------------------------------------------- */

TEST (LossKernel, MaskedMseMatchesReferenceAndAccumulates)
{
  std::mt19937_64 rng (4);
  const int64_t n = 50, c = 20;
  auto pred = random_values (rng, n * c), target = random_values (rng, n * c);
  std::vector<uint8_t> mask (n);
  for (int64_t i = 0; i < n; i++)
    mask[i] = (i % 3) != 1;
  auto pred_f = to_float (pred), target_f = to_float (target);

  for (bool masked : { true, false }) {
    std::vector<uint8_t> used = masked ? mask : std::vector<uint8_t> ();
    std::vector<double> dpred;
    double loss = reference_masked_mse (pred, target, used, n, c, &dpred);
    float got = aclip_masked_mse_forward (pred_f.data (), target_f.data (),
                                          masked ? mask.data () : nullptr, n, c);
    expect_scalar_close (masked ? "masked MSE loss" : "unmasked MSE loss", got, loss, kExactAtol,
                         kExactRtol);
    /* Backward accumulates: start from 0.25 and take it off again. */
    std::vector<float> grad (n * c, 0.25f);
    aclip_masked_mse_backward (grad.data (), pred_f.data (), target_f.data (),
                               masked ? mask.data () : nullptr, n, c, 1.0f);
    for (auto &g : grad)
      g -= 0.25f;
    expect_close (masked ? "masked MSE dpred" : "unmasked MSE dpred", grad.data (), dpred.data (),
                  n * c, kExactAtol, kExactRtol);
  }

  /* No masked row: zero loss, nothing added. */
  std::vector<uint8_t> none (n, 0);
  EXPECT_EQ (aclip_masked_mse_forward (pred_f.data (), target_f.data (), none.data (), n, c), 0.0f);
  std::vector<float> grad (n * c, 0.0f);
  aclip_masked_mse_backward (grad.data (), pred_f.data (), target_f.data (), none.data (), n, c,
                             1.0f);
  for (float g : grad)
    ASSERT_EQ (g, 0.0f);
}

TEST (LossKernel, MseScalesWithDloss)
{
  std::mt19937_64 rng (5);
  const int64_t n = 11, k = 3;
  auto pred = to_float (random_values (rng, n * k)), target = to_float (random_values (rng, n * k));
  std::vector<float> once (n * k, 0.0f), halves (n * k, 0.0f);
  aclip_mse_backward (once.data (), pred.data (), target.data (), n, k, 1.0f);
  aclip_mse_backward (halves.data (), pred.data (), target.data (), n, k, 0.5f);
  aclip_mse_backward (halves.data (), pred.data (), target.data (), n, k, 0.5f);
  for (int64_t i = 0; i < n * k; i++)
    EXPECT_NEAR (halves[i], once[i], 1e-7 * std::fabs (once[i]) + 1e-12);
}

TEST (LossKernel, InfonceMatchesReference)
{
  std::mt19937_64 rng (6);
  for (auto [B, D, scale] : { std::tuple<int64_t, int64_t, double>{ 1, 3, 10.0 },
                              { 5, 7, 1.0 },
                              { 32, 16, 15.5 },
                              { 40, 128, 15.5 } }) {
    auto a = normalised_rows (random_values (rng, B * D), B, D);
    auto b = normalised_rows (random_values (rng, B * D), B, D);
    const float scale_f = (float) scale;
    std::vector<double> da, db;
    double dlog = 0.0;
    double loss = reference_infonce (a, b, B, D, std::log ((double) scale_f), &da, &db, &dlog);
    auto a_f = to_float (a), b_f = to_float (b);
    std::vector<float> workspace (aclip_infonce_workspace_size (B));
    float accuracy[2];
    float got = aclip_infonce_forward (a_f.data (), b_f.data (), B, D, scale_f, workspace.data (),
                                       accuracy);
    std::string label = "InfoNCE B=" + std::to_string (B) + " D=" + std::to_string (D);
    expect_scalar_close (label + " loss", got, loss, kInfonceAtol, kInfonceRtol);
    std::vector<float> ga (B * D, 0.0f), gb (B * D, 0.0f);
    float glog = 0.0f;
    aclip_infonce_backward (ga.data (), gb.data (), &glog, a_f.data (), b_f.data (), B, D, scale_f,
                            workspace.data (), 1.0f);
    expect_close (label + " da", ga.data (), da.data (), B * D, kInfonceAtol, kInfonceRtol);
    expect_close (label + " db", gb.data (), db.data (), B * D, kInfonceAtol, kInfonceRtol);
    expect_scalar_close (label + " dlog_scale", glog, dlog, kInfonceAtol, kInfonceRtol);
    if (B == 1) {
      EXPECT_EQ (accuracy[0], 1.0f);
      EXPECT_EQ (accuracy[1], 1.0f);
    }
  }
}

TEST (LossKernel, CrossEntropyMatchesReference)
{
  std::mt19937_64 rng (7);
  const int64_t n = 30, k = 10;
  auto logits = random_values (rng, n * k, 4.0);
  std::vector<int32_t> targets (n);
  for (int64_t i = 0; i < n; i++)
    targets[i] = i % 7 == 3 ? -1 : (int32_t) ((i * 7) % k);
  std::vector<double> dlogits;
  double loss = reference_cross_entropy (logits, targets, n, k, &dlogits);
  auto logits_f = to_float (logits);
  std::vector<float> probs (n * k), grad (n * k, 0.0f);
  float got = aclip_cross_entropy_forward (logits_f.data (), targets.data (), n, k, probs.data ());
  expect_scalar_close ("cross-entropy loss", got, loss, kExactAtol, kExactRtol);
  aclip_cross_entropy_backward (grad.data (), probs.data (), targets.data (), n, k, 1.0f);
  expect_close ("cross-entropy dlogits", grad.data (), dlogits.data (), n * k, kExactAtol,
                kExactRtol);

  /* Every row ignored: 0, no gradient. A target ≥ K: NaN. */
  std::vector<int32_t> ignored (n, -1);
  EXPECT_EQ (aclip_cross_entropy_forward (logits_f.data (), ignored.data (), n, k, probs.data ()),
             0.0f);
  targets[4] = (int32_t) k;
  EXPECT_TRUE (std::isnan (
      aclip_cross_entropy_forward (logits_f.data (), targets.data (), n, k, probs.data ())));
}

/* PyTorch fixtures ------------------------------------------------------------------------ */

TEST (LossPytorch, MaskedMse)
{
  Fixture f ("loss-masked-mse.bin");
  ASSERT_TRUE (f.ok ());
  const int64_t n = f["pred"].shape[0], c = f["pred"].shape[1];
  auto pred = f["pred"].as_float (), target = f["target"].as_float ();
  std::vector<uint8_t> mask;
  for (double m : f["mask"].values)
    mask.push_back (m != 0.0);
  float loss = aclip_masked_mse_forward (pred.data (), target.data (), mask.data (), n, c);
  expect_scalar_close ("PyTorch masked MSE loss", loss, f.scalar ("loss"), kExactAtol, kExactRtol);
  std::vector<float> grad (n * c, 0.0f);
  aclip_masked_mse_backward (grad.data (), pred.data (), target.data (), mask.data (), n, c, 1.0f);
  expect_close ("PyTorch masked MSE dpred", grad.data (), f["dpred"].values.data (), n * c,
                kExactAtol, kExactRtol);
}

TEST (LossPytorch, Mse)
{
  Fixture f ("loss-mse.bin");
  ASSERT_TRUE (f.ok ());
  const int64_t n = f["pred"].shape[0], k = f["pred"].shape[1];
  auto pred = f["pred"].as_float (), target = f["target"].as_float ();
  expect_scalar_close ("PyTorch MSE loss", aclip_mse_forward (pred.data (), target.data (), n, k),
                       f.scalar ("loss"), kExactAtol, kExactRtol);
  std::vector<float> grad (n * k, 0.0f);
  aclip_mse_backward (grad.data (), pred.data (), target.data (), n, k, 1.0f);
  expect_close ("PyTorch MSE dpred", grad.data (), f["dpred"].values.data (), n * k, kExactAtol,
                kExactRtol);
}

static void
check_infonce_fixture (const char *file)
{
  Fixture f (file);
  ASSERT_TRUE (f.ok ());
  const int64_t B = f["a"].shape[0], D = f["a"].shape[1];
  auto a = f["a"].as_float (), b = f["b"].as_float ();
  const float scale = (float) f.scalar ("scale");
  std::vector<float> workspace (aclip_infonce_workspace_size (B));
  float accuracy[2];
  float loss =
      aclip_infonce_forward (a.data (), b.data (), B, D, scale, workspace.data (), accuracy);
  std::string label = std::string ("PyTorch ") + file;
  expect_scalar_close (label + " loss", loss, f.scalar ("loss"), kInfonceAtol, kInfonceRtol);
  std::vector<float> da (B * D, 0.0f), db (B * D, 0.0f);
  float dlog = 0.0f;
  aclip_infonce_backward (da.data (), db.data (), &dlog, a.data (), b.data (), B, D, scale,
                          workspace.data (), 1.0f);
  expect_close (label + " da", da.data (), f["da"].values.data (), B * D, kInfonceAtol,
                kInfonceRtol);
  expect_close (label + " db", db.data (), f["db"].values.data (), B * D, kInfonceAtol,
                kInfonceRtol);
  expect_scalar_close (label + " dlog_scale", dlog, f.scalar ("dlog_scale"), kInfonceAtol,
                       kInfonceRtol);
  EXPECT_FLOAT_EQ (accuracy[0], (float) f.scalar ("accuracy_ab"));
  EXPECT_FLOAT_EQ (accuracy[1], (float) f.scalar ("accuracy_ba"));
  std::printf ("[measured] %s accuracy a→b %.3f, b→a %.3f\n", label.c_str (), accuracy[0],
               accuracy[1]);
}

TEST (LossPytorch, InfonceLearnableScale)
{
  check_infonce_fixture ("loss-infonce-small.bin");
}

TEST (LossPytorch, InfonceFixedScaleLargeBatch)
{
  check_infonce_fixture ("loss-infonce-large.bin");
}

TEST (LossPytorch, CrossEntropy)
{
  Fixture f ("loss-cross-entropy.bin");
  ASSERT_TRUE (f.ok ());
  const int64_t n = f["logits"].shape[0], k = f["logits"].shape[1];
  auto logits = f["logits"].as_float ();
  std::vector<int32_t> targets;
  for (double t : f["targets"].values)
    targets.push_back ((int32_t) t);
  std::vector<float> probs (n * k), grad (n * k, 0.0f);
  float loss = aclip_cross_entropy_forward (logits.data (), targets.data (), n, k, probs.data ());
  expect_scalar_close ("PyTorch cross-entropy loss", loss, f.scalar ("loss"), kExactAtol,
                       kExactRtol);
  aclip_cross_entropy_backward (grad.data (), probs.data (), targets.data (), n, k, 1.0f);
  expect_close ("PyTorch cross-entropy dlogits", grad.data (), f["dlogits"].values.data (), n * k,
                kExactAtol, kExactRtol);
}
