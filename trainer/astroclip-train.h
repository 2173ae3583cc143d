/* astroclip-train.h — what every training command of astroclip shares: common options,
 * progress reporting (a terminal bar or JSON lines, docs/trainer.md), stopping cleanly on
 * SIGINT/SIGTERM, the batch loader, and the checkpoint policy.
 *
 * A training command's skeleton:
 *
 *   AstroclipTrainOptions options;            // --threads --seed --progress --resume ...
 *   astroclip_train_options_init (&options);
 *   g_option_context_add_main_entries (context, astroclip_train_option_entries (&options), NULL);
 *   ...
 *   if (!astroclip_train_options_finish (&options, &error)) → usage error (exit 2)
 *   on --resume: read the checkpoint's settings (astroclip_run_settings_load for a command on
 *   one catalogue) and check the options given again against them (astroclip_run_check_resume)
 *   g_autoptr (AclipThreadPool) pool = astroclip_train_setup_threads (&options);
 *   g_autoptr (AstroclipLoader) loader = astroclip_loader_new (catalogue, &request, &error);
 *   build the model; restore the checkpoint's tensors, or initialise them
 *   g_autoptr (AstroclipStopWatch) stop = astroclip_stop_watch_new ();
 *   g_autoptr (AstroclipProgress) progress =
 *       astroclip_progress_new (options.progress, "pretrain-spectra", total_steps);
 *   return astroclip_train_run (&run, &callbacks, state);   // the step loop, below
 *
 * astroclip_train_run is the loop every training command shares:
 *
 *   for (step = steps already done; step < total_steps; step++) {
 *     const AstroclipBatch *batch = astroclip_loader_next (loader, &error);
 *     callbacks->step (...): forward, backward, optimiser step
 *     astroclip_progress_update (progress, step + 1, batch->epoch, loss, lr, batch->n);
 *     validate when due
 *     gboolean stopping = astroclip_stop_watch_requested (stop); // once per step: see below
 *     if (stopping || last || astroclip_train_save_due (&options, &last_save))
 *       callbacks->save (aclip_checkpoint_save: temporary file + rename),
 *       then astroclip_progress_checkpoint (progress, path, step + 1);
 *     if (stopping) { astroclip_progress_done (progress, "stopped", step + 1, ...); return 0; }
 *   }
 *   astroclip_progress_done (progress, "finished", ...);
 *
 * There is no global state: the stop flag lives in the AstroclipStopWatch, set by GLib's
 * unix signal source on the default main context, which astroclip_stop_watch_requested
 * iterates without blocking.
 */
#pragma once

#include "aclip-optim.h"
#include "aclip-parallel.h"
#include "aclip-params.h"
#include "aclip-split.h"

#include <glib.h>
#include <stdio.h>

G_BEGIN_DECLS

/* Common options --------------------------------------------------------------------------- */

typedef enum
{
  ASTROCLIP_PROGRESS_AUTO, /* a bar when stdout is a terminal, otherwise plain lines */
  ASTROCLIP_PROGRESS_BAR,
  ASTROCLIP_PROGRESS_JSON, /* one JSON object per line on stdout: the plugin's contract */
  ASTROCLIP_PROGRESS_PLAIN,/* a human-readable line every few seconds */
  ASTROCLIP_PROGRESS_NONE,
} AstroclipProgressMode;

typedef struct
{
  int threads;                    /* --threads, 0 = one per core */
  gint64 seed;                    /* --seed */
  AstroclipProgressMode progress; /* --progress=auto|bar|json|plain|none */
  gboolean resume;                /* --resume: continue from the output checkpoint */
  double save_every_seconds;      /* --save-every (default 300 s; 0: only at the end and on a
                                     stop) */
  char *progress_text;            /* parsing buffer for --progress */
  GOptionEntry entries[6];        /* storage for astroclip_train_option_entries */
} AstroclipTrainOptions;

void astroclip_train_options_init (AstroclipTrainOptions *options);
void astroclip_train_options_clear (AstroclipTrainOptions *options);
/* GOptionEntry array (NULL-terminated, owned by options) for --threads, --seed, --progress,
 * --resume, --save-every. */
