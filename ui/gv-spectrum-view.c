/* gv-spectrum-view.c — the spectrum plot (gv-spectrum-view.h), drawn with cairo.
 *
 * Data are kept in the observed frame; the view range too (view_lo..view_hi, observed Å), so
 * that switching frames shows the same stretch of spectrum. A value shown on the x axis is
 * λ/(1 + z) in the rest frame and λ otherwise. Overlays are stored already moved to the main
 * galaxy's observed frame: λ·(1 + z_main)/(1 + z_overlay).
 *
 * The smoothed flux is recomputed when the data or the smoothing change (7781 pixels with a
 * Gaussian of FWHM 15 pixels take well under a millisecond), not on every frame.
 */
#include "gv-spectrum-view.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

/* Margins of the plot area inside the widget, logical pixels: room for tick labels and axis
 * titles on the left and bottom, and for line labels on top. */
#define MARGIN_LEFT   72.0
#define MARGIN_RIGHT  14.0
#define MARGIN_TOP    54.0
#define MARGIN_BOTTOM 46.0

#define ZOOM_STEP 1.5
#define MIN_SPAN  10.0 /* Å: narrowest wavelength window */

typedef struct
{
  double *wave; /* observed frame of the main galaxy, Å */
  float *flux, *ivar;
  float *shown; /* smoothed and scaled */
  int n;
  GdkRGBA colour;
} Overlay;

struct _GvSpectrumView
{
  GtkWidget parent_instance;

  double *wave;
  float *flux, *ivar, *smoothed;
  int n;
  double z;

  GPtrArray *overlays; /* of Overlay */

  double smoothing;
  GvSmoothKernel kernel;
  gboolean rest_frame, show_lines;

  double view_lo, view_hi; /* observed Å */
  double drag_lo, drag_hi;
  double pointer_x;
};

