/* astroclip pretrain-spectra — masked-reconstruction pretraining of the spectrum encoder
 * (core/aclip-spectrum-encoder.h, core/aclip-spectrum-pretrain.h; docs/trainer.md).
 *
 * Trains on the catalogue's train split only; reports the masked reconstruction loss on the
 * validation split before the first step, every --validate-every steps and at the end; saves
 * a checkpoint every --save-every seconds, at the end, and on SIGINT/SIGTERM (after finishing
 * the step in progress). --resume continues from the output checkpoint bit for bit: the data
 * order, the masks (drawn from (seed, step, position in the batch)) and the learning rate are
 * functions of the step, and the checkpoint holds the AdamW state and the step count.
 *
 * The checkpoint's text section holds [spectrum_encoder] (the encoder's configuration),
 * [spectrum_pretrain] (the masks) and [training] (this command's settings and state).
 */
#include "astroclip-commands.h"
#include "astroclip-train.h"

#include "aclip-catalogue.h"
#include "aclip-checkpoint.h"
#include "aclip-error.h"
#include "aclip-optim.h"
#include "aclip-params.h"
#include "aclip-spectrum-encoder.h"
#include "aclip-spectrum-pretrain.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define STAGE             "pretrain-spectra"
#define ENCODER_PREFIX    "spectrum."
#define HEAD_PREFIX       "spectrum_pretrain."
#define TRAINING_GROUP    "training"
#define VALIDATION_STREAM G_GUINT64_CONSTANT (0x76616c6964) /* "valid": masks of validation */

/* Defaults (docs/trainer.md explains the choice). */
#define DEFAULT_STEPS          1500
#define DEFAULT_BATCH_SIZE     32
#define DEFAULT_LR             3e-4
#define DEFAULT_WEIGHT_DECAY   0.05
#define DEFAULT_VALIDATE_EVERY 250
#define DEFAULT_MAX_VALIDATION 1024
#define FINAL_LR_FRACTION      0.05 /* the cosine ends at 5% of the peak */
#define GRAD_CLIP              1.0

/* What the command line says (astroclip-train.h: 0 or −1 = not given). */
typedef struct
{
  AstroclipRunCommandLine run;
  char *preset;
  int width, layers, heads, mlp_hidden, window, stride, mask_runs, mask_run_length;
} CommandLine;

typedef struct
{
  AstroclipTrainOptions options;
  CommandLine cli;
  AstroclipRunSettings settings;
  AclipSpectrumEncoderConfig config;
  AclipSpectrumMaskConfig mask;
  char *out; /* the checkpoint */

  AclipThreadPool *pool;
  AstroclipProgress *progress;
  AstroclipStopWatch *stop;
  AstroclipLoader *train, *validation; /* validation NULL when the split is empty */
  AclipParams *params;
  AclipSpectrumEncoder *encoder;
  AclipSpectrumPretrainer *pretrainer;
  guint8 *replace; /* [batch_size, T] */

  int epoch;
  double last_loss, val_loss, val_baseline;
  AclipAdamWConfig adamw;
} Run;

static void
run_clear (Run *run)
{
  g_clear_pointer (&run->pretrainer, aclip_spectrum_pretrainer_free);
  g_clear_pointer (&run->encoder, aclip_spectrum_encoder_free);
  g_clear_pointer (&run->params, aclip_params_free);
  g_clear_pointer (&run->train, astroclip_loader_free);
  g_clear_pointer (&run->validation, astroclip_loader_free);
  g_clear_pointer (&run->stop, astroclip_stop_watch_free);
  g_clear_pointer (&run->progress, astroclip_progress_free);
  g_clear_pointer (&run->pool, aclip_thread_pool_free);
  g_clear_pointer (&run->replace, g_free);
  astroclip_run_settings_clear (&run->settings);
  g_clear_pointer (&run->out, g_free);
  astroclip_run_command_line_clear (&run->cli.run);
  g_clear_pointer (&run->cli.preset, g_free);
  astroclip_train_options_clear (&run->options);
}

