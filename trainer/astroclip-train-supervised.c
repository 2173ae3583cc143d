/* astroclip train-supervised — the supervised baseline of the evaluation: the image encoder
 * (core/aclip-image-encoder.h) trained directly on redshift and log M*, with a regression head
 * (core/aclip-image-pretrain.h: global average pooling, Linear, ReLU, Linear), and its
 * predictions for `astroclip eval --supervised` (docs/trainer.md).
 *
 * Training takes B galaxies of the train split a step, makes one augmented view of each (from a
 * generator seeded by (seed, step, position in the batch)), and minimises the mean squared
 * error of the standardised labels — Z and LOGMSTAR less the train split's mean, over its
 * standard deviation, both kept in the checkpoint — with AdamW under a warm-up + cosine
 * schedule; BN in training mode. Before the first step, every --validate-every steps and at
 * the end, the validation galaxies' centre crops are predicted with BN in evaluation mode and
 * the R² of each label reported. Checkpoints, --resume and signals are those of every training
 * command (astroclip_train_run).
 *
 * With --predict the command instead reads a checkpoint (--model) and writes a predictions
 * file (core/aclip-eval.h: HDU PREDICTIONS, ID, Z_PRED, LOGMSTAR_PRED) for every galaxy of a
 * catalogue, from the centre crop as in validation.
 *
 * The checkpoint's tensors are the encoder ("image.", loadable by aclip_image_encoder_restore)
 * and the head ("regressor."); its text holds [image_encoder], [regressor], [augment],
 * [targets] (labels, mean, std) and [training].
 */
#include "astroclip-commands.h"
#include "astroclip-train.h"

#include "aclip-augment.h"
#include "aclip-catalogue.h"
#include "aclip-checkpoint.h"
#include "aclip-error.h"
#include "aclip-eval.h"
#include "aclip-image-encoder.h"
#include "aclip-image-pretrain.h"
#include "aclip-optim.h"
#include "aclip-render.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define STAGE          "train-supervised"
#define ENCODER_PREFIX "image."
#define HEAD_PREFIX    "regressor."
#define TRAINING_GROUP "training"
#define TARGETS_GROUP  "targets"

/* Defaults (docs/trainer.md explains the choice). */
#define DEFAULT_EPOCHS         12
#define DEFAULT_BATCH_SIZE     64
#define DEFAULT_LR             2e-3
#define DEFAULT_WEIGHT_DECAY   0.05
#define DEFAULT_VALIDATE_EVERY 250
#define DEFAULT_MAX_VALIDATION 2048
#define WARMUP_FRACTION        0.05 /* of the steps, at most MAX_WARMUP */
#define MAX_WARMUP             300
#define FINAL_LR_FRACTION      0.01 /* the cosine ends at 1% of the peak */
#define GRAD_CLIP              5.0

/* The labels regressed, as the catalogue and the predictions file name them. */
enum
{
  LABEL_Z,
  LABEL_LOGMSTAR,
  N_LABELS
};
static const char *const label_names[N_LABELS] = { "Z", "LOGMSTAR" };
static const char *const metric_names[N_LABELS] = { "val_r2_z", "val_r2_logmstar" };

typedef struct
{
  AstroclipRunCommandLine run;
  char *config;
  gboolean predict;
  char *model; /* --predict: the checkpoint to read */
} CommandLine;

typedef struct
{
  AstroclipTrainOptions options;
  CommandLine cli;
  AstroclipRunSettings settings;
  AclipImageEncoderConfig encoder_config;
  AclipRegressorConfig head_config;
  AclipAugmentConfig augment_config; /* training views */
  AclipAugmentConfig centre_config;  /* validation and predictions: the centre crop */
  AclipRgbParams rgb;
  double mean[N_LABELS], std[N_LABELS]; /* of the train split's labels */
  char *out;                            /* the checkpoint, absolute */

  AclipThreadPool *pool;
  AstroclipProgress *progress;
  AstroclipStopWatch *stop;
  AstroclipLoader *train, *validation; /* validation NULL when the split is empty */
  int height, width;                   /* the catalogue's images */
  AclipParams *params;
  AclipImageEncoder *encoder;
  AclipRegressor *regressor;

  float *input;             /* [B, 3, S, S] */
  AclipAugmentParams *views; /* [B] */
  float *augment_workspace; /* for either configuration */
  float *targets;           /* [B, N_LABELS], standardised */
  double *val_truth;        /* [N_LABELS, N_val] */
  double *val_predicted;    /* [N_LABELS, N_val] */
  gint64 n_validation;

  int epoch;
  double last_loss, val_loss, val_r2[N_LABELS];
  AclipAdamWConfig adamw;
} Run;