enum
{
  PROP_0,
  PROP_SMOOTHING,
  PROP_KERNEL,
  PROP_REST_FRAME,
  PROP_SHOW_LINES,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (GvSpectrumView, gv_spectrum_view, GTK_TYPE_WIDGET)

static void
overlay_free (gpointer data)
{
  Overlay *o = data;

  g_free (o->wave);
  g_free (o->flux);
  g_free (o->ivar);
  g_free (o->shown);
  g_free (o);
}

static double
frame_factor (GvSpectrumView *self)
{
  /* Observed → shown: divide by (1 + z) in the rest frame. */
  if (self->rest_frame && isfinite (self->z) && self->z > -1.0)
    return 1.0 + self->z;
  return 1.0;
}

static void
update_overlay (GvSpectrumView *self, Overlay *o)
{
  g_free (o->shown);
  o->shown = g_new (float, MAX (o->n, 1));
  gv_smooth_spectrum (o->flux, o->ivar, o->n, self->kernel, self->smoothing, o->shown);
  if (self->smoothed != NULL) {
    double scale = gv_overlay_scale (self->wave, self->smoothed, self->n, o->wave, o->shown, o->n);
    for (int i = 0; i < o->n; i++)
      o->shown[i] = (float) (o->shown[i] * scale);
  }
}

static void
update_smoothed (GvSpectrumView *self)
{
  g_clear_pointer (&self->smoothed, g_free);
  if (self->wave != NULL) {
    self->smoothed = g_new (float, MAX (self->n, 1));
    gv_smooth_spectrum (self->flux, self->ivar, self->n, self->kernel, self->smoothing,
                        self->smoothed);
  }
  for (guint i = 0; i < self->overlays->len; i++)
    update_overlay (self, g_ptr_array_index (self->overlays, i));
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* ---------------------------------------------------------------------------------------- */
/* View range                                                                                */
/* ---------------------------------------------------------------------------------------- */

static void
data_range (GvSpectrumView *self, double *lo, double *hi)
{
  if (self->n > 0) {
    *lo = self->wave[0];
    *hi = self->wave[self->n - 1];
  } else {
    *lo = 3600.0;
    *hi = 9800.0;
  }
}

static void
set_view (GvSpectrumView *self, double lo, double hi)
{
  double full_lo, full_hi;
  data_range (self, &full_lo, &full_hi);

  double span = CLAMP (hi - lo, MIN (MIN_SPAN, full_hi - full_lo), full_hi - full_lo);
  double mid = 0.5 * (lo + hi);
  lo = mid - span / 2;
  hi = mid + span / 2;
  if (lo < full_lo) {
    hi += full_lo - lo;
    lo = full_lo;
  }
  if (hi > full_hi) {
    lo -= hi - full_hi;
    hi = full_hi;
  }
  self->view_lo = MAX (lo, full_lo);
  self->view_hi = hi;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
gv_spectrum_view_get_view_range (GvSpectrumView *self, double *lo, double *hi)
{
  g_return_if_fail (GV_IS_SPECTRUM_VIEW (self));
  double f = frame_factor (self);
  if (lo != NULL)
    *lo = self->view_lo / f;
  if (hi != NULL)
    *hi = self->view_hi / f;
}

void
gv_spectrum_view_zoom (GvSpectrumView *self, double factor, double at)
{
  g_return_if_fail (GV_IS_SPECTRUM_VIEW (self));
  g_return_if_fail (factor > 0.0);

  at = CLAMP (at, 0.0, 1.0);
  double anchor = self->view_lo + at * (self->view_hi - self->view_lo);
  double span = (self->view_hi - self->view_lo) / factor;
  set_view (self, anchor - at * span, anchor + (1.0 - at) * span);
}

void
gv_spectrum_view_zoom_in (GvSpectrumView *self)
{
  gv_spectrum_view_zoom (self, ZOOM_STEP, 0.5);
}

void
gv_spectrum_view_zoom_out (GvSpectrumView *self)
{
  gv_spectrum_view_zoom (self, 1.0 / ZOOM_STEP, 0.5);
}

void
gv_spectrum_view_reset_view (GvSpectrumView *self)
{
  g_return_if_fail (GV_IS_SPECTRUM_VIEW (self));
  double lo, hi;
  data_range (self, &lo, &hi);
  set_view (self, lo, hi);
}

static void
pan_by_fraction (GvSpectrumView *self, double fraction)
{
  double d = fraction * (self->view_hi - self->view_lo);
  set_view (self, self->view_lo + d, self->view_hi + d);
}

/* ---------------------------------------------------------------------------------------- */
/* Input                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static double
plot_width (GvSpectrumView *self)
{
  return MAX (1.0, gtk_widget_get_width (GTK_WIDGET (self)) - MARGIN_LEFT - MARGIN_RIGHT);
}

static void
on_motion (GtkEventControllerMotion *controller, double x, double y, GvSpectrumView *self)
{
  self->pointer_x = x;
}

static gboolean
on_scroll (GtkEventControllerScroll *controller, double dx, double dy, GvSpectrumView *self)
{
  if (self->wave == NULL)
    return FALSE;
  if (dy != 0) {
    double at = self->pointer_x >= 0 ? (self->pointer_x - MARGIN_LEFT) / plot_width (self) : 0.5;
    gv_spectrum_view_zoom (self, pow (ZOOM_STEP, -dy), at);
  }
  if (dx != 0)
    pan_by_fraction (self, 0.1 * dx);
  return TRUE;
}

static void
on_drag_begin (GtkGestureDrag *gesture, double x, double y, GvSpectrumView *self)
{
  self->drag_lo = self->view_lo;
  self->drag_hi = self->view_hi;
  gtk_widget_grab_focus (GTK_WIDGET (self));
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), "grabbing");
}

static void
on_drag_update (GtkGestureDrag *gesture, double dx, double dy, GvSpectrumView *self)
{
  double d = -dx / plot_width (self) * (self->drag_hi - self->drag_lo);
  set_view (self, self->drag_lo + d, self->drag_hi + d);
}

static void
on_drag_end (GtkGestureDrag *gesture, double dx, double dy, GvSpectrumView *self)
{
  gtk_widget_set_cursor (GTK_WIDGET (self), NULL);
}

static gboolean
on_key_pressed (GtkEventControllerKey *controller, guint keyval, guint keycode,
                GdkModifierType state, GvSpectrumView *self)
{
  if (state & (GDK_CONTROL_MASK | GDK_ALT_MASK))
    return FALSE;
  switch (keyval) {
    case GDK_KEY_plus:
    case GDK_KEY_equal:
    case GDK_KEY_KP_Add:
      gv_spectrum_view_zoom_in (self);
      return TRUE;
    case GDK_KEY_minus:
    case GDK_KEY_KP_Subtract:
      gv_spectrum_view_zoom_out (self);
      return TRUE;
    case GDK_KEY_0:
    case GDK_KEY_KP_0:
    case GDK_KEY_Home:
      gv_spectrum_view_reset_view (self);
      return TRUE;
    case GDK_KEY_Left:
      pan_by_fraction (self, -0.1);
      return TRUE;
    case GDK_KEY_Right:
      pan_by_fraction (self, 0.1);
      return TRUE;
    default:
      return FALSE;
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Drawing                                                                                   */
/* ---------------------------------------------------------------------------------------- */

typedef struct
{
  double x0, y0, w, h; /* plot area */
  double lo, hi;       /* shown wavelengths at the left and right edges */
  double ylo, yhi;     /* flux at the bottom and top */
  double f;            /* observed → shown divisor */
} Frame;

static inline double
frame_x (const Frame *fr, double observed)
{
  return fr->x0 + (observed / fr->f - fr->lo) / (fr->hi - fr->lo) * fr->w;
}

static inline double
frame_y (const Frame *fr, double flux)
{
  return fr->y0 + fr->h - (flux - fr->ylo) / (fr->yhi - fr->ylo) * fr->h;
}

/* Strokes values against wavelengths, breaking the line at NaN (gaps). Only the pixels in view
 * (and one either side) are drawn. */
static void
stroke_series (cairo_t *cr, const Frame *fr, const double *wave, const float *values, int n)
{
  gboolean pen_down = FALSE;

  for (int i = 0; i < n; i++) {
    double shown = wave[i] / fr->f;
    if (shown < fr->lo && i + 1 < n && wave[i + 1] / fr->f < fr->lo)
      continue;
    if (!isfinite (values[i])) {
      pen_down = FALSE;
      continue;
    }
    double x = frame_x (fr, wave[i]), y = frame_y (fr, values[i]);
    if (pen_down)
      cairo_line_to (cr, x, y);
    else
      cairo_move_to (cr, x, y);
    pen_down = TRUE;
    if (shown > fr->hi)
      break;
  }
  cairo_stroke (cr);
}

static PangoLayout *
make_layout (GtkWidget *widget, const char *text, double scale)
{
  PangoLayout *layout = gtk_widget_create_pango_layout (widget, text);

  if (scale != 1.0) {
    PangoFontDescription *desc = pango_font_description_copy (
        pango_context_get_font_description (pango_layout_get_context (layout)));
    pango_font_description_set_size (desc, (int) (pango_font_description_get_size (desc) * scale));
    pango_layout_set_font_description (layout, desc);
    pango_font_description_free (desc);
  }
  return layout;
}

/* Draws text with its anchor point at (x, y): ax, ay in [0, 1] are the fractions of the text's
 * width and height left of and above the anchor. */
static void
draw_text (cairo_t *cr, GtkWidget *widget, const char *text, double scale, double x, double y,
           double ax, double ay, double *width)
{
  PangoLayout *layout = make_layout (widget, text, scale);
  int w, h;

  pango_layout_get_pixel_size (layout, &w, &h);
  cairo_move_to (cr, x - ax * w, y - ay * h);
  pango_cairo_show_layout (cr, layout);
  if (width != NULL)
    *width = w;
  g_object_unref (layout);
}

static void
draw_axes (GvSpectrumView *self, cairo_t *cr, const Frame *fr, const GdkRGBA *fg)
{
  GtkWidget *widget = GTK_WIDGET (self);
  double ticks[32], step;
  char buf[64];

  cairo_set_line_width (cr, 1.0);
  gdk_cairo_set_source_rgba (cr, fg);
  cairo_rectangle (cr, fr->x0 + 0.5, fr->y0 + 0.5, fr->w, fr->h);
  cairo_stroke (cr);

  /* x ticks: about one per 90 pixels. */
  int nx = gv_axis_ticks (fr->lo, fr->hi, MAX (2, (int) (fr->w / 90)), ticks, 32, &step);
  int dx = gv_axis_tick_decimals (step);
  for (int i = 0; i < nx; i++) {
    double x = round (fr->x0 + (ticks[i] - fr->lo) / (fr->hi - fr->lo) * fr->w) + 0.5;
    cairo_move_to (cr, x, fr->y0 + fr->h);
    cairo_line_to (cr, x, fr->y0 + fr->h - 5);
    cairo_stroke (cr);
    g_snprintf (buf, sizeof buf, "%.*f", dx, ticks[i]);
    draw_text (cr, widget, buf, 0.85, x, fr->y0 + fr->h + 3, 0.5, 0.0, NULL);
  }
  draw_text (cr, widget,
             self->rest_frame ? _("Rest-frame wavelength (Å)") : _("Observed wavelength (Å)"),
             1.0, fr->x0 + fr->w / 2, fr->y0 + fr->h + MARGIN_BOTTOM - 2, 0.5, 1.0, NULL);

  /* y ticks: about one per 40 pixels. */
  int ny = gv_axis_ticks (fr->ylo, fr->yhi, MAX (2, (int) (fr->h / 40)), ticks, 32, &step);
  int dy = gv_axis_tick_decimals (step);
  for (int i = 0; i < ny; i++) {
    double y = round (frame_y (fr, ticks[i])) + 0.5;
    cairo_move_to (cr, fr->x0, y);
    cairo_line_to (cr, fr->x0 + 5, y);
    cairo_stroke (cr);
    g_snprintf (buf, sizeof buf, "%.*f", dy, ticks[i]);
    draw_text (cr, widget, buf, 0.85, fr->x0 - 4, y, 1.0, 0.5, NULL);
  }
  cairo_save (cr);
  cairo_translate (cr, 2, fr->y0 + fr->h / 2);
  cairo_rotate (cr, -G_PI / 2);
  draw_text (cr, widget, _("Flux (10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹)"), 0.85, 0, 0, 0.5, 0.0, NULL);
  cairo_restore (cr);
}

/* Emission lines in orange, dashed; absorption in purple, dotted: told apart by hue and by
 * pattern, so also for colour-blind readers. */
static const GdkRGBA emission_colour = { 0.78f, 0.27f, 0.0f, 1.0f };
static const GdkRGBA absorption_colour = { 0.51f, 0.24f, 0.61f, 1.0f };

static void
draw_lines (GvSpectrumView *self, cairo_t *cr, const Frame *fr)
{
  GtkWidget *widget = GTK_WIDGET (self);
  gsize n_lines;
  const GvSpectralLine *lines = gv_spectral_lines (&n_lines);
  /* Labels go in up to four rows above the plot; a label goes in the first row where it does
   * not overlap the previous one, and is left out when the rows are full or when the line is
   * the second of a close doublet with the same name. */
  enum
  {
    N_ROWS = 4
  };
  double row_end[N_ROWS] = { -G_MAXDOUBLE, -G_MAXDOUBLE, -G_MAXDOUBLE, -G_MAXDOUBLE };
  double row_height = (MARGIN_TOP - 4) / N_ROWS;
  double last_label_x = -G_MAXDOUBLE;
  const char *last_label = NULL;

  for (gsize i = 0; i < n_lines; i++) {
    double observed = gv_line_position (lines[i].wavelength, self->z, FALSE);
    double x = frame_x (fr, observed);
    if (x < fr->x0 || x > fr->x0 + fr->w)
      continue;
    const GdkRGBA *colour = lines[i].emission ? &emission_colour : &absorption_colour;
    double dash_emission[] = { 5.0, 3.0 }, dash_absorption[] = { 1.5, 2.5 };

    gdk_cairo_set_source_rgba (cr, colour);
    cairo_set_line_width (cr, 1.0);
    if (lines[i].emission)
      cairo_set_dash (cr, dash_emission, 2, 0);
    else
      cairo_set_dash (cr, dash_absorption, 2, 0);
    cairo_move_to (cr, round (x) + 0.5, fr->y0);
    cairo_line_to (cr, round (x) + 0.5, fr->y0 + fr->h);
    cairo_stroke (cr);
    cairo_set_dash (cr, NULL, 0, 0);

    if (last_label != NULL && strcmp (last_label, lines[i].label) == 0 && x - last_label_x < 40)
      continue;
    PangoLayout *layout = make_layout (widget, lines[i].label, 0.8);
    int w, h;
    pango_layout_get_pixel_size (layout, &w, &h);
    double left = x - w / 2.0;
    for (int row = 0; row < N_ROWS; row++) {
      if (left > row_end[row] + 3) {
        double y = fr->y0 - 2 - (row + 1) * row_height;
        cairo_move_to (cr, left, y + (row_height - h) / 2);
        pango_cairo_show_layout (cr, layout);
        row_end[row] = left + w;
        last_label = lines[i].label;
        last_label_x = x;
        break;
      }
    }
    g_object_unref (layout);
  }
}

static void
gv_spectrum_view_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  GvSpectrumView *self = GV_SPECTRUM_VIEW (widget);
  int ww = gtk_widget_get_width (widget), wh = gtk_widget_get_height (widget);
  GdkRGBA fg;

  if (ww <= MARGIN_LEFT + MARGIN_RIGHT + 10 || wh <= MARGIN_TOP + MARGIN_BOTTOM + 10)
    return;
  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &fg);

  cairo_t *cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, ww, wh));
  Frame fr = { .x0 = MARGIN_LEFT,
               .y0 = MARGIN_TOP,
               .w = ww - MARGIN_LEFT - MARGIN_RIGHT,
               .h = wh - MARGIN_TOP - MARGIN_BOTTOM,
               .f = frame_factor (self) };
  fr.lo = self->view_lo / fr.f;
  fr.hi = self->view_hi / fr.f;

  if (self->smoothed == NULL) {
    fr.ylo = 0;
    fr.yhi = 1;
    draw_axes (self, cr, &fr, &fg);
    draw_text (cr, widget, _("No spectrum"), 1.0, fr.x0 + fr.w / 2, fr.y0 + fr.h / 2, 0.5, 0.5,
               NULL);
    cairo_destroy (cr);
    return;
  }

  /* The y range: robust percentiles of the smoothed flux in view. */
  int i0 = 0, i1 = self->n;
  while (i0 < self->n && self->wave[i0] < self->view_lo)
    i0++;
  while (i1 > i0 && self->wave[i1 - 1] > self->view_hi)
    i1--;
  if (!gv_plot_range (self->smoothed + i0, (gsize) (i1 - i0), 0.5, 99.5, 0.08, &fr.ylo, &fr.yhi)) {
    fr.ylo = -1;
    fr.yhi = 1;
  }

  draw_axes (self, cr, &fr, &fg);
  /* Lines before the clip: their labels sit above the plot area. */
  if (self->show_lines && isfinite (self->z))
    draw_lines (self, cr, &fr);

  cairo_save (cr);
  cairo_rectangle (cr, fr.x0 + 1, fr.y0 + 1, fr.w - 1, fr.h - 1);
  cairo_clip (cr);
  cairo_set_line_join (cr, CAIRO_LINE_JOIN_ROUND);

  /* Zero flux, for reference. */
  if (fr.ylo < 0 && fr.yhi > 0) {
    GdkRGBA zero = fg;
    zero.alpha *= 0.3f;
    gdk_cairo_set_source_rgba (cr, &zero);
    cairo_set_line_width (cr, 1.0);
    cairo_move_to (cr, fr.x0, round (frame_y (&fr, 0)) + 0.5);
    cairo_line_to (cr, fr.x0 + fr.w, round (frame_y (&fr, 0)) + 0.5);
    cairo_stroke (cr);
  }

  /* The unsmoothed good pixels, faint, behind the smoothed line. */
  if (self->smoothing > 1.0) {
    g_autofree float *raw = g_new (float, self->n);
    for (int i = 0; i < self->n; i++)
      raw[i] = self->ivar[i] > 0 && isfinite (self->ivar[i]) ? self->flux[i] : NAN;
    GdkRGBA faint = fg;
    faint.alpha *= 0.25f;
    gdk_cairo_set_source_rgba (cr, &faint);
    cairo_set_line_width (cr, 0.8);
    stroke_series (cr, &fr, self->wave, raw, self->n);
  }

  for (guint k = 0; k < self->overlays->len; k++) {
    Overlay *o = g_ptr_array_index (self->overlays, k);
    gdk_cairo_set_source_rgba (cr, &o->colour);
    cairo_set_line_width (cr, 1.2);
    stroke_series (cr, &fr, o->wave, o->shown, o->n);
  }

  GdkRGBA line = { 0.11f, 0.44f, 0.85f, 1.0f };
  gdk_cairo_set_source_rgba (cr, &line);
  cairo_set_line_width (cr, 1.4);
  stroke_series (cr, &fr, self->wave, self->smoothed, self->n);
  cairo_restore (cr);

  cairo_destroy (cr);
}