/* ---- Settings ------------------------------------------------------------------------------ */

/* The encoder's configuration from --preset and the size options. */
static gboolean
config_from_command_line (const CommandLine *cli, int n_wave, AclipSpectrumEncoderConfig *config,
                          AclipSpectrumMaskConfig *mask, GError **error)
{
  if (cli->preset == NULL || strcmp (cli->preset, "default") == 0)
    aclip_spectrum_encoder_config_init_default (config);
  else if (strcmp (cli->preset, "paper") == 0)
    aclip_spectrum_encoder_config_init_paper (config);
  else
    return astroclip_usage_error (error, _("--preset=%s: the presets are “default” and “paper”"),
                                  cli->preset);
  config->n_wave = n_wave;
  if (cli->width > 0)
    config->width = cli->width;
  if (cli->layers > 0)
    config->n_layers = cli->layers;
  if (cli->heads > 0)
    config->n_heads = cli->heads;
  if (cli->mlp_hidden > 0)
    config->mlp_hidden = cli->mlp_hidden;
  if (cli->window > 0)
    config->window = cli->window;
  if (cli->stride > 0)
    config->stride = cli->stride;
  if (!aclip_spectrum_encoder_config_validate (config, error))
    return FALSE;
  aclip_spectrum_mask_config_init (mask, config);
  if (cli->mask_runs > 0)
    mask->n_runs = cli->mask_runs;
  if (cli->mask_run_length > 0)
    mask->run_length = cli->mask_run_length;
  return aclip_spectrum_mask_config_validate (
      mask, aclip_spectrum_encoder_config_n_windows (config), error);
}

static gboolean
model_options_given (const CommandLine *cli)
{
  return cli->preset != NULL || cli->width > 0 || cli->layers > 0 || cli->heads > 0 ||
         cli->mlp_hidden > 0 || cli->window > 0 || cli->stride > 0 || cli->mask_runs > 0 ||
         cli->mask_run_length > 0;
}

static gboolean
check_resume_options (const Run *run, GError **error)
{
  const CommandLine *c = &run->cli;
  if (model_options_given (c)) {
    AclipSpectrumEncoderConfig config;
    AclipSpectrumMaskConfig mask;
    if (!config_from_command_line (c, run->config.n_wave, &config, &mask, error))
      return FALSE;
    if (!aclip_spectrum_encoder_config_equal (&config, &run->config) ||
        config.n_wave != run->config.n_wave || mask.n_runs != run->mask.n_runs ||
        mask.run_length != run->mask.run_length)
      return astroclip_usage_error (error,
                                    _("the model options differ from the checkpoint being "
                                      "resumed; leave them out or start a new run without "
                                      "--resume"));
  }
  return astroclip_run_check_resume (&c->run, &run->settings, error);
}

/* ---- Checkpoints --------------------------------------------------------------------------- */

static char *
checkpoint_text (const Run *run, gint64 step)
{
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  aclip_spectrum_encoder_config_save (&run->config, key_file);
  aclip_spectrum_mask_config_save (&run->mask, key_file);
  g_key_file_set_string (key_file, TRAINING_GROUP, "stage", STAGE);
  g_key_file_set_int64 (key_file, TRAINING_GROUP, "step", step);
  g_key_file_set_integer (key_file, TRAINING_GROUP, "epoch", run->epoch);
  astroclip_run_settings_save (&run->settings, key_file);
  if (isfinite (run->last_loss))
    g_key_file_set_double (key_file, TRAINING_GROUP, "train_loss", run->last_loss);
  if (isfinite (run->val_loss)) {
    g_key_file_set_double (key_file, TRAINING_GROUP, "val_loss", run->val_loss);
    g_key_file_set_double (key_file, TRAINING_GROUP, "val_baseline", run->val_baseline);
  }
  return g_key_file_to_data (key_file, NULL, NULL);
}

