/* astroclip pretrain-images — self-supervised pretraining of the image encoder: SimCLR with
 * physical augmentations (core/aclip-augment.h, core/aclip-image-encoder.h,
 * core/aclip-image-pretrain.h; docs/trainer.md).
 *
 * Each step takes P galaxies of the train split, makes two augmented views of each (from a
 * generator seeded by (seed, step, position in the batch, view)), maps them to RGB, and
 * minimises the symmetric InfoNCE between the two views' projections with AdamW under a
 * warm-up + cosine schedule. Before the first step, every --validate-every steps and at the
 * end, two fixed views of each of the first --max-validation galaxies of the validation split
 * are embedded with BN in evaluation mode: val_top1 is the fraction of views whose nearest
 * projection among all the other galaxies' other views is their own galaxy's (chance 1/N).
 *
 * A checkpoint is saved every --save-every seconds, at the end, and on SIGINT/SIGTERM (after
 * the step in progress). --resume continues from it bit for bit: the data order, the
 * augmentations and the learning rate are functions of the step, and the checkpoint holds the
 * AdamW state, BN's running statistics and the step count.
 *
 * The checkpoint's tensors are the encoder ("image.*") and the projection head ("simclr.*");
 * its text holds [image_encoder], [simclr], [augment] and [training] (this command's settings
 * and state).
 */
#include "astroclip-commands.h"
#include "astroclip-train.h"

#include "aclip-augment.h"
#include "aclip-catalogue.h"
#include "aclip-checkpoint.h"
#include "aclip-error.h"
#include "aclip-image-encoder.h"
#include "aclip-image-pretrain.h"
#include "aclip-loss.h"
#include "aclip-optim.h"
#include "aclip-render.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define STAGE          "pretrain-images"
#define ENCODER_PREFIX "image."
#define HEAD_PREFIX    "simclr."
#define TRAINING_GROUP "training"
/* The augmentation "step" of the validation views (training steps are ≥ 0): every validation
 * scores the same two views of each galaxy, drawn from its catalogue row. */
#define VALIDATION_STEP (-1)

/* Defaults (docs/trainer.md explains the choice). */
#define DEFAULT_EPOCHS         8
#define DEFAULT_BATCH_SIZE     64
#define DEFAULT_LR             2e-3
#define DEFAULT_WEIGHT_DECAY   0.05
#define DEFAULT_VALIDATE_EVERY 250
#define DEFAULT_MAX_VALIDATION 512
#define WARMUP_FRACTION        0.05 /* of the steps, at most MAX_WARMUP */
#define MAX_WARMUP             300
#define FINAL_LR_FRACTION      0.01 /* the cosine ends at 1% of the peak */
#define GRAD_CLIP              5.0

/* What the command line says (astroclip-train.h: 0 or −1 = not given). */
typedef struct
{
  AstroclipRunCommandLine run;
  char *config;
} CommandLine;

typedef struct
{
  AstroclipTrainOptions options;
  CommandLine cli;
  AstroclipRunSettings settings; /* batch_size: P galaxies per step, 2P images */
  AclipImageEncoderConfig encoder_config;
  AclipSimclrConfig head_config;
  AclipAugmentConfig augment_config;
  AclipRgbParams rgb;
  char *out; /* the checkpoint, absolute */

  AclipThreadPool *pool;
  AstroclipProgress *progress;
  AstroclipStopWatch *stop;
  AstroclipLoader *train, *validation; /* validation NULL when the split is empty */
  int height, width;                   /* the catalogue's images */
  AclipParams *params;
  AclipImageEncoder *encoder;
  AclipSimclr *simclr;

  float *input;                  /* [2P, 3, S, S] */
  AclipAugmentParams *views;     /* [2P] */
  float *augment_workspace;      /* aclip_augment_batch_workspace_size () */
  float *validation_projections; /* [2, N_val, D]: every galaxy's view 0, then its view 1 */
  float *validation_workspace;   /* aclip_infonce_workspace_size (N_val) */
  gint64 n_validation;

  int epoch;
  double last_loss, val_top1, val_loss;
  double train_top1; /* the last step's two-view retrieval within its batch */
  AclipAdamWConfig adamw;
} Run;