static void
gv_spectrum_view_measure (GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum,
                          int *natural, int *minimum_baseline, int *natural_baseline)
{
  if (orientation == GTK_ORIENTATION_HORIZONTAL) {
    *minimum = 240;
    *natural = 720;
  } else {
    *minimum = 160;
    *natural = 280;
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Public API                                                                                */
/* ---------------------------------------------------------------------------------------- */

void
gv_spectrum_view_set_spectrum (GvSpectrumView *self, const double *wavelength, const float *flux,
                               const float *ivar, int n, double z)
{
  g_return_if_fail (GV_IS_SPECTRUM_VIEW (self));
  g_return_if_fail (wavelength == NULL || (flux != NULL && ivar != NULL && n > 0));

  g_clear_pointer (&self->wave, g_free);
  g_clear_pointer (&self->flux, g_free);
  g_clear_pointer (&self->ivar, g_free);
  self->n = 0;
  g_ptr_array_set_size (self->overlays, 0);
  if (wavelength != NULL) {
    self->wave = g_memdup2 (wavelength, sizeof (double) * n);
    self->flux = g_memdup2 (flux, sizeof (float) * n);
    self->ivar = g_memdup2 (ivar, sizeof (float) * n);
    self->n = n;
  }
  self->z = z;
  update_smoothed (self);
  gv_spectrum_view_reset_view (self);
}

gboolean
gv_spectrum_view_has_spectrum (GvSpectrumView *self)
{
  g_return_val_if_fail (GV_IS_SPECTRUM_VIEW (self), FALSE);
  return self->wave != NULL;
}

void
gv_spectrum_view_set_smoothing (GvSpectrumView *self, double width_pixels)
{
  g_return_if_fail (GV_IS_SPECTRUM_VIEW (self));
  width_pixels = CLAMP (width_pixels, 0.0, 200.0);
  if (self->smoothing == width_pixels)
    return;
  self->smoothing = width_pixels;
  update_smoothed (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SMOOTHING]);
}

double
gv_spectrum_view_get_smoothing (GvSpectrumView *self)
{
  g_return_val_if_fail (GV_IS_SPECTRUM_VIEW (self), 0.0);
  return self->smoothing;
}

void
gv_spectrum_view_set_kernel (GvSpectrumView *self, GvSmoothKernel kernel)
{
  g_return_if_fail (GV_IS_SPECTRUM_VIEW (self));
  g_return_if_fail (kernel <= GV_SMOOTH_GAUSSIAN);
  if (self->kernel == kernel)
    return;
  self->kernel = kernel;
  update_smoothed (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_KERNEL]);
}