static gboolean
save_checkpoint (gpointer data, gint64 step, GError **error)
{
  Run *run = data;
  g_autofree char *text = checkpoint_text (run, step);
  return aclip_checkpoint_save (run->out, text, run->params, TRUE, NULL, NULL, error);
}

/* Reads the checkpoint to resume: configuration, settings, parameters and AdamW state. */
static gboolean
open_resume_checkpoint (Run *run, AclipCheckpoint **checkpoint, GError **error)
{
  *checkpoint = aclip_checkpoint_open (run->out, error);
  if (*checkpoint == NULL)
    return FALSE;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  if (!g_key_file_load_from_data (key_file, aclip_checkpoint_get_text (*checkpoint), (gsize) -1,
                                  G_KEY_FILE_NONE, &local) ||
      !aclip_spectrum_encoder_config_load (&run->config, key_file, &local) ||
      !aclip_spectrum_mask_config_load (
          &run->mask, key_file, aclip_spectrum_encoder_config_n_windows (&run->config), &local) ||
      !astroclip_run_settings_load (&run->settings, key_file, STAGE, &local)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, _("%s: cannot resume: %s"), run->out,
                 local->message);
    return FALSE;
  }
  run->epoch = g_key_file_get_integer (key_file, TRAINING_GROUP, "epoch", NULL);
  return TRUE;
}

/* ---- Validation ---------------------------------------------------------------------------- */

/* The weighted masked MSE over the validation galaxies, each with its own fixed masks. FALSE
 * with no error when a stop was requested meanwhile. */
static gboolean
validate (gpointer data, gint64 step, GError **error)
{
  Run *run = data;
  if (run->validation == NULL)
    return TRUE;
  const int t_len = aclip_spectrum_encoder_n_tokens (run->encoder);
  const int n_windows = t_len - 1;
  double sum = 0.0, baseline = 0.0, weights = 0.0;
  astroclip_loader_seek (run->validation, 0, 0);
  gint64 n_batches = astroclip_loader_batches_per_epoch (run->validation);
  for (gint64 i = 0; i < n_batches; i++) {
    const AstroclipBatch *batch = astroclip_loader_next (run->validation, error);
    if (batch == NULL)
      return FALSE;
    for (int b = 0; b < batch->n; b++)
      aclip_spectrum_mask_draw (&run->mask, n_windows, run->settings.seed, (guint64) batch->rows[b],
                                VALIDATION_STREAM, run->replace + (gsize) b * t_len);
    AclipSpectrumPretrainLoss loss;
    aclip_spectrum_pretrainer_forward (run->pretrainer, run->pool, batch->flux, batch->ivar,
                                       run->replace, batch->n, &loss);
    sum += loss.loss * loss.weight_sum;
    baseline += loss.baseline * loss.weight_sum;
    weights += loss.weight_sum;
    if (astroclip_stop_watch_requested (run->stop))
      return FALSE;
  }
  run->val_loss = weights > 0 ? sum / weights : NAN;
  run->val_baseline = weights > 0 ? baseline / weights : NAN;
  astroclip_progress_metric (run->progress, "val_loss", run->val_loss, step);
  astroclip_progress_metric (run->progress, "val_baseline", run->val_baseline, step);
  return TRUE;
}

/* ---- The command --------------------------------------------------------------------------- */