static void
run_clear (Run *run)
{
  g_clear_pointer (&run->regressor, aclip_regressor_free);
  g_clear_pointer (&run->encoder, aclip_image_encoder_free);
  g_clear_pointer (&run->params, aclip_params_free);
  g_clear_pointer (&run->train, astroclip_loader_free);
  g_clear_pointer (&run->validation, astroclip_loader_free);
  g_clear_pointer (&run->stop, astroclip_stop_watch_free);
  g_clear_pointer (&run->progress, astroclip_progress_free);
  g_clear_pointer (&run->pool, aclip_thread_pool_free);
  g_clear_pointer (&run->input, g_free);
  g_clear_pointer (&run->views, g_free);
  g_clear_pointer (&run->augment_workspace, g_free);
  g_clear_pointer (&run->targets, g_free);
  g_clear_pointer (&run->val_truth, g_free);
  g_clear_pointer (&run->val_predicted, g_free);
  astroclip_run_settings_clear (&run->settings);
  g_clear_pointer (&run->out, g_free);
  astroclip_run_command_line_clear (&run->cli.run);
  g_clear_pointer (&run->cli.config, g_free);
  g_clear_pointer (&run->cli.model, g_free);
  astroclip_train_options_clear (&run->options);
}

/* ---- Model configuration ------------------------------------------------------------------- */

/* The default: the image encoder of pretrain-images, a head of 256 hidden units, and the
 * augmentations that keep the labels' cues — flips, any rotation, the ±7-pixel jitter, PSF blur
 * and noise at survey depth — without Galactic reddening (it changes the colours the redshift
 * is read from) or size scaling (apparent size depends on redshift and mass). */
static void
model_init_default (Run *run)
{
  aclip_image_encoder_config_init_default (&run->encoder_config);
  aclip_regressor_config_init_default (&run->head_config);
  run->head_config.n_outputs = N_LABELS;
  aclip_augment_config_init_default (&run->augment_config, run->encoder_config.crop,
                                     run->encoder_config.downsample);
  run->augment_config.max_ebv = 0.0f;
  run->augment_config.min_scale = 1.0f;
  run->augment_config.max_scale = 1.0f;
}

/* Reads the model sections of a key file (a --config file, or a checkpoint's text) over the
 * run's configuration; the augmentations' crop always follows the encoder's. */
static gboolean
model_load (Run *run, GKeyFile *key_file, gboolean required, GError **error)
{
  if ((required || g_key_file_has_group (key_file, "image_encoder")) &&
      !aclip_image_encoder_config_load (&run->encoder_config, key_file, error))
    return FALSE;
  if ((required || g_key_file_has_group (key_file, "regressor")) &&
      !aclip_regressor_config_load (&run->head_config, key_file, error))
    return FALSE;
  if (run->head_config.n_outputs != N_LABELS) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("[regressor] outputs must be %d (redshift and log M*)"), N_LABELS);
    return FALSE;
  }
  if (!aclip_augment_config_load (&run->augment_config, key_file, error))
    return FALSE;
  run->augment_config.crop = run->encoder_config.crop;
  run->augment_config.downsample = run->encoder_config.downsample;
  return aclip_augment_config_validate (&run->augment_config, error);
}

/* The configuration of a new run: the defaults, then --config. */
static gboolean
model_from_command_line (Run *run, GError **error)
{
  model_init_default (run);
  if (run->cli.config == NULL)
    return TRUE;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  if (!g_key_file_load_from_file (key_file, run->cli.config, G_KEY_FILE_NONE, error) ||
      !model_load (run, key_file, FALSE, error)) {
    g_prefix_error (error, "%s: ", run->cli.config);
    return FALSE;
  }
  return TRUE;
}

/* [targets]: what the head's outputs mean. */
static void
targets_save (const Run *run, GKeyFile *key_file)
{
  g_key_file_set_string_list (key_file, TARGETS_GROUP, "labels", label_names, N_LABELS);
  g_key_file_set_double_list (key_file, TARGETS_GROUP, "mean", (double *) run->mean, N_LABELS);
  g_key_file_set_double_list (key_file, TARGETS_GROUP, "std", (double *) run->std, N_LABELS);
}