static void
run_clear (Run *run)
{
  g_clear_pointer (&run->simclr, aclip_simclr_free);
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
  g_clear_pointer (&run->validation_projections, g_free);
  g_clear_pointer (&run->validation_workspace, g_free);
  astroclip_run_settings_clear (&run->settings);
  g_clear_pointer (&run->out, g_free);
  astroclip_run_command_line_clear (&run->cli.run);
  g_clear_pointer (&run->cli.config, g_free);
  astroclip_train_options_clear (&run->options);
}

/* ---- Model configuration ------------------------------------------------------------------- */

static void
model_init_default (AclipImageEncoderConfig *encoder, AclipSimclrConfig *head,
                    AclipAugmentConfig *augment)
{
  aclip_image_encoder_config_init_default (encoder);
  aclip_simclr_config_init_default (head);
  aclip_augment_config_init_default (augment, encoder->crop, encoder->downsample);
}

/* Reads the model sections of a key file (a --config file, or a checkpoint's text) over the
 * configurations given; the augmentations' crop always follows the encoder's. */
static gboolean
model_load (GKeyFile *key_file, gboolean required, AclipImageEncoderConfig *encoder,
            AclipSimclrConfig *head, AclipAugmentConfig *augment, GError **error)
{
  if ((required || g_key_file_has_group (key_file, "image_encoder")) &&
      !aclip_image_encoder_config_load (encoder, key_file, error))
    return FALSE;
  if ((required || g_key_file_has_group (key_file, "simclr")) &&
      !aclip_simclr_config_load (head, key_file, error))
    return FALSE;
  if (!aclip_augment_config_load (augment, key_file, error))
    return FALSE;
  augment->crop = encoder->crop;
  augment->downsample = encoder->downsample;
  return aclip_augment_config_validate (augment, error);
}

/* The configuration of a new run: the defaults, then --config. */
static gboolean
model_from_command_line (const CommandLine *cli, AclipImageEncoderConfig *encoder,
                         AclipSimclrConfig *head, AclipAugmentConfig *augment, GError **error)
{
  model_init_default (encoder, head, augment);
  if (cli->config == NULL)
    return TRUE;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  if (!g_key_file_load_from_file (key_file, cli->config, G_KEY_FILE_NONE, error) ||
      !model_load (key_file, FALSE, encoder, head, augment, error)) {
    g_prefix_error (error, "%s: ", cli->config);
    return FALSE;
  }
  return TRUE;
}

/* ---- Settings ------------------------------------------------------------------------------ */

static gboolean
check_resume_options (const Run *run, GError **error)
{
  const CommandLine *c = &run->cli;
  if (c->config != NULL) {
    AclipImageEncoderConfig encoder;
    AclipSimclrConfig head;
    AclipAugmentConfig augment;
    if (!model_from_command_line (c, &encoder, &head, &augment, error))
      return FALSE;
    if (memcmp (&encoder, &run->encoder_config, sizeof encoder) != 0 ||
        memcmp (&head, &run->head_config, sizeof head) != 0 ||
        memcmp (&augment, &run->augment_config, sizeof augment) != 0)
      return astroclip_usage_error (error,
                                    _("--config=%s differs from the checkpoint being resumed; "
                                      "leave it out or start a new run without --resume"),
                                    c->config);
  }
  return astroclip_run_check_resume (&c->run, &run->settings, error);
}

/* ---- Checkpoints --------------------------------------------------------------------------- */

