/* test-align.cc — the alignment heads, the AstroCLIP model and the align / embed commands.
 *
 * - the head's backward against central finite differences of its forward, on a tiny
 *   configuration, for every parameter and every token (key mask included);
 * - a tiny end-to-end pipeline through the program: simulate, pretrain-spectra,
 *   pretrain-images, align (heads-only and all), embed, search, and the embeddings file;
 * - align stopped by SIGTERM (exit 0, a checkpoint), then --resume to the end.
 */
#include "test-support.h"

#include "aclip-checkpoint.h"
#include "aclip-embeddings.h"
#include "aclip-head.h"
#include "aclip-model.h"
#include "aclip-params.h"

#include <gio/gio.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace
{

/* loss = Σ w ⊙ head (tokens), in double. */
double
head_loss (AclipHead *head, const std::vector<float> &tokens, const std::vector<guint8> &mask,
           const std::vector<float> &w, int batch)
{
  const float *out = aclip_head_forward (head, nullptr, tokens.data (), mask.data (), batch);
  double loss = 0;
  for (size_t i = 0; i < w.size (); i++)
    loss += (double) w[i] * out[i];
  return loss;
}

} // namespace

/* Tolerance: float32 central differences with step 1e-2 on O(1) values; we require
 * |numeric − analytic| ≤ 2e-3 + 2e-2·|analytic| for every element. */
TEST (Head, BackwardMatchesFiniteDifferences)
{
  const int C = 8, T = 5, B = 3;
  AclipHeadConfig config;
  aclip_head_config_init_default (&config);
  config.dim = 6;
  config.n_heads = 2;
  config.mlp_ratio = 2;
  ErrorHolder error;
  g_autoptr (AclipParams) params = aclip_params_new ();
  ASSERT_TRUE (aclip_head_register (&config, C, params, "h.", error.out ())) << error->message;
  ASSERT_TRUE (aclip_params_seal (params, ACLIP_PARAMS_TRAINING, error.out ()));
  aclip_params_init (params, 7, nullptr);
  /* Non-trivial LayerNorm affine and biases, so that every gradient is exercised. */
  std::mt19937 rng (3);
  std::normal_distribution<float> normal (0.0f, 1.0f);
  for (const char *name : { "h.norm.weight", "h.norm.bias", "h.attn.in_proj_bias",
                            "h.attn.out_proj.bias" }) {
    int index = aclip_params_lookup (params, name);
    float *v = aclip_params_value (params, index);
    for (gint64 i = 0; i < aclip_params_info (params, index)->n_elements; i++)
      v[i] = (strstr (name, "weight") ? 1.0f : 0.0f) + 0.3f * normal (rng);
  }
  g_autoptr (AclipHead) head = aclip_head_new (&config, C, T, params, "h.", B, TRUE, error.out ());
  ASSERT_NE (head, nullptr) << error->message;

  std::vector<float> tokens (B * T * C), w (B * config.dim);
  for (auto &x : tokens)
    x = normal (rng);
  for (auto &x : w)
    x = normal (rng);
  std::vector<guint8> mask (B * T, 0);
  mask[1] = 1;         /* sequence 0, token 1 */
  mask[T + T - 1] = 1; /* sequence 1, its last token */

  aclip_params_zero_grads (params);
  std::vector<float> d_tokens (tokens.size (), 0.0f);
  head_loss (head, tokens, mask, w, B);
  aclip_head_backward (head, nullptr, w.data (), d_tokens.data ());

  const float h = 1e-2f;
  int checked = 0;
  auto check = [&] (float *x, float analytic, const std::string &what) {
    float saved = *x;
    *x = saved + h;
    double plus = head_loss (head, tokens, mask, w, B);
    *x = saved - h;
    double minus = head_loss (head, tokens, mask, w, B);
    *x = saved;
    double numeric = (plus - minus) / (2 * h);
    EXPECT_LE (std::fabs (numeric - analytic), 2e-3 + 2e-2 * std::fabs (analytic))
        << what << ": numeric " << numeric << ", analytic " << analytic;
    checked++;
  };
  for (int i = 0; i < aclip_params_n_tensors (params); i++) {
    const AclipParamInfo *info = aclip_params_info (params, i);
    float *v = aclip_params_value (params, i);
    const float *g = aclip_params_grad (params, i);
    for (gint64 j = 0; j < info->n_elements; j++)
      check (&v[j], g[j], std::string (info->name) + "[" + std::to_string (j) + "]");
  }
  for (size_t j = 0; j < tokens.size (); j++) {
    check (&tokens[j], d_tokens[j], "tokens[" + std::to_string (j) + "]");
    if (mask[(j / C)] != 0) {
      EXPECT_EQ (d_tokens[j], 0.0f) << "a masked token got a gradient";
    }
  }
  std::printf ("[measured] %d finite differences checked\n", checked);

  /* Outputs are unit vectors. */
  const float *out = aclip_head_forward (head, nullptr, tokens.data (), mask.data (), B);
  for (int b = 0; b < B; b++) {
    double n2 = 0;
    for (int k = 0; k < config.dim; k++)
      n2 += (double) out[b * config.dim + k] * out[b * config.dim + k];
    EXPECT_NEAR (std::sqrt (n2), 1.0, 1e-5);
  }
}

