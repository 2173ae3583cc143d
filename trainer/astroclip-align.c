/* astroclip align — contrastive alignment of the pretrained spectrum and image encoders in a
 * shared embedding space (core/aclip-model.h, core/aclip-head.h; docs/trainer.md).
 *
 * The model starts from the two pretraining checkpoints (the encoders' tensors by name) with
 * fresh heads. Each step takes B galaxies of the train split that have both an image and a
 * spectrum, embeds a lightly augmented view of each image (BN in evaluation mode) and each
 * spectrum, and minimises the symmetric InfoNCE of the L2-normalised embeddings with AdamW
 * under a warm-up + cosine schedule, updating only what --finetune makes trainable, plus
 * (--spectrum-views W, default 1; by default in all epochs but the last) W times the InfoNCE
 * between each spectrum and a second view of it with its noise drawn again, on the shared
 * embedding or (--spectrum-view-head) on a third head's (docs/trainer.md). The validation
 * metric, before the first step, every --validate-every steps and at the end, is the top-1
 * retrieval accuracy image → spectrum among the first --max-validation galaxies of the
 * validation split (centre crops, no augmentation).
 *
 * A checkpoint (every tensor: both encoders, the heads, the logit scale; the AdamW state) is
 * saved every --save-every seconds, at the end and on SIGINT/SIGTERM (after the step in
 * progress, exit 0); --resume continues from it. Its text holds [spectrum_encoder],
 * [image_encoder], [heads] and [training].
 */
#include "astroclip-commands.h"
#include "astroclip-train.h"

#include "aclip-augment.h"
#include "aclip-catalogue.h"
#include "aclip-checkpoint.h"
#include "aclip-error.h"
#include "aclip-loss.h"
#include "aclip-model.h"
#include "aclip-optim.h"
#include "aclip-render.h"
#include "aclip-rng.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define STAGE          "align"
#define TRAINING_GROUP "training"

#define DEFAULT_EPOCHS         4
#define DEFAULT_BATCH_SIZE     128
#define DEFAULT_LR             1e-3 /* measured best: data/models/README.md */
#define DEFAULT_WEIGHT_DECAY   0.05
#define DEFAULT_VALIDATE_EVERY 250
#define DEFAULT_MAX_VALIDATION 512
#define DEFAULT_FINETUNE       "last-layers" /* measured best: docs/default-model */
/* Second spectrum views, in all but the last epoch: measured best, data/models/README.md */
#define DEFAULT_SPECTRUM_VIEWS 1.0
#define WARMUP_FRACTION        0.05 /* of the steps, at most MAX_WARMUP */
#define MAX_WARMUP             300
#define FINAL_LR_FRACTION      0.01
#define GRAD_CLIP              1.0
#define MAX_LOGIT_SCALE        100.0 /* CLIP's clamp of a learned scale */

/* Seeds the noise of the second spectrum views (--spectrum-views), apart from other draws. */
#define SPECTRUM_VIEW_STREAM 0x5350454356494557

typedef enum
{
  FINETUNE_HEADS_ONLY, /* "none" or "heads-only": encoders frozen */
  FINETUNE_LAST_LAYERS,
  FINETUNE_ALL,
} Finetune;

static const char *const finetune_names[] = { "heads-only", "last-layers", "all" };

typedef struct
{
  char *catalogue, *spectrum_model, *image_model, *out, *finetune;
  gint64 steps, epochs, warmup, max_galaxies, validate_every, max_validation;
  int batch_size, spectrum_view_count, spectrum_view_epochs;
  double lr, weight_decay, logit_scale, spectrum_views;
  gboolean learn_logit_scale, spectrum_view_head;
} CommandLine;

/* Saved in [training] and restored on --resume. */
typedef struct
{
  char *catalogue, *spectrum_model, *image_model; /* absolute */
  guint64 seed;
  int batch_size;
  gint64 total_steps, warmup_steps, max_galaxies, validate_every, max_validation;
  double lr, final_lr, weight_decay, logit_scale;
  double spectrum_views; /* weight of the spectrum–spectrum InfoNCE; 0: the paper's loss only */
  int spectrum_view_count; /* galaxies of a batch given a second view, 2 to batch_size */
  int spectrum_view_epochs;    /* the first epochs with second views; 0: all of them */
  gboolean spectrum_view_head; /* the view loss on a head of its own, not the shared embedding */
  gboolean learn_logit_scale;
  Finetune finetune;
} Settings;

typedef struct
{
  AstroclipTrainOptions options;
  CommandLine cli;
  Settings settings;
  char *out;
  AclipThreadPool *pool;
  AstroclipProgress *progress;
  AstroclipStopWatch *stop;
  AstroclipLoader *train, *validation;
  int height, width;
  AclipModel *model;
  gboolean *trainable; /* [n_tensors] */
  AclipAugmentConfig augment;
  AclipRgbParams rgb;
  AclipAugmentParams *views; /* [B] */
  float *input;              /* [B, 3, S, S] */
  float *augment_workspace;
  float *image_emb;                 /* [B, D] copy of the step's image embeddings */
  float *spectrum_emb, *d_spectrum; /* [B + V, D]: the observed spectra, then the noisier
                                     * second views of the first V (--spectrum-view-count;
                                     * V = 0 without --spectrum-views) */
  float *d_image;                   /* [B, D] */
  float *view_flux, *view_ivar;     /* [B + V, n_wave] with --spectrum-views, else NULL */
  float *loss_workspace;            /* aclip_infonce_workspace_size (B) */
  float *view_workspace;            /* aclip_infonce_workspace_size (V) */
  float *d_view_head;               /* [B + V, D] with --spectrum-view-head, else NULL */
  float *val_image, *val_spectrum;  /* [N_val, D] */
  float *val_workspace;
  gint64 n_validation;
  int epoch;
  double last_loss, val_top1, val_loss;
  double last_view_loss; /* the last step's spectrum–spectrum InfoNCE (--spectrum-views) */
  float train_top1;      /* the last step's image → spectrum retrieval within its batch */
  AclipAdamWConfig adamw;
} Run;

