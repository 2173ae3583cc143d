/* astroclip-progress.c — progress of a training command: a bar redrawn in place on a
 * terminal, a plain line every few seconds, or one JSON object per line for the viewer's
 * training panel (the protocol is docs/trainer.md). */
#include "astroclip-train.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Rates are measured over the last WINDOW_US: samples of (time, step, items) are kept at
 * least SAMPLE_SPACING_US apart, in a ring long enough to span the window. */
#define WINDOW_US         (30 * G_USEC_PER_SEC)
#define SAMPLE_SPACING_US (G_USEC_PER_SEC / 4)
#define N_SAMPLES         128
#define BAR_INTERVAL_US   (G_USEC_PER_SEC / 10)
#define PLAIN_INTERVAL_US (10 * G_USEC_PER_SEC)
#define BAR_MAX_WIDTH     30
#define BAR_TAIL_ROOM     60 /* columns kept for the figures after the bar */

typedef struct
{
  gint64 time_us;
  gint64 step;  /* steps done at that time; -1 until the first update says */
  double items; /* items processed since the progress began */
} Sample;

struct _AstroclipProgress
{
  AstroclipProgressMode mode; /* never AUTO: resolved when made */
  char *stage;
  gint64 total_steps;
  FILE *stream;
  gint64 json_interval_us;
  gint64 start_us;

  Sample samples[N_SAMPLES]; /* a ring: samples[(first + i) % N_SAMPLES], i < n_samples */
  int first, n_samples;
  double items;

  /* The figures of the last update, for the report and for redrawing the bar. */
  gboolean have_step;
  gint64 step;
  int epoch;
  double loss, lr, items_per_second, seconds_left;

  gboolean printed_step; /* a step was reported (JSON, plain) or drawn (bar) */
  gint64 last_print_us;
  gboolean bar_visible; /* a bar is on the terminal's current line, without its newline */
  gboolean utf8;        /* draw the bar with block characters */
};

AstroclipProgress *
astroclip_progress_new_for_stream (AstroclipProgressMode mode, const char *stage,
                                   gint64 total_steps, FILE *stream)
{
  g_return_val_if_fail (stage != NULL && stream != NULL, NULL);
  AstroclipProgress *progress = g_new0 (AstroclipProgress, 1);
  gboolean terminal = isatty (fileno (stream));
  if (mode == ASTROCLIP_PROGRESS_AUTO)
    mode = terminal ? ASTROCLIP_PROGRESS_BAR : ASTROCLIP_PROGRESS_PLAIN;
  progress->mode = mode;
  progress->stage = g_utf8_make_valid (stage, -1);
  progress->total_steps = total_steps;
  progress->stream = stream;
  progress->json_interval_us = G_USEC_PER_SEC;
  progress->start_us = g_get_monotonic_time ();
  progress->samples[0] = (Sample){ progress->start_us, -1, 0.0 };
  progress->n_samples = 1;
  progress->loss = progress->lr = progress->items_per_second = progress->seconds_left = NAN;
  const char *charset = NULL;
  progress->utf8 = g_get_charset (&charset);
  return progress;
}

AstroclipProgress *
astroclip_progress_new (AstroclipProgressMode mode, const char *stage, gint64 total_steps)
{
  return astroclip_progress_new_for_stream (mode, stage, total_steps, stdout);
}

void
astroclip_progress_set_interval (AstroclipProgress *progress, double seconds)
{
  g_return_if_fail (progress != NULL);
  progress->json_interval_us = seconds > 0 ? (gint64) (seconds * G_USEC_PER_SEC) : 0;
}

/* JSON --------------------------------------------------------------------------------------- */

/* Appends `text` as a JSON string: quotes, backslashes and control characters escaped, and
 * invalid UTF-8 (a file name in another encoding) replaced by U+FFFD, so the line is always
 * valid JSON. NULL becomes null. */