GvSmoothKernel
gv_spectrum_view_get_kernel (GvSpectrumView *self)
{
  g_return_val_if_fail (GV_IS_SPECTRUM_VIEW (self), GV_SMOOTH_BOXCAR);
  return self->kernel;
}

void
gv_spectrum_view_set_rest_frame (GvSpectrumView *self, gboolean rest_frame)
{
  g_return_if_fail (GV_IS_SPECTRUM_VIEW (self));
  rest_frame = !!rest_frame;
  if (self->rest_frame == rest_frame)
    return;
  self->rest_frame = rest_frame;
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REST_FRAME]);
}

gboolean
gv_spectrum_view_get_rest_frame (GvSpectrumView *self)
{
  g_return_val_if_fail (GV_IS_SPECTRUM_VIEW (self), FALSE);
  return self->rest_frame;
}

void
gv_spectrum_view_set_show_lines (GvSpectrumView *self, gboolean show_lines)
{
  g_return_if_fail (GV_IS_SPECTRUM_VIEW (self));
  show_lines = !!show_lines;
  if (self->show_lines == show_lines)
    return;
  self->show_lines = show_lines;
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SHOW_LINES]);
}

gboolean
gv_spectrum_view_get_show_lines (GvSpectrumView *self)
{
  g_return_val_if_fail (GV_IS_SPECTRUM_VIEW (self), FALSE);
  return self->show_lines;
}