TEST (Head, ConfigRoundTrip)
{
  AclipHeadConfig a, b;
  aclip_head_config_init_default (&a);
  a.dim = 64;
  a.n_heads = 8;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  aclip_head_config_save (&a, key_file);
  aclip_head_config_init_default (&b);
  ErrorHolder error;
  ASSERT_TRUE (aclip_head_config_load (&b, key_file, error.out ()));
  EXPECT_EQ (b.dim, 64);
  EXPECT_EQ (b.n_heads, 8);
  EXPECT_FALSE (aclip_head_config_validate (&b, 12, error.out ()));
}

namespace
{

void
run_ok (const std::vector<std::string> &arguments, std::string *out = nullptr)
{
  std::string o, e;
  int status = run_astroclip (arguments, &o, &e);
  ASSERT_EQ (status, 0) << arguments[0] << ": " << e << o;
  if (out)
    *out = o;
}

std::vector<std::string>
align_arguments (const TempDir &dir, const std::string &out, int steps)
{
  return { "align", "--catalogue", dir.path ("S.fits"), "--spectrum-model",
           dir.path ("spec.ckpt"), "--image-model", dir.path ("img.ckpt"), "--out", out,
           "--steps", std::to_string (steps), "--batch-size", "16", "--lr", "1e-3",
           "--validate-every", "0", "--max-validation", "32", "--threads", "2" };
}

} // namespace