static void
run_clear (Run *run)
{
  g_clear_pointer (&run->model, aclip_model_free);
  g_clear_pointer (&run->train, astroclip_loader_free);
  g_clear_pointer (&run->validation, astroclip_loader_free);
  g_clear_pointer (&run->stop, astroclip_stop_watch_free);
  g_clear_pointer (&run->progress, astroclip_progress_free);
  g_clear_pointer (&run->pool, aclip_thread_pool_free);
  g_free (run->trainable);
  g_free (run->views);
  g_free (run->input);
  g_free (run->augment_workspace);
  g_free (run->image_emb);
  g_free (run->spectrum_emb);
  g_free (run->d_image);
  g_free (run->d_spectrum);
  g_free (run->loss_workspace);
  g_free (run->view_flux);
  g_free (run->view_ivar);
  g_free (run->view_workspace);
  g_free (run->d_view_head);
  g_free (run->val_image);
  g_free (run->val_spectrum);
  g_free (run->val_workspace);
  g_free (run->out);
  g_free (run->settings.catalogue);
  g_free (run->settings.spectrum_model);
  g_free (run->settings.image_model);
  g_free (run->cli.catalogue);
  g_free (run->cli.spectrum_model);
  g_free (run->cli.image_model);
  g_free (run->cli.out);
  g_free (run->cli.finetune);
  astroclip_train_options_clear (&run->options);
}

static gboolean
parse_finetune (const char *text, Finetune *finetune)
{
  if (g_strcmp0 (text, "none") == 0 || g_strcmp0 (text, "heads-only") == 0)
    *finetune = FINETUNE_HEADS_ONLY;
  else if (g_strcmp0 (text, "last-layers") == 0)
    *finetune = FINETUNE_LAST_LAYERS;
  else if (g_strcmp0 (text, "all") == 0)
    *finetune = FINETUNE_ALL;
  else
    return FALSE;
  return TRUE;
}

/* ---- Settings ------------------------------------------------------------------------------ */

static void
settings_save (const Settings *s, GKeyFile *k)
{
  const char *g = TRAINING_GROUP;
  g_key_file_set_string (k, g, "catalogue", s->catalogue);
  g_key_file_set_string (k, g, "spectrum_model", s->spectrum_model);
  g_key_file_set_string (k, g, "image_model", s->image_model);
  g_key_file_set_uint64 (k, g, "seed", s->seed);
  g_key_file_set_integer (k, g, "batch_size", s->batch_size);
  g_key_file_set_int64 (k, g, "total_steps", s->total_steps);
  g_key_file_set_int64 (k, g, "warmup_steps", s->warmup_steps);
  g_key_file_set_int64 (k, g, "max_galaxies", s->max_galaxies);
  g_key_file_set_int64 (k, g, "validate_every", s->validate_every);
  g_key_file_set_int64 (k, g, "max_validation", s->max_validation);
  g_key_file_set_double (k, g, "lr", s->lr);
  g_key_file_set_double (k, g, "final_lr", s->final_lr);
  g_key_file_set_double (k, g, "weight_decay", s->weight_decay);
  g_key_file_set_double (k, g, "logit_scale", s->logit_scale);
  g_key_file_set_boolean (k, g, "learn_logit_scale", s->learn_logit_scale);
  g_key_file_set_double (k, g, "spectrum_views", s->spectrum_views);
  g_key_file_set_integer (k, g, "spectrum_view_count", s->spectrum_view_count);
  g_key_file_set_integer (k, g, "spectrum_view_epochs", s->spectrum_view_epochs);
  g_key_file_set_boolean (k, g, "spectrum_view_head", s->spectrum_view_head);
  g_key_file_set_string (k, g, "finetune", finetune_names[s->finetune]);
}

static gboolean
settings_load (Settings *s, GKeyFile *k, GError **error)
{
  const char *g = TRAINING_GROUP;
  GError *local = NULL;
  g_autofree char *stage = g_key_file_get_string (k, g, "stage", NULL);
  if (g_strcmp0 (stage, STAGE) != 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("the checkpoint is not from %s (its stage is “%s”)"), STAGE,
                 stage ? stage : "");
    return FALSE;
  }
  g_autofree char *finetune = NULL;
#define GET(field, getter)                                                                         \
  if (local == NULL)                                                                               \
    s->field = getter (k, g, #field, &local);
  GET (catalogue, g_key_file_get_string);
  GET (spectrum_model, g_key_file_get_string);
  GET (image_model, g_key_file_get_string);
  GET (seed, g_key_file_get_uint64);
  GET (batch_size, g_key_file_get_integer);
  GET (total_steps, g_key_file_get_int64);
  GET (warmup_steps, g_key_file_get_int64);
  GET (max_galaxies, g_key_file_get_int64);
  GET (validate_every, g_key_file_get_int64);
  GET (max_validation, g_key_file_get_int64);
  GET (lr, g_key_file_get_double);
  GET (final_lr, g_key_file_get_double);
  GET (weight_decay, g_key_file_get_double);
  GET (logit_scale, g_key_file_get_double);
  GET (learn_logit_scale, g_key_file_get_boolean);
#undef GET
  /* Absent from checkpoints written before the option existed: the paper's loss. */
  s->spectrum_views = 0.0;
  if (local == NULL && g_key_file_has_key (k, g, "spectrum_views", NULL))
    s->spectrum_views = g_key_file_get_double (k, g, "spectrum_views", &local);
  /* Absent: written when every galaxy of a batch had a second view. */
  s->spectrum_view_count = s->batch_size;
  if (local == NULL && g_key_file_has_key (k, g, "spectrum_view_count", NULL))
    s->spectrum_view_count = g_key_file_get_integer (k, g, "spectrum_view_count", &local);
  /* Absent: the views ran in every epoch. */
  s->spectrum_view_epochs = 0;
  if (local == NULL && g_key_file_has_key (k, g, "spectrum_view_epochs", NULL))
    s->spectrum_view_epochs = g_key_file_get_integer (k, g, "spectrum_view_epochs", &local);
  s->spectrum_view_head = FALSE;
  if (local == NULL && g_key_file_has_key (k, g, "spectrum_view_head", NULL))
    s->spectrum_view_head = g_key_file_get_boolean (k, g, "spectrum_view_head", &local);
  if (local == NULL)
    finetune = g_key_file_get_string (k, g, "finetune", &local);
  if (local != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("[%s]: %s"), g, local->message);
    g_error_free (local);
    return FALSE;
  }
  if (!parse_finetune (finetune, &s->finetune) || s->batch_size < 2 ||
      !(s->spectrum_views >= 0 && isfinite (s->spectrum_views)) || s->spectrum_view_count < 2 ||
      s->spectrum_view_count > s->batch_size || s->spectrum_view_epochs < 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, _("[%s]: invalid settings"), g);
    return FALSE;
  }
  return TRUE;
}

