/* test-supervised.cc — the supervised baseline: the regression head on the image encoder
 * (core/aclip-image-pretrain.h) and `astroclip train-supervised`.
 *
 * - the regressor's loss is the mean squared error over the finite targets of its own
 *   predictions, and its backward matches central finite differences of that loss for every
 *   head parameter and a sample of the encoder's;
 * - a tiny run on a small simulated catalogue learns the redshift of held-out galaxies
 *   (validation R² and loss improve), and its checkpoint says what it is;
 * - --predict writes a predictions file that core's reader (the one `astroclip eval` uses)
 *   reads, with a row per galaxy of the catalogue, and that `astroclip eval --supervised`
 *   scores as the R² of those predictions on the test split;
 * - a run stopped by SIGTERM and resumed is bit-identical to an uninterrupted one (one thread);
 * - usage errors.
 */
#include "test-support.h"

#include "aclip-catalogue.h"
#include "aclip-checkpoint.h"
#include "aclip-embeddings.h"
#include "aclip-eval.h"
#include "aclip-image-encoder.h"
#include "aclip-image-pretrain.h"
#include "aclip-params.h"
#include "aclip-split.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace
{

/* A tiny encoder: 16-pixel input, two stages of 8 and 16 channels (4 tokens). */
void
tiny_encoder_config (AclipImageEncoderConfig *config)
{
  aclip_image_encoder_config_init_default (config);
  config->crop = 16;
  config->downsample = 1;
  config->stem_channels = 4;
  config->stem_stride = 1;
  config->n_stages = 2;
  config->stage_channels[0] = 8;
  config->stage_channels[1] = 16;
  config->stage_blocks[0] = config->stage_blocks[1] = 1;
}

} // namespace

/* Tolerance as the alignment head's test, |numeric − analytic| ≤ 2e-3 + 2e-2·|analytic| for
 * every element checked, with float32 central differences of step 1e-3: ReLUs have a kink at 0,
 * and a larger step moves some pre-activations across it (the loss is computed to ~1e-7, so
 * this step still resolves gradients to ~1e-4). */
