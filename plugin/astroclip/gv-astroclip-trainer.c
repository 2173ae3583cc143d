/* gv-astroclip-trainer.c — the trainer subprocess and its JSON progress protocol. */
#include "gv-astroclip-trainer.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct _GvAstroclipTrainer
{
  GObject parent_instance;
  GSubprocess *process;
  GCancellable *cancellable; /* the reads and the wait of the current run */
  GString *stderr_text;
  char *last_checkpoint;
  char *command_line;
  char *done_status; /* the done event's status, or NULL */
  char *done_message;
  GvAstroclipTrainerStatus status;
  int pending; /* stdout, stderr and the wait still to finish */
  gboolean exited_normally;
  int exit_status;
  int term_signal;
};

G_DEFINE_FINAL_TYPE (GvAstroclipTrainer, gv_astroclip_trainer, G_TYPE_OBJECT)

enum
{
  SIGNAL_STEP,
  SIGNAL_METRIC,
  SIGNAL_MESSAGE,
  SIGNAL_CHECKPOINT,
  SIGNAL_FINISHED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* The JSON protocol ------------------------------------------------------------------------ */

static void
skip_space (const char **p)
{
  while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')
    (*p)++;
}

/* A JSON string at *p (at its opening quote) → newly allocated UTF-8, or NULL. */
static char *
parse_string (const char **p)
{
  if (**p != '"')
    return NULL;
  (*p)++;
  GString *out = g_string_new (NULL);
  while (**p && **p != '"') {
    if (**p != '\\') {
      g_string_append_c (out, **p);
      (*p)++;
      continue;
    }
    (*p)++;
    switch (**p) {
      case '"': case '\\': case '/':
        g_string_append_c (out, **p);
        break;
      case 'b': g_string_append_c (out, '\b'); break;
      case 'f': g_string_append_c (out, '\f'); break;
      case 'n': g_string_append_c (out, '\n'); break;
      case 'r': g_string_append_c (out, '\r'); break;
      case 't': g_string_append_c (out, '\t'); break;
      case 'u': {
        char hex[5] = { 0 };
        for (int i = 0; i < 4; i++) {
          if (!g_ascii_isxdigit ((*p)[1 + i])) {
            g_string_free (out, TRUE);
            return NULL;
          }
          hex[i] = (*p)[1 + i];
        }
        gunichar c = (gunichar) strtoul (hex, NULL, 16);
        /* A surrogate pair (the trainer writes none, but JSON allows them). */
        if (c >= 0xD800 && c < 0xDC00 && (*p)[5] == '\\' && (*p)[6] == 'u') {
          char low_hex[5] = { (*p)[7], (*p)[8], (*p)[9], (*p)[10], 0 };
          gunichar low = (gunichar) strtoul (low_hex, NULL, 16);
          if (low >= 0xDC00 && low < 0xE000) {
            c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
            *p += 6;
          }
        }
        g_string_append_unichar (out, g_unichar_validate (c) ? c : 0xFFFD);
        *p += 4;
        break;
      }
      default:
        g_string_free (out, TRUE);
        return NULL;
    }
    (*p)++;
  }
  if (**p != '"') {
    g_string_free (out, TRUE);
    return NULL;
  }
  (*p)++;
  return g_string_free (out, FALSE);
}

gboolean
gv_astroclip_parse_json_line (const char *line, GHashTable **fields)
{
  g_return_val_if_fail (line != NULL && fields != NULL, FALSE);
  g_autoptr (GHashTable) table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  const char *p = line;
  skip_space (&p);
  if (*p++ != '{')
    return FALSE;
  skip_space (&p);
  if (*p == '}') {
    *fields = g_steal_pointer (&table);
    return TRUE;
  }
  for (;;) {
    skip_space (&p);
    g_autofree char *key = parse_string (&p);
    if (key == NULL)
      return FALSE;
    skip_space (&p);
    if (*p++ != ':')
      return FALSE;
    skip_space (&p);
    char *value = NULL;
    if (*p == '"') {
      value = parse_string (&p);
      if (value == NULL)
        return FALSE;
    } else if (g_str_has_prefix (p, "null")) {
      p += 4;
    } else if (g_str_has_prefix (p, "true") || g_str_has_prefix (p, "false")) {
      value = g_strdup (*p == 't' ? "true" : "false");
      p += *p == 't' ? 4 : 5;
    } else {
      const char *start = p;
      while (*p && strchr ("+-0123456789.eE", *p))
        p++;
      if (p == start)
        return FALSE; /* nested objects and arrays are not part of the protocol */
      value = g_strndup (start, p - start);
    }
    g_hash_table_replace (table, g_steal_pointer (&key), value);
    skip_space (&p);
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p == '}')
      break;
    return FALSE;
  }
  *fields = g_steal_pointer (&table);
  return TRUE;
}