/* Galaxies of a full batch that get a second spectrum view: V with --spectrum-views, else 0. */
static int
settings_n_views (const Settings *s)
{
  return s->spectrum_views > 0 ? s->spectrum_view_count : 0;
}

/* ---- Checkpoints --------------------------------------------------------------------------- */

static gboolean
save_checkpoint (gpointer data, gint64 step, GError **error)
{
  Run *run = data;
  g_autoptr (GKeyFile) k = g_key_file_new ();
  aclip_model_config_save (aclip_model_get_config (run->model), k);
  g_key_file_set_string (k, TRAINING_GROUP, "stage", STAGE);
  g_key_file_set_string (k, TRAINING_GROUP, "objective", "infonce");
  g_key_file_set_int64 (k, TRAINING_GROUP, "step", step);
  g_key_file_set_integer (k, TRAINING_GROUP, "epoch", run->epoch);
  settings_save (&run->settings, k);
  if (isfinite (run->last_loss))
    g_key_file_set_double (k, TRAINING_GROUP, "train_loss", run->last_loss);
  if (isfinite (run->val_top1)) {
    g_key_file_set_double (k, TRAINING_GROUP, "val_top1", run->val_top1);
    g_key_file_set_double (k, TRAINING_GROUP, "val_loss", run->val_loss);
    g_key_file_set_int64 (k, TRAINING_GROUP, "val_galaxies", run->n_validation);
  }
  g_autofree char *text = g_key_file_to_data (k, NULL, NULL);
  return aclip_checkpoint_save (run->out, text, aclip_model_params (run->model), TRUE, NULL, NULL,
                                error);
}

/* ---- What trains --------------------------------------------------------------------------- */

static gboolean
starts_with_any (const char *name, const char *const *prefixes)
{
  for (int i = 0; prefixes[i] != NULL; i++)
    if (g_str_has_prefix (name, prefixes[i]))
      return TRUE;
  return FALSE;
}

static void
choose_trainable (Run *run)
{
  AclipParams *params = aclip_model_params (run->model);
  const AclipModelConfig *config = aclip_model_get_config (run->model);
  int n = aclip_params_n_tensors (params);
  run->trainable = g_new0 (gboolean, n);
  g_autofree char *last_block = g_strdup_printf ("%sblocks.%d.", ACLIP_MODEL_SPECTRUM_PREFIX,
                                                 config->spectrum.n_layers - 1);
  g_autofree char *last_stage =
      g_strdup_printf ("%slayer%d.", ACLIP_MODEL_IMAGE_PREFIX, config->image.n_stages);
  const char *heads[] = { ACLIP_MODEL_SPECTRUM_HEAD_PREFIX, ACLIP_MODEL_IMAGE_HEAD_PREFIX,
                          ACLIP_MODEL_SPECTRUM_VIEW_HEAD_PREFIX, NULL };
  const char *last[] = { last_block, ACLIP_MODEL_SPECTRUM_PREFIX "final_norm.", last_stage,
                         NULL };
  for (int i = 0; i < n; i++) {
    const char *name = aclip_params_info (params, i)->name;
    if (strcmp (name, ACLIP_MODEL_LOGIT_SCALE) == 0)
      run->trainable[i] = run->settings.learn_logit_scale;
    else if (starts_with_any (name, heads))
      run->trainable[i] = TRUE;
    else if (run->settings.finetune == FINETUNE_ALL)
      run->trainable[i] = TRUE;
    else if (run->settings.finetune == FINETUNE_LAST_LAYERS)
      run->trainable[i] = starts_with_any (name, last);
  }
}

/* Zeroes the gradients of frozen tensors (so they count in no norm), clips, and takes one
 * AdamW step on the trainable tensors only: a frozen tensor keeps its values exactly, decay
 * included. FALSE when the gradient is not finite (nothing is updated but the step count). */
static gboolean
optimiser_step (Run *run, const AclipAdamWConfig *adamw, double lr)
{
  AclipParams *params = aclip_model_params (run->model);
  int n = aclip_params_n_tensors (params);
  for (int i = 0; i < n; i++)
    if (!run->trainable[i])
      memset (aclip_params_grad (params, i), 0,
              sizeof (float) * (gsize) aclip_params_info (params, i)->n_elements);
  double norm = aclip_clip_grad_norm (run->pool, aclip_params_grads (params),
                                      aclip_params_n_floats (params), GRAD_CLIP);
  gint64 step = aclip_params_get_step (params) + 1;
  aclip_params_set_step (params, step);
  if (!isfinite (norm))
    return FALSE;
  float *m = aclip_params_adam_m (params), *v = aclip_params_adam_v (params);
  for (int i = 0; i < n; i++) {
    if (!run->trainable[i])
      continue;
    const AclipParamInfo *info = aclip_params_info (params, i);
    double decay = (info->flags & ACLIP_PARAM_DECAY) ? adamw->weight_decay : 0.0;
    aclip_adamw_update (aclip_params_value (params, i), aclip_params_grad (params, i),
                        m + info->offset, v + info->offset, (gsize) info->n_elements, adamw, lr,
                        decay, step);
  }
  float *log_scale = aclip_params_value_by_name (params, ACLIP_MODEL_LOGIT_SCALE);
  log_scale[0] = (float) CLAMP (log_scale[0], 0.0, log (MAX_LOGIT_SCALE));
  return TRUE;
}