const GOptionEntry *astroclip_train_option_entries (AstroclipTrainOptions *options);
/* After parsing: validates --progress (FALSE + error naming the bad value). */
gboolean astroclip_train_options_finish (AstroclipTrainOptions *options, GError **error);
/* Sets OpenBLAS's thread count and returns a pool of the same size. */
AclipThreadPool *astroclip_train_setup_threads (const AstroclipTrainOptions *options);
/* The --save-every policy: TRUE when save_every_seconds > 0 and that long has passed since
 * *last_save_us (g_get_monotonic_time () microseconds; set it to g_get_monotonic_time () when
 * training starts), in which case *last_save_us becomes now. */
gboolean astroclip_train_save_due (const AstroclipTrainOptions *options, gint64 *last_save_us);

/* Progress ---------------------------------------------------------------------------------- */

typedef struct _AstroclipProgress AstroclipProgress;

/* Reports on stdout; ASTROCLIP_PROGRESS_AUTO becomes BAR when stdout is a terminal, PLAIN
 * otherwise. */
AstroclipProgress *astroclip_progress_new (AstroclipProgressMode mode, const char *stage,
                                           gint64 total_steps);
/* The same on another stream (tests; AUTO looks at that stream). The stream is borrowed. */
AstroclipProgress *astroclip_progress_new_for_stream (AstroclipProgressMode mode,
                                                      const char *stage, gint64 total_steps,
                                                      FILE *stream);
/* Minimum time between JSON step events (default 1 s; 0: every step). */
void astroclip_progress_set_interval (AstroclipProgress *progress, double seconds);
/* After each step: step done (1-based), epoch (0-based, as AstroclipBatch.epoch), loss,
 * learning rate, and how many items the step processed; rates and time left are computed
 * over the last ~30 s. JSON mode prints
 *   {"event":"step","stage":"align","step":120,"total_steps":5000,"epoch":1,"loss":2.31,
 *    "lr":9.5e-05,"items_per_second":48.2,"seconds_left":812.4,"elapsed_seconds":61.0}
 * for the first step, then at most every `interval` (default 1 s), and for the last step
 * (step == total_steps). Numbers that are not finite (a NaN loss, a rate not yet known) are
 * written as null. */
void astroclip_progress_update (AstroclipProgress *progress, gint64 step, int epoch, double loss,
                                double lr, gint64 n_items);
/* Validation figures etc.: {"event":"metric","stage":...,"name":"val_loss","value":1.93,"step":120} */
void astroclip_progress_metric (AstroclipProgress *progress, const char *name, double value,
                                gint64 step);
/* Messages: {"event":"message","stage":...,"text":"..."}; in other modes a plain line. */
void astroclip_progress_message (AstroclipProgress *progress, const char *format, ...)
    G_GNUC_PRINTF (2, 3);
/* {"event":"checkpoint","stage":...,"path":"...","step":120} */
void astroclip_progress_checkpoint (AstroclipProgress *progress, const char *path, gint64 step);
/* {"event":"done","stage":...,"status":"finished"|"stopped"|"failed","step":...,"message":...} */
void astroclip_progress_done (AstroclipProgress *progress, const char *status, gint64 step,
                              const char *message);
void astroclip_progress_free (AstroclipProgress *progress);

/* Stopping on SIGINT / SIGTERM --------------------------------------------------------------- */

typedef struct _AstroclipStopWatch AstroclipStopWatch;

/* Installs the handlers; once a signal has been noticed by astroclip_stop_watch_requested its
 * handler is removed, so a second SIGINT/SIGTERM ends the process at once. */
AstroclipStopWatch *astroclip_stop_watch_new (void);
/* TRUE once SIGINT or SIGTERM arrived (the step in progress finishes first). GLib notes the
 * signal on its worker thread, so a signal may be seen one call later than it arrived — and
 * the answer can turn TRUE between two calls: ask once per step and use that one answer both
 * to save and to stop, or a stop could skip its checkpoint. */
gboolean astroclip_stop_watch_requested (AstroclipStopWatch *watch);
void astroclip_stop_watch_free (AstroclipStopWatch *watch);

/* Batches ----------------------------------------------------------------------------------- */

typedef struct
{
  AclipSplit split;        /* which galaxies */
  gint64 max_galaxies;     /* 0 = all of the split */
  int batch_size;
  gboolean want_images;
  gboolean want_spectra;
  gboolean shuffle;        /* each epoch in a new order from (seed, epoch); else file order */
  gboolean drop_last;      /* skip a final incomplete batch (training) */
  guint64 seed;
  char **label_columns;    /* NULL-terminated numeric columns to load per galaxy, or NULL */
} AstroclipLoaderRequest;

