/* astroclip-options.c — the options every training command shares, its threads, the
 * checkpoint timer, and stopping cleanly on SIGINT / SIGTERM (docs/trainer.md). */
#include "astroclip-train.h"

#include "aclip-error.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <math.h>
#include <signal.h>
#include <string.h>

/* Common options ----------------------------------------------------------------------------- */

void
astroclip_train_options_init (AstroclipTrainOptions *options)
{
  g_return_if_fail (options != NULL);
  memset (options, 0, sizeof *options);
  options->threads = 0;
  options->seed = 1;
  options->progress = ASTROCLIP_PROGRESS_AUTO;
  options->resume = FALSE;
  options->save_every_seconds = 300.0;
}

void
astroclip_train_options_clear (AstroclipTrainOptions *options)
{
  g_return_if_fail (options != NULL);
  g_clear_pointer (&options->progress_text, g_free);
}

const GOptionEntry *
astroclip_train_option_entries (AstroclipTrainOptions *options)
{
  g_return_val_if_fail (options != NULL, NULL);
  /* The descriptions are translated here, so they read right whatever translation domain
   * the command gives g_option_context_add_main_entries (translating a translated string
   * again leaves it as it is). The pointers are taken now, so the entries follow `options`
   * wherever the caller keeps it. */
  const GOptionEntry entries[] = {
    { "threads", 'j', 0, G_OPTION_ARG_INT, &options->threads,
      _("Threads for computing (default 0: one per processor)"), _("N") },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &options->seed,
      _("Random seed for initialisation, data order and augmentation (default 1)"), _("SEED") },
    { "progress", 0, 0, G_OPTION_ARG_STRING, &options->progress_text,
      _("Progress report: auto (a bar on a terminal, else plain lines), bar, json (one JSON "
        "object per line), plain or none"),
      _("MODE") },
    { "resume", 0, 0, G_OPTION_ARG_NONE, &options->resume,
      _("Continue from the checkpoint at the output path"), NULL },
    { "save-every", 0, 0, G_OPTION_ARG_DOUBLE, &options->save_every_seconds,
      _("Save a checkpoint every this many seconds (default 300; 0: only at the end)"),
      _("SECONDS") },
    { NULL },
  };
  G_STATIC_ASSERT (sizeof entries == sizeof options->entries);
  memcpy (options->entries, entries, sizeof entries);
  return options->entries;
}

static const struct
{
  const char *name;
  AstroclipProgressMode mode;
} progress_modes[] = {
  { "auto", ASTROCLIP_PROGRESS_AUTO }, { "bar", ASTROCLIP_PROGRESS_BAR },
  { "json", ASTROCLIP_PROGRESS_JSON }, { "plain", ASTROCLIP_PROGRESS_PLAIN },
  { "none", ASTROCLIP_PROGRESS_NONE },
};

gboolean
astroclip_train_options_finish (AstroclipTrainOptions *options, GError **error)
{
  g_return_val_if_fail (options != NULL, FALSE);
  if (options->progress_text != NULL) {
    gboolean known = FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS (progress_modes); i++)
      if (g_ascii_strcasecmp (options->progress_text, progress_modes[i].name) == 0) {
        options->progress = progress_modes[i].mode;
        known = TRUE;
      }
    if (!known) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                   _("--progress=%s is not a progress mode (auto, bar, json, plain or none)"),
                   options->progress_text);
      return FALSE;
    }
  }
  if (options->threads < 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("--threads=%d: give a positive number, or 0 for one per processor"),
                 options->threads);
    return FALSE;
  }
  if (!isfinite (options->save_every_seconds) || options->save_every_seconds < 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("--save-every=%g: give a number of seconds, 0 or more"),
                 options->save_every_seconds);
    return FALSE;
  }
  return TRUE;
}

AclipThreadPool *
astroclip_train_setup_threads (const AstroclipTrainOptions *options)
{
  g_return_val_if_fail (options != NULL, NULL);
  int n_threads = options->threads > 0 ? options->threads : aclip_online_cores ();
  aclip_set_blas_threads (n_threads);
  return aclip_thread_pool_new (n_threads);
}

gboolean
astroclip_train_save_due (const AstroclipTrainOptions *options, gint64 *last_save_us)
{
  g_return_val_if_fail (options != NULL && last_save_us != NULL, FALSE);
  if (!(options->save_every_seconds > 0))
    return FALSE;
  gint64 now = g_get_monotonic_time ();
  if ((double) (now - *last_save_us) < options->save_every_seconds * G_USEC_PER_SEC)
    return FALSE;
  *last_save_us = now;
  return TRUE;
}

/* Stopping on SIGINT / SIGTERM ----------------------------------------------------------------- */

struct _AstroclipStopWatch
{
  guint sources[2]; /* SIGINT, SIGTERM watches on the default main context; 0 once removed */
  gboolean requested;
};

typedef struct
{
  AstroclipStopWatch *watch;
  int index;
} StopSource;

static gboolean
on_stop_signal (gpointer data)
{
  StopSource *source = data;
  source->watch->requested = TRUE;
  /* Returning G_SOURCE_REMOVE drops GLib's handler for this signal, which restores the
   * default action: a second Ctrl-C ends the process at once (the last checkpoint stays
   * intact, as a save is a rename). */
  source->watch->sources[source->index] = 0;
  return G_SOURCE_REMOVE;
}

AstroclipStopWatch *
astroclip_stop_watch_new (void)
{
  AstroclipStopWatch *watch = g_new0 (AstroclipStopWatch, 1);
  const int signals[2] = { SIGINT, SIGTERM };
  for (int i = 0; i < 2; i++) {
    StopSource *source = g_new (StopSource, 1);
    source->watch = watch;
    source->index = i;
    watch->sources[i] =
        g_unix_signal_add_full (G_PRIORITY_DEFAULT, signals[i], on_stop_signal, source, g_free);
  }
  return watch;
}

gboolean
astroclip_stop_watch_requested (AstroclipStopWatch *watch)
{
  g_return_val_if_fail (watch != NULL, FALSE);
  /* Dispatches whatever is ready, without blocking: our signal sources among them. A few
   * rounds at most, in case something of a higher priority is always ready. */
  for (int round = 0; round < 4 && g_main_context_iteration (NULL, FALSE); round++)
    ;
  return watch->requested;
}

void
astroclip_stop_watch_free (AstroclipStopWatch *watch)
{
  if (watch == NULL)
    return;
  for (int i = 0; i < 2; i++)
    if (watch->sources[i] != 0)
      g_source_remove (watch->sources[i]);
  g_free (watch);
}