TEST (Regressor, LossAndBackwardMatchFiniteDifferences)
{
  const int B = 3, K = 2;
  AclipImageEncoderConfig encoder_config;
  tiny_encoder_config (&encoder_config);
  AclipRegressorConfig config;
  aclip_regressor_config_init_default (&config);
  config.hidden = 6;
  config.n_outputs = K;
  ErrorHolder error;
  g_autoptr (AclipParams) params = aclip_params_new ();
  ASSERT_TRUE (aclip_image_encoder_register (&encoder_config, params, "image.", error.out ()));
  ASSERT_TRUE (aclip_regressor_register (&config,
                                         aclip_image_encoder_config_channels (&encoder_config),
                                         params, "regressor.", error.out ()))
      << error->message;
  ASSERT_TRUE (aclip_params_seal (params, ACLIP_PARAMS_TRAINING, error.out ()));
  aclip_params_init (params, 5, nullptr);
  /* Non-trivial batch normalisation (as after some training): with BN's initial zero biases
   * and running means, a pre-activation computed from all-zero ReLU outputs is exactly 0 and
   * sits on the ReLU's kink, where central differences see half a slope. */
  std::mt19937 rng (11);
  std::normal_distribution<float> normal (0.0f, 1.0f);
  for (int i = 0; i < aclip_params_n_tensors (params); i++) {
    const AclipParamInfo *info = aclip_params_info (params, i);
    if (!g_str_has_prefix (info->name, "image.") || info->n_dims != 1)
      continue;
    float *v = aclip_params_value (params, i);
    for (gint64 j = 0; j < info->n_elements; j++) {
      if (g_str_has_suffix (info->name, ".weight"))
        v[j] = 1.0f + 0.3f * normal (rng);
      else if (g_str_has_suffix (info->name, ".bias"))
        v[j] = 0.3f * normal (rng);
      else if (g_str_has_suffix (info->name, ".running_mean"))
        v[j] = 0.1f * normal (rng);
      else if (g_str_has_suffix (info->name, ".running_var"))
        v[j] = 1.0f + 0.2f * std::fabs (normal (rng));
    }
  }
  EXPECT_GE (aclip_params_lookup (params, "regressor.head.0.weight"), 0);
  EXPECT_GE (aclip_params_lookup (params, "regressor.head.2.bias"), 0);
  g_autoptr (AclipImageEncoder) encoder =
      aclip_image_encoder_new (&encoder_config, params, "image.", B, error.out ());
  ASSERT_NE (encoder, nullptr) << error->message;
  g_autoptr (AclipRegressor) regressor =
      aclip_regressor_new (&config, encoder, params, "regressor.", B, error.out ());
  ASSERT_NE (regressor, nullptr) << error->message;

  std::uniform_real_distribution<float> uniform (0.0f, 1.0f);
  int side = aclip_image_encoder_config_input_size (&encoder_config);
  std::vector<float> input ((size_t) B * 3 * side * side);
  for (auto &x : input)
    x = uniform (rng);
  std::vector<float> targets (B * K);
  for (auto &x : targets)
    x = normal (rng);
  targets[1 * K + 1] = NAN; /* galaxy 1 has no second label */

  /* BN in evaluation mode: the loss is then a fixed function of the parameters. */
  auto loss_of = [&] () {
    return (double) aclip_regressor_forward (regressor, nullptr, input.data (), targets.data (),
                                             B, FALSE);
  };
  /* The loss is the MSE of the predictions over the five finite targets. */
  std::vector<float> pred (B * K);
  std::memcpy (pred.data (),
               aclip_regressor_predict (regressor, nullptr, input.data (), B, FALSE),
               sizeof (float) * B * K);
  double expected = 0;
  for (int i = 0; i < B * K; i++)
    if (std::isfinite (targets[i]))
      expected += ((double) pred[i] - targets[i]) * ((double) pred[i] - targets[i]) / 5.0;
  EXPECT_NEAR (loss_of (), expected, 1e-6 * expected);

  aclip_params_zero_grads (params);
  loss_of ();
  aclip_regressor_backward (regressor, nullptr, 1.0f);

  const float h = 1e-3f;
  int checked = 0;
  auto check = [&] (float *x, float analytic, const std::string &what) {
    float saved = *x;
    *x = saved + h;
    double plus = loss_of ();
    *x = saved - h;
    double minus = loss_of ();
    *x = saved;
    double numeric = (plus - minus) / (2 * h);
    EXPECT_LE (std::fabs (numeric - analytic), 2e-3 + 2e-2 * std::fabs (analytic))
        << what << ": numeric " << numeric << ", analytic " << analytic;
    checked++;
  };
  for (int i = 0; i < aclip_params_n_tensors (params); i++) {
    const AclipParamInfo *info = aclip_params_info (params, i);
    if (strstr (info->name, "running_") != nullptr)
      continue; /* BN's statistics are not trained */
    bool head = g_str_has_prefix (info->name, "regressor.");
    float *v = aclip_params_value (params, i);
    const float *g = aclip_params_grad (params, i);
    /* Every element of the head; every 7th of the encoder (the stem's and the first stage's
     * weights, BN's affine parameters, ...). */
    for (gint64 j = 0; j < info->n_elements; j += head ? 1 : 7)
      check (&v[j], g[j], std::string (info->name) + "[" + std::to_string (j) + "]");
  }
  std::printf ("[measured] %d finite differences checked\n", checked);
  EXPECT_GT (checked, 200);

  /* A batch with no finite target: loss 0 and no gradient. */
  std::vector<float> none (B * K, NAN);
  aclip_params_zero_grads (params);
  EXPECT_EQ (aclip_regressor_forward (regressor, nullptr, input.data (), none.data (), B, FALSE),
             0.0f);
  aclip_regressor_backward (regressor, nullptr, 1.0f);
  const float *grads = aclip_params_grads (params);
  size_t nonzero = 0;
  for (gsize i = 0; i < aclip_params_n_floats (params); i++)
    nonzero += grads[i] != 0.0f;
  EXPECT_EQ (nonzero, 0u);
}