static void
json_append_string (GString *line, const char *text)
{
  if (text == NULL) {
    g_string_append (line, "null");
    return;
  }
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  g_string_append_c (line, '"');
  for (const unsigned char *c = (const unsigned char *) valid; *c; c++)
    switch (*c) {
      case '"':
        g_string_append (line, "\\\"");
        break;
      case '\\':
        g_string_append (line, "\\\\");
        break;
      case '\n':
        g_string_append (line, "\\n");
        break;
      case '\r':
        g_string_append (line, "\\r");
        break;
      case '\t':
        g_string_append (line, "\\t");
        break;
      case '\b':
        g_string_append (line, "\\b");
        break;
      case '\f':
        g_string_append (line, "\\f");
        break;
      default:
        if (*c < 0x20 || *c == 0x7f)
          g_string_append_printf (line, "\\u%04x", *c);
        else
          g_string_append_c (line, (char) *c);
    }
  g_string_append_c (line, '"');
}

static void
json_key (GString *line, const char *key)
{
  g_string_append_printf (line, ",\"%s\":", key);
}

static void
json_string (GString *line, const char *key, const char *value)
{
  json_key (line, key);
  json_append_string (line, value);
}

static void
json_integer (GString *line, const char *key, gint64 value)
{
  json_key (line, key);
  g_string_append_printf (line, "%" PRId64, value);
}

/* A number in the C locale whatever the user's (a decimal comma is not JSON); null when not
 * finite, which JSON cannot express. */
static void
json_number (GString *line, const char *key, double value, const char *format)
{
  json_key (line, key);
  if (!isfinite (value)) {
    g_string_append (line, "null");
    return;
  }
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append (line, g_ascii_formatd (buffer, sizeof buffer, format, value));
}

static GString *
json_begin (AstroclipProgress *progress, const char *event)
{
  GString *line = g_string_new ("{\"event\":");
  json_append_string (line, event);
  json_string (line, "stage", progress->stage);
  return line;
}

/* One object, one line, flushed: the reader is a pipe. */
static void
json_end (AstroclipProgress *progress, GString *line)
{
  g_string_append (line, "}\n");
  fwrite (line->str, 1, line->len, progress->stream);
  fflush (progress->stream);
  g_string_free (line, TRUE);
}

/* Human-readable figures ------------------------------------------------------------------- */

/* "1:02:03", "2:03", or "?" when unknown. */
static char *
format_duration (double seconds)
{
  if (!isfinite (seconds) || seconds < 0)
    return g_strdup ("?");
  gint64 s = (gint64) (seconds + 0.5);
  if (s >= 3600)
    return g_strdup_printf ("%" PRId64 ":%02d:%02d", s / 3600, (int) (s / 60 % 60), (int) (s % 60));
  return g_strdup_printf ("%d:%02d", (int) (s / 60), (int) (s % 60));
}

/* `digits` significant digits, or decimals when `fixed`; "?" when not finite. */
static char *
format_figure (double value, int digits, gboolean fixed)
{
  if (!isfinite (value))
    return g_strdup ("?");
  return fixed ? g_strdup_printf ("%.*f", digits, value) : g_strdup_printf ("%.*g", digits, value);
}