static char *
checkpoint_text (const Run *run, gint64 step)
{
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  aclip_image_encoder_config_save (&run->encoder_config, key_file);
  aclip_simclr_config_save (&run->head_config, key_file);
  aclip_augment_config_save (&run->augment_config, key_file);
  g_key_file_set_string (key_file, TRAINING_GROUP, "stage", STAGE);
  g_key_file_set_string (key_file, TRAINING_GROUP, "objective", "simclr");
  g_key_file_set_int64 (key_file, TRAINING_GROUP, "step", step);
  g_key_file_set_integer (key_file, TRAINING_GROUP, "epoch", run->epoch);
  astroclip_run_settings_save (&run->settings, key_file);
  if (isfinite (run->last_loss))
    g_key_file_set_double (key_file, TRAINING_GROUP, "train_loss", run->last_loss);
  if (isfinite (run->val_top1)) {
    g_key_file_set_double (key_file, TRAINING_GROUP, "val_top1", run->val_top1);
    g_key_file_set_double (key_file, TRAINING_GROUP, "val_loss", run->val_loss);
    g_key_file_set_int64 (key_file, TRAINING_GROUP, "val_galaxies", run->n_validation);
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

/* Reads the checkpoint to resume: configuration and settings (the tensors come later). */
static gboolean
open_resume_checkpoint (Run *run, AclipCheckpoint **checkpoint, GError **error)
{
  *checkpoint = aclip_checkpoint_open (run->out, error);
  if (*checkpoint == NULL)
    return FALSE;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  model_init_default (&run->encoder_config, &run->head_config, &run->augment_config);
  if (!g_key_file_load_from_data (key_file, aclip_checkpoint_get_text (*checkpoint), (gsize) -1,
                                  G_KEY_FILE_NONE, &local) ||
      !model_load (key_file, TRUE, &run->encoder_config, &run->head_config, &run->augment_config,
                   &local) ||
      !astroclip_run_settings_load (&run->settings, key_file, STAGE, &local)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, _("%s: cannot resume: %s"), run->out,
                 local->message);
    return FALSE;
  }
  run->epoch = g_key_file_get_integer (key_file, TRAINING_GROUP, "epoch", NULL);
  return TRUE;
}

/* ---- Views and validation ------------------------------------------------------------------ */

/* Two views of each of the batch's n images into run->input [2n, 3, S, S] (views 0, then
 * views 1); view v of image i is drawn from (seed, step, sample[i], v). */
static void
make_views (Run *run, const AstroclipBatch *batch, gint64 step, gboolean by_row)
{
  int n = batch->n;
  for (int v = 0; v < 2; v++)
    for (int i = 0; i < n; i++)
      aclip_augment_params_draw (&run->augment_config, run->settings.seed, step,
                                 by_row ? batch->rows[i] : i, v, &run->views[v * n + i]);
  aclip_augment_batch (run->pool, &run->augment_config, &run->rgb, run->views, run->input,
                       batch->images, n, 2, run->height, run->width, run->augment_workspace);
}

/* Embeds the two fixed views of every validation galaxy (BN in evaluation mode) and scores
 * retrieval of the other view among all of them. FALSE with no error when a stop was
 * requested meanwhile. */
static gboolean
validate (Run *run, gint64 step, GError **error)
{
  if (run->validation == NULL)
    return TRUE;
  int d = run->head_config.dim;
  gint64 n_done = 0;
  float *z0 = run->validation_projections;
  float *z1 = z0 + (gsize) run->n_validation * d;

  astroclip_loader_seek (run->validation, 0, 0);
  gint64 n_batches = astroclip_loader_batches_per_epoch (run->validation);
  for (gint64 b = 0; b < n_batches; b++) {
    const AstroclipBatch *batch = astroclip_loader_next (run->validation, error);
    if (batch == NULL)
      return FALSE;
    make_views (run, batch, VALIDATION_STEP, TRUE);
    const float *z = aclip_simclr_embed (run->simclr, run->pool, run->input, 2 * batch->n, FALSE);
    memcpy (z0 + (gsize) n_done * d, z, sizeof (float) * (gsize) batch->n * d);
    memcpy (z1 + (gsize) n_done * d, z + (gsize) batch->n * d,
            sizeof (float) * (gsize) batch->n * d);
    n_done += batch->n;
    if (astroclip_stop_watch_requested (run->stop))
      return FALSE;
  }
  g_assert (n_done == run->n_validation);
  float accuracy[2];
  run->val_loss = aclip_infonce_forward (z0, z1, n_done, d, 1.0f / run->head_config.temperature,
                                         run->validation_workspace, accuracy);
  run->val_top1 = 0.5 * ((double) accuracy[0] + accuracy[1]);
  astroclip_progress_metric (run->progress, "val_top1", run->val_top1, step);
  astroclip_progress_metric (run->progress, "val_loss", run->val_loss, step);
  return TRUE;
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
      N_("Catalogue with images to train on (its train split; the validation split for the "
          "retrieval score)"),
      N_("FILE") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &c->out, N_("Checkpoint to write"), N_("FILE") },
    { "epochs", 0, 0, G_OPTION_ARG_INT64, &c->epochs,
      N_("Passes over the train split (default 8)"), N_("N") },
    { "steps", 0, 0, G_OPTION_ARG_INT64, &c->steps, N_("Optimiser steps, instead of --epochs"),
      N_("N") },
    { "batch-size", 'b', 0, G_OPTION_ARG_INT, &c->batch_size,
      N_("Galaxies per step, two views of each (default 64)"), N_("N") },
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
      N_("Validation retrieval score every N steps (default 250; 0: only at the start and the "
          "end)"),
      N_("N") },
    { "max-validation", 0, 0, G_OPTION_ARG_INT64, &c->max_validation,
      N_("Validate on the first N galaxies of the validation split (default 512; 0: all)"),
      N_("N") },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &run->cli.config,
      N_("Key file whose [image_encoder], [simclr] and [augment] sections override the default "
          "model and augmentations"),
      N_("FILE") },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new (
      _("— pretrain the image encoder on augmented views of each galaxy (SimCLR)"));
  if (!astroclip_train_parse_command_line (context, entries, &run->options, argc, argv, STAGE)) {
    *status = 2;
    return FALSE;
  }
  const char *problem = *argc > 1 ? _("unexpected argument")
                                   : astroclip_run_command_line_problem (c, run->options.resume);
  if (problem == NULL && c->batch_size == 1)
    problem = _("a contrastive batch needs at least 2 galaxies");
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