static double
field_double (GHashTable *fields, const char *key)
{
  const char *text = g_hash_table_lookup (fields, key);
  return text ? g_ascii_strtod (text, NULL) : NAN;
}

static gint64
field_int (GHashTable *fields, const char *key)
{
  const char *text = g_hash_table_lookup (fields, key);
  return text ? g_ascii_strtoll (text, NULL, 10) : 0;
}

static const char *
field_string (GHashTable *fields, const char *key)
{
  return g_hash_table_lookup (fields, key);
}

static void
handle_line (GvAstroclipTrainer *self, const char *line)
{
  g_autoptr (GHashTable) fields = NULL;
  if (!gv_astroclip_parse_json_line (line, &fields)) {
    /* Not the protocol (an older trainer, a stray print): keep it for the user. */
    if (*line)
      g_signal_emit (self, signals[SIGNAL_MESSAGE], 0, line);
    return;
  }
  const char *event = field_string (fields, "event");
  if (event == NULL)
    return;
  if (strcmp (event, "step") == 0) {
    g_signal_emit (self, signals[SIGNAL_STEP], 0, field_int (fields, "step"),
                   field_int (fields, "total_steps"), (int) field_int (fields, "epoch"),
                   field_double (fields, "loss"), field_double (fields, "seconds_left"));
  } else if (strcmp (event, "metric") == 0) {
    const char *name = field_string (fields, "name");
    g_signal_emit (self, signals[SIGNAL_METRIC], 0, name ? name : "",
                   field_double (fields, "value"), field_int (fields, "step"));
  } else if (strcmp (event, "message") == 0) {
    const char *text = field_string (fields, "text");
    if (text)
      g_signal_emit (self, signals[SIGNAL_MESSAGE], 0, text);
  } else if (strcmp (event, "checkpoint") == 0) {
    const char *path = field_string (fields, "path");
    if (path) {
      g_free (self->last_checkpoint);
      self->last_checkpoint = g_strdup (path);
      g_signal_emit (self, signals[SIGNAL_CHECKPOINT], 0, path, field_int (fields, "step"));
    }
  } else if (strcmp (event, "done") == 0) {
    g_free (self->done_status);
    g_free (self->done_message);
    self->done_status = g_strdup (field_string (fields, "status"));
    self->done_message = g_strdup (field_string (fields, "message"));
  }
}

/* The run ---------------------------------------------------------------------------------- */

static void run_part_done (GvAstroclipTrainer *self);

static void
on_stdout_line (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GDataInputStream *stream = G_DATA_INPUT_STREAM (source);
  g_autoptr (GError) error = NULL;
  gsize length = 0;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (stream, result, &length,
                                                                      &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_object_unref (stream);
    g_object_unref (user_data); /* abandoned */
    return;
  }
  GvAstroclipTrainer *self = GV_ASTROCLIP_TRAINER (user_data);
  if (line == NULL) {
    g_object_unref (stream);
    run_part_done (self);
    g_object_unref (self);
    return;
  }
  handle_line (self, line);
  g_data_input_stream_read_line_async (stream, G_PRIORITY_DEFAULT, self->cancellable,
                                       on_stdout_line, self);
}

static void
on_stderr_line (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GDataInputStream *stream = G_DATA_INPUT_STREAM (source);
  g_autoptr (GError) error = NULL;
  gsize length = 0;
  g_autofree char *line = g_data_input_stream_read_line_finish (stream, result, &length, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_object_unref (stream);
    g_object_unref (user_data);
    return;
  }
  GvAstroclipTrainer *self = GV_ASTROCLIP_TRAINER (user_data);
  if (line == NULL) {
    g_object_unref (stream);
    run_part_done (self);
    g_object_unref (self);
    return;
  }
  g_autofree char *valid = g_utf8_make_valid (line, -1);
  g_string_append (self->stderr_text, valid);
  g_string_append_c (self->stderr_text, '\n');
  g_data_input_stream_read_line_async (stream, G_PRIORITY_DEFAULT, self->cancellable,
                                       on_stderr_line, self);
}