/* ---- Validation ---------------------------------------------------------------------------- */

static gboolean
validate (Run *run, gint64 step, GError **error)
{
  if (run->validation == NULL)
    return TRUE;
  int d = aclip_model_dim (run->model);
  gint64 done = 0;
  astroclip_loader_seek (run->validation, 0, 0);
  gint64 n_batches = astroclip_loader_batches_per_epoch (run->validation);
  for (gint64 b = 0; b < n_batches; b++) {
    const AstroclipBatch *batch = astroclip_loader_next (run->validation, error);
    if (batch == NULL)
      return FALSE;
    const float *zi = aclip_model_embed_images (run->model, run->pool, batch->images, batch->n,
                                                run->height, run->width);
    memcpy (run->val_image + (gsize) done * d, zi, sizeof (float) * (gsize) batch->n * d);
    const float *zs =
        aclip_model_embed_spectra (run->model, run->pool, batch->flux, batch->ivar, batch->n);
    memcpy (run->val_spectrum + (gsize) done * d, zs, sizeof (float) * (gsize) batch->n * d);
    done += batch->n;
    if (astroclip_stop_watch_requested (run->stop))
      return FALSE;
  }
  float accuracy[2];
  run->val_loss = aclip_infonce_forward (run->val_image, run->val_spectrum, done, d,
                                         (float) aclip_model_logit_scale (run->model),
                                         run->val_workspace, accuracy);
  run->val_top1 = accuracy[0];
  astroclip_progress_metric (run->progress, "val_top1", run->val_top1, step);
  astroclip_progress_metric (run->progress, "val_loss", run->val_loss, step);
  return TRUE;
}

/* ---- The command --------------------------------------------------------------------------- */

static gboolean
parse (Run *run, int *argc, char ***argv, int *status)
{
  CommandLine *c = &run->cli;
  c->warmup = c->max_galaxies = c->validate_every = c->max_validation = -1;
  c->weight_decay = c->spectrum_views = -1;
  c->spectrum_view_epochs = -1;
  astroclip_train_options_init (&run->options);
  const GOptionEntry entries[] = {
    { "catalogue", 'c', 0, G_OPTION_ARG_FILENAME, &c->catalogue,
      N_("Catalogue of paired images and spectra (its train split; the validation split for "
         "the retrieval score)"),
      N_("FILE") },
    { "spectrum-model", 0, 0, G_OPTION_ARG_FILENAME, &c->spectrum_model,
      N_("Checkpoint of pretrain-spectra"), N_("FILE") },
    { "image-model", 0, 0, G_OPTION_ARG_FILENAME, &c->image_model,
      N_("Checkpoint of pretrain-images"), N_("FILE") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &c->out, N_("Checkpoint to write"), N_("FILE") },
    { "epochs", 0, 0, G_OPTION_ARG_INT64, &c->epochs,
      N_("Passes over the train split (default 4)"), N_("N") },
    { "steps", 0, 0, G_OPTION_ARG_INT64, &c->steps, N_("Optimiser steps, instead of --epochs"),
      N_("N") },
    { "batch-size", 'b', 0, G_OPTION_ARG_INT, &c->batch_size,
      N_("Galaxies per step (default 128)"), N_("N") },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &c->lr, N_("Peak learning rate (default 1e-3)"),
      N_("LR") },
    { "warmup", 0, 0, G_OPTION_ARG_INT64, &c->warmup,
      /* xgettext:no-c-format */
      N_("Warm-up steps (default 5% of the steps, at most 300)"), N_("N") },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &c->weight_decay,
      N_("AdamW weight decay (default 0.05)"), N_("λ") },
    { "logit-scale", 0, 0, G_OPTION_ARG_DOUBLE, &c->logit_scale,
      N_("InfoNCE logit scale, 1/temperature (default 15.5)"), N_("S") },
    { "learn-logit-scale", 0, 0, G_OPTION_ARG_NONE, &c->learn_logit_scale,
      N_("Learn the logit scale (from --logit-scale, at most 100)"), NULL },
    { "finetune", 0, 0, G_OPTION_ARG_STRING, &c->finetune,
      N_("What trains besides the heads: none or heads-only (the encoders frozen; fastest), "
         "last-layers (the last transformer block and image stage; the default), all"),
      N_("WHAT") },
    { "spectrum-views", 0, 0, G_OPTION_ARG_DOUBLE, &c->spectrum_views,
      N_("Add W times an InfoNCE between each spectrum and a second view of it with its noise "
         "drawn again, so that the spectrum embedding keeps what only spectra tell (default 1; "
         "0: the paper's loss only)"),
      N_("W") },
    { "spectrum-view-count", 0, 0, G_OPTION_ARG_INT, &c->spectrum_view_count,
      N_("How many galaxies of each batch get a second view (default: all of them)"),
      N_("N") },
    { "spectrum-view-epochs", 0, 0, G_OPTION_ARG_INT, &c->spectrum_view_epochs,
      N_("Give second views only in the first N epochs, so that the last ones train with the "
         "paper's loss alone (default: all but the last epoch; 0: every epoch)"),
      N_("N") },
    { "spectrum-view-head", 0, 0, G_OPTION_ARG_NONE, &c->spectrum_view_head,
      N_("Compare the two views through a spectrum head of their own instead of the shared "
         "embedding, so that only the spectrum encoder is drawn apart"),
      NULL },
    { "max-galaxies", 0, 0, G_OPTION_ARG_INT64, &c->max_galaxies,
      N_("Use only the first N galaxies of the train split (default: all)"), N_("N") },
    { "validate-every", 0, 0, G_OPTION_ARG_INT64, &c->validate_every,
      N_("Validation retrieval score every N steps (default 250; 0: only at the start and the "
         "end)"),
      N_("N") },
    { "max-validation", 0, 0, G_OPTION_ARG_INT64, &c->max_validation,
      N_("Validate on the first N galaxies of the validation split (default 512; 0: all)"),
      N_("N") },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new (
      _("— align the spectrum and image encoders in a shared embedding space (InfoNCE)"));
  if (!astroclip_train_parse_command_line (context, entries, &run->options, argc, argv, STAGE)) {
    *status = 2;
    return FALSE;
  }
  Finetune finetune;
  gboolean resume = run->options.resume && c->out != NULL && g_file_test (c->out, G_FILE_TEST_EXISTS);
  const char *problem = NULL;
  if (*argc > 1)
    problem = _("unexpected argument");
  else if (c->out == NULL)
    problem = _("give the checkpoint to write with --out");
  else if (!resume && (c->catalogue == NULL || c->spectrum_model == NULL || c->image_model == NULL))
    problem = _("give --catalogue, --spectrum-model and --image-model");
  else if (c->steps > 0 && c->epochs > 0)
    problem = _("give --steps or --epochs, not both");
  else if (c->batch_size == 1 || c->spectrum_view_count == 1)
    problem = _("a contrastive batch needs at least 2 galaxies");
  else if (c->spectrum_views == 0 &&
           (c->spectrum_view_count > 0 || c->spectrum_view_epochs >= 0 || c->spectrum_view_head))
    problem = _("--spectrum-view-count, --spectrum-view-epochs and --spectrum-view-head do "
                 "nothing with --spectrum-views 0");
  else if (c->spectrum_view_count > (c->batch_size > 0 ? c->batch_size : DEFAULT_BATCH_SIZE))
    problem = _("--spectrum-view-count must not exceed the batch size");
  else if (c->finetune != NULL && !parse_finetune (c->finetune, &finetune))
    problem = _("--finetune must be none, heads-only, last-layers or all");
  else if (c->steps < 0 || c->epochs < 0 || c->batch_size < 0 || c->lr < 0 || c->logit_scale < 0 ||
           c->max_galaxies < -1 || c->validate_every < -1 || c->max_validation < -1 ||
           c->warmup < -1 || (c->spectrum_views < 0 && c->spectrum_views != -1) ||
           c->spectrum_view_count < 0 || c->spectrum_view_epochs < -1 ||
           !isfinite (c->spectrum_views) || !isfinite (c->lr) || !isfinite (c->weight_decay) ||
           !isfinite (c->logit_scale) || (c->weight_decay < 0 && c->weight_decay != -1))
    problem = _("sizes, counts and rates must not be negative");
  if (problem != NULL) {
    g_printerr ("astroclip %s: %s\n", STAGE, problem);
    *status = 2;
    return FALSE;
  }
  return TRUE;
}