static gboolean
targets_load (Run *run, GKeyFile *key_file, GError **error)
{
  gsize n_labels = 0, n_mean = 0, n_std = 0;
  g_auto (GStrv) labels =
      g_key_file_get_string_list (key_file, TARGETS_GROUP, "labels", &n_labels, NULL);
  g_autofree double *mean =
      g_key_file_get_double_list (key_file, TARGETS_GROUP, "mean", &n_mean, NULL);
  g_autofree double *std = g_key_file_get_double_list (key_file, TARGETS_GROUP, "std", &n_std, NULL);
  gboolean ok = labels != NULL && mean != NULL && std != NULL && n_labels == N_LABELS &&
                n_mean == N_LABELS && n_std == N_LABELS;
  for (int l = 0; ok && l < N_LABELS; l++)
    ok = strcmp (labels[l], label_names[l]) == 0 && isfinite (mean[l]) && std[l] > 0 &&
         isfinite (std[l]);
  if (!ok) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                 _("[%s] must give labels Z;LOGMSTAR with their finite mean and positive std"),
                 TARGETS_GROUP);
    return FALSE;
  }
  memcpy (run->mean, mean, sizeof run->mean);
  memcpy (run->std, std, sizeof run->std);
  return TRUE;
}

/* Reads a checkpoint of this command: its model, targets and (to resume, when settings is not
 * NULL) its training settings. */
static gboolean
load_checkpoint_text (Run *run, const AclipCheckpoint *checkpoint, const char *path,
                      AstroclipRunSettings *settings, GError **error)
{
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  model_init_default (run);
  g_autofree char *stage = NULL;
  if (g_key_file_load_from_data (key_file, aclip_checkpoint_get_text (checkpoint), (gsize) -1,
                                 G_KEY_FILE_NONE, &local)) {
    stage = g_key_file_get_string (key_file, TRAINING_GROUP, "stage", NULL);
    if (g_strcmp0 (stage, STAGE) != 0)
      g_set_error (&local, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("the checkpoint is not from %s (its stage is “%s”)"), STAGE,
                   stage ? stage : "");
  }
  if (local != NULL || !model_load (run, key_file, TRUE, &local) ||
      !targets_load (run, key_file, &local) ||
      (settings != NULL && !astroclip_run_settings_load (settings, key_file, STAGE, &local))) {
    if (settings != NULL)
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, _("%s: cannot resume: %s"), path,
                   local->message);
    else
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, "%s: %s", path, local->message);
    return FALSE;
  }
  run->epoch = g_key_file_get_integer (key_file, TRAINING_GROUP, "epoch", NULL);
  return TRUE;
}

static gboolean
check_resume_options (Run *run, GError **error)
{
  const CommandLine *c = &run->cli;
  if (c->config != NULL) {
    Run given = { 0 };
    given.cli.config = c->config;
    if (!model_from_command_line (&given, error))
      return FALSE;
    if (memcmp (&given.encoder_config, &run->encoder_config, sizeof given.encoder_config) != 0 ||
        memcmp (&given.head_config, &run->head_config, sizeof given.head_config) != 0 ||
        memcmp (&given.augment_config, &run->augment_config, sizeof given.augment_config) != 0)
      return astroclip_usage_error (error,
                                    _("--config=%s differs from the checkpoint being resumed; "
                                      "leave it out or start a new run without --resume"),
                                    c->config);
  }
  return astroclip_run_check_resume (&c->run, &run->settings, error);
}

/* ---- Labels -------------------------------------------------------------------------------- */

/* The mean and (population) standard deviation of each label over the galaxies the run trains
 * on: the train split, or its first --max-galaxies in file order (as the loader takes them). */
static gboolean
compute_target_statistics (Run *run, AclipCatalogue *catalogue, GError **error)
{
  gint64 n_rows = aclip_catalogue_n_rows (catalogue);
  g_autofree gint64 *ids = g_new (gint64, MAX (n_rows, 1));
  g_autofree double *values = g_new (double, MAX (n_rows, 1));
  g_autofree gboolean *used = g_new0 (gboolean, MAX (n_rows, 1));
  if (!aclip_catalogue_read_ids (catalogue, 0, n_rows, ids, error))
    return FALSE;
  gint64 limit = run->settings.max_galaxies > 0 ? run->settings.max_galaxies : G_MAXINT64;
  for (gint64 row = 0, n_train = 0; row < n_rows && n_train < limit; row++)
    if (aclip_split_of_id (ids[row]) == ACLIP_SPLIT_TRAIN) {
      used[row] = TRUE;
      n_train++;
    }
  for (int l = 0; l < N_LABELS; l++) {
    if (!aclip_catalogue_read_column (catalogue, label_names[l], 0, n_rows, values, error))
      return FALSE;
    double sum = 0.0, sum_squares = 0.0;
    gint64 n = 0;
    for (gint64 row = 0; row < n_rows; row++)
      if (used[row] && isfinite (values[row])) {
        sum += values[row];
        n++;
      }
    double mean = n > 0 ? sum / (double) n : NAN;
    for (gint64 row = 0; row < n_rows; row++)
      if (used[row] && isfinite (values[row]))
        sum_squares += (values[row] - mean) * (values[row] - mean);
    double std = n > 0 ? sqrt (sum_squares / (double) n) : NAN;
    if (n < 2 || !(std > 0)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("%s: the train split has no spread of %s to learn (%" PRId64
                     " finite values)"),
                   run->settings.catalogue, label_names[l], n);
      return FALSE;
    }
    run->mean[l] = mean;
    run->std[l] = std;
  }
  return TRUE;
}

