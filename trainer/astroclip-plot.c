/* astroclip-plot.c — predicted-against-true figures with cairo (astroclip-plot.h). */
#include "astroclip-plot.h"

#include "aclip-error.h"

#include <cairo.h>
#include <glib/gi18n.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FONT            "DejaVu Sans"
#define AXES_SIDE       500.0 /* pixels */
#define MARGIN_LEFT     88.0
#define MARGIN_RIGHT    30.0
#define MARGIN_TOP      72.0
#define MARGIN_BOTTOM   66.0
#define COLOURBAR_SPACE 92.0 /* extra right margin in density mode */
#define DENSITY_ABOVE   4000 /* pairs beyond which a 2-D histogram replaces the dots */
#define DENSITY_BINS    100

typedef struct
{
  double x, y, side; /* axes rectangle in pixels (square) */
  double lo, hi;     /* data range of both axes */
} Axes;

static double
to_x (const Axes *axes, double value)
{
  return axes->x + (value - axes->lo) / (axes->hi - axes->lo) * axes->side;
}

static double
to_y (const Axes *axes, double value)
{
  return axes->y + axes->side - (value - axes->lo) / (axes->hi - axes->lo) * axes->side;
}

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* Linear interpolation between order statistics at (n − 1)·p. */
static double
sorted_percentile (const double *sorted, gsize n, double p)
{
  double position = (n - 1) * p;
  gsize below = (gsize) floor (position);
  gsize above = MIN (below + 1, n - 1);
  double t = position - below;
  return sorted[below] * (1 - t) + sorted[above] * t;
}

/* A 1, 2 or 5 × 10^e step near raw; minor step through *minor, decimals for labels. */
static double
nice_step (double raw, double *minor, int *decimals)
{
  double exponent = floor (log10 (raw));
  double unit = pow (10.0, exponent), fraction = raw / unit, nice;
  if (fraction < 1.5)
    nice = 1.0;
  else if (fraction < 3.0)
    nice = 2.0;
  else if (fraction < 7.0)
    nice = 5.0;
  else
    nice = 10.0;
  double step = nice * unit;
  *minor = step / (nice == 2.0 ? 4.0 : 5.0);
  int e = (int) exponent + (nice == 10.0 ? 1 : 0);
  *decimals = MAX (0, -e);
  return step;
}

/* Tick label with a true minus sign. */
static char *
format_tick (double value, int decimals, double step)
{
  if (fabs (value) < step * 1e-6)
    value = 0.0;
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];
  g_autofree char *format = g_strdup_printf ("%%.%df", decimals);
  g_ascii_formatd (buffer, sizeof buffer, format, fabs (value));
  return g_strconcat (value < 0 ? "−" : "", buffer, NULL);
}

/* Text with its anchor at (x, y): ax 0 left, 0.5 centre, 1 right; ay 0 top, 0.5 middle,
 * 1 bottom (of the font's ascent + descent box). */
static void
draw_text (cairo_t *cr, double x, double y, const char *text, double ax, double ay)
{
  cairo_text_extents_t extents;
  cairo_font_extents_t font;
  cairo_text_extents (cr, text, &extents);
  cairo_font_extents (cr, &font);
  double height = font.ascent + font.descent;
  cairo_move_to (cr, x - ax * extents.x_advance, y - ay * height + font.ascent);
  cairo_show_text (cr, text);
}