/* One batch, valid until the next astroclip_loader_next or the loader's end. */
typedef struct
{
  int n;                 /* galaxies in this batch (batch_size except perhaps the last) */
  int epoch;             /* 0-based */
  gint64 index_in_epoch; /* 0-based batch number within the epoch */
  const gint64 *rows;    /* [n] catalogue rows */
  const gint64 *ids;     /* [n] */
  float *images;         /* [n, 3, H, W] nanomaggies, or NULL (writable: augment in place) */
  float *flux;           /* [n, n_wave], or NULL */
  float *ivar;           /* [n, n_wave], or NULL */
  const float *z;        /* [n] */
  const float *logmstar; /* [n] */
  const float *flux_grz; /* [n, 3] total fluxes */
  const double *labels;  /* [n, n_label_columns] */
} AstroclipBatch;

typedef struct _AstroclipLoader AstroclipLoader;

/* Reads batches of the split on a background thread (its own AclipCatalogue), one batch ahead
 * of the consumer, in one allocation for the two buffers. */
AstroclipLoader *astroclip_loader_new (const char *catalogue_path,
                                       const AstroclipLoaderRequest *request, GError **error);
gint64 astroclip_loader_n_galaxies (AstroclipLoader *loader); /* in the split (after max) */
gint64 astroclip_loader_batches_per_epoch (AstroclipLoader *loader);
int astroclip_loader_image_height (AstroclipLoader *loader);
int astroclip_loader_image_width (AstroclipLoader *loader);
int astroclip_loader_n_wave (AstroclipLoader *loader);
int astroclip_loader_n_label_columns (AstroclipLoader *loader);
/* Positions the loader so the next batch is batch `index_in_epoch` of `epoch` (resume). An
 * index_in_epoch beyond the epoch carries into the following epochs, so
 * seek (loader, 0, steps_done) resumes after steps_done batches. The batch last returned by
 * astroclip_loader_next stays valid until the next call. */
void astroclip_loader_seek (AstroclipLoader *loader, int epoch, gint64 index_in_epoch);
/* The next batch, running on across epochs; NULL + error if reading failed. */
const AstroclipBatch *astroclip_loader_next (AstroclipLoader *loader, GError **error);
void astroclip_loader_free (AstroclipLoader *loader);

/* Settings of a run ------------------------------------------------------------------------- */