/* The batch's standardised labels into run->targets [n, N_LABELS] (NaN stays NaN). */
static void
standardise_targets (Run *run, const AstroclipBatch *batch)
{
  for (int i = 0; i < batch->n; i++) {
    const float raw[N_LABELS] = { batch->z[i], batch->logmstar[i] };
    for (int l = 0; l < N_LABELS; l++)
      run->targets[i * N_LABELS + l] = (float) ((raw[l] - run->mean[l]) / run->std[l]);
  }
}

/* The network's predictions for n centre crops (BN in evaluation mode), in the labels' units:
 * out [N_LABELS, stride] at column `first`. */
static void
predict_centre (Run *run, const float *images, int n, double *out, gint64 stride, gint64 first)
{
  aclip_augment_batch (run->pool, &run->centre_config, &run->rgb, NULL, run->input, images, n, 1,
                       run->height, run->width, run->augment_workspace);
  const float *pred = aclip_regressor_predict (run->regressor, run->pool, run->input, n, FALSE);
  for (int i = 0; i < n; i++)
    for (int l = 0; l < N_LABELS; l++)
      out[l * stride + first + i] = run->mean[l] + run->std[l] * pred[i * N_LABELS + l];
}

/* ---- Checkpoints --------------------------------------------------------------------------- */

static gboolean
save_checkpoint (gpointer data, gint64 step, GError **error)
{
  Run *run = data;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  aclip_image_encoder_config_save (&run->encoder_config, key_file);
  aclip_regressor_config_save (&run->head_config, key_file);
  aclip_augment_config_save (&run->augment_config, key_file);
  targets_save (run, key_file);
  g_key_file_set_string (key_file, TRAINING_GROUP, "stage", STAGE);
  g_key_file_set_string (key_file, TRAINING_GROUP, "objective", "regression");
  g_key_file_set_int64 (key_file, TRAINING_GROUP, "step", step);
  g_key_file_set_integer (key_file, TRAINING_GROUP, "epoch", run->epoch);
  astroclip_run_settings_save (&run->settings, key_file);
  if (isfinite (run->last_loss))
    g_key_file_set_double (key_file, TRAINING_GROUP, "train_loss", run->last_loss);
  if (isfinite (run->val_loss)) {
    g_key_file_set_double (key_file, TRAINING_GROUP, "val_loss", run->val_loss);
    for (int l = 0; l < N_LABELS; l++)
      if (isfinite (run->val_r2[l]))
        g_key_file_set_double (key_file, TRAINING_GROUP, metric_names[l], run->val_r2[l]);
    g_key_file_set_int64 (key_file, TRAINING_GROUP, "val_galaxies", run->n_validation);
  }
  g_autofree char *text = g_key_file_to_data (key_file, NULL, NULL);
  return aclip_checkpoint_save (run->out, text, run->params, TRUE, NULL, NULL, error);
}

/* ---- The step loop's callbacks (astroclip_train_run) ---------------------------------------- */

static gboolean
train_step (gpointer data, const AstroclipBatch *batch, gint64 step, double lr, double *loss)
{
  Run *run = data;
  int n = batch->n;
  run->epoch = batch->epoch;
  for (int i = 0; i < n; i++)
    aclip_augment_params_draw (&run->augment_config, run->settings.seed, step, i, 0,
                               &run->views[i]);
  aclip_augment_batch (run->pool, &run->augment_config, &run->rgb, run->views, run->input,
                       batch->images, n, 1, run->height, run->width, run->augment_workspace);
  standardise_targets (run, batch);

  aclip_params_zero_grads (run->params);
  *loss = run->last_loss =
      aclip_regressor_forward (run->regressor, run->pool, run->input, run->targets, n, TRUE);
  if (!isfinite (*loss))
    return FALSE;
  aclip_regressor_backward (run->regressor, run->pool, 1.0f);
  return astroclip_run_update (run->pool, run->params, run->settings.grad_clip, &run->adamw, lr);
}

/* Predicts the validation galaxies and reports each label's R² and the standardised MSE.
 * FALSE with no error when a stop was requested meanwhile. */
