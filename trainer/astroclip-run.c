/* astroclip-run.c — what the training commands' runs share: the settings saved in a
 * checkpoint's [training] group and checked on --resume, and the step loop with its checkpoint
 * cadence, stop handling, validation cadence and progress events (astroclip-train.h,
 * docs/trainer.md). */
#include "astroclip-train.h"

#include "aclip-error.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#define TRAINING_GROUP "training"
/* Consecutive steps with a non-finite loss or gradient before a run counts as diverged. */
#define MAX_BAD_STEPS 20

gboolean
astroclip_usage_error (GError **error, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG, message);
  return FALSE;
}

/* Settings ----------------------------------------------------------------------------------- */

void
astroclip_run_command_line_init (AstroclipRunCommandLine *cli)
{
  g_return_if_fail (cli != NULL);
  memset (cli, 0, sizeof *cli);
  cli->warmup = cli->max_galaxies = cli->validate_every = cli->max_validation = -1;
  cli->weight_decay = -1;
}

void
astroclip_run_command_line_clear (AstroclipRunCommandLine *cli)
{
  g_return_if_fail (cli != NULL);
  g_clear_pointer (&cli->catalogue, g_free);
  g_clear_pointer (&cli->out, g_free);
}

const char *
astroclip_run_command_line_problem (const AstroclipRunCommandLine *c, gboolean resume)
{
  g_return_val_if_fail (c != NULL, NULL);
  if (c->out == NULL)
    return _("give the checkpoint to write with --out");
  if (c->catalogue == NULL && !resume)
    return _("give the catalogue with --catalogue");
  if (c->steps > 0 && c->epochs > 0)
    return _("give --steps or --epochs, not both");
  if (c->steps < 0 || c->epochs < 0 || c->batch_size < 0 || c->lr < 0 || c->max_galaxies < -1 ||
      c->validate_every < -1 || c->max_validation < -1 || c->warmup < -1 || !isfinite (c->lr) ||
      !isfinite (c->weight_decay) || (c->weight_decay < 0 && c->weight_decay != -1))
    return _("sizes, counts and rates must not be negative");
  return NULL;
}

void
astroclip_run_settings_clear (AstroclipRunSettings *s)
{
  g_return_if_fail (s != NULL);
  g_clear_pointer (&s->catalogue, g_free);
}

void
astroclip_run_settings_save (const AstroclipRunSettings *s, GKeyFile *key_file)
{
  g_return_if_fail (s != NULL && key_file != NULL);
  const char *g = TRAINING_GROUP;
  g_key_file_set_string (key_file, g, "catalogue", s->catalogue);
  g_key_file_set_uint64 (key_file, g, "seed", s->seed);
  g_key_file_set_integer (key_file, g, "batch_size", s->batch_size);
  g_key_file_set_int64 (key_file, g, "total_steps", s->total_steps);
  g_key_file_set_int64 (key_file, g, "warmup_steps", s->warmup_steps);
  g_key_file_set_double (key_file, g, "lr", s->lr);
  g_key_file_set_double (key_file, g, "final_lr", s->final_lr);
  g_key_file_set_double (key_file, g, "weight_decay", s->weight_decay);
  g_key_file_set_double (key_file, g, "grad_clip", s->grad_clip);
  g_key_file_set_int64 (key_file, g, "max_galaxies", s->max_galaxies);
  g_key_file_set_int64 (key_file, g, "validate_every", s->validate_every);
  g_key_file_set_int64 (key_file, g, "max_validation", s->max_validation);
}

gboolean
astroclip_run_settings_load (AstroclipRunSettings *s, GKeyFile *key_file, const char *stage,
                             GError **error)
{
  g_return_val_if_fail (s != NULL && key_file != NULL && stage != NULL, FALSE);
  const char *g = TRAINING_GROUP;
  GError *local = NULL;
  g_autofree char *saved_stage = g_key_file_get_string (key_file, g, "stage", NULL);
  if (g_strcmp0 (saved_stage, stage) != 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("the checkpoint is not from %s (its stage is “%s”)"), stage,
                 saved_stage ? saved_stage : "");
    return FALSE;
  }
  g_free (s->catalogue);
  s->catalogue = g_key_file_get_string (key_file, g, "catalogue", &local);
#define GET(field, getter)                                                                         \
  if (local == NULL)                                                                               \
    s->field = getter (key_file, g, #field, &local);
  GET (seed, g_key_file_get_uint64);
  GET (batch_size, g_key_file_get_integer);
  GET (total_steps, g_key_file_get_int64);
  GET (warmup_steps, g_key_file_get_int64);
  GET (lr, g_key_file_get_double);
  GET (final_lr, g_key_file_get_double);
  GET (weight_decay, g_key_file_get_double);
  GET (grad_clip, g_key_file_get_double);
  GET (max_galaxies, g_key_file_get_int64);
  GET (validate_every, g_key_file_get_int64);
  GET (max_validation, g_key_file_get_int64);
#undef GET
  if (local != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("[%s]: %s"), g, local->message);
    g_error_free (local);
    return FALSE;
  }
  return TRUE;
}