static void
settings_from_command_line (Run *run)
{
  const CommandLine *c = &run->cli;
  Settings *s = &run->settings;
  s->catalogue = g_canonicalize_filename (c->catalogue, NULL);
  s->spectrum_model = g_canonicalize_filename (c->spectrum_model, NULL);
  s->image_model = g_canonicalize_filename (c->image_model, NULL);
  s->seed = (guint64) run->options.seed;
  s->batch_size = c->batch_size > 0 ? c->batch_size : DEFAULT_BATCH_SIZE;
  s->max_galaxies = MAX (c->max_galaxies, 0);
  s->max_validation = c->max_validation >= 0 ? c->max_validation : DEFAULT_MAX_VALIDATION;
  s->validate_every = c->validate_every >= 0 ? c->validate_every : DEFAULT_VALIDATE_EVERY;
  s->lr = c->lr > 0 ? c->lr : DEFAULT_LR;
  s->final_lr = s->lr * FINAL_LR_FRACTION;
  s->weight_decay = c->weight_decay >= 0 ? c->weight_decay : DEFAULT_WEIGHT_DECAY;
  s->logit_scale = c->logit_scale > 0 ? c->logit_scale : ACLIP_MODEL_DEFAULT_LOGIT_SCALE;
  s->learn_logit_scale = c->learn_logit_scale;
  s->spectrum_views = c->spectrum_views >= 0 ? c->spectrum_views : DEFAULT_SPECTRUM_VIEWS;
  s->spectrum_view_count = c->spectrum_view_count > 0 ? c->spectrum_view_count : s->batch_size;
  /* −1 until the run's length is known (train). */
  s->spectrum_view_epochs = c->spectrum_view_epochs;
  s->spectrum_view_head = c->spectrum_view_head;
  parse_finetune (c->finetune != NULL ? c->finetune : DEFAULT_FINETUNE, &s->finetune);
}