static gboolean
validate (gpointer data, gint64 step, GError **error)
{
  Run *run = data;
  if (run->validation == NULL)
    return TRUE;
  gint64 n_val = run->n_validation, done = 0;
  astroclip_loader_seek (run->validation, 0, 0);
  gint64 n_batches = astroclip_loader_batches_per_epoch (run->validation);
  for (gint64 b = 0; b < n_batches; b++) {
    const AstroclipBatch *batch = astroclip_loader_next (run->validation, error);
    if (batch == NULL)
      return FALSE;
    predict_centre (run, batch->images, batch->n, run->val_predicted, n_val, done);
    for (int i = 0; i < batch->n; i++) {
      run->val_truth[LABEL_Z * n_val + done + i] = batch->z[i];
      run->val_truth[LABEL_LOGMSTAR * n_val + done + i] = batch->logmstar[i];
    }
    done += batch->n;
    if (astroclip_stop_watch_requested (run->stop))
      return FALSE;
  }
  g_assert (done == n_val);
  double sum = 0.0;
  gint64 count = 0;
  for (int l = 0; l < N_LABELS; l++) {
    const double *truth = run->val_truth + l * n_val, *predicted = run->val_predicted + l * n_val;
    run->val_r2[l] = aclip_r2_score (truth, predicted, n_val, NULL);
    for (gint64 i = 0; i < n_val; i++)
      if (isfinite (truth[i]) && isfinite (predicted[i])) {
        double e = (predicted[i] - truth[i]) / run->std[l];
        sum += e * e;
        count++;
      }
  }
  run->val_loss = count > 0 ? sum / (double) count : NAN;
  for (int l = 0; l < N_LABELS; l++)
    astroclip_progress_metric (run->progress, metric_names[l], run->val_r2[l], step);
  astroclip_progress_metric (run->progress, "val_loss", run->val_loss, step);
  return TRUE;
}

static char *
summary (gpointer data)
{
  Run *run = data;
  if (!isfinite (run->val_loss))
    return g_strdup (_("no validation galaxies"));
  return g_strdup_printf (_("validation R² on %" PRId64 " galaxies: redshift %.3f, log M* %.3f"),
                          run->n_validation, run->val_r2[LABEL_Z], run->val_r2[LABEL_LOGMSTAR]);
}

/* ---- Building the run ---------------------------------------------------------------------- */

static gboolean
open_loaders (Run *run, GError **error)
{
  if (!astroclip_run_open_loaders (&run->settings, STAGE, TRUE, FALSE, &run->train,
                                   &run->validation, error))
    return FALSE;
  run->height = astroclip_loader_image_height (run->train);
  run->width = astroclip_loader_image_width (run->train);
  run->n_validation = run->validation ? astroclip_loader_n_galaxies (run->validation) : 0;
  return TRUE;
}

/* The parameter table (for training or inference), the encoder, the head and the buffers for
 * batches of `batch` galaxies. */
static gboolean
build_model (Run *run, AclipParamsMode mode, int batch, GError **error)
{
  run->params = aclip_params_new ();
  if (!aclip_image_encoder_register (&run->encoder_config, run->params, ENCODER_PREFIX, error) ||
      !aclip_regressor_register (&run->head_config,
                                 aclip_image_encoder_config_channels (&run->encoder_config),
                                 run->params, HEAD_PREFIX, error) ||
      !aclip_params_seal (run->params, mode, error))
    return FALSE;
  run->encoder =
      aclip_image_encoder_new (&run->encoder_config, run->params, ENCODER_PREFIX, batch, error);
  if (run->encoder == NULL)
    return FALSE;
  run->regressor = aclip_regressor_new (&run->head_config, run->encoder, run->params, HEAD_PREFIX,
                                        batch, error);
  if (run->regressor == NULL)
    return FALSE;

  aclip_augment_config_init_none (&run->centre_config, run->encoder_config.crop,
                                  run->encoder_config.downsample);
  aclip_rgb_params_init_legacy (&run->rgb);
  int side = aclip_image_encoder_config_input_size (&run->encoder_config);
  int threads = aclip_thread_pool_n_threads (run->pool);
  gsize workspace =
      MAX (aclip_augment_batch_workspace_size (&run->augment_config, threads),
           aclip_augment_batch_workspace_size (&run->centre_config, threads));
  run->input = g_try_new (float, (gsize) batch * 3 * side * side);
  run->views = g_try_new (AclipAugmentParams, (gsize) batch);
  run->augment_workspace = g_try_new (float, MAX (workspace, 1));
  run->targets = g_try_new (float, (gsize) batch * N_LABELS);
  gboolean ok = run->input && run->views && run->augment_workspace && run->targets;
  if (run->validation != NULL) {
    run->val_truth = g_try_new (double, (gsize) run->n_validation * N_LABELS);
    run->val_predicted = g_try_new (double, (gsize) run->n_validation * N_LABELS);
    ok = ok && run->val_truth && run->val_predicted;
  }
  if (!ok) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO,
                 _("not enough memory for batches of %d galaxies"), batch);
    return FALSE;
  }
  return TRUE;
}

