/* gv-astroclip-trainer.h — runs `astroclip COMMAND … --progress json` as a subprocess and
 * turns its JSON progress lines (docs/trainer.md, "The JSON protocol") into signals, on the
 * main context the run was started from. GTK-free.
 *
 * Signals:
 *   step       (gint64 step, gint64 total_steps, gint epoch, gdouble loss, gdouble seconds_left)
 *              loss and seconds_left are NaN when the trainer wrote null
 *   metric     (const char *name, gdouble value, gint64 step)
 *   message    (const char *text)
 *   checkpoint (const char *path, gint64 step)
 *   finished   (GvAstroclipTrainerStatus status, const char *message)
 *              once the process has exited and its output is read; `message` is the done
 *              event's sentence, or for a crash what happened (signal, exit status)
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  GV_ASTROCLIP_TRAINER_IDLE,     /* never started */
  GV_ASTROCLIP_TRAINER_RUNNING,
  GV_ASTROCLIP_TRAINER_FINISHED, /* done: finished, exit 0 */
  GV_ASTROCLIP_TRAINER_STOPPED,  /* done: stopped (cancelled), a checkpoint was saved */
  GV_ASTROCLIP_TRAINER_FAILED,   /* done: failed, or a non-zero exit (stderr says why) */
  GV_ASTROCLIP_TRAINER_CRASHED,  /* exited without a done event (killed, crashed) */
} GvAstroclipTrainerStatus;

#define GV_TYPE_ASTROCLIP_TRAINER (gv_astroclip_trainer_get_type ())
G_DECLARE_FINAL_TYPE (GvAstroclipTrainer, gv_astroclip_trainer, GV, ASTROCLIP_TRAINER, GObject)

GvAstroclipTrainer *gv_astroclip_trainer_new (void);

/* Starts `program` with `arguments` (NULL-terminated, the command first, e.g. "align", …)
 * followed by `--progress json`. FALSE if a run is going on or the program cannot start. */
gboolean gv_astroclip_trainer_start (GvAstroclipTrainer *self, const char *program,
                                     const char *const *arguments, GError **error);
/* Asks the run to stop (SIGTERM: the trainer finishes its step, saves and exits 0). */
void gv_astroclip_trainer_cancel (GvAstroclipTrainer *self);
/* Stops the run without waiting for it and forgets it: SIGTERM now, SIGKILL if it still runs
 * 10 s later; no more signals are emitted. For unloading. */
void gv_astroclip_trainer_abandon (GvAstroclipTrainer *self);

GvAstroclipTrainerStatus gv_astroclip_trainer_get_status (GvAstroclipTrainer *self);
gboolean gv_astroclip_trainer_is_running (GvAstroclipTrainer *self);
/* Everything the process wrote on standard error so far. */
const char *gv_astroclip_trainer_get_stderr (GvAstroclipTrainer *self);
/* The last checkpoint event's path, or NULL. */
const char *gv_astroclip_trainer_get_last_checkpoint (GvAstroclipTrainer *self);
/* The running process's identifier (its pid as text), or NULL. */
const char *gv_astroclip_trainer_get_identifier (GvAstroclipTrainer *self);
/* The command line of the current (or last) run, for display. */
const char *gv_astroclip_trainer_get_command_line (GvAstroclipTrainer *self);

/* The protocol's parser, for tests: one line → a table of key → value text (strings
 * unescaped; numbers as written; NULL for null). FALSE when it is not a flat JSON object. */
gboolean gv_astroclip_parse_json_line (const char *line, GHashTable **fields);

G_END_DECLS