static void
on_wait (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GSubprocess *process = G_SUBPROCESS (source);
  g_autoptr (GError) error = NULL;
  if (!g_subprocess_wait_finish (process, result, &error) &&
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_object_unref (user_data);
    return;
  }
  GvAstroclipTrainer *self = GV_ASTROCLIP_TRAINER (user_data);
  self->exited_normally = g_subprocess_get_if_exited (process);
  self->exit_status = self->exited_normally ? g_subprocess_get_exit_status (process) : -1;
  self->term_signal = g_subprocess_get_if_signaled (process) ? g_subprocess_get_term_sig (process)
                                                            : 0;
  run_part_done (self);
  g_object_unref (self);
}

static void
run_part_done (GvAstroclipTrainer *self)
{
  if (--self->pending > 0)
    return;
  GvAstroclipTrainerStatus status;
  g_autofree char *message = NULL;
  if (self->done_status == NULL) {
    status = GV_ASTROCLIP_TRAINER_CRASHED;
    if (self->term_signal)
      message = g_strdup_printf (_("The trainer was killed by signal %d (%s) before it "
                                   "finished."),
                                 self->term_signal, g_strsignal (self->term_signal));
    else
      message = g_strdup_printf (_("The trainer exited with status %d without finishing."),
                                 self->exit_status);
  } else if (strcmp (self->done_status, "finished") == 0 && self->exit_status == 0) {
    status = GV_ASTROCLIP_TRAINER_FINISHED;
  } else if (strcmp (self->done_status, "stopped") == 0) {
    /* embed writes nothing when stopped and exits 1; training commands save and exit 0. */
    status = GV_ASTROCLIP_TRAINER_STOPPED;
  } else {
    status = GV_ASTROCLIP_TRAINER_FAILED;
  }
  if (message == NULL)
    message = g_strdup (self->done_message ? self->done_message : "");
  self->status = status;
  g_clear_object (&self->process);
  g_signal_emit (self, signals[SIGNAL_FINISHED], 0, status, message);
}

gboolean
gv_astroclip_trainer_start (GvAstroclipTrainer *self, const char *program,
                            const char *const *arguments, GError **error)
{
  g_return_val_if_fail (GV_IS_ASTROCLIP_TRAINER (self), FALSE);
  g_return_val_if_fail (program != NULL && arguments != NULL, FALSE);
  if (self->process != NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, _("A training run is going on."));
    return FALSE;
  }
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) program);
  for (const char *const *a = arguments; *a; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, (gpointer) "--progress");
  g_ptr_array_add (argv, (gpointer) "json");
  g_ptr_array_add (argv, NULL);
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE |
      G_SUBPROCESS_FLAGS_STDIN_INHERIT);
  /* Messages in the user's language but numbers with a decimal point (the protocol's). */
  g_subprocess_launcher_setenv (launcher, "LC_NUMERIC", "C", TRUE);
  GSubprocess *process = g_subprocess_launcher_spawnv (launcher,
                                                       (const char *const *) argv->pdata, error);
  if (process == NULL)
    return FALSE;

  g_free (self->command_line);
  g_autoptr (GString) line = g_string_new (NULL);
  for (guint i = 0; argv->pdata[i]; i++) {
    g_autofree char *quoted = g_shell_quote (argv->pdata[i]);
    g_string_append_printf (line, "%s%s", i ? " " : "", quoted);
  }
  self->command_line = g_strdup (line->str);
  g_string_truncate (self->stderr_text, 0);
  g_clear_pointer (&self->last_checkpoint, g_free);
  g_clear_pointer (&self->done_status, g_free);
  g_clear_pointer (&self->done_message, g_free);
  self->exit_status = 0;
  self->term_signal = 0;
  self->process = process;
  self->status = GV_ASTROCLIP_TRAINER_RUNNING;
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->pending = 3;

  GDataInputStream *out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  GDataInputStream *err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (process));
  g_data_input_stream_read_line_async (out, G_PRIORITY_DEFAULT, self->cancellable,
                                       on_stdout_line, g_object_ref (self));
  g_data_input_stream_read_line_async (err, G_PRIORITY_DEFAULT, self->cancellable,
                                       on_stderr_line, g_object_ref (self));
  g_subprocess_wait_async (process, self->cancellable, on_wait, g_object_ref (self));
  return TRUE;
}

void
gv_astroclip_trainer_cancel (GvAstroclipTrainer *self)
{
  g_return_if_fail (GV_IS_ASTROCLIP_TRAINER (self));
  if (self->process != NULL)
    g_subprocess_send_signal (self->process, SIGTERM);
}