static void
set_font (cairo_t *cr, double size, gboolean bold)
{
  cairo_select_font_face (cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                          bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size (cr, size);
}

/* Viridis, interpolated linearly between its values at 0, 1/8, …, 1 (matplotlib's colour
 * map, sampled as #440154 … #fde725). */
static void
viridis (double t, double rgb[3])
{
  static const double table[9][3] = {
    { 0.267, 0.004, 0.329 }, { 0.278, 0.176, 0.482 }, { 0.231, 0.322, 0.545 },
    { 0.173, 0.447, 0.557 }, { 0.129, 0.569, 0.549 }, { 0.157, 0.682, 0.502 },
    { 0.369, 0.788, 0.384 }, { 0.678, 0.863, 0.188 }, { 0.992, 0.906, 0.145 },
  };
  t = CLAMP (t, 0.0, 1.0) * 8.0;
  int i = MIN ((int) t, 7);
  double f = t - i;
  for (int c = 0; c < 3; c++)
    rgb[c] = table[i][c] * (1 - f) + table[i + 1][c] * f;
}

static void
draw_ticks (cairo_t *cr, const Axes *axes)
{
  double minor, step;
  int decimals;
  step = nice_step ((axes->hi - axes->lo) / 5.0, &minor, &decimals);
  cairo_set_source_rgb (cr, 0, 0, 0);
  cairo_set_line_width (cr, 1.0);
  double x0 = axes->x, y0 = axes->y, s = axes->side;
  /* minor ticks */
  for (double v = ceil (axes->lo / minor) * minor; v <= axes->hi + minor * 1e-9; v += minor) {
    double px = round (to_x (axes, v)) + 0.5, py = round (to_y (axes, v)) + 0.5;
    cairo_move_to (cr, px, y0 + s);
    cairo_line_to (cr, px, y0 + s - 4);
    cairo_move_to (cr, px, y0);
    cairo_line_to (cr, px, y0 + 4);
    cairo_move_to (cr, x0, py);
    cairo_line_to (cr, x0 + 4, py);
    cairo_move_to (cr, x0 + s, py);
    cairo_line_to (cr, x0 + s - 4, py);
  }
  cairo_stroke (cr);
  /* major ticks with labels */
  set_font (cr, 13, FALSE);
  for (double v = ceil (axes->lo / step) * step; v <= axes->hi + step * 1e-9; v += step) {
    double px = round (to_x (axes, v)) + 0.5, py = round (to_y (axes, v)) + 0.5;
    cairo_move_to (cr, px, y0 + s);
    cairo_line_to (cr, px, y0 + s - 8);
    cairo_move_to (cr, px, y0);
    cairo_line_to (cr, px, y0 + 8);
    cairo_move_to (cr, x0, py);
    cairo_line_to (cr, x0 + 8, py);
    cairo_move_to (cr, x0 + s, py);
    cairo_line_to (cr, x0 + s - 8, py);
    cairo_stroke (cr);
    g_autofree char *label = format_tick (v, decimals, step);
    draw_text (cr, px, y0 + s + 6, label, 0.5, 0.0);
    draw_text (cr, x0 - 7, py, label, 1.0, 0.5);
  }
}

static void
draw_dots (cairo_t *cr, const Axes *axes, const double *x, const double *y, gsize n)
{
  double radius = n < 300 ? 3.2 : n < 1500 ? 2.4 : 1.7;
  double alpha = n < 300 ? 0.7 : n < 1500 ? 0.45 : 0.3;
  cairo_set_source_rgba (cr, 0.13, 0.35, 0.66, alpha);
  for (gsize i = 0; i < n; i++) {
    cairo_new_sub_path (cr);
    cairo_arc (cr, to_x (axes, x[i]), to_y (axes, y[i]), radius, 0, 2 * G_PI);
    cairo_fill (cr);
  }
}

/* 2-D histogram over the axes; returns the largest count (for the colour bar). */
static int
draw_density (cairo_t *cr, const Axes *axes, const double *x, const double *y, gsize n)
{
  g_autofree int *counts = g_new0 (int, DENSITY_BINS * DENSITY_BINS);
  int largest = 0;
  double scale = DENSITY_BINS / (axes->hi - axes->lo);
  for (gsize i = 0; i < n; i++) {
    int bx = (int) floor ((x[i] - axes->lo) * scale), by = (int) floor ((y[i] - axes->lo) * scale);
    if (bx < 0 || by < 0 || bx >= DENSITY_BINS || by >= DENSITY_BINS)
      continue;
    int *cell = &counts[by * DENSITY_BINS + bx];
    largest = MAX (largest, ++*cell);
  }
  double cell = axes->side / DENSITY_BINS, rgb[3];
  for (int by = 0; by < DENSITY_BINS; by++)
    for (int bx = 0; bx < DENSITY_BINS; bx++) {
      int count = counts[by * DENSITY_BINS + bx];
      if (count == 0)
        continue;
      viridis (largest > 1 ? log ((double) count) / log ((double) largest) : 1.0, rgb);
      cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
      /* a hair of overlap hides seams between cells */
      cairo_rectangle (cr, axes->x + bx * cell, axes->y + axes->side - (by + 1) * cell,
                       cell + 0.5, cell + 0.5);
      cairo_fill (cr);
    }
  return largest;
}

static void
draw_colourbar (cairo_t *cr, const Axes *axes, int largest)
{
  double x = axes->x + axes->side + 22, width = 14, top = axes->y, height = axes->side, rgb[3];
  for (int i = 0; i < 256; i++) {
    viridis ((i + 0.5) / 256.0, rgb);
    cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
    cairo_rectangle (cr, x, top + height * (1.0 - (i + 1) / 256.0), width, height / 256.0 + 0.5);
    cairo_fill (cr);
  }
  cairo_set_source_rgb (cr, 0, 0, 0);
  cairo_set_line_width (cr, 1.0);
  cairo_rectangle (cr, x + 0.5, top + 0.5, width - 1, height - 1);
  cairo_stroke (cr);
  set_font (cr, 12, FALSE);
  double log_largest = log10 (MAX (largest, 2));
  for (int e = 0; e <= (int) floor (log_largest); e++) {
    double py = top + height * (1.0 - e / log_largest);
    cairo_move_to (cr, x + width, round (py) + 0.5);
    cairo_line_to (cr, x + width + 4, round (py) + 0.5);
    cairo_stroke (cr);
    g_autofree char *label = g_strdup_printf ("%.0f", pow (10.0, e));
    draw_text (cr, x + width + 6, py, label, 0.0, 0.5);
  }
  cairo_save (cr);
  cairo_translate (cr, x + width + 50, top + height / 2);
  cairo_rotate (cr, -G_PI / 2);
  set_font (cr, 13, FALSE);
  draw_text (cr, 0, 0, _("galaxies per cell"), 0.5, 0.5);
  cairo_restore (cr);
}

static void
draw_notes (cairo_t *cr, const Axes *axes, const char *const *notes)
{
  if (notes == NULL || notes[0] == NULL)
    return;
  set_font (cr, 13, FALSE);
  cairo_font_extents_t font;
  cairo_font_extents (cr, &font);
  double width = 0, line = font.ascent + font.descent + 2;
  int n = 0;
  for (; notes[n]; n++) {
    cairo_text_extents_t extents;
    cairo_text_extents (cr, notes[n], &extents);
    width = MAX (width, extents.x_advance);
  }
  double x = axes->x + 12, y = axes->y + 12, pad = 6;
  cairo_set_source_rgba (cr, 1, 1, 1, 0.85);
  cairo_rectangle (cr, x, y, width + 2 * pad, n * line + 2 * pad - 2);
  cairo_fill_preserve (cr);
  cairo_set_source_rgba (cr, 0, 0, 0, 0.35);
  cairo_set_line_width (cr, 1.0);
  cairo_stroke (cr);
  cairo_set_source_rgb (cr, 0, 0, 0);
  for (int i = 0; i < n; i++)
    draw_text (cr, x + pad, y + pad + i * line, notes[i], 0.0, 0.0);
}

gboolean
astroclip_plot_predicted_vs_true (const char *path, const double *truth,
                                  const double *predicted, gint64 n,
                                  const AstroclipPlotText *text, GError **error)
{
  g_return_val_if_fail (path != NULL && text != NULL && n >= 0, FALSE);
  g_return_val_if_fail (n == 0 || (truth && predicted), FALSE);

  /* finite pairs, and the range of both together */
  g_autofree double *x = g_new (double, MAX (n, 1));
  g_autofree double *y = g_new (double, MAX (n, 1));
  g_autofree double *both = g_new (double, 2 * MAX (n, 1));
  gsize m = 0;
  for (gint64 i = 0; i < n; i++)
    if (isfinite (truth[i]) && isfinite (predicted[i])) {
      x[m] = truth[i];
      y[m] = predicted[i];
      both[2 * m] = truth[i];
      both[2 * m + 1] = predicted[i];
      m++;
    }
  double lo = 0.0, hi = 1.0;
  if (m > 0) {
    qsort (both, 2 * m, sizeof (double), compare_doubles);
    gboolean trim = 2 * m >= 400;
    lo = trim ? sorted_percentile (both, 2 * m, 0.005) : both[0];
    hi = trim ? sorted_percentile (both, 2 * m, 0.995) : both[2 * m - 1];
  }
  double span = hi - lo;
  if (!(span > 0.0))
    span = MAX (fabs (lo) * 0.2, 1.0);
  double centre = 0.5 * (lo + hi);
  lo = centre - 0.55 * span;
  hi = centre + 0.55 * span;

  gboolean density = m > DENSITY_ABOVE;
  double width = MARGIN_LEFT + AXES_SIDE + MARGIN_RIGHT + (density ? COLOURBAR_SPACE : 0.0);
  double height = MARGIN_TOP + AXES_SIDE + MARGIN_BOTTOM;
  cairo_surface_t *surface =
      cairo_image_surface_create (CAIRO_FORMAT_RGB24, (int) width, (int) height);
  cairo_t *cr = cairo_create (surface);
  cairo_set_source_rgb (cr, 1, 1, 1);
  cairo_paint (cr);
  Axes axes = { MARGIN_LEFT, MARGIN_TOP, AXES_SIDE, lo, hi };

  /* data, clipped to the axes */
  cairo_save (cr);
  cairo_rectangle (cr, axes.x, axes.y, axes.side, axes.side);
  cairo_clip (cr);
  int largest = 0;
  if (density)
    largest = draw_density (cr, &axes, x, y, m);
  else
    draw_dots (cr, &axes, x, y, m);
  /* the 1:1 line */
  const double dashes[] = { 7.0, 4.0 };
  cairo_set_dash (cr, dashes, 2, 0);
  cairo_set_line_width (cr, 1.4);
  cairo_set_source_rgba (cr, 0.15, 0.15, 0.15, 0.9);
  cairo_move_to (cr, to_x (&axes, lo), to_y (&axes, lo));
  cairo_line_to (cr, to_x (&axes, hi), to_y (&axes, hi));
  cairo_stroke (cr);
  cairo_set_dash (cr, NULL, 0, 0);
  cairo_restore (cr);

  /* frame, ticks, labels */
  cairo_set_source_rgb (cr, 0, 0, 0);
  cairo_set_line_width (cr, 1.2);
  cairo_rectangle (cr, axes.x + 0.5, axes.y + 0.5, axes.side - 1, axes.side - 1);
  cairo_stroke (cr);
  draw_ticks (cr, &axes);
  if (density)
    draw_colourbar (cr, &axes, largest);
  draw_notes (cr, &axes, text->notes);

  cairo_set_source_rgb (cr, 0, 0, 0);
  set_font (cr, 15, FALSE);
  if (text->x_label)
    draw_text (cr, axes.x + axes.side / 2, axes.y + axes.side + 30, text->x_label, 0.5, 0.0);
  if (text->y_label) {
    cairo_save (cr);
    cairo_translate (cr, 22, axes.y + axes.side / 2);
    cairo_rotate (cr, -G_PI / 2);
    draw_text (cr, 0, 0, text->y_label, 0.5, 0.5);
    cairo_restore (cr);
  }
  set_font (cr, 16, TRUE);
  if (text->title)
    draw_text (cr, axes.x, 16, text->title, 0.0, 0.0);
  if (text->subtitle) {
    cairo_set_source_rgb (cr, 0.35, 0.35, 0.35);
    set_font (cr, 13, FALSE);
    draw_text (cr, axes.x, 40, text->subtitle, 0.0, 0.0);
  }

  cairo_destroy (cr);
  cairo_surface_flush (surface);
  cairo_status_t status = cairo_surface_status (surface);
  if (status == CAIRO_STATUS_SUCCESS)
    status = cairo_surface_write_to_png (surface, path);
  cairo_surface_destroy (surface);
  if (status != CAIRO_STATUS_SUCCESS) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: cannot write the figure: %s"), path,
                 cairo_status_to_string (status));
    return FALSE;
  }
  return TRUE;
}