static gboolean
parse (Run *run, int *argc, char ***argv, int *status)
{
  CommandLine *m = &run->cli;
  AstroclipRunCommandLine *c = &run->cli.run;
  astroclip_run_command_line_init (c);
  astroclip_train_options_init (&run->options);
  const GOptionEntry entries[] = {
    { "catalogue", 'c', 0, G_OPTION_ARG_FILENAME, &c->catalogue,
      N_("Catalogue to train on (its train split; the validation split for the loss)"),
      N_("FILE") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &c->out, N_("Checkpoint to write"), N_("FILE") },
    { "preset", 0, 0, G_OPTION_ARG_STRING, &m->preset,
      N_("Encoder size: default (width 128, 4 layers, 4 heads, windows of 40 pixels) or paper "
          "(width 768, 6 layers, 6 heads, windows of 20)"),
      N_("NAME") },
    { "steps", 0, 0, G_OPTION_ARG_INT64, &c->steps, N_("Optimiser steps (default 1500)"),
      N_("N") },
    { "epochs", 0, 0, G_OPTION_ARG_INT64, &c->epochs,
      N_("Train for this many passes over the train split instead of --steps"), N_("N") },
    { "batch-size", 'b', 0, G_OPTION_ARG_INT, &c->batch_size, N_("Spectra per step (default 32)"),
      N_("N") },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &c->lr, N_("Peak learning rate (default 3e-4)"),
      N_("LR") },
    { "warmup", 0, 0, G_OPTION_ARG_INT64, &c->warmup,
      /* xgettext:no-c-format */
      N_("Warm-up steps (default 5% of the steps, at most 500)"), N_("N") },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &c->weight_decay,
      N_("AdamW weight decay (default 0.05)"), N_("λ") },
    { "max-galaxies", 0, 0, G_OPTION_ARG_INT64, &c->max_galaxies,
      N_("Use only the first N galaxies of the train split (default: all)"), N_("N") },
    { "validate-every", 0, 0, G_OPTION_ARG_INT64, &c->validate_every,
      N_("Validation loss every N steps (default 250; 0: only at the start and the end)"),
      N_("N") },
    { "max-validation", 0, 0, G_OPTION_ARG_INT64, &c->max_validation,
      N_("Validate on the first N galaxies of the validation split (default 1024; 0: all)"),
      N_("N") },
    { "width", 0, 0, G_OPTION_ARG_INT, &m->width, N_("Token width (overrides the preset)"),
      N_("C") },
    { "layers", 0, 0, G_OPTION_ARG_INT, &m->layers, N_("Transformer blocks"), N_("N") },
    { "heads", 0, 0, G_OPTION_ARG_INT, &m->heads, N_("Attention heads"), N_("N") },
    { "mlp-hidden", 0, 0, G_OPTION_ARG_INT, &m->mlp_hidden, N_("MLP hidden width"), N_("N") },
    { "window", 0, 0, G_OPTION_ARG_INT, &m->window, N_("Pixels per token"), N_("PX") },
    { "stride", 0, 0, G_OPTION_ARG_INT, &m->stride, N_("Pixels between windows"), N_("PX") },
    { "mask-runs", 0, 0, G_OPTION_ARG_INT, &m->mask_runs,
      N_("Masked runs per spectrum (default 6)"), N_("N") },
    { "mask-run-length", 0, 0, G_OPTION_ARG_INT, &m->mask_run_length,
      N_("Tokens per masked run (default: the paper’s 50 of 777 tokens, scaled)"), N_("N") },
    { NULL },
  };
  g_autoptr (GOptionContext) context =
      g_option_context_new (_("— pretrain the spectrum encoder by masked reconstruction"));
  if (!astroclip_train_parse_command_line (context, entries, &run->options, argc, argv, STAGE)) {
    *status = 2;
    return FALSE;
  }
  const char *problem = astroclip_run_command_line_problem (c, run->options.resume);
  if (problem == NULL &&
      (m->width < 0 || m->layers < 0 || m->heads < 0 || m->mlp_hidden < 0 || m->window < 0 ||
       m->stride < 0 || m->mask_runs < 0 || m->mask_run_length < 0))
    problem = _("sizes, counts and rates must not be negative");
  if (problem != NULL) {
    g_printerr ("astroclip %s: %s\n", STAGE, problem);
    *status = 2;
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
      c->epochs > 0 ? c->epochs * batches_per_epoch : (c->steps > 0 ? c->steps : DEFAULT_STEPS);
  s->warmup_steps = c->warmup >= 0 ? c->warmup : MIN (500, s->total_steps / 20);
  s->lr = c->lr > 0 ? c->lr : DEFAULT_LR;
  s->final_lr = s->lr * FINAL_LR_FRACTION;
  s->weight_decay = c->weight_decay >= 0 ? c->weight_decay : DEFAULT_WEIGHT_DECAY;
  s->grad_clip = GRAD_CLIP;
  s->validate_every = c->validate_every >= 0 ? c->validate_every : DEFAULT_VALIDATE_EVERY;
  s->max_validation = c->max_validation >= 0 ? c->max_validation : DEFAULT_MAX_VALIDATION;
}