static gboolean
open_loaders (Run *run, GError **error)
{
  AstroclipLoaderRequest request = { 0 };
  request.split = ACLIP_SPLIT_TRAIN;
  request.max_galaxies = run->settings.max_galaxies;
  request.batch_size = run->settings.batch_size;
  request.want_images = TRUE;
  request.want_spectra = TRUE;
  request.shuffle = TRUE;
  request.drop_last = TRUE;
  request.seed = run->settings.seed;
  run->train = astroclip_loader_new (run->settings.catalogue, &request, error);
  if (run->train == NULL)
    return FALSE;
  if (astroclip_loader_batches_per_epoch (run->train) < 1) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("the train split has fewer galaxies than a batch of %d"),
                 run->settings.batch_size);
    return FALSE;
  }
  run->height = astroclip_loader_image_height (run->train);
  run->width = astroclip_loader_image_width (run->train);

  request.split = ACLIP_SPLIT_VALIDATION;
  request.max_galaxies = run->settings.max_validation;
  request.shuffle = FALSE;
  request.drop_last = FALSE;
  g_autoptr (GError) local = NULL;
  run->validation = astroclip_loader_new (run->settings.catalogue, &request, &local);
  if (run->validation == NULL) {
    if (!g_error_matches (local, ACLIP_ERROR, ACLIP_ERROR_VALUE)) {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
    g_printerr ("astroclip %s: %s\n", STAGE, local->message);
  } else {
    run->n_validation = astroclip_loader_n_galaxies (run->validation);
    if (run->n_validation < 2)
      g_clear_pointer (&run->validation, astroclip_loader_free);
  }
  return TRUE;
}

static gboolean
allocate_buffers (Run *run, GError **error)
{
  gsize b = (gsize) run->settings.batch_size, d = (gsize) aclip_model_dim (run->model);
  int side = aclip_model_image_input_size (run->model);
  const AclipModelConfig *config = aclip_model_get_config (run->model);
  aclip_augment_config_init_default (&run->augment, config->image.crop, config->image.downsample);
  /* Light augmentations: the encoder has seen the heavy ones in pretraining. */
  run->augment.min_scale = 0.95f;
  run->augment.max_scale = 1.05f;
  run->augment.max_shift = 2.0f;
  run->augment.max_ebv = 0.02f;
  run->augment.max_blur_sigma = 0.5f;
  run->augment.max_noise_fraction = 0.5f;
  aclip_rgb_params_init_legacy (&run->rgb);
  run->views = g_try_new (AclipAugmentParams, b);
  run->input = g_try_new (float, b * 3 * side * side);
  run->augment_workspace = g_try_new (
      float, MAX (aclip_augment_batch_workspace_size (&run->augment,
                                                      aclip_thread_pool_n_threads (run->pool)),
                  1));
  gsize n_views = (gsize) settings_n_views (&run->settings);
  run->image_emb = g_try_new (float, b * d);
  run->spectrum_emb = g_try_new (float, (b + n_views) * d);
  run->d_image = g_try_new (float, b * d);
  run->d_spectrum = g_try_new (float, (b + n_views) * d);
  run->loss_workspace = g_try_new (float, aclip_infonce_workspace_size ((gint64) b));
  gboolean ok = run->views && run->input && run->augment_workspace && run->image_emb &&
                run->spectrum_emb && run->d_image && run->d_spectrum && run->loss_workspace;
  if (n_views > 0) {
    gsize n_wave = (gsize) astroclip_loader_n_wave (run->train);
    run->view_flux = g_try_new (float, (b + n_views) * n_wave);
    run->view_ivar = g_try_new (float, (b + n_views) * n_wave);
    run->view_workspace = g_try_new (float, aclip_infonce_workspace_size ((gint64) n_views));
    ok = ok && run->view_flux && run->view_ivar && run->view_workspace;
    if (run->settings.spectrum_view_head) {
      run->d_view_head = g_try_new (float, (b + n_views) * d);
      ok = ok && run->d_view_head;
    }
  }
  if (run->validation != NULL) {
    gsize n = (gsize) run->n_validation;
    run->val_image = g_try_new (float, n * d);
    run->val_spectrum = g_try_new (float, n * d);
    run->val_workspace = g_try_new (float, aclip_infonce_workspace_size ((gint64) n));
    ok = ok && run->val_image && run->val_spectrum && run->val_workspace;
  }
  if (!ok)
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO,
                 _("not enough memory for batches of %d galaxies"), run->settings.batch_size);
  return ok;
}

static gboolean
build_model (Run *run, AclipCheckpoint *resume_from, GError **error)
{
  Settings *s = &run->settings;
  /* The backward stops below the last trained layers. */
  AclipModelMode mode = s->finetune == FINETUNE_HEADS_ONLY    ? ACLIP_MODEL_TRAIN_HEADS
                        : s->finetune == FINETUNE_LAST_LAYERS ? ACLIP_MODEL_TRAIN_LAST_LAYERS
                                                              : ACLIP_MODEL_TRAIN_ALL;
  /* With --spectrum-views the spectra of a step and the second views go through the encoder as
   * one batch. */
  int max_batch = s->batch_size + settings_n_views (s);
  if (resume_from != NULL) {
    AclipModelConfig config;
    if (!aclip_model_config_from_checkpoint (&config, resume_from, error))
      return FALSE;
    run->model = aclip_model_new (&config, max_batch, mode, error);
    return run->model != NULL &&
           aclip_checkpoint_restore (resume_from, aclip_model_params (run->model), TRUE, error);
  }
  g_autoptr (AclipCheckpoint) spectrum = aclip_checkpoint_open (s->spectrum_model, error);
  if (spectrum == NULL)
    return FALSE;
  g_autoptr (AclipCheckpoint) image = aclip_checkpoint_open (s->image_model, error);
  if (image == NULL)
    return FALSE;
  AclipHeadConfig head;
  aclip_head_config_init_default (&head);
  run->model = aclip_model_new_from_pretrained (spectrum, image, &head, s->spectrum_view_head,
                                                max_batch, mode, s->seed, run->pool, error);
  if (run->model == NULL)
    return FALSE;
  aclip_params_value_by_name (aclip_model_params (run->model), ACLIP_MODEL_LOGIT_SCALE)[0] =
      (float) log (s->logit_scale);
  return TRUE;
}

/* ---- The step loop's callbacks (astroclip_train_run) ---------------------------------------- */