TEST (Align, TinyPipeline)
{
  TempDir dir;
  std::string out;
  run_ok ({ "simulate", "--n", "300", "--image-size", "48", "--out", dir.path ("S.fits") });
  run_ok ({ "pretrain-spectra", "--catalogue", dir.path ("S.fits"), "--out",
            dir.path ("spec.ckpt"), "--width", "32", "--layers", "1", "--heads", "2",
            "--mlp-hidden", "64", "--window", "80", "--stride", "80", "--steps", "3",
            "--batch-size", "8", "--validate-every", "0", "--max-validation", "16", "--threads",
            "2", "--progress", "none" });
  {
    std::string config = dir.path ("img.ini");
    ASSERT_TRUE (g_file_set_contents (config.c_str (),
                                      "[image_encoder]\ncrop=32\ndownsample=2\nstem_channels=8\n"
                                      "stem_stride=1\nstage_channels=16;32\nstage_blocks=1;1\n",
                                      -1, nullptr));
    run_ok ({ "pretrain-images", "--catalogue", dir.path ("S.fits"), "--out",
              dir.path ("img.ckpt"), "--config", config, "--steps", "3", "--batch-size", "8",
              "--validate-every", "0", "--max-validation", "16", "--threads", "2", "--progress",
              "none" });
  }

  /* Heads only, then everything for a few steps, then the default (last layers). */
  std::vector<std::string> args = align_arguments (dir, dir.path ("model.ckpt"), 40);
  args.insert (args.end (), { "--finetune", "heads-only", "--progress", "json" });
  run_ok (args, &out);
  EXPECT_NE (out.find ("\"name\":\"val_top1\""), std::string::npos) << out;
  EXPECT_NE (out.find ("\"status\":\"finished\""), std::string::npos) << out;
  std::vector<std::string> all = align_arguments (dir, dir.path ("model-all.ckpt"), 4);
  all.insert (all.end (), { "--finetune", "all", "--learn-logit-scale", "--progress", "none" });
  run_ok (all);
  std::vector<std::string> default_finetune =
      align_arguments (dir, dir.path ("model-default.ckpt"), 4);
  default_finetune.insert (default_finetune.end (), { "--progress", "none" });
  run_ok (default_finetune);

  /* --spectrum-views: the spectrum–spectrum InfoNCE is reported, and trained: with weight 0.5
   * it ends lower than with a negligible weight (the same batches and views otherwise); the
   * weight is kept in the checkpoint's settings for --resume. */
  auto view_losses = [&] (const char *weight, const std::string &out_path,
                          const std::vector<std::string> &options = {}, size_t n_reported = 6) {
    std::vector<std::string> views = align_arguments (dir, out_path, 30);
    views.insert (views.end (), { "--spectrum-views", weight, "--validate-every", "5",
                                  "--progress", "json" });
    views.insert (views.end (), options.begin (), options.end ());
    std::string views_out;
    run_ok (views, &views_out);
    std::vector<double> losses;
    const std::string key = "\"name\":\"train_view_loss\",\"value\":";
    for (size_t at = views_out.find (key); at != std::string::npos;
         at = views_out.find (key, at + 1))
      losses.push_back (std::strtod (views_out.c_str () + at + key.size (), nullptr));
    EXPECT_EQ (losses.size (), n_reported) << views_out;
    for (double loss : losses)
      EXPECT_TRUE (std::isfinite (loss));
    return losses;
  };
  /* A view loss trains when at step 30 it is well below that of a run whose views weigh 1e-9
   * (the same batches and views otherwise). Returns the untrained run's last loss. */
  auto trains = [&] (const char *what, int candidates, const std::string &name,
                     const std::vector<std::string> &options) -> double {
    std::vector<double> trained = view_losses ("0.5", dir.path (name + ".ckpt"), options);
    std::vector<double> untrained = view_losses ("1e-9", dir.path (name + "-0.ckpt"), options);
    EXPECT_FALSE (trained.empty () || untrained.empty ()) << what;
    if (trained.empty () || untrained.empty ())
      return NAN;
    std::printf ("[measured] %s, InfoNCE over %d (chance %.3f) at step 30: %.3f with weight 0.5, "
                 "%.3f with 1e-9\n",
                 what, candidates, std::log ((double) candidates), trained.back (),
                 untrained.back ());
    EXPECT_LT (trained.back (), 0.85 * untrained.back ()) << what;
    return untrained.back ();
  };
  double untrained =
      trains ("views of the whole batch", 16, "model-views", { "--spectrum-view-epochs", "0" });
  /* --spectrum-view-count 8: half of each batch of 16 gets a second view. */
  double half_untrained = trains ("--spectrum-view-count 8", 8, "model-views-half",
                                  { "--spectrum-view-epochs", "0", "--spectrum-view-count", "8" });
  EXPECT_LT (half_untrained, untrained) << "fewer candidates, an easier loss";
  /* --spectrum-view-head: the views are compared through a head of their own. */
  trains ("--spectrum-view-head", 16, "model-view-head",
          { "--spectrum-view-epochs", "0", "--spectrum-view-head" });

  /* By default the views stop for the last epoch: 240 training galaxies make 15 batches of 16
   * an epoch, so of the validations at steps 5, 10, …, 30 only the first 3 follow a step with
   * views. */
  view_losses ("0.5", dir.path ("model-views-epoch.ckpt"), {}, 3);

  ErrorHolder error;
  /* The settings that --resume reads back: the weight, and how many galaxies had a view. */
  auto view_settings = [&] (const char *name, double weight, int view_count, int view_epochs = 0,
                            gboolean view_head = FALSE) {
    g_autoptr (AclipCheckpoint) model =
        aclip_checkpoint_open (dir.path (name).c_str (), error.out ());
    ASSERT_NE (model, nullptr) << error->message;
    g_autoptr (GKeyFile) text = g_key_file_new ();
    ASSERT_TRUE (g_key_file_load_from_data (text, aclip_checkpoint_get_text (model), -1,
                                            G_KEY_FILE_NONE, nullptr));
    EXPECT_EQ (g_key_file_get_double (text, "training", "spectrum_views", nullptr), weight);
    EXPECT_EQ (g_key_file_get_integer (text, "training", "spectrum_view_count", nullptr),
               view_count)
        << name;
    EXPECT_EQ (g_key_file_get_integer (text, "training", "spectrum_view_epochs", nullptr),
               view_epochs)
        << name;
    EXPECT_EQ (g_key_file_get_boolean (text, "training", "spectrum_view_head", nullptr), view_head)
        << name;
    /* The model's own configuration says whether it has the view head, and its tensors. */
    EXPECT_EQ (g_key_file_get_boolean (text, "heads", "spectrum_view_head", nullptr), view_head)
        << name;
    EXPECT_EQ (aclip_checkpoint_lookup (model, "spectrum_view_head.query") >= 0, view_head) << name;
  };
  view_settings ("model-views.ckpt", 0.5, 16);
  view_settings ("model-views-half.ckpt", 0.5, 8);
  view_settings ("model-view-head.ckpt", 0.5, 16, 0, TRUE);
  view_settings ("model-views-epoch.ckpt", 0.5, 16, 1);
  /* The defaults: weight 1, all but the last epoch (of 4 steps, one epoch: every one). */
  view_settings ("model-default.ckpt", 1.0, 16, 0);
  std::vector<std::string> too_many = align_arguments (dir, dir.path ("model-bad.ckpt"), 2);
  too_many.insert (too_many.end (), { "--spectrum-views", "1", "--spectrum-view-count", "17" });
  std::vector<std::string> no_weight = align_arguments (dir, dir.path ("model-bad.ckpt"), 2);
  no_weight.insert (no_weight.end (), { "--spectrum-views", "0", "--spectrum-view-count", "8" });
  std::vector<std::string> head_alone = align_arguments (dir, dir.path ("model-bad.ckpt"), 2);
  head_alone.insert (head_alone.end (), { "--spectrum-views", "0", "--spectrum-view-head" });
  std::vector<std::string> epochs_alone = align_arguments (dir, dir.path ("model-bad.ckpt"), 2);
  epochs_alone.insert (epochs_alone.end (),
                       { "--spectrum-views", "0", "--spectrum-view-epochs", "1" });
  for (const auto &[arguments, message] :
       { std::pair (too_many, "must not exceed the batch size"),
         std::pair (no_weight, "do nothing with --spectrum-views 0"),
         std::pair (head_alone, "do nothing with --spectrum-views 0"),
         std::pair (epochs_alone, "do nothing with --spectrum-views 0") }) {
    std::string o, e;
    EXPECT_EQ (run_astroclip (arguments, &o, &e), 2) << e;
    EXPECT_NE (e.find (message), std::string::npos) << e;
  }
  /* --resume reads the setting back (a finished run only says so). */
  run_ok ({ "align", "--out", dir.path ("model-views.ckpt"), "--resume", "--progress", "json" },
          &out);
  EXPECT_NE (out.find ("already reached its last step"), std::string::npos) << out;
  /* A model with a view head resumes, and embeds (the view head unread). */
  run_ok ({ "align", "--out", dir.path ("model-view-head.ckpt"), "--resume", "--progress", "json" },
          &out);
  EXPECT_NE (out.find ("already reached its last step"), std::string::npos) << out;
  run_ok ({ "embed", "--catalogue", dir.path ("S.fits"), "--model",
            dir.path ("model-view-head.ckpt"), "--out", dir.path ("emb-view-head.fits"),
            "--progress", "none" });
  {
    /* The frozen encoders are the pretrained ones, bit for bit; the aligned checkpoint has
     * every tensor. */
    g_autoptr (AclipCheckpoint) model = aclip_checkpoint_open (dir.path ("model.ckpt").c_str (),
                                                               error.out ());
    ASSERT_NE (model, nullptr) << error->message;
    g_autoptr (AclipCheckpoint) spec = aclip_checkpoint_open (dir.path ("spec.ckpt").c_str (),
                                                              error.out ());
    ASSERT_NE (spec, nullptr);
    /* Whether tensor `name` of `a` is bit for bit the pretrained one. */
    auto pretrained = [&] (AclipCheckpoint *a, const char *name) {
      int i = aclip_checkpoint_lookup (a, name), j = aclip_checkpoint_lookup (spec, name);
      EXPECT_GE (i, 0) << name;
      EXPECT_GE (j, 0) << name;
      if (i < 0 || j < 0)
        return false;
      int n_dims = 0;
      const gint64 *shape = aclip_checkpoint_tensor_shape (a, i, &n_dims);
      gint64 n = 1;
      for (int k = 0; k < n_dims; k++)
        n *= shape[k];
      return memcmp (aclip_checkpoint_tensor_values (a, i),
                     aclip_checkpoint_tensor_values (spec, j), sizeof (float) * n)
             == 0;
    };
    for (const char *name : { "spectrum.blocks.0.linear1.weight", "spectrum.embed.weight" })
      EXPECT_TRUE (pretrained (model, name)) << name << " changed with --finetune heads-only";
    for (const char *name : { "image_head.query", "spectrum_head.mlp.2.weight", "logit_scale",
                              "image.conv1.weight" })
      EXPECT_GE (aclip_checkpoint_lookup (model, name), 0) << name;

    /* By default the last transformer block (the only one here) trains and the window
     * embedding stays as pretrained. */
    g_autoptr (AclipCheckpoint) tuned = aclip_checkpoint_open (
        dir.path ("model-default.ckpt").c_str (), error.out ());
    ASSERT_NE (tuned, nullptr) << error->message;
    EXPECT_FALSE (pretrained (tuned, "spectrum.blocks.0.linear1.weight"))
        << "the last block did not train with the default --finetune";
    EXPECT_TRUE (pretrained (tuned, "spectrum.embed.weight"))
        << "the window embedding trained with the default --finetune";
  }

  run_ok ({ "embed", "--catalogue", dir.path ("S.fits"), "--model", dir.path ("model.ckpt"),
            "--out", dir.path ("emb.fits"), "--threads", "2", "--progress", "none" });
  g_autoptr (AclipEmbeddings) embeddings =
      aclip_embeddings_open (dir.path ("emb.fits").c_str (), error.out ());
  ASSERT_NE (embeddings, nullptr) << error->message;
  EXPECT_EQ (aclip_embeddings_n_rows (embeddings), 300);
  EXPECT_EQ (aclip_embeddings_dim (embeddings), 128);
  EXPECT_STREQ (aclip_embeddings_catalogue (embeddings), "S.fits");
  EXPECT_EQ (strlen (aclip_embeddings_model (embeddings)), 16u);
  for (AclipModality m : { ACLIP_MODALITY_IMAGE, ACLIP_MODALITY_SPECTRUM }) {
    ASSERT_TRUE (aclip_embeddings_has_modality (embeddings, m));
    EXPECT_EQ (aclip_embeddings_n_present (embeddings, m), 300);
    for (gint64 r = 0; r < 300; r += 37) {
      const float *row = aclip_embeddings_row (embeddings, m, r);
      ASSERT_NE (row, nullptr);
      double n2 = 0;
      for (int k = 0; k < 128; k++)
        n2 += (double) row[k] * row[k];
      EXPECT_NEAR (std::sqrt (n2), 1.0, 1e-4);
    }
  }
  /* The same model embeds the same way in memory. */
  {
    g_autoptr (AclipModel) model =
        aclip_model_load (dir.path ("model.ckpt").c_str (), 4, error.out ());
    ASSERT_NE (model, nullptr) << error->message;
    EXPECT_NEAR (aclip_model_logit_scale (model), 15.5, 1e-4);
  }

  std::string found;
  run_ok ({ "search", "--embeddings", dir.path ("emb.fits"), "--catalogue", dir.path ("S.fits"),
            "--row", "0", "--mode", "image-spectrum", "-k", "3", "--format", "csv" },
          &found);
  EXPECT_FALSE (found.empty ());

  /* export-model drops the AdamW state and nothing else: a smaller file without training
   * state whose embeddings are the same bit for bit. */
  run_ok ({ "export-model", "--model", dir.path ("model.ckpt"), "--out",
            dir.path ("shipped.ckpt") });
  {
    g_autoptr (AclipCheckpoint) full =
        aclip_checkpoint_open (dir.path ("model.ckpt").c_str (), error.out ());
    ASSERT_NE (full, nullptr) << error->message;
    g_autoptr (AclipCheckpoint) shipped =
        aclip_checkpoint_open (dir.path ("shipped.ckpt").c_str (), error.out ());
    ASSERT_NE (shipped, nullptr) << error->message;
    EXPECT_TRUE (aclip_checkpoint_has_training_state (full));
    EXPECT_FALSE (aclip_checkpoint_has_training_state (shipped));
    EXPECT_EQ (aclip_checkpoint_n_tensors (shipped), aclip_checkpoint_n_tensors (full));
    EXPECT_STREQ (aclip_checkpoint_get_text (shipped), aclip_checkpoint_get_text (full));
  }
  run_ok ({ "embed", "--catalogue", dir.path ("S.fits"), "--model", dir.path ("shipped.ckpt"),
            "--out", dir.path ("emb-shipped.fits"), "--threads", "2", "--progress", "none" });
  g_autoptr (AclipEmbeddings) shipped_embeddings =
      aclip_embeddings_open (dir.path ("emb-shipped.fits").c_str (), error.out ());
  ASSERT_NE (shipped_embeddings, nullptr) << error->message;
  for (AclipModality m : { ACLIP_MODALITY_IMAGE, ACLIP_MODALITY_SPECTRUM })
    EXPECT_EQ (memcmp (aclip_embeddings_vectors (embeddings, m),
                       aclip_embeddings_vectors (shipped_embeddings, m),
                       sizeof (float) * 300 * 128),
               0)
        << aclip_modality_name (m);
}