/* Fresh settings from the command line once the train split's size is known. */
static void
settings_from_command_line (Run *run, gint64 batches_per_epoch)
{
  const AstroclipRunCommandLine *c = &run->cli.run;
  AstroclipRunSettings *s = &run->settings;
  s->total_steps =
      c->steps > 0 ? c->steps : (c->epochs > 0 ? c->epochs : DEFAULT_EPOCHS) * batches_per_epoch;
  s->warmup_steps = c->warmup >= 0
                        ? c->warmup
                        : MIN (MAX_WARMUP, (gint64) ceil (WARMUP_FRACTION * s->total_steps));
  s->lr = c->lr > 0 ? c->lr : DEFAULT_LR;
  s->final_lr = s->lr * FINAL_LR_FRACTION;
  s->weight_decay = c->weight_decay >= 0 ? c->weight_decay : DEFAULT_WEIGHT_DECAY;
  s->grad_clip = GRAD_CLIP;
  s->validate_every = c->validate_every >= 0 ? c->validate_every : DEFAULT_VALIDATE_EVERY;
}

static int
train (Run *run)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AclipCheckpoint) checkpoint = NULL;
  const AstroclipRunCommandLine *cli = &run->cli.run;
  run->out = g_canonicalize_filename (cli->out, NULL);
  run->last_loss = run->val_loss = NAN;
  for (int l = 0; l < N_LABELS; l++)
    run->val_r2[l] = NAN;

  gboolean resuming = astroclip_run_resuming (&run->options, run->out, STAGE);
  if (resuming) {
    checkpoint = aclip_checkpoint_open (run->out, &error);
    if (checkpoint == NULL ||
        !load_checkpoint_text (run, checkpoint, run->out, &run->settings, &error))
      return astroclip_report_error (STAGE, error);
    if (!check_resume_options (run, &error)) {
      astroclip_report_error (STAGE, error);
      return 2;
    }
  } else {
    if (cli->catalogue == NULL) {
      g_printerr ("astroclip %s: %s\n", STAGE, _("give the catalogue with --catalogue"));
      return 2;
    }
    if (!model_from_command_line (run, &error)) {
      astroclip_report_error (STAGE, error);
      return 2;
    }
    astroclip_run_settings_init (&run->settings, cli, run->options.seed, DEFAULT_BATCH_SIZE,
                                 DEFAULT_MAX_VALIDATION);
  }

  {
    g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (run->settings.catalogue, &error);
    if (catalogue == NULL)
      return astroclip_report_error (STAGE, error);
    if (!aclip_catalogue_has_images (catalogue)) {
      g_printerr (_("astroclip %s: %s holds no images\n"), STAGE, run->settings.catalogue);
      return 1;
    }
    if (!resuming && !compute_target_statistics (run, catalogue, &error))
      return astroclip_report_error (STAGE, error);
  }
  if (!open_loaders (run, &error))
    return astroclip_report_error (STAGE, error);
  gint64 batches_per_epoch = astroclip_loader_batches_per_epoch (run->train);
  if (!resuming)
    settings_from_command_line (run, batches_per_epoch);
  const AstroclipRunSettings *s = &run->settings;

  run->pool = astroclip_train_setup_threads (&run->options);
  if (!build_model (run, ACLIP_PARAMS_TRAINING, s->batch_size, &error))
    return astroclip_report_error (STAGE, error);
  if (resuming) {
    if (!aclip_checkpoint_restore (checkpoint, run->params, TRUE, &error))
      return astroclip_report_error (STAGE, error);
    g_clear_pointer (&checkpoint, aclip_checkpoint_free);
  } else {
    aclip_params_init (run->params, s->seed, run->pool);
  }

  run->stop = astroclip_stop_watch_new ();
  run->progress = astroclip_progress_new (run->options.progress, STAGE, s->total_steps);
  gint64 step = aclip_params_get_step (run->params);
  const AclipImageEncoderConfig *e = &run->encoder_config;
  int side = aclip_image_encoder_config_input_size (e);
  astroclip_progress_message (
      run->progress,
      _("image encoder: %" PRId64 " parameters with the regression head; a %d-pixel crop, "
        "input %d×%d; %.0f MFLOP per image; %.0f MiB of activations"),
      aclip_params_n_elements (run->params), e->crop, side, side,
      2e-6 * aclip_image_encoder_config_flops (e),
      (double) aclip_image_encoder_activation_bytes (run->encoder) / (1 << 20));
  astroclip_progress_message (
      run->progress,
      _("%" PRId64 " training galaxies (redshift %.3f ± %.3f, log M* %.2f ± %.2f), %" PRId64
        " validation galaxies; %" PRId64 " steps of %d galaxies (%.2f epochs)%s"),
      astroclip_loader_n_galaxies (run->train), run->mean[LABEL_Z], run->std[LABEL_Z],
      run->mean[LABEL_LOGMSTAR], run->std[LABEL_LOGMSTAR], run->n_validation, s->total_steps,
      s->batch_size, (double) s->total_steps / (double) batches_per_epoch,
      resuming ? _(", resuming") : "");
  int min_size = aclip_augment_min_image_size (&run->augment_config);
  if (run->height < min_size || run->width < min_size)
    astroclip_progress_message (
        run->progress,
        _("the catalogue’s %d×%d images are smaller than the %d×%d pixels the augmentations "
          "reach: pixels beyond their edges count as 0"),
        run->width, run->height, min_size, min_size);
  if (resuming)
    astroclip_progress_message (run->progress, _("resuming at step %" PRId64), step);

  run->adamw = (AclipAdamWConfig) ACLIP_ADAMW_CONFIG_DEFAULT;
  run->adamw.weight_decay = s->weight_decay;
  AstroclipRun loop = {
    STAGE, &run->options, run->progress, run->stop, run->train, run->params,
    { s->lr, s->final_lr, s->warmup_steps, s->total_steps }, s->validate_every, run->out,
  };
  static const AstroclipRunCallbacks callbacks = { train_step, validate, save_checkpoint,
                                                   summary };
  return astroclip_train_run (&loop, &callbacks, run);
}