/* The spectra of a step with --spectrum-views: rows [0, B) of view_flux and view_ivar are the
 * observed spectra, rows [B, B + V) a second view of each of the first V, flux + ε/√ivar with
 * ε ~ N (0, 1) drawn for (seed, step, galaxy) on every good pixel, so the second view's variance
 * is twice the observed one and its inverse variance ivar/2. Masked pixels (ivar 0) stay as they
 * are. The batch is shuffled, so its first V galaxies are a random draw. */
static void
draw_spectrum_views (Run *run, const AstroclipBatch *batch, gint64 step, int n_views)
{
  gsize n = (gsize) batch->n, n_wave = (gsize) astroclip_loader_n_wave (run->train);
  memcpy (run->view_flux, batch->flux, sizeof (float) * n * n_wave);
  memcpy (run->view_ivar, batch->ivar, sizeof (float) * n * n_wave);
  for (gsize i = 0; i < (gsize) n_views; i++) {
    const float *flux = batch->flux + i * n_wave, *ivar = batch->ivar + i * n_wave;
    float *view_flux = run->view_flux + (n + i) * n_wave;
    float *view_ivar = run->view_ivar + (n + i) * n_wave;
    AclipRng rng;
    aclip_rng_init (&rng, run->settings.seed ^ SPECTRUM_VIEW_STREAM, (guint64) step, i);
    for (gsize k = 0; k < n_wave; k++) {
      if (ivar[k] > 0 && isfinite (ivar[k])) {
        view_flux[k] = flux[k] + (float) (aclip_rng_normal (&rng) / sqrt (ivar[k]));
        view_ivar[k] = 0.5f * ivar[k];
      } else {
        view_flux[k] = flux[k];
        view_ivar[k] = ivar[k];
      }
    }
  }
}

static gboolean
train_step (gpointer data, const AstroclipBatch *batch, gint64 step, double lr, double *loss)
{
  Run *run = data;
  const Settings *s = &run->settings;
  AclipParams *params = aclip_model_params (run->model);
  int n = batch->n, d = aclip_model_dim (run->model);
  gsize nd = (gsize) n * d;
  run->epoch = batch->epoch;
  for (int i = 0; i < n; i++)
    aclip_augment_params_draw (&run->augment, s->seed, step, i, 0, &run->views[i]);
  aclip_augment_batch (run->pool, &run->augment, &run->rgb, run->views, run->input, batch->images,
                       n, 1, run->height, run->width, run->augment_workspace);

  /* The spectra, and with --spectrum-views the second views of the first V (of all of a
   * shorter batch), in one encoder batch; none after --spectrum-view-epochs. */
  gboolean view_epoch = s->spectrum_view_epochs == 0 || batch->epoch < s->spectrum_view_epochs;
  int n_views = view_epoch ? MIN (settings_n_views (s), n) : 0;
  gboolean views = n_views > 0;
  const float *flux = batch->flux, *ivar = batch->ivar;
  int n_spectra = n + n_views;
  if (views) {
    draw_spectrum_views (run, batch, step, n_views);
    flux = run->view_flux;
    ivar = run->view_ivar;
  }
  gsize spectra_nd = (gsize) n_spectra * d;

  aclip_params_zero_grads (params);
  memcpy (run->image_emb, aclip_model_forward_images (run->model, run->pool, run->input, n),
          sizeof (float) * nd);
  memcpy (run->spectrum_emb,
          aclip_model_forward_spectra (run->model, run->pool, flux, ivar, n_spectra),
          sizeof (float) * spectra_nd);
  /* [B + V, D]: the view head's embeddings, rows as spectrum_emb's (--spectrum-view-head) */
  const float *view_head_emb =
      views && s->spectrum_view_head
          ? aclip_model_forward_spectrum_view_head (run->model, run->pool, n_spectra)
          : NULL;
  const float *view_emb = view_head_emb != NULL ? view_head_emb : run->spectrum_emb;
  float *d_view = view_head_emb != NULL ? run->d_view_head : run->d_spectrum;
  float scale = (float) aclip_model_logit_scale (run->model);
  float accuracy[2];
  *loss = run->last_loss = aclip_infonce_forward (run->image_emb, run->spectrum_emb, n, d, scale,
                                                  run->loss_workspace, accuracy);
  run->train_top1 = accuracy[0];
  run->last_view_loss = NAN;
  if (views) {
    run->last_view_loss = aclip_infonce_forward (view_emb, view_emb + nd, n_views, d, scale,
                                                 run->view_workspace, NULL);
    *loss = run->last_loss = run->last_loss + s->spectrum_views * run->last_view_loss;
  }
  if (!isfinite (*loss))
    return FALSE;
  memset (run->d_image, 0, sizeof (float) * nd);
  memset (run->d_spectrum, 0, sizeof (float) * spectra_nd);
  float *d_log_scale =
      s->learn_logit_scale ? aclip_params_grad_by_name (params, ACLIP_MODEL_LOGIT_SCALE) : NULL;
  aclip_infonce_backward (run->d_image, run->d_spectrum, d_log_scale, run->image_emb,
                          run->spectrum_emb, n, d, scale, run->loss_workspace, 1.0f);
  if (view_head_emb != NULL)
    memset (d_view, 0, sizeof (float) * spectra_nd);
  if (views)
    aclip_infonce_backward (d_view, d_view + nd, d_log_scale, view_emb, view_emb + nd, n_views, d,
                            scale, run->view_workspace, (float) s->spectrum_views);
  aclip_model_backward_images (run->model, run->pool, run->d_image);
  aclip_model_backward_spectra_with_views (run->model, run->pool, run->d_spectrum,
                                           view_head_emb != NULL ? d_view : NULL);
  return optimiser_step (run, &run->adamw, lr);
}

static gboolean
validate_step (gpointer data, gint64 step, GError **error)
{
  Run *run = data;
  if (step > 0)
    astroclip_progress_metric (run->progress, "train_top1", run->train_top1, step);
  if (step > 0 && isfinite (run->last_view_loss))
    astroclip_progress_metric (run->progress, "train_view_loss", run->last_view_loss, step);
  return validate (run, step, error);
}

