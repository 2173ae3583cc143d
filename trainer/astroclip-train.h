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
 *   g_autoptr (AclipThreadPool) pool = astroclip_train_setup_threads (&options);
 *   g_autoptr (AstroclipStopWatch) stop = astroclip_stop_watch_new ();
 *   g_autoptr (AstroclipLoader) loader = astroclip_loader_new (catalogue, &request, &error);
 *   if (resuming) astroclip_loader_seek (loader, 0, first_step);   // carries across epochs
 *   g_autoptr (AstroclipProgress) progress =
 *       astroclip_progress_new (options.progress, "pretrain-spectra", total_steps);
 *   gint64 last_save = g_get_monotonic_time ();
 *   for (step = first_step; step < total_steps; step++) {
 *     const AstroclipBatch *batch = astroclip_loader_next (loader, &error);
 *     ... forward, backward, optimiser step ...
 *     astroclip_progress_update (progress, step + 1, batch->epoch, loss, lr, batch->n);
 *     gboolean stopping = astroclip_stop_watch_requested (stop); // once per step: see below
 *     if (stopping || astroclip_train_save_due (&options, &last_save))
 *       save the checkpoint (aclip_checkpoint_save: temporary file + rename),
 *       then astroclip_progress_checkpoint (progress, path, step + 1);
 *     if (stopping) { astroclip_progress_done (progress, "stopped", step + 1, ...); return 0; }
 *   }
 *   save the final checkpoint; astroclip_progress_done (progress, "finished", ...);
 *
 * There is no global state: the stop flag lives in the AstroclipStopWatch, set by GLib's
 * unix signal source on the default main context, which astroclip_stop_watch_requested
 * iterates without blocking.
 */
#pragma once

#include "aclip-parallel.h"
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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AstroclipProgress, astroclip_progress_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AstroclipStopWatch, astroclip_stop_watch_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AstroclipLoader, astroclip_loader_free)

G_END_DECLS