/* ---- --predict ----------------------------------------------------------------------------- */

static int
predict (Run *run)
{
  g_autoptr (GError) error = NULL;
  const AstroclipRunCommandLine *cli = &run->cli.run;
  int batch = cli->batch_size > 0 ? cli->batch_size : DEFAULT_BATCH_SIZE;
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (run->cli.model, &error);
  if (checkpoint == NULL || !load_checkpoint_text (run, checkpoint, run->cli.model, NULL, &error))
    return astroclip_report_error (STAGE, error);
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (cli->catalogue, &error);
  if (catalogue == NULL)
    return astroclip_report_error (STAGE, error);
  if (!aclip_catalogue_has_images (catalogue)) {
    g_printerr (_("astroclip %s: %s holds no images\n"), STAGE, cli->catalogue);
    return 1;
  }
  run->height = aclip_catalogue_image_height (catalogue);
  run->width = aclip_catalogue_image_width (catalogue);
  run->pool = astroclip_train_setup_threads (&run->options);
  if (!build_model (run, ACLIP_PARAMS_INFERENCE, batch, &error) ||
      !aclip_checkpoint_restore (checkpoint, run->params, FALSE, &error))
    return astroclip_report_error (STAGE, error);

  gint64 n_rows = aclip_catalogue_n_rows (catalogue);
  gsize image_size = (gsize) 3 * run->height * run->width;
  g_autofree float *images = g_try_new (float, (gsize) batch * image_size);
  g_autofree gint64 *ids = g_try_new (gint64, MAX (n_rows, 1));
  g_autofree double *values = g_try_new (double, (gsize) MAX (n_rows, 1) * N_LABELS);
  if (images == NULL || ids == NULL || values == NULL) {
    g_printerr (_("astroclip %s: not enough memory for %" PRId64 " predictions\n"), STAGE,
                n_rows);
    return 1;
  }
  gint64 n_batches = (n_rows + batch - 1) / batch;
  run->progress = astroclip_progress_new (run->options.progress, STAGE, n_batches);
  run->stop = astroclip_stop_watch_new ();
  gint64 n_blank = 0;
  for (gint64 first = 0, k = 0; first < n_rows; first += batch, k++) {
    int n = (int) MIN ((gint64) batch, n_rows - first);
    for (int i = 0; i < n; i++) {
      AclipGalaxy galaxy = { 0 };
      galaxy.image = images + i * image_size;
      if (!aclip_catalogue_read_galaxy (catalogue, first + i, &galaxy, &error))
        return astroclip_report_error (STAGE, error);
      ids[first + i] = galaxy.id;
    }
    predict_centre (run, images, n, values, n_rows, first);
    /* A galaxy without an image gets no prediction. */
    for (int i = 0; i < n; i++)
      if (!astroclip_image_present (images + i * image_size, image_size)) {
        for (int l = 0; l < N_LABELS; l++)
          values[l * n_rows + first + i] = NAN;
        n_blank++;
      }
    astroclip_progress_update (run->progress, k + 1, 0, NAN, NAN, n);
    if (astroclip_stop_watch_requested (run->stop)) {
      astroclip_progress_done (run->progress, "stopped", k + 1, _("stopped: no file written"));
      return 1;
    }
  }
  if (!aclip_predictions_write (cli->out, n_rows, ids, N_LABELS, label_names, values, &error)) {
    astroclip_progress_done (run->progress, "failed", n_batches, error->message);
    return astroclip_report_error (STAGE, error);
  }
  g_autofree char *message =
      g_strdup_printf (_("predictions for %" PRId64 " galaxies written to %s (%" PRId64
                         " without an image)"),
                       n_rows, cli->out, n_blank);
  astroclip_progress_done (run->progress, "finished", n_batches, message);
  return 0;
}