const float *
gv_spectrum_view_get_smoothed (GvSpectrumView *self, int *n)
{
  g_return_val_if_fail (GV_IS_SPECTRUM_VIEW (self), NULL);
  if (n != NULL)
    *n = self->n;
  return self->smoothed;
}

void
gv_spectrum_view_add_overlay (GvSpectrumView *self, const double *wavelength, const float *flux,
                              const float *ivar, int n, double z, const GdkRGBA *colour)
{
  g_return_if_fail (GV_IS_SPECTRUM_VIEW (self));
  g_return_if_fail (wavelength != NULL && flux != NULL && ivar != NULL && n > 0);
  g_return_if_fail (colour != NULL);

  Overlay *o = g_new0 (Overlay, 1);
  double z_main = isfinite (self->z) ? self->z : 0.0;
  double z_other = isfinite (z) ? z : 0.0;
  double shift = (1.0 + z_main) / (1.0 + z_other);

  o->n = n;
  o->wave = g_new (double, n);
  for (int i = 0; i < n; i++)
    o->wave[i] = wavelength[i] * shift;
  o->flux = g_memdup2 (flux, sizeof (float) * n);
  o->ivar = g_memdup2 (ivar, sizeof (float) * n);
  o->colour = *colour;
  update_overlay (self, o);
  g_ptr_array_add (self->overlays, o);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
gv_spectrum_view_clear_overlays (GvSpectrumView *self)
{
  g_return_if_fail (GV_IS_SPECTRUM_VIEW (self));
  g_ptr_array_set_size (self->overlays, 0);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

guint
gv_spectrum_view_get_n_overlays (GvSpectrumView *self)
{
  g_return_val_if_fail (GV_IS_SPECTRUM_VIEW (self), 0);
  return self->overlays->len;
}

/* ---------------------------------------------------------------------------------------- */
/* GObject                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void
gv_spectrum_view_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GvSpectrumView *self = GV_SPECTRUM_VIEW (object);

  switch (prop_id) {
    case PROP_SMOOTHING:
      g_value_set_double (value, self->smoothing);
      break;
    case PROP_KERNEL:
      g_value_set_uint (value, self->kernel);
      break;
    case PROP_REST_FRAME:
      g_value_set_boolean (value, self->rest_frame);
      break;
    case PROP_SHOW_LINES:
      g_value_set_boolean (value, self->show_lines);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
gv_spectrum_view_set_property (GObject *object, guint prop_id, const GValue *value,
                               GParamSpec *pspec)
{
  GvSpectrumView *self = GV_SPECTRUM_VIEW (object);

  switch (prop_id) {
    case PROP_SMOOTHING:
      gv_spectrum_view_set_smoothing (self, g_value_get_double (value));
      break;
    case PROP_KERNEL:
      gv_spectrum_view_set_kernel (self, (GvSmoothKernel) g_value_get_uint (value));
      break;
    case PROP_REST_FRAME:
      gv_spectrum_view_set_rest_frame (self, g_value_get_boolean (value));
      break;
    case PROP_SHOW_LINES:
      gv_spectrum_view_set_show_lines (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
gv_spectrum_view_finalize (GObject *object)
{
  GvSpectrumView *self = GV_SPECTRUM_VIEW (object);

  g_free (self->wave);
  g_free (self->flux);
  g_free (self->ivar);
  g_free (self->smoothed);
  g_ptr_array_unref (self->overlays);

  G_OBJECT_CLASS (gv_spectrum_view_parent_class)->finalize (object);
}

static void
gv_spectrum_view_class_init (GvSpectrumViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->get_property = gv_spectrum_view_get_property;
  object_class->set_property = gv_spectrum_view_set_property;
  object_class->finalize = gv_spectrum_view_finalize;
  widget_class->snapshot = gv_spectrum_view_snapshot;
  widget_class->measure = gv_spectrum_view_measure;

  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  properties[PROP_SMOOTHING] =
      g_param_spec_double ("smoothing", NULL, NULL, 0.0, 200.0, 5.0, flags);
  properties[PROP_KERNEL] =
      g_param_spec_uint ("kernel", NULL, NULL, 0, GV_SMOOTH_GAUSSIAN, GV_SMOOTH_BOXCAR, flags);
  properties[PROP_REST_FRAME] = g_param_spec_boolean ("rest-frame", NULL, NULL, FALSE, flags);
  properties[PROP_SHOW_LINES] = g_param_spec_boolean ("show-lines", NULL, NULL, TRUE, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_css_name (widget_class, "gv-spectrum-view");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
gv_spectrum_view_init (GvSpectrumView *self)
{
  GtkWidget *widget = GTK_WIDGET (self);

  self->overlays = g_ptr_array_new_with_free_func (overlay_free);
  self->smoothing = 5.0;
  self->kernel = GV_SMOOTH_BOXCAR;
  self->show_lines = TRUE;
  self->z = NAN;
  self->pointer_x = -1;
  self->view_lo = 3600.0;
  self->view_hi = 9800.0;

  gtk_widget_set_focusable (widget, TRUE);
  gtk_widget_set_overflow (widget, GTK_OVERFLOW_HIDDEN);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Spectrum"), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                  _("Plus and minus zoom the wavelength axis, left and right "
                                    "arrows pan, 0 shows the whole spectrum"),
                                  -1);

  GtkEventController *motion = gtk_event_controller_motion_new ();
  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  gtk_widget_add_controller (widget, motion);

  GtkEventController *scroll =
      gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_BOTH_AXES);
  g_signal_connect (scroll, "scroll", G_CALLBACK (on_scroll), self);
  gtk_widget_add_controller (widget, scroll);

  GtkGesture *drag = gtk_gesture_drag_new ();
  g_signal_connect (drag, "drag-begin", G_CALLBACK (on_drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (on_drag_update), self);
  g_signal_connect (drag, "drag-end", G_CALLBACK (on_drag_end), self);
  gtk_widget_add_controller (widget, GTK_EVENT_CONTROLLER (drag));

  GtkEventController *keys = gtk_event_controller_key_new ();
  g_signal_connect (keys, "key-pressed", G_CALLBACK (on_key_pressed), self);
  gtk_widget_add_controller (widget, keys);
}

GtkWidget *
gv_spectrum_view_new (void)
{
  return g_object_new (GV_TYPE_SPECTRUM_VIEW, NULL);
}
