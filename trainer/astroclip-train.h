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
 *   g_autoptr (AclipThreadPool) pool = astroclip_train_setup_threads (&options);
 *   g_autoptr (AstroclipStopWatch) stop = astroclip_stop_watch_new ();
 *   g_autoptr (AstroclipLoader) loader = astroclip_loader_new (catalogue, &request, &error);
 *   g_autoptr (AstroclipProgress) progress =
 *       astroclip_progress_new (options.progress, "pretrain-spectra", total_steps);
 *   for (step = first_step; step < total_steps; step++) {
 *     const AstroclipBatch *batch = astroclip_loader_next (loader, &error);
 *     ... forward, backward, optimiser step ...
 *     astroclip_progress_update (progress, step + 1, epoch, loss, lr, batch->n);
 *     if (time to save || astroclip_stop_watch_requested (stop))
 *       save the checkpoint (aclip_checkpoint_save: temporary file + rename);
 *     if (astroclip_stop_watch_requested (stop)) { message; return 0; }
 *   }
 *
 * There is no global state: the stop flag lives in the AstroclipStopWatch, set by GLib's
 * unix signal source on the default main context, which astroclip_stop_watch_requested
 * iterates without blocking.
 */
#pragma once

#include "aclip-parallel.h"
#include "aclip-split.h"

#include <glib.h>

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
  double save_every_seconds;      /* --save-every (default 300 s) */
  char *progress_text;            /* parsing buffer for --progress */
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

/* Progress ---------------------------------------------------------------------------------- */

typedef struct _AstroclipProgress AstroclipProgress;

AstroclipProgress *astroclip_progress_new (AstroclipProgressMode mode, const char *stage,
                                           gint64 total_steps);
/* After each step: step done (1-based), epoch, loss, learning rate, and how many items the
 * step processed; rates and time left are computed from a moving window. JSON mode prints
 *   {"event":"step","stage":"align","step":120,"total_steps":5000,"epoch":1,"loss":2.31,
 *    "lr":9.5e-05,"items_per_second":48.2,"seconds_left":812.4}
 * at most every `interval` (default 1 s) plus the last step. */
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

AstroclipStopWatch *astroclip_stop_watch_new (void);
/* TRUE once SIGINT or SIGTERM arrived (the step in progress finishes first). */
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
/* Positions the loader so the next batch is batch `index_in_epoch` of `epoch` (resume). */
void astroclip_loader_seek (AstroclipLoader *loader, int epoch, gint64 index_in_epoch);
/* The next batch, running on across epochs; NULL + error if reading failed. */
const AstroclipBatch *astroclip_loader_next (AstroclipLoader *loader, GError **error);
void astroclip_loader_free (AstroclipLoader *loader);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AstroclipProgress, astroclip_progress_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AstroclipStopWatch, astroclip_stop_watch_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AstroclipLoader, astroclip_loader_free)

G_END_DECLS