static int
terminal_columns (FILE *stream)
{
  struct winsize size;
  if (ioctl (fileno (stream), TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
    return size.ws_col;
  return 80;
}

static double
fraction_done (AstroclipProgress *progress)
{
  if (progress->total_steps <= 0)
    return 0.0;
  return CLAMP ((double) progress->step / (double) progress->total_steps, 0.0, 1.0);
}

/* "\r<stage>  42% [████░░░░] 120/5000  epoch 1  loss 2.31  48.2 items/s  13:32 left": the
 * bar shrinks to fit the terminal's width (and goes when it cannot), and "\033[K" erases what
 * a longer earlier line left behind. Block characters only in a UTF-8 locale. */
static void
draw_bar (AstroclipProgress *progress)
{
  g_autofree char *loss = format_figure (progress->loss, 4, FALSE);
  g_autofree char *rate = format_figure (progress->items_per_second, 1, TRUE);
  g_autofree char *left = format_duration (progress->seconds_left);
  double fraction = fraction_done (progress);
  g_autofree char *head = g_strdup_printf ("%s %3d%% ", progress->stage, (int) (fraction * 100));
  g_autofree char *tail = g_strdup_printf (
      _(" %" PRId64 "/%" PRId64 "  epoch %d  loss %s  %s items/s  %s left"), progress->step,
      progress->total_steps, progress->epoch + 1, loss, rate, left);

  /* The bar's width depends on the terminal only, so it does not jitter as the figures
   * change; the line never wraps (a carriage return would not go back over a wrapped line),
   * cutting the figures if it must. */
  int columns = terminal_columns (progress->stream) - 1;
  int head_length = (int) g_utf8_strlen (head, -1);
  int width = MIN (columns - head_length - BAR_TAIL_ROOM - 2, BAR_MAX_WIDTH);
  if (width < 5)
    width = 0;
  int tail_room = MAX (columns - head_length - (width ? width + 2 : 0), 0);
  if (g_utf8_strlen (tail, -1) > tail_room) {
    char *cut = g_utf8_substring (tail, 0, tail_room);
    g_free (tail);
    tail = cut;
  }
  GString *line = g_string_new ("\r");
  g_string_append (line, head);
  if (width > 0) {
    int filled = (int) (fraction * width + 0.5);
    g_string_append_c (line, '[');
    for (int i = 0; i < width; i++)
      g_string_append (line,
                       i < filled ? (progress->utf8 ? "█" : "#") : (progress->utf8 ? "░" : "-"));
    g_string_append_c (line, ']');
  }
  g_string_append (line, tail);
  g_string_append (line, "\033[K");
  fwrite (line->str, 1, line->len, progress->stream);
  fflush (progress->stream);
  g_string_free (line, TRUE);
  progress->bar_visible = TRUE;
}

/* Before a line of text in bar mode: clears the bar from the current line. */
static void
clear_bar (AstroclipProgress *progress)
{
  if (progress->bar_visible) {
    fputs ("\r\033[K", progress->stream);
    progress->bar_visible = FALSE;
  }
}

/* After a line of text in bar mode: puts the bar back under it. */
static void
restore_bar (AstroclipProgress *progress)
{
  if (progress->mode == ASTROCLIP_PROGRESS_BAR && progress->have_step)
    draw_bar (progress);
}

/* Prints a line of text in the bar and plain modes. */
static void
print_line (AstroclipProgress *progress, const char *text)
{
  clear_bar (progress);
  fprintf (progress->stream, "%s: %s\n", progress->stage, text);
  fflush (progress->stream);
  restore_bar (progress);
}

static void
print_plain_step (AstroclipProgress *progress)
{
  g_autofree char *loss = format_figure (progress->loss, 4, FALSE);
  g_autofree char *lr = format_figure (progress->lr, 3, FALSE);
  g_autofree char *rate = format_figure (progress->items_per_second, 1, TRUE);
  g_autofree char *left = format_duration (progress->seconds_left);
  g_autofree char *text = g_strdup_printf (
      _("step %" PRId64 "/%" PRId64 " (%.1f%%), epoch %d, loss %s, lr %s, %s items/s, %s left"),
      progress->step, progress->total_steps, 100.0 * fraction_done (progress), progress->epoch + 1,
      loss, lr, rate, left);
  print_line (progress, text);
}

/* Rates --------------------------------------------------------------------------------------- */

static Sample *
sample_at (AstroclipProgress *progress, int i)
{
  return &progress->samples[(progress->first + i) % N_SAMPLES];
}

/* Items per second and seconds left from the oldest sample still within the window (or the
 * last one before it), then keeps a sample of now. */
static void
measure (AstroclipProgress *progress, gint64 now, gint64 step)
{
  Sample *baseline = sample_at (progress, 0);
  if (baseline->step < 0) /* the first update: one step since the progress began */
    baseline->step = step - 1;
  while (progress->n_samples >= 2 && sample_at (progress, 1)->time_us <= now - WINDOW_US) {
    progress->first = (progress->first + 1) % N_SAMPLES;
    progress->n_samples--;
  }
  baseline = sample_at (progress, 0);

  double seconds = (double) (now - baseline->time_us) / G_USEC_PER_SEC;
  double steps = (double) (step - baseline->step);
  progress->items_per_second = NAN;
  progress->seconds_left = NAN;
  if (seconds > 0) {
    progress->items_per_second = (progress->items - baseline->items) / seconds;
    if (steps > 0 && progress->total_steps > 0)
      progress->seconds_left = (double) MAX (progress->total_steps - step, 0) * seconds / steps;
  }
  if (progress->total_steps > 0 && step >= progress->total_steps)
    progress->seconds_left = 0.0;

  Sample *newest = sample_at (progress, progress->n_samples - 1);
  if (now - newest->time_us >= SAMPLE_SPACING_US) {
    if (progress->n_samples == N_SAMPLES) { /* full: the window shrinks a little */
      progress->first = (progress->first + 1) % N_SAMPLES;
      progress->n_samples--;
    }
    *sample_at (progress, progress->n_samples) = (Sample){ now, step, progress->items };
    progress->n_samples++;
  }
}

/* Events ------------------------------------------------------------------------------------ */

void
astroclip_progress_update (AstroclipProgress *progress, gint64 step, int epoch, double loss,
                           double lr, gint64 n_items)
{
  g_return_if_fail (progress != NULL);
  gint64 now = g_get_monotonic_time ();
  progress->items += (double) MAX (n_items, 0);
  measure (progress, now, step);
  progress->have_step = TRUE;
  progress->step = step;
  progress->epoch = epoch;
  progress->loss = loss;
  progress->lr = lr;

  gboolean last = progress->total_steps > 0 && step >= progress->total_steps;
  gint64 since = now - progress->last_print_us;
  gboolean due;
  switch (progress->mode) {
    case ASTROCLIP_PROGRESS_JSON:
      due = since >= progress->json_interval_us;
      break;
    case ASTROCLIP_PROGRESS_BAR:
      due = since >= BAR_INTERVAL_US;
      break;
    case ASTROCLIP_PROGRESS_PLAIN:
      due = since >= PLAIN_INTERVAL_US;
      break;
    default:
      return;
  }
  if (progress->printed_step && !due && !last)
    return;
  progress->printed_step = TRUE;
  progress->last_print_us = now;

  if (progress->mode == ASTROCLIP_PROGRESS_JSON) {
    GString *line = json_begin (progress, "step");
    json_integer (line, "step", step);
    json_integer (line, "total_steps", progress->total_steps);
    json_integer (line, "epoch", epoch);
    json_number (line, "loss", loss, "%.7g");
    json_number (line, "lr", lr, "%.6g");
    json_number (line, "items_per_second", progress->items_per_second, "%.6g");
    json_number (line, "seconds_left", progress->seconds_left, "%.1f");
    json_number (line, "elapsed_seconds", (double) (now - progress->start_us) / G_USEC_PER_SEC,
                 "%.1f");
    json_end (progress, line);
  } else if (progress->mode == ASTROCLIP_PROGRESS_BAR) {
    draw_bar (progress);
  } else {
    print_plain_step (progress);
  }
}

void
astroclip_progress_metric (AstroclipProgress *progress, const char *name, double value, gint64 step)
{
  g_return_if_fail (progress != NULL && name != NULL);
  if (progress->mode == ASTROCLIP_PROGRESS_JSON) {
    GString *line = json_begin (progress, "metric");
    json_string (line, "name", name);
    json_number (line, "value", value, "%.7g");
    json_integer (line, "step", step);
    json_end (progress, line);
  } else if (progress->mode != ASTROCLIP_PROGRESS_NONE) {
    g_autofree char *text = g_strdup_printf (_("%s = %.5g at step %" PRId64), name, value, step);
    print_line (progress, text);
  }
}

void
astroclip_progress_message (AstroclipProgress *progress, const char *format, ...)
{
  g_return_if_fail (progress != NULL && format != NULL);
  if (progress->mode == ASTROCLIP_PROGRESS_NONE)
    return;
  va_list arguments;
  va_start (arguments, format);
  g_autofree char *text = g_strdup_vprintf (format, arguments);
  va_end (arguments);
  if (progress->mode == ASTROCLIP_PROGRESS_JSON) {
    GString *line = json_begin (progress, "message");
    json_string (line, "text", text);
    json_end (progress, line);
  } else {
    print_line (progress, text);
  }
}

void
astroclip_progress_checkpoint (AstroclipProgress *progress, const char *path, gint64 step)
{
  g_return_if_fail (progress != NULL && path != NULL);
  if (progress->mode == ASTROCLIP_PROGRESS_JSON) {
    GString *line = json_begin (progress, "checkpoint");
    json_string (line, "path", path);
    json_integer (line, "step", step);
    json_end (progress, line);
  } else if (progress->mode != ASTROCLIP_PROGRESS_NONE) {
    g_autofree char *display = g_filename_display_name (path);
    g_autofree char *text =
        g_strdup_printf (_("saved checkpoint %s at step %" PRId64), display, step);
    print_line (progress, text);
  }
}

void
astroclip_progress_done (AstroclipProgress *progress, const char *status, gint64 step,
                         const char *message)
{
  g_return_if_fail (progress != NULL && status != NULL);
  gint64 now = g_get_monotonic_time ();
  if (progress->mode == ASTROCLIP_PROGRESS_JSON) {
    GString *line = json_begin (progress, "done");
    json_string (line, "status", status);
    json_integer (line, "step", step);
    json_string (line, "message", message);
    json_number (line, "elapsed_seconds", (double) (now - progress->start_us) / G_USEC_PER_SEC,
                 "%.1f");
    json_end (progress, line);
    return;
  }
  if (progress->mode == ASTROCLIP_PROGRESS_NONE)
    return;
  /* The bar stays on screen as the run's last state. */
  if (progress->bar_visible) {
    draw_bar (progress);
    fputc ('\n', progress->stream);
    progress->bar_visible = FALSE;
  }
  g_autofree char *elapsed = format_duration ((double) (now - progress->start_us) / G_USEC_PER_SEC);
  g_autofree char *text = NULL;
  if (strcmp (status, "finished") == 0)
    text = g_strdup_printf (_("finished at step %" PRId64 " in %s"), step, elapsed);
  else if (strcmp (status, "stopped") == 0)
    text = g_strdup_printf (_("stopped at step %" PRId64 " after %s"), step, elapsed);
  else if (strcmp (status, "failed") == 0)
    text = g_strdup_printf (_("failed at step %" PRId64 " after %s"), step, elapsed);
  else
    text = g_strdup_printf ("%s (%" PRId64 ")", status, step);
  fprintf (progress->stream, "%s: %s%s%s\n", progress->stage, text, message ? ": " : "",
           message ? message : "");
  fflush (progress->stream);
  progress->have_step = FALSE; /* no bar after the end */
}

void
astroclip_progress_free (AstroclipProgress *progress)
{
  if (progress == NULL)
    return;
  if (progress->bar_visible) {
    fputc ('\n', progress->stream);
    fflush (progress->stream);
  }
  g_free (progress->stage);
  g_free (progress);
}