TEST (Regressor, ConfigRoundTripAndValidation)
{
  AclipRegressorConfig config, back;
  aclip_regressor_config_init_default (&config);
  EXPECT_EQ (config.hidden, 256);
  EXPECT_EQ (config.n_outputs, 2);
  config.hidden = 17;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  aclip_regressor_config_save (&config, key_file);
  aclip_regressor_config_init_default (&back);
  ErrorHolder error;
  ASSERT_TRUE (aclip_regressor_config_load (&back, key_file, error.out ()));
  EXPECT_EQ (back.hidden, 17);
  EXPECT_EQ (back.n_outputs, 2);
  g_key_file_set_integer (key_file, "regressor", "hidden", 0);
  EXPECT_FALSE (aclip_regressor_config_load (&back, key_file, error.out ()));
  EXPECT_EQ (back.hidden, 17); /* unchanged on error */
  g_autoptr (GKeyFile) empty = g_key_file_new ();
  EXPECT_FALSE (aclip_regressor_config_load (&back, empty, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "regressor");
}

namespace
{

std::vector<std::string>
split_lines (const std::string &text)
{
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size ()) {
    size_t end = text.find ('\n', start);
    if (end == std::string::npos)
      end = text.size ();
    lines.push_back (text.substr (start, end - start));
    start = end + 1;
  }
  return lines;
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

/* The values of metric `name`, in order. */
std::vector<double>
metric_values (const std::vector<std::string> &lines, const std::string &name)
{
  std::vector<double> values;
  for (const auto &line : events_named (lines, "metric"))
    if (line.find ("\"name\":\"" + name + "\"") != std::string::npos) {
      size_t at = line.find ("\"value\":");
      values.push_back (g_ascii_strtod (line.c_str () + at + 8, nullptr));
    }
  return values;
}

/* Every line of a JSON-progress run is an event (nothing else on stdout). */
void
expect_only_events (const std::vector<std::string> &lines)
{
  for (const auto &line : lines)
    EXPECT_EQ (line.find ("{\"event\":\""), 0u) << line;
}

/* One small catalogue for the command's tests, made once. */
class TrainSupervised : public ::testing::Test
{
protected:
  static void SetUpTestSuite ()
  {
    dir_ = new TempDir ();
    catalogue_ = dir_->path ("small.fits");
    std::string out, err;
    ASSERT_EQ (run_astroclip ({ "simulate", "--n", "400", "--image-size", "64", "--no-spectra",
                                "--seed", "5", "--quiet", "--out", catalogue_ },
                              &out, &err),
               0)
        << err;
    /* A tiny model: 32-pixel crops averaged 2×2, two stages of 16 and 32 channels. */
    config_ = dir_->path ("tiny.conf");
    const char *text = "[image_encoder]\ncrop=32\ndownsample=2\nstem_channels=8\nstem_stride=1\n"
                       "stage_channels=16;32;\nstage_blocks=1;1;\n"
                       "[regressor]\nhidden=32\n";
    ASSERT_TRUE (g_file_set_contents (config_.c_str (), text, -1, nullptr));
  }

  static void TearDownTestSuite ()
  {
    delete dir_;
    dir_ = nullptr;
  }

  static std::vector<std::string> tiny_run (const std::string &out, const std::string &steps)
  {
    /* clang-format off */
    return { "train-supervised", "--catalogue", catalogue_, "--out", out, "--config", config_,
             "--steps", steps, "--batch-size", "16", "--validate-every", "40", "--threads", "1",
             "--progress", "json", "--save-every", "0" };
    /* clang-format on */
  }

  static TempDir *dir_;
  static std::string catalogue_, config_;
};

TempDir *TrainSupervised::dir_ = nullptr;
std::string TrainSupervised::catalogue_, TrainSupervised::config_;

} // namespace

TEST_F (TrainSupervised, LearnsRedshiftOfHeldOutGalaxiesAndPredicts)
{
  std::string model = dir_->path ("learn.ckpt"), out, err;
  ASSERT_EQ (run_astroclip (tiny_run (model, "120"), &out, &err), 0) << err;
  std::vector<std::string> lines = split_lines (out);
  expect_only_events (lines);
  std::vector<double> r2_z = metric_values (lines, "val_r2_z");
  std::vector<double> r2_m = metric_values (lines, "val_r2_logmstar");
  std::vector<double> loss = metric_values (lines, "val_loss");
  ASSERT_EQ (r2_z.size (), 4u); /* steps 0, 40, 80, 120 */
  ASSERT_EQ (r2_m.size (), 4u);
  ASSERT_EQ (loss.size (), 4u);
  std::printf ("[measured] validation R² of z: %.3f, %.3f, %.3f, %.3f; of log M*: %.3f → %.3f; "
               "standardised MSE %.3f → %.3f\n",
               r2_z[0], r2_z[1], r2_z[2], r2_z[3], r2_m[0], r2_m[3], loss[0], loss[3]);
  /* Untrained, the head predicts about the mean (R² near 0); the redshift is then learnt. */
  EXPECT_LT (r2_z[0], 0.2);
  EXPECT_GT (r2_z[3], 0.5);
  EXPECT_GT (r2_z[3], r2_z[0] + 0.4);
  EXPECT_LT (loss[3], 0.7 * loss[0]);
  std::vector<std::string> done = events_named (lines, "done");
  ASSERT_EQ (done.size (), 1u);
  EXPECT_NE (done[0].find ("\"status\":\"finished\""), std::string::npos) << done[0];

  /* The checkpoint: encoder, head, and the targets' standardisation. */
  ErrorHolder error;
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (model.c_str (), error.out ());
  ASSERT_NE (checkpoint, nullptr) << error->message;
  EXPECT_EQ (aclip_checkpoint_get_step (checkpoint), 120);
  EXPECT_GE (aclip_checkpoint_lookup (checkpoint, "image.layer2.0.conv2.weight"), 0);
  EXPECT_GE (aclip_checkpoint_lookup (checkpoint, "image.bn1.running_mean"), 0);
  EXPECT_GE (aclip_checkpoint_lookup (checkpoint, "regressor.head.2.weight"), 0);
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  ASSERT_TRUE (g_key_file_load_from_data (key_file, aclip_checkpoint_get_text (checkpoint), -1,
                                          G_KEY_FILE_NONE, nullptr));
  g_autofree char *stage = g_key_file_get_string (key_file, "training", "stage", nullptr);
  EXPECT_STREQ (stage, "train-supervised");
  gsize n_mean = 0;
  g_autofree double *mean =
      g_key_file_get_double_list (key_file, "targets", "mean", &n_mean, nullptr);
  ASSERT_EQ (n_mean, 2u);

  /* The mean of the labels is that of the train split. */
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (catalogue_.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  gint64 n = aclip_catalogue_n_rows (catalogue);
  std::vector<gint64> ids (n);
  std::vector<double> z (n), logmstar (n);
  ASSERT_TRUE (aclip_catalogue_read_ids (catalogue, 0, n, ids.data (), error.out ()));
  ASSERT_TRUE (aclip_catalogue_read_column (catalogue, "Z", 0, n, z.data (), error.out ()));
  ASSERT_TRUE (
      aclip_catalogue_read_column (catalogue, "LOGMSTAR", 0, n, logmstar.data (), error.out ()));
  double sum = 0;
  int n_train = 0;
  for (gint64 r = 0; r < n; r++)
    if (aclip_split_of_id (ids[r]) == ACLIP_SPLIT_TRAIN) {
      sum += z[r];
      n_train++;
    }
  EXPECT_NEAR (mean[0], sum / n_train, 1e-12);

  /* Predictions for every galaxy, read by core's reader. */
  std::string predictions = dir_->path ("pred.fits");
  ASSERT_EQ (run_astroclip ({ "train-supervised", "--predict", "--model", model, "--catalogue",
                              catalogue_, "--out", predictions, "--threads", "1", "--progress",
                              "json" },
                            &out, &err),
             0)
      << err;
  g_autoptr (AclipPredictions) read = aclip_predictions_read (predictions.c_str (), error.out ());
  ASSERT_NE (read, nullptr) << error->message;
  ASSERT_EQ (aclip_predictions_n_rows (read), n);
  const double *z_pred = aclip_predictions_values (read, "Z");
  const double *m_pred = aclip_predictions_values (read, "LOGMSTAR");
  ASSERT_NE (z_pred, nullptr);
  ASSERT_NE (m_pred, nullptr);
  std::vector<double> truth, predicted, held_truth, held_predicted, val_truth, val_predicted;
  for (gint64 r = 0; r < n; r++) {
    EXPECT_EQ (aclip_predictions_ids (read)[r], ids[r]);
    EXPECT_TRUE (std::isfinite (z_pred[r]) && std::isfinite (m_pred[r])) << "row " << r;
    AclipSplit split = aclip_split_of_id (ids[r]);
    if (split == ACLIP_SPLIT_TEST) {
      truth.push_back (z[r]);
      predicted.push_back (z_pred[r]);
    }
    if (split == ACLIP_SPLIT_VALIDATION) {
      val_truth.push_back (z[r]);
      val_predicted.push_back (z_pred[r]);
    }
    if (split != ACLIP_SPLIT_TRAIN) {
      held_truth.push_back (z[r]);
      held_predicted.push_back (z_pred[r]);
    }
  }
  double test_r2 = aclip_r2_score (truth.data (), predicted.data (), (gint64) truth.size (),
                                   nullptr);
  double held_r2 = aclip_r2_score (held_truth.data (), held_predicted.data (),
                                   (gint64) held_truth.size (), nullptr);
  std::printf ("[measured] redshift R² of the predictions: %.3f on the %zu test galaxies, %.3f "
               "on the %zu validation and test galaxies\n",
               test_r2, truth.size (), held_r2, held_truth.size ());
  /* The predictions are those the last validation made (the same centre crops, BN in
   * evaluation mode; only the batches differ). */
  EXPECT_NEAR (aclip_r2_score (val_truth.data (), val_predicted.data (),
                               (gint64) val_truth.size (), nullptr),
               r2_z[3], 1e-5);
  EXPECT_GT (held_r2, 0.5);

  /* `astroclip eval --supervised` scores that file: its R² is the one computed here. The
   * embeddings are random (only the supervised figure is checked). */
  std::string embeddings = dir_->path ("random-emb.fits");
  {
    const int dim = 8;
    std::mt19937 rng (2);
    std::normal_distribution<float> normal (0.0f, 1.0f);
    std::vector<float> vectors ((size_t) n * dim);
    for (auto &x : vectors)
      x = normal (rng);
    AclipEmbeddingsLayout layout = { dim, TRUE, TRUE, "test-model", "small.fits" };
    g_autoptr (AclipEmbeddingsWriter) writer =
        aclip_embeddings_writer_new (embeddings.c_str (), &layout, error.out ());
    ASSERT_NE (writer, nullptr) << error->message;
    ASSERT_TRUE (aclip_embeddings_writer_append (writer, n, ids.data (), vectors.data (),
                                                 vectors.data (), error.out ()))
        << error->message;
    ASSERT_TRUE (aclip_embeddings_writer_finish (writer, error.out ())) << error->message;
  }
  std::string eval_dir = dir_->path ("eval");
  ASSERT_EQ (run_astroclip ({ "eval", "--catalogue", catalogue_, "--embeddings", embeddings,
                              "--out-dir", eval_dir, "--supervised", predictions, "--labels",
                              "Z,LOGMSTAR", "--threads", "1" },
                            &out, &err),
             0)
      << err;
  g_autofree char *json = nullptr;
  ASSERT_TRUE (g_file_get_contents ((eval_dir + "/eval.json").c_str (), &json, nullptr, nullptr));
  std::string text (json);
  /* "r2": { "Z": { …, "supervised": {"r2": X, … */
  size_t at = text.find ("\"r2\": {\n");
  ASSERT_NE (at, std::string::npos) << text;
  at = text.find ("\"Z\": {", at);
  ASSERT_NE (at, std::string::npos) << text;
  at = text.find ("\"supervised\": {\"r2\": ", at);
  ASSERT_NE (at, std::string::npos) << text;
  ASSERT_LT (at, text.find ("\"LOGMSTAR\": {", text.find ("\"r2\": {\n"))) << text;
  double eval_r2 = g_ascii_strtod (text.c_str () + at + strlen ("\"supervised\": {\"r2\": "),
                                   nullptr);
  EXPECT_NEAR (eval_r2, test_r2, 1e-6);
}

TEST_F (TrainSupervised, StopsOnSigtermAndResumesBitForBit)
{
  std::string straight = dir_->path ("straight.ckpt"), interrupted = dir_->path ("stopped.ckpt");
  std::string out, err;
  ASSERT_EQ (run_astroclip (tiny_run (straight, "40"), &out, &err), 0) << err;

  /* The same run, stopped by SIGTERM once it reports its first step: exit 0. */
  std::vector<std::string> lines;
  EXPECT_EQ (run_astroclip_and_stop (tiny_run (interrupted, "40"), &lines), 0);
  ErrorHolder error;
  expect_only_events (lines);
  std::vector<std::string> done = events_named (lines, "done");
  ASSERT_EQ (done.size (), 1u);
  EXPECT_NE (done[0].find ("\"status\":\"stopped\""), std::string::npos) << done[0];
  ASSERT_EQ (events_named (lines, "checkpoint").size (), 1u);
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
  EXPECT_LT (stopped_at, 40);

  /* A conflicting option is refused on --resume. */
  EXPECT_EQ (run_astroclip ({ "train-supervised", "--out", interrupted, "--resume", "--lr", "0.1" },
                            &out, &err),
             2);
  EXPECT_NE (err.find ("--lr"), std::string::npos) << err;

  /* Resume (the settings come from the checkpoint) and finish: the same bits. */
  ASSERT_EQ (run_astroclip ({ "train-supervised", "--out", interrupted, "--resume", "--threads",
                              "1", "--progress", "json" },
                            &out, &err),
             0)
      << err;
  lines = split_lines (out);
  expect_only_events (lines);
  bool mentions_resume = false;
  for (const auto &line : events_named (lines, "message"))
    mentions_resume |=
        line.find ("resuming at step " + std::to_string (stopped_at)) != std::string::npos;
  EXPECT_TRUE (mentions_resume) << out;
  done = events_named (lines, "done");
  ASSERT_EQ (done.size (), 1u);
  EXPECT_NE (done[0].find ("\"status\":\"finished\""), std::string::npos);

  gsize length_a = 0, length_b = 0;
  g_autofree char *bytes_a = nullptr, *bytes_b = nullptr;
  ASSERT_TRUE (g_file_get_contents (straight.c_str (), &bytes_a, &length_a, nullptr));
  ASSERT_TRUE (g_file_get_contents (interrupted.c_str (), &bytes_b, &length_b, nullptr));
  /* Tensors, AdamW moments, step and text: the whole files are the same. */
  EXPECT_EQ (length_a, length_b);
  EXPECT_EQ (aclip_checkpoint_hash (bytes_a, length_a), aclip_checkpoint_hash (bytes_b, length_b));
}

TEST_F (TrainSupervised, RefusesBadUsage)
{
  std::string out, err, model = dir_->path ("x.ckpt");
  EXPECT_EQ (run_astroclip ({ "train-supervised", "--out", model }, &out, &err), 2);
  EXPECT_NE (err.find ("--catalogue"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "train-supervised", "--catalogue", catalogue_, "--out", model,
                              "--steps", "3", "--epochs", "2" },
                            &out, &err),
             2);
  EXPECT_EQ (run_astroclip ({ "train-supervised", "--predict", "--catalogue", catalogue_, "--out",
                              dir_->path ("p.fits") },
                            &out, &err),
             2);
  EXPECT_NE (err.find ("--model"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "train-supervised", "--catalogue", dir_->path ("missing.fits"),
                              "--out", model },
                            &out, &err),
             1);
  EXPECT_FALSE (g_file_test (model.c_str (), G_FILE_TEST_EXISTS));
  /* --predict with a checkpoint of another command. */
  std::string other = dir_->path ("other.ckpt");
  ASSERT_EQ (run_astroclip ({ "pretrain-images", "--catalogue", catalogue_, "--out", other,
                              "--config", config_, "--steps", "1", "--batch-size", "4",
                              "--validate-every", "0", "--max-validation", "2", "--threads", "1",
                              "--progress", "none" },
                            &out, &err),
             0)
      << err;
  EXPECT_EQ (run_astroclip ({ "train-supervised", "--predict", "--model", other, "--catalogue",
                              catalogue_, "--out", dir_->path ("p.fits") },
                            &out, &err),
             1);
  EXPECT_NE (err.find ("pretrain-images"), std::string::npos) << err;
  EXPECT_FALSE (g_file_test (dir_->path ("p.fits").c_str (), G_FILE_TEST_EXISTS));
}