/* ---- The step loop's callbacks (astroclip_train_run) ---------------------------------------- */

static gboolean
train_step (gpointer data, const AstroclipBatch *batch, gint64 step, double lr, double *loss)
{
  Run *run = data;
  const int t_len = aclip_spectrum_encoder_n_tokens (run->encoder);
  run->epoch = batch->epoch;
  for (int b = 0; b < batch->n; b++)
    aclip_spectrum_mask_draw (&run->mask, t_len - 1, run->settings.seed, (guint64) step,
                              (guint64) b, run->replace + (gsize) b * t_len);
  AclipSpectrumPretrainLoss result;
  aclip_params_zero_grads (run->params);
  aclip_spectrum_pretrainer_forward (run->pretrainer, run->pool, batch->flux, batch->ivar,
                                     run->replace, batch->n, &result);
  *loss = run->last_loss = result.loss;
  if (!isfinite (result.loss))
    return FALSE;
  aclip_spectrum_pretrainer_backward (run->pretrainer, run->pool, 1.0f);
  return astroclip_run_update (run->pool, run->params, run->settings.grad_clip, &run->adamw, lr);
}

static char *
summary (gpointer data)
{
  Run *run = data;
  if (!isfinite (run->val_loss))
    return g_strdup (_("no validation spectra"));
  return g_strdup_printf (_("validation loss %.4f (predicting each spectrum’s mean: %.4f)"),
                          run->val_loss, run->val_baseline);
}