/* Sets a usage error (ACLIP_ERROR_INVALID_ARG; the command exits 2) and returns FALSE. */
gboolean astroclip_usage_error (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* The options of a training command on one catalogue (pretrain-spectra, pretrain-images,
 * train-supervised) that make its AstroclipRunSettings; 0 or −1 means not given (the default,
 * or the checkpoint's value on --resume). The command points its GOptionEntry at the fields. */
typedef struct
{
  char *catalogue, *out;
  gint64 steps, epochs;
  int batch_size;
  double lr, weight_decay;
  gint64 warmup, max_galaxies, validate_every, max_validation;
} AstroclipRunCommandLine;

/* Sets the "not given" values. */
void astroclip_run_command_line_init (AstroclipRunCommandLine *cli);
void astroclip_run_command_line_clear (AstroclipRunCommandLine *cli);
/* The usage problem of the common options (no --out, no --catalogue for a new run, both
 * --steps and --epochs, a negative value), translated, or NULL. */
const char *astroclip_run_command_line_problem (const AstroclipRunCommandLine *cli,
                                                gboolean resume);

/* The settings such a run is made of, saved in the checkpoint's [training] group and restored
 * on --resume (docs/trainer.md). */
typedef struct
{
  char *catalogue; /* absolute */
  guint64 seed;
  int batch_size;
  gint64 total_steps, warmup_steps;
  double lr, final_lr, weight_decay, grad_clip;
  gint64 max_galaxies, validate_every, max_validation;
} AstroclipRunSettings;

void astroclip_run_settings_clear (AstroclipRunSettings *settings);
/* Writes the settings into [training] (the command adds stage, step and its figures). */
void astroclip_run_settings_save (const AstroclipRunSettings *settings, GKeyFile *key_file);
/* Reads them back; FALSE + error when [training] is not from `stage` or lacks a setting. */
gboolean astroclip_run_settings_load (AstroclipRunSettings *settings, GKeyFile *key_file,
                                      const char *stage, GError **error);
/* TRUE when --resume was given and the checkpoint exists; --resume without one starts a new
 * run, which a line on stderr says. */
gboolean astroclip_run_resuming (const AstroclipTrainOptions *options, const char *checkpoint,
                                 const char *stage);
/* The settings of a new run that the command line gives directly (the catalogue, made
 * absolute, must be given): catalogue, seed, batch size, max_galaxies (0: all) and
 * max_validation. The schedule's are the command's own. */
void astroclip_run_settings_init (AstroclipRunSettings *settings, const AstroclipRunCommandLine *cli,
                                  gint64 seed, int default_batch_size,
                                  gint64 default_max_validation);
/* The loaders of a run: the train split's (shuffled from the seed, whole batches, its first
 * max_galaxies) and the validation split's (file order, its first max_validation). An empty
 * validation split is no error: *validation is then NULL and a line on stderr says so. */
gboolean astroclip_run_open_loaders (const AstroclipRunSettings *settings, const char *stage,
                                     gboolean want_images, gboolean want_spectra,
                                     AstroclipLoader **train, AstroclipLoader **validation,
                                     GError **error);
/* On --resume: every option given again must agree with the checkpoint, --epochs cannot be
 * given; FALSE + a usage error naming the option otherwise. */
gboolean astroclip_run_check_resume (const AstroclipRunCommandLine *cli,
                                     const AstroclipRunSettings *settings, GError **error);

/* The step loop ----------------------------------------------------------------------------- */

/* What a command does at each point of astroclip_train_run; `data` is its own state. */
typedef struct
{
  /* One optimiser step on `batch` as step `step` (0-based) at learning rate `lr`: forward,
   * backward, update. Sets *loss to the batch's loss (which may be NaN). Returns FALSE when
   * the loss or its gradient was not finite and nothing was updated: the loop then counts
   * the step anyway (aclip_params_set_step), says so, and fails the run after 20 in a row. */
  gboolean (*step) (gpointer data, const AstroclipBatch *batch, gint64 step, double lr,
                    double *loss);
  /* Validation after `step` steps: before the first step of a new run (step 0), every
   * validate_every steps and after the last. Reports its own metric events. FALSE + error on
   * failure; FALSE without an error when a stop was requested during it. NULL: none. */
  gboolean (*validate) (gpointer data, gint64 step, GError **error);
  /* Writes the checkpoint after `step` steps (the loop then reports the checkpoint event). */
  gboolean (*save) (gpointer data, gint64 step, GError **error);
  /* The done event's sentence when the run finishes (newly allocated), or NULL. */
  char *(*summary) (gpointer data);
} AstroclipRunCallbacks;

/* The end of a step whose gradients are in the table: clips them to a global norm of
 * grad_clip and takes an AdamW step at lr. FALSE, with nothing updated, when their norm is not
 * finite. */
gboolean astroclip_run_update (AclipThreadPool *pool, AclipParams *params, double grad_clip,
                               const AclipAdamWConfig *adamw, double lr);

typedef struct
{
  const char *stage;                    /* for error lines: "astroclip STAGE: message" */
  const AstroclipTrainOptions *options; /* --save-every */
  AstroclipProgress *progress;
  AstroclipStopWatch *stop;
  AstroclipLoader *train;      /* positioned by the loop at the step to take */
  AclipParams *params;         /* its step count is where the run starts */
  AclipLrSchedule schedule;    /* total_steps is the run's length */
  gint64 validate_every;       /* 0: only before the first step and after the last */
  const char *checkpoint_path; /* for the checkpoint events */
} AstroclipRun;

/* Runs the steps from the table's step count to the schedule's total_steps: a step, its
 * progress event, validation when due, the stop watch once per step, and a checkpoint when
 * --save-every says so, after the last step and on a stop (also before any step, when a stop
 * came during the first validation). Emits the done event (finished, stopped or failed; a
 * failure is also printed on stderr). Returns the exit status: 0, or 1 on a failure. A stop
 * asked for during the last step is simply the end of the run. */
int astroclip_train_run (const AstroclipRun *run, const AstroclipRunCallbacks *callbacks,
                         gpointer data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AstroclipProgress, astroclip_progress_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AstroclipStopWatch, astroclip_stop_watch_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AstroclipLoader, astroclip_loader_free)

G_END_DECLS