TEST (Align, StopAndResume)
{
  TempDir dir;
  run_ok ({ "simulate", "--n", "120", "--image-size", "48", "--seed", "5", "--out",
            dir.path ("S.fits") });
  run_ok ({ "pretrain-spectra", "--catalogue", dir.path ("S.fits"), "--out",
            dir.path ("spec.ckpt"), "--width", "16", "--layers", "1", "--heads", "2",
            "--mlp-hidden", "32", "--window", "160", "--stride", "160", "--steps", "1",
            "--batch-size", "4", "--validate-every", "0", "--max-validation", "4", "--progress",
            "none" });
  std::string config = dir.path ("img.ini");
  ASSERT_TRUE (g_file_set_contents (config.c_str (),
                                    "[image_encoder]\ncrop=16\ndownsample=2\nstem_channels=8\n"
                                    "stem_stride=1\nstage_channels=16\nstage_blocks=1\n",
                                    -1, nullptr));
  run_ok ({ "pretrain-images", "--catalogue", dir.path ("S.fits"), "--out", dir.path ("img.ckpt"),
            "--config", config, "--steps", "1", "--batch-size", "4", "--validate-every", "0",
            "--max-validation", "4", "--progress", "none" });

  const int total = 400;
  std::string target = dir.path ("model.ckpt");
  std::vector<std::string> arguments = align_arguments (dir, target, total);
  arguments.insert (arguments.end (), { "--progress", "json", "--save-every", "0" });
  std::vector<const char *> argv = { g_getenv ("ASTROCLIP") };
  for (const auto &argument : arguments)
    argv.push_back (argument.c_str ());
  argv.push_back (nullptr);
  ErrorHolder error;
  g_autoptr (GSubprocess) process = g_subprocess_newv (
      argv.data (),
      (GSubprocessFlags) (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE),
      error.out ());
  ASSERT_NE (process, nullptr) << error->message;
  g_autoptr (GDataInputStream) stream =
      g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  bool signalled = false;
  std::string all;
  while (true) {
    gsize length = 0;
    g_autofree char *line =
        g_data_input_stream_read_line_utf8 (stream, &length, nullptr, error.out ());
    if (line == nullptr)
      break;
    all += line;
    all += "\n";
    if (!signalled && g_str_has_prefix (line, "{\"event\":\"step\"")) {
      g_subprocess_send_signal (process, SIGTERM);
      signalled = true;
    }
  }
  ASSERT_TRUE (g_subprocess_wait (process, nullptr, error.out ()));
  ASSERT_TRUE (signalled);
  EXPECT_TRUE (g_subprocess_get_if_exited (process));
  EXPECT_EQ (g_subprocess_get_exit_status (process), 0);
  EXPECT_NE (all.find ("\"status\":\"stopped\""), std::string::npos) << all;
  gint64 stopped_at = 0;
  {
    g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (target.c_str (), error.out ());
    ASSERT_NE (checkpoint, nullptr) << error->message;
    stopped_at = aclip_checkpoint_get_step (checkpoint);
  }
  std::printf ("[measured] SIGTERM after the first step event: stopped at step %" G_GINT64_FORMAT
               " of %d\n",
               stopped_at, total);
  EXPECT_GE (stopped_at, 1);
  EXPECT_LT (stopped_at, total);

  std::string out;
  run_ok ({ "align", "--out", target, "--resume", "--threads", "2", "--progress", "json" }, &out);
  EXPECT_NE (out.find ("resuming"), std::string::npos) << out;
  EXPECT_NE (out.find ("\"status\":\"finished\""), std::string::npos) << out;
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (target.c_str (), error.out ());
  ASSERT_NE (checkpoint, nullptr) << error->message;
  EXPECT_EQ (aclip_checkpoint_get_step (checkpoint), total);
}