/* ---- The command --------------------------------------------------------------------------- */

static gboolean
parse (Run *run, int *argc, char ***argv, int *status)
{
  AstroclipRunCommandLine *c = &run->cli.run;
  astroclip_run_command_line_init (c);
  astroclip_train_options_init (&run->options);
  const GOptionEntry entries[] = {
    { "catalogue", 'c', 0, G_OPTION_ARG_FILENAME, &c->catalogue,
      N_("Catalogue with images, Z and LOGMSTAR (its train split to train on, its validation "
         "split for R²; with --predict, the galaxies to predict)"),
      N_("FILE") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &c->out,
      N_("Checkpoint to write (with --predict: the predictions file)"), N_("FILE") },
    { "predict", 0, 0, G_OPTION_ARG_NONE, &run->cli.predict,
      N_("Write the predictions of a trained model (--model) for every galaxy of the catalogue "
         "instead of training"),
      NULL },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &run->cli.model,
      N_("With --predict: the checkpoint of a train-supervised run"), N_("FILE") },
    { "epochs", 0, 0, G_OPTION_ARG_INT64, &c->epochs,
      N_("Passes over the train split (default 12)"), N_("N") },
    { "steps", 0, 0, G_OPTION_ARG_INT64, &c->steps, N_("Optimiser steps, instead of --epochs"),
      N_("N") },
    { "batch-size", 'b', 0, G_OPTION_ARG_INT, &c->batch_size,
      N_("Galaxies per step (default 64)"), N_("N") },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &c->lr, N_("Peak learning rate (default 2e-3)"),
      N_("LR") },
    { "warmup", 0, 0, G_OPTION_ARG_INT64, &c->warmup,
      /* xgettext:no-c-format */
      N_("Warm-up steps (default 5% of the steps, at most 300)"), N_("N") },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &c->weight_decay,
      N_("AdamW weight decay (default 0.05)"), N_("λ") },
    { "max-galaxies", 0, 0, G_OPTION_ARG_INT64, &c->max_galaxies,
      N_("Use only the first N galaxies of the train split (default: all)"), N_("N") },
    { "validate-every", 0, 0, G_OPTION_ARG_INT64, &c->validate_every,
      N_("Validation R² every N steps (default 250; 0: only at the start and the end)"),
      N_("N") },
    { "max-validation", 0, 0, G_OPTION_ARG_INT64, &c->max_validation,
      N_("Validate on the first N galaxies of the validation split (default 2048; 0: all)"),
      N_("N") },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &run->cli.config,
      N_("Key file whose [image_encoder], [regressor] and [augment] sections override the "
         "default model and augmentations"),
      N_("FILE") },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new (
      _("— the supervised baseline: the image encoder trained on redshift and log M*"));
  if (!astroclip_train_parse_command_line (context, entries, &run->options, argc, argv, STAGE)) {
    *status = 2;
    return FALSE;
  }
  const char *problem = NULL;
  if (*argc > 1)
    problem = _("unexpected argument");
  else if (run->cli.predict) {
    if (run->cli.model == NULL || c->catalogue == NULL || c->out == NULL)
      problem = _("--predict needs --model, --catalogue and --out");
    else if (c->batch_size < 0)
      problem = _("sizes, counts and rates must not be negative");
  } else if (run->cli.model != NULL) {
    problem = _("--model goes with --predict");
  } else {
    problem = astroclip_run_command_line_problem (c, run->options.resume);
  }
  if (problem != NULL) {
    g_printerr ("astroclip %s: %s\n", STAGE, problem);
    *status = 2;
    return FALSE;
  }
  return TRUE;
}

int
astroclip_train_supervised_main (int argc, char **argv)
{
  Run run = { 0 };
  int status = 0;
  if (parse (&run, &argc, &argv, &status))
    status = run.cli.predict ? predict (&run) : train (&run);
  run_clear (&run);
  return status;
}