static gboolean
open_loaders (Run *run, GError **error)
{
  if (!astroclip_run_open_loaders (&run->settings, STAGE, TRUE, FALSE, &run->train,
                                   &run->validation, error))
    return FALSE;
  run->height = astroclip_loader_image_height (run->train);
  run->width = astroclip_loader_image_width (run->train);
  if (run->validation != NULL) {
    run->n_validation = astroclip_loader_n_galaxies (run->validation);
    if (run->n_validation < 2) {
      g_printerr (_("astroclip %s: the validation split has fewer than 2 galaxies: no "
                     "validation\n"),
                  STAGE);
      g_clear_pointer (&run->validation, astroclip_loader_free);
    }
  }
  return TRUE;
}

/* The parameter table, the encoder, the objective and the batch buffers. */
static gboolean
build_model (Run *run, GError **error)
{
  run->params = aclip_params_new ();
  if (!aclip_image_encoder_register (&run->encoder_config, run->params, ENCODER_PREFIX, error) ||
      !aclip_simclr_register (&run->head_config,
                              aclip_image_encoder_config_channels (&run->encoder_config),
                              run->params, HEAD_PREFIX, error) ||
      !aclip_params_seal (run->params, ACLIP_PARAMS_TRAINING, error))
    return FALSE;

  int pairs = run->settings.batch_size;
  run->encoder =
      aclip_image_encoder_new (&run->encoder_config, run->params, ENCODER_PREFIX, 2 * pairs, error);
  if (run->encoder == NULL)
    return FALSE;
  run->simclr =
      aclip_simclr_new (&run->head_config, run->encoder, run->params, HEAD_PREFIX, pairs, error);
  if (run->simclr == NULL)
    return FALSE;

  int size = aclip_image_encoder_config_input_size (&run->encoder_config);
  run->input = g_try_new (float, (gsize) 2 * pairs * 3 * size * size);
  run->views = g_try_new (AclipAugmentParams, 2 * (gsize) pairs);
  run->augment_workspace =
      g_try_new (float, aclip_augment_batch_workspace_size (
                            &run->augment_config, aclip_thread_pool_n_threads (run->pool)));
  gboolean ok = run->input != NULL && run->views != NULL && run->augment_workspace != NULL;
  if (run->validation != NULL) {
    gsize n = (gsize) run->n_validation;
    run->validation_projections = g_try_new (float, 2 * n * run->head_config.dim);
    run->validation_workspace = g_try_new (float, aclip_infonce_workspace_size (n));
    ok = ok && run->validation_projections != NULL && run->validation_workspace != NULL;
  }
  if (!ok) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO,
                 _("not enough memory for batches of %d galaxies"), pairs);
    return FALSE;
  }
  return TRUE;
}