static int
train (Run *run)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AclipCheckpoint) checkpoint = NULL;
  const AstroclipRunCommandLine *cli = &run->cli.run;
  run->out = g_canonicalize_filename (cli->out, NULL);
  run->last_loss = run->val_loss = run->val_baseline = NAN;

  gboolean resuming = astroclip_run_resuming (&run->options, run->out, STAGE);
  if (resuming) {
    if (!open_resume_checkpoint (run, &checkpoint, &error))
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
    astroclip_run_settings_init (&run->settings, cli, run->options.seed, DEFAULT_BATCH_SIZE,
                                 DEFAULT_MAX_VALIDATION);
  }

  /* The catalogue's spectra fix the encoder's input length. */
  {
    g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (run->settings.catalogue, &error);
    if (catalogue == NULL)
      return astroclip_report_error (STAGE, error);
    if (!aclip_catalogue_has_spectra (catalogue)) {
      g_printerr (_("astroclip %s: %s holds no spectra\n"), STAGE, run->settings.catalogue);
      return 1;
    }
    int n_wave = aclip_catalogue_n_wave (catalogue);
    if (resuming && n_wave != run->config.n_wave) {
      g_printerr (_("astroclip %s: the catalogue’s spectra have %d pixels but the checkpoint’s "
                     "encoder takes %d\n"),
                  STAGE, n_wave, run->config.n_wave);
      return 1;
    }
    if (!resuming &&
        !config_from_command_line (&run->cli, n_wave, &run->config, &run->mask, &error)) {
      astroclip_report_error (STAGE, error);
      return 2;
    }
  }

  if (!astroclip_run_open_loaders (&run->settings, STAGE, FALSE, TRUE, &run->train,
                                   &run->validation, &error))
    return astroclip_report_error (STAGE, error);
  gint64 batches_per_epoch = astroclip_loader_batches_per_epoch (run->train);
  if (!resuming)
    settings_from_command_line (run, batches_per_epoch);
  const AstroclipRunSettings *s = &run->settings;

  run->pool = astroclip_train_setup_threads (&run->options);
  run->params = aclip_params_new ();
  if (!aclip_spectrum_encoder_register (&run->config, run->params, ENCODER_PREFIX, &error) ||
      !aclip_spectrum_pretrain_register (&run->config, run->params, HEAD_PREFIX, &error) ||
      !aclip_params_seal (run->params, ACLIP_PARAMS_TRAINING, &error))
    return astroclip_report_error (STAGE, error);
  if (resuming) {
    if (!aclip_checkpoint_restore (checkpoint, run->params, TRUE, &error))
      return astroclip_report_error (STAGE, error);
    g_clear_pointer (&checkpoint, aclip_checkpoint_free);
  } else {
    aclip_params_init (run->params, s->seed, run->pool);
  }
  run->encoder = aclip_spectrum_encoder_new (&run->config, run->params, ENCODER_PREFIX,
                                             s->batch_size, TRUE, &error);
  if (run->encoder == NULL)
    return astroclip_report_error (STAGE, error);
  run->pretrainer = aclip_spectrum_pretrainer_new (run->encoder, run->params, HEAD_PREFIX, &error);
  if (run->pretrainer == NULL)
    return astroclip_report_error (STAGE, error);
  const int t_len = aclip_spectrum_encoder_n_tokens (run->encoder);
  run->replace = g_new0 (guint8, (gsize) s->batch_size * t_len);

  run->stop = astroclip_stop_watch_new ();
  run->progress = astroclip_progress_new (run->options.progress, STAGE, s->total_steps);
  gint64 step = aclip_params_get_step (run->params);
  astroclip_progress_message (
      run->progress,
      _("spectrum encoder: %" PRId64 " parameters, %d tokens of %d pixels, width %d, %d layers, "
         "%d heads; masks of %d runs of %d tokens; %.0f MiB of activations"),
      aclip_params_n_elements (run->params), t_len, run->config.window, run->config.width,
      run->config.n_layers, run->config.n_heads, run->mask.n_runs, run->mask.run_length,
      (double) aclip_spectrum_encoder_activation_bytes (run->encoder) / (1 << 20));
  astroclip_progress_message (
      run->progress,
      _("%" PRId64 " training spectra, %" PRId64 " validation spectra; %" PRId64 " steps of %d "
         "(%.2f epochs)%s"),
      astroclip_loader_n_galaxies (run->train),
      run->validation ? astroclip_loader_n_galaxies (run->validation) : 0, s->total_steps,
      s->batch_size, (double) s->total_steps / (double) batches_per_epoch,
      resuming ? _(", resuming") : "");
  if (resuming)
    astroclip_progress_message (run->progress, _("resuming at step %" PRId64), step);

  run->adamw = (AclipAdamWConfig) ACLIP_ADAMW_CONFIG_DEFAULT;
  run->adamw.weight_decay = s->weight_decay;
  AstroclipRun loop = {
    STAGE, &run->options, run->progress, run->stop, run->train, run->params,
    { s->lr, s->final_lr, s->warmup_steps, s->total_steps }, s->validate_every, run->out,
  };
  static const AstroclipRunCallbacks callbacks = { train_step, validate, save_checkpoint, summary };
  return astroclip_train_run (&loop, &callbacks, run);
}

int
astroclip_pretrain_spectra_main (int argc, char **argv)
{
  Run run = { 0 };
  int status = 0;
  if (parse (&run, &argc, &argv, &status))
    status = train (&run);
  run_clear (&run);
  return status;
}