static char *
summary (gpointer data)
{
  Run *run = data;
  if (!isfinite (run->val_top1))
    return g_strdup (_("no validation galaxies"));
  return g_strdup_printf (_("validation: image → spectrum top-1 %.1f%% of %" PRId64
                            " galaxies (chance %.2f%%)"),
                          100.0 * run->val_top1, run->n_validation,
                          100.0 / (double) run->n_validation);
}

static int
train (Run *run)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AclipCheckpoint) checkpoint = NULL;
  run->out = g_canonicalize_filename (run->cli.out, NULL);
  run->last_loss = run->val_top1 = run->val_loss = run->last_view_loss = NAN;
  gboolean resuming = run->options.resume && g_file_test (run->out, G_FILE_TEST_EXISTS);
  if (run->options.resume && !resuming)
    g_printerr (_("astroclip %s: %s does not exist yet: starting a new run\n"), STAGE, run->out);
  if (resuming) {
    checkpoint = aclip_checkpoint_open (run->out, &error);
    g_autoptr (GKeyFile) k = g_key_file_new ();
    if (checkpoint == NULL ||
        !g_key_file_load_from_data (k, aclip_checkpoint_get_text (checkpoint), (gsize) -1,
                                    G_KEY_FILE_NONE, &error) ||
        !settings_load (&run->settings, k, &error)) {
      g_prefix_error (&error, _("cannot resume from %s: "), run->out);
      return astroclip_report_error (STAGE, error);
    }
    run->epoch = g_key_file_get_integer (k, TRAINING_GROUP, "epoch", NULL);
  } else {
    settings_from_command_line (run);
  }
  Settings *s = &run->settings;
  {
    g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (s->catalogue, &error);
    if (catalogue == NULL)
      return astroclip_report_error (STAGE, error);
    if (!aclip_catalogue_has_images (catalogue) || !aclip_catalogue_has_spectra (catalogue)) {
      g_printerr (_("astroclip %s: %s does not hold both images and spectra\n"), STAGE,
                  s->catalogue);
      return 1;
    }
  }
  if (!open_loaders (run, &error))
    return astroclip_report_error (STAGE, error);
  if (!resuming) {
    gint64 per_epoch = astroclip_loader_batches_per_epoch (run->train);
    s->total_steps = run->cli.steps > 0
                         ? run->cli.steps
                         : (run->cli.epochs > 0 ? run->cli.epochs : DEFAULT_EPOCHS) * per_epoch;
    s->warmup_steps = run->cli.warmup >= 0
                          ? run->cli.warmup
                          : MIN (MAX_WARMUP, (gint64) ceil (WARMUP_FRACTION * s->total_steps));
    /* By default the views stop for the last epoch, so that the run ends on the paper's loss
     * alone; a run of one epoch (or less) has them throughout. */
    if (s->spectrum_view_epochs < 0) {
      gint64 epochs = (s->total_steps + per_epoch - 1) / per_epoch;
      s->spectrum_view_epochs = epochs >= 2 ? (int) (epochs - 1) : 0;
    }
  }
  run->pool = astroclip_train_setup_threads (&run->options);
  if (!build_model (run, checkpoint, &error) || !allocate_buffers (run, &error))
    return astroclip_report_error (STAGE, error);
  g_clear_pointer (&checkpoint, aclip_checkpoint_free);
  choose_trainable (run);

  AclipParams *params = aclip_model_params (run->model);
  run->stop = astroclip_stop_watch_new ();
  run->progress = astroclip_progress_new (run->options.progress, STAGE, s->total_steps);
  gint64 n_trainable = 0;
  for (int i = 0; i < aclip_params_n_tensors (params); i++)
    if (run->trainable[i])
      n_trainable += aclip_params_info (params, i)->n_elements;
  astroclip_progress_message (
      run->progress,
      _("AstroCLIP model: %" PRId64 " parameters, %" PRId64 " trained (--finetune %s); "
        "%" PRId64 " training galaxies, %" PRId64 " validation galaxies; %" PRId64
        " steps of %d galaxies%s"),
      aclip_params_n_elements (params), n_trainable, finetune_names[s->finetune],
      astroclip_loader_n_galaxies (run->train), run->validation ? run->n_validation : 0,
      s->total_steps, s->batch_size, resuming ? _(", resuming") : "");
  if (s->spectrum_views > 0) {
    g_autofree char *epochs =
        s->spectrum_view_epochs > 0
            ? g_strdup_printf (ngettext ("in the first epoch", "in the first %d epochs",
                                         (gulong) s->spectrum_view_epochs),
                               s->spectrum_view_epochs)
            : g_strdup (_("in every epoch"));
    astroclip_progress_message (run->progress,
                                _("second spectrum views: weight %g, %d galaxies of each batch, "
                                  "%s, compared through %s"),
                                s->spectrum_views, s->spectrum_view_count, epochs,
                                s->spectrum_view_head ? _("their own head")
                                                      : _("the shared embedding"));
  }

  run->adamw = (AclipAdamWConfig) ACLIP_ADAMW_CONFIG_DEFAULT;
  run->adamw.weight_decay = s->weight_decay;
  AstroclipRun loop = {
    STAGE, &run->options, run->progress, run->stop, run->train, params,
    { s->lr, s->final_lr, s->warmup_steps, s->total_steps }, s->validate_every, run->out,
  };
  static const AstroclipRunCallbacks callbacks = { train_step, validate_step, save_checkpoint,
                                                     summary };
  return astroclip_train_run (&loop, &callbacks, run);
}

int
astroclip_align_main (int argc, char **argv)
{
  Run run = { 0 };
  int status = 0;
  if (parse (&run, &argc, &argv, &status))
    status = train (&run);
  run_clear (&run);
  return status;
}