static gboolean
kill_if_running (gpointer data)
{
  GSubprocess *process = data;
  /* g_subprocess_get_identifier is NULL once the process has been reaped. */
  if (g_subprocess_get_identifier (process) != NULL)
    g_subprocess_force_exit (process);
  return G_SOURCE_REMOVE;
}

void
gv_astroclip_trainer_abandon (GvAstroclipTrainer *self)
{
  g_return_if_fail (GV_IS_ASTROCLIP_TRAINER (self));
  if (self->process == NULL)
    return;
  g_cancellable_cancel (self->cancellable);
  g_subprocess_send_signal (self->process, SIGTERM);
  /* GSubprocess reaps it; kill it if it takes too long to save. */
  g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, 10, kill_if_running,
                              g_steal_pointer (&self->process), g_object_unref);
  self->status = GV_ASTROCLIP_TRAINER_STOPPED;
}

GvAstroclipTrainerStatus
gv_astroclip_trainer_get_status (GvAstroclipTrainer *self)
{
  g_return_val_if_fail (GV_IS_ASTROCLIP_TRAINER (self), GV_ASTROCLIP_TRAINER_IDLE);
  return self->status;
}

gboolean
gv_astroclip_trainer_is_running (GvAstroclipTrainer *self)
{
  g_return_val_if_fail (GV_IS_ASTROCLIP_TRAINER (self), FALSE);
  return self->process != NULL;
}

const char *
gv_astroclip_trainer_get_stderr (GvAstroclipTrainer *self)
{
  g_return_val_if_fail (GV_IS_ASTROCLIP_TRAINER (self), NULL);
  return self->stderr_text->str;
}

const char *
gv_astroclip_trainer_get_last_checkpoint (GvAstroclipTrainer *self)
{
  g_return_val_if_fail (GV_IS_ASTROCLIP_TRAINER (self), NULL);
  return self->last_checkpoint;
}

const char *
gv_astroclip_trainer_get_identifier (GvAstroclipTrainer *self)
{
  g_return_val_if_fail (GV_IS_ASTROCLIP_TRAINER (self), NULL);
  return self->process ? g_subprocess_get_identifier (self->process) : NULL;
}

const char *
gv_astroclip_trainer_get_command_line (GvAstroclipTrainer *self)
{
  g_return_val_if_fail (GV_IS_ASTROCLIP_TRAINER (self), NULL);
  return self->command_line;
}

GvAstroclipTrainer *
gv_astroclip_trainer_new (void)
{
  return g_object_new (GV_TYPE_ASTROCLIP_TRAINER, NULL);
}

static void
gv_astroclip_trainer_dispose (GObject *object)
{
  GvAstroclipTrainer *self = GV_ASTROCLIP_TRAINER (object);
  gv_astroclip_trainer_abandon (self);
  G_OBJECT_CLASS (gv_astroclip_trainer_parent_class)->dispose (object);
}

static void
gv_astroclip_trainer_finalize (GObject *object)
{
  GvAstroclipTrainer *self = GV_ASTROCLIP_TRAINER (object);
  g_clear_object (&self->cancellable);
  g_string_free (self->stderr_text, TRUE);
  g_free (self->last_checkpoint);
  g_free (self->command_line);
  g_free (self->done_status);
  g_free (self->done_message);
  G_OBJECT_CLASS (gv_astroclip_trainer_parent_class)->finalize (object);
}

static void
gv_astroclip_trainer_class_init (GvAstroclipTrainerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = gv_astroclip_trainer_dispose;
  object_class->finalize = gv_astroclip_trainer_finalize;
  signals[SIGNAL_STEP] =
      g_signal_new ("step", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                    G_TYPE_NONE, 5, G_TYPE_INT64, G_TYPE_INT64, G_TYPE_INT, G_TYPE_DOUBLE,
                    G_TYPE_DOUBLE);
  signals[SIGNAL_METRIC] =
      g_signal_new ("metric", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                    G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_DOUBLE, G_TYPE_INT64);
  signals[SIGNAL_MESSAGE] =
      g_signal_new ("message", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                    G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_CHECKPOINT] =
      g_signal_new ("checkpoint", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                    NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_INT64);
  signals[SIGNAL_FINISHED] =
      g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                    G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_STRING);
}

static void
gv_astroclip_trainer_init (GvAstroclipTrainer *self)
{
  self->stderr_text = g_string_new (NULL);
  self->status = GV_ASTROCLIP_TRAINER_IDLE;
}