/* ---- The step loop's callbacks (astroclip_train_run) ---------------------------------------- */

static gboolean
train_step (gpointer data, const AstroclipBatch *batch, gint64 step, double lr, double *loss)
{
  Run *run = data;
  run->epoch = batch->epoch;
  make_views (run, batch, step, FALSE);

  aclip_params_zero_grads (run->params);
  float accuracy[2];
  *loss = aclip_simclr_forward (run->simclr, run->pool, run->input, batch->n, TRUE, accuracy);
  run->last_loss = *loss;
  run->train_top1 = 0.5 * ((double) accuracy[0] + accuracy[1]);
  if (!isfinite (*loss))
    return FALSE;
  aclip_simclr_backward (run->simclr, run->pool, 1.0f);
  return astroclip_run_update (run->pool, run->params, run->settings.grad_clip, &run->adamw, lr);
}

static gboolean
validate_step (gpointer data, gint64 step, GError **error)
{
  Run *run = data;
  /* The batch's own two-view retrieval (among its P galaxies, BN in training mode). */
  if (step > 0)
    astroclip_progress_metric (run->progress, "train_top1", run->train_top1, step);
  return validate (run, step, error);
}

static char *
summary (gpointer data)
{
  Run *run = data;
  if (!isfinite (run->val_top1))
    return g_strdup (_("no validation galaxies"));
  return g_strdup_printf (_("validation: the other view is the nearest for %.1f%% of "
                            "%" PRId64 " galaxies (chance %.2f%%)"),
                          100.0 * run->val_top1, run->n_validation,
                          100.0 / (double) run->n_validation);
}

static int
train (Run *run)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AclipCheckpoint) checkpoint = NULL;
  const AstroclipRunCommandLine *cli = &run->cli.run;
  run->out = g_canonicalize_filename (cli->out, NULL);
  run->last_loss = run->val_top1 = run->val_loss = NAN;
  aclip_rgb_params_init_legacy (&run->rgb);

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
    if (!model_from_command_line (&run->cli, &run->encoder_config, &run->head_config,
                                  &run->augment_config, &error)) {
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
  }
  if (!open_loaders (run, &error))
    return astroclip_report_error (STAGE, error);
  gint64 batches_per_epoch = astroclip_loader_batches_per_epoch (run->train);
  if (!resuming)
    settings_from_command_line (run, batches_per_epoch);
  const AstroclipRunSettings *s = &run->settings;

  run->pool = astroclip_train_setup_threads (&run->options);
  if (!build_model (run, &error))
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
      _("image encoder: %" PRId64 " parameters with the head; a %d-pixel crop, input %d×%d, "
         "%d tokens of %d channels; %.0f MFLOP per image; %.0f MiB of activations"),
      aclip_params_n_elements (run->params), e->crop, side, side,
      aclip_image_encoder_config_n_tokens (e), aclip_image_encoder_config_channels (e),
      2e-6 * aclip_image_encoder_config_flops (e),
      (double) aclip_image_encoder_activation_bytes (run->encoder) / (1 << 20));
  astroclip_progress_message (
      run->progress,
      _("%" PRId64 " training galaxies, %" PRId64 " validation galaxies; %" PRId64
         " steps of %d galaxies, two views each (%.2f epochs)%s"),
      astroclip_loader_n_galaxies (run->train), run->validation ? run->n_validation : 0,
      s->total_steps, s->batch_size, (double) s->total_steps / (double) batches_per_epoch,
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
  static const AstroclipRunCallbacks callbacks = { train_step, validate_step, save_checkpoint,
                                                     summary };
  return astroclip_train_run (&loop, &callbacks, run);
}

int
astroclip_pretrain_images_main (int argc, char **argv)
{
  Run run = { 0 };
  int status = 0;
  if (parse (&run, &argc, &argv, &status))
    status = train (&run);
  run_clear (&run);
  return status;
}