gboolean
astroclip_run_resuming (const AstroclipTrainOptions *options, const char *checkpoint,
                        const char *stage)
{
  g_return_val_if_fail (options != NULL && checkpoint != NULL && stage != NULL, FALSE);
  if (!options->resume)
    return FALSE;
  if (g_file_test (checkpoint, G_FILE_TEST_EXISTS))
    return TRUE;
  g_printerr (_("astroclip %s: %s does not exist yet: starting a new run\n"), stage, checkpoint);
  return FALSE;
}

void
astroclip_run_settings_init (AstroclipRunSettings *s, const AstroclipRunCommandLine *cli,
                             gint64 seed, int default_batch_size, gint64 default_max_validation)
{
  g_return_if_fail (s != NULL && cli != NULL && cli->catalogue != NULL);
  g_free (s->catalogue);
  s->catalogue = g_canonicalize_filename (cli->catalogue, NULL);
  s->seed = (guint64) seed;
  s->batch_size = cli->batch_size > 0 ? cli->batch_size : default_batch_size;
  s->max_galaxies = MAX (cli->max_galaxies, 0);
  s->max_validation = cli->max_validation >= 0 ? cli->max_validation : default_max_validation;
}

gboolean
astroclip_run_open_loaders (const AstroclipRunSettings *s, const char *stage,
                            gboolean want_images, gboolean want_spectra, AstroclipLoader **train,
                            AstroclipLoader **validation, GError **error)
{
  g_return_val_if_fail (s != NULL && stage != NULL && train != NULL && validation != NULL, FALSE);
  AstroclipLoaderRequest request = { 0 };
  request.split = ACLIP_SPLIT_TRAIN;
  request.max_galaxies = s->max_galaxies;
  request.batch_size = s->batch_size;
  request.want_images = want_images;
  request.want_spectra = want_spectra;
  request.shuffle = TRUE;
  request.drop_last = TRUE;
  request.seed = s->seed;
  *train = astroclip_loader_new (s->catalogue, &request, error);
  if (*train == NULL)
    return FALSE;

  request.split = ACLIP_SPLIT_VALIDATION;
  request.max_galaxies = s->max_validation;
  request.shuffle = FALSE;
  request.drop_last = FALSE;
  g_autoptr (GError) local = NULL;
  *validation = astroclip_loader_new (s->catalogue, &request, &local);
  if (*validation == NULL) {
    /* An empty validation split (a small catalogue) is no reason to stop. */
    if (!g_error_matches (local, ACLIP_ERROR, ACLIP_ERROR_VALUE)) {
      g_clear_pointer (train, astroclip_loader_free);
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
    g_printerr ("astroclip %s: %s\n", stage, local->message);
  }
  return TRUE;
}

/* On --resume, an option given on the command line must agree with the checkpoint. */
static gboolean
same_as_checkpoint (gboolean given, double value, double saved, const char *option, GError **error)
{
  if (given && value != saved)
    return astroclip_usage_error (error,
                                  _("--%s=%g differs from the checkpoint being resumed (%g); "
                                    "leave it out or start a new run without --resume"),
                                  option, value, saved);
  return TRUE;
}

gboolean
astroclip_run_check_resume (const AstroclipRunCommandLine *c, const AstroclipRunSettings *s,
                            GError **error)
{
  g_return_val_if_fail (c != NULL && s != NULL, FALSE);
  if (c->epochs > 0)
    return astroclip_usage_error (error, _("--epochs cannot be changed on --resume: the "
                                           "checkpoint says how many steps the run has"));
  if (c->catalogue != NULL) {
    g_autofree char *given = g_canonicalize_filename (c->catalogue, NULL);
    if (strcmp (given, s->catalogue) != 0)
      return astroclip_usage_error (error,
                                    _("--catalogue=%s differs from the checkpoint’s catalogue %s"),
                                    c->catalogue, s->catalogue);
  }
  return same_as_checkpoint (c->batch_size > 0, c->batch_size, s->batch_size, "batch-size",
                             error) &&
         same_as_checkpoint (c->steps > 0, (double) c->steps, (double) s->total_steps, "steps",
                             error) &&
         same_as_checkpoint (c->lr > 0, c->lr, s->lr, "lr", error) &&
         same_as_checkpoint (c->weight_decay >= 0, c->weight_decay, s->weight_decay, "weight-decay",
                             error) &&
         same_as_checkpoint (c->warmup >= 0, (double) c->warmup, (double) s->warmup_steps, "warmup",
                             error) &&
         same_as_checkpoint (c->max_galaxies >= 0, (double) c->max_galaxies,
                             (double) s->max_galaxies, "max-galaxies", error) &&
         same_as_checkpoint (c->validate_every >= 0, (double) c->validate_every,
                             (double) s->validate_every, "validate-every", error) &&
         same_as_checkpoint (c->max_validation >= 0, (double) c->max_validation,
                             (double) s->max_validation, "max-validation", error);
}

/* The step loop ------------------------------------------------------------------------------ */

gboolean
astroclip_run_update (AclipThreadPool *pool, AclipParams *params, double grad_clip,
                      const AclipAdamWConfig *adamw, double lr)
{
  g_return_val_if_fail (params != NULL && adamw != NULL, FALSE);
  double norm = aclip_clip_grad_norm (pool, aclip_params_grads (params),
                                      aclip_params_n_floats (params), grad_clip);
  if (!isfinite (norm))
    return FALSE;
  aclip_adamw_step (pool, params, adamw, lr);
  return TRUE;
}

/* Saves through the command and reports the checkpoint event. */
static gboolean
save (const AstroclipRun *run, const AstroclipRunCallbacks *callbacks, gpointer data, gint64 step,
      GError **error)
{
  if (!callbacks->save (data, step, error))
    return FALSE;
  astroclip_progress_checkpoint (run->progress, run->checkpoint_path, step);
  return TRUE;
}

int
astroclip_train_run (const AstroclipRun *run, const AstroclipRunCallbacks *callbacks,
                     gpointer data)
{
  g_return_val_if_fail (run != NULL && callbacks != NULL, 1);
  g_return_val_if_fail (callbacks->step != NULL && callbacks->save != NULL, 1);
  g_autoptr (GError) error = NULL;
  const gint64 total_steps = run->schedule.total_steps;
  gint64 step = aclip_params_get_step (run->params);
  gint64 last_save_us = g_get_monotonic_time ();
  gboolean stopped = FALSE;
  int bad_steps = 0;

  if (step >= total_steps) {
    astroclip_progress_done (run->progress, "finished", step,
                             _("the checkpoint has already reached its last step"));
    return 0;
  }
  /* A stop asked for during the first validation ends the run before any step. */
  if (step == 0 && callbacks->validate != NULL && !callbacks->validate (data, 0, &error)) {
    if (error != NULL)
      goto failed;
    stopped = TRUE;
  }
  astroclip_loader_seek (run->train, 0, step);
  while (!stopped && step < total_steps) {
    const AstroclipBatch *batch = astroclip_loader_next (run->train, &error);
    if (batch == NULL)
      goto failed;
    double lr = aclip_lr_schedule_at (&run->schedule, step);
    double loss = NAN;
    if (callbacks->step (data, batch, step, lr, &loss)) {
      bad_steps = 0;
    } else {
      /* The update was skipped but the step counts, so data, augmentations and schedule stay
       * aligned with an uninterrupted run. */
      aclip_params_set_step (run->params, step + 1);
      astroclip_progress_message (run->progress,
                                  _("step %" PRId64 ": the loss or its gradient is not finite; "
                                    "the update is skipped"),
                                  step + 1);
      if (++bad_steps >= MAX_BAD_STEPS) {
        g_set_error (&error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                     _("%d steps in a row had a non-finite loss: training diverged"), bad_steps);
        goto failed;
      }
    }
    step++;
    astroclip_progress_update (run->progress, step, batch->epoch, loss, lr, batch->n);

    gboolean last = step == total_steps;
    /* A validation interrupted by a stop (FALSE without an error) is simply not reported;
     * the stop is seen just below. */
    if ((last || (run->validate_every > 0 && step % run->validate_every == 0)) &&
        callbacks->validate != NULL && !callbacks->validate (data, step, &error) && error != NULL)
      goto failed;
    /* Asked once per step (astroclip_stop_watch_requested); a stop asked for during the last
     * step is simply the end. */
    stopped = astroclip_stop_watch_requested (run->stop) && !last;
    if (last || stopped || astroclip_train_save_due (run->options, &last_save_us))
      if (!save (run, callbacks, data, step, &error))
        goto failed;
  }

  if (stopped) {
    if (step == 0 && !save (run, callbacks, data, step, &error))
      goto failed;
    g_autofree char *message =
        g_strdup_printf (_("stopped at step %" PRId64 " of %" PRId64 "; continue with --resume"),
                         step, total_steps);
    astroclip_progress_done (run->progress, "stopped", step, message);
    return 0;
  }
  {
    g_autofree char *message = callbacks->summary != NULL ? callbacks->summary (data) : NULL;
    astroclip_progress_done (run->progress, "finished", step, message);
  }
  return 0;

failed:
  astroclip_progress_done (run->progress, "failed", step, error->message);
  g_printerr ("astroclip %s: %s\n", run->stage, error->message);
  return 1;
}
