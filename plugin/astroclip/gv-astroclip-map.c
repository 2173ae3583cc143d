/* gv-astroclip-map.c — the scatter plot of the embedding map (see the header). The points are
 * drawn once into an image surface, redrawn only when the map, the colours or the size change;
 * the highlights are drawn over it on every frame. */
#include "gv-astroclip-map.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MARGIN      8.0
#define PICK_RADIUS 10.0

typedef struct
{
  GvAstroclipMap *map;
  float *values; /* [n] per point, NaN where unknown; NULL: one colour */
  double lo, hi;
  double xmin, xmax, ymin, ymax; /* data range */
  cairo_surface_t *points;       /* cached drawing of the points */
  int surface_width, surface_height;
  gint64 selected_row;
  gint64 *highlight_rows;
  GdkRGBA *highlight_colours;
  int n_highlight;
  GvAstroclipMapPickFunc pick;
  gpointer pick_data;
} MapState;

static MapState *
state_of (GtkWidget *view)
{
  return g_object_get_data (G_OBJECT (view), "gv-astroclip-map-state");
}

static void
state_free (gpointer data)
{
  MapState *s = data;
  gv_astroclip_map_free (s->map);
  g_free (s->values);
  g_clear_pointer (&s->points, cairo_surface_destroy);
  g_free (s->highlight_rows);
  g_free (s->highlight_colours);
  g_free (s);
}

void
gv_astroclip_viridis (double t, double rgb[3])
{
  /* Nine samples of matplotlib's viridis, linearly interpolated. */
  static const double table[9][3] = {
    { 0.267, 0.005, 0.329 }, { 0.283, 0.141, 0.458 }, { 0.254, 0.265, 0.530 },
    { 0.207, 0.372, 0.553 }, { 0.164, 0.471, 0.558 }, { 0.128, 0.567, 0.551 },
    { 0.135, 0.659, 0.518 }, { 0.478, 0.821, 0.318 }, { 0.993, 0.906, 0.144 },
  };
  if (!isfinite (t))
    t = 0;
  t = CLAMP (t, 0.0, 1.0) * 8.0;
  int i = MIN ((int) t, 7);
  double f = t - i;
  for (int c = 0; c < 3; c++)
    rgb[c] = table[i][c] * (1 - f) + table[i + 1][c] * f;
}

static int
compare_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

static void
update_range (MapState *s)
{
  s->lo = s->hi = NAN;
  if (s->values == NULL || s->map == NULL)
    return;
  g_autofree float *finite = g_new (float, MAX (s->map->n, 1));
  gint64 n = 0;
  for (gint64 i = 0; i < s->map->n; i++)
    if (isfinite (s->values[i]))
      finite[n++] = s->values[i];
  if (n == 0)
    return;
  qsort (finite, n, sizeof (float), compare_float);
  s->lo = finite[(gint64) (0.02 * (n - 1))];
  s->hi = finite[(gint64) (0.98 * (n - 1))];
  if (!(s->hi > s->lo))
    s->hi = s->lo + 1;
}

static void
data_to_widget (MapState *s, int width, int height, double x, double y, double *wx, double *wy)
{
  double w = MAX (width - 2 * MARGIN, 1), h = MAX (height - 2 * MARGIN, 1);
  *wx = MARGIN + (x - s->xmin) / (s->xmax - s->xmin) * w;
  *wy = MARGIN + (1 - (y - s->ymin) / (s->ymax - s->ymin)) * h;
}

static void
render_points (MapState *s, int width, int height)
{
  g_clear_pointer (&s->points, cairo_surface_destroy);
  s->points = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, MAX (width, 1), MAX (height, 1));
  s->surface_width = width;
  s->surface_height = height;
  if (s->map == NULL)
    return;
  cairo_t *cr = cairo_create (s->points);
  /* Small squares, more transparent for many points, so dense regions show their density. */
  double size = s->map->n > 20000 ? 1.5 : s->map->n > 2000 ? 2.5 : 4.0;
  double alpha = s->map->n > 20000 ? 0.5 : 0.8;
  for (gint64 i = 0; i < s->map->n; i++) {
    double wx, wy, rgb[3] = { 0.6, 0.6, 0.6 };
    data_to_widget (s, width, height, s->map->xy[2 * i], s->map->xy[2 * i + 1], &wx, &wy);
    if (s->values && isfinite (s->values[i]))
      gv_astroclip_viridis ((s->values[i] - s->lo) / (s->hi - s->lo), rgb);
    else if (s->values == NULL)
      rgb[0] = 0.2, rgb[1] = 0.4, rgb[2] = 0.7;
    cairo_set_source_rgba (cr, rgb[0], rgb[1], rgb[2], alpha);
    cairo_rectangle (cr, wx - size / 2, wy - size / 2, size, size);
    cairo_fill (cr);
  }
  cairo_destroy (cr);
}

static gboolean
point_of_row (MapState *s, int width, int height, gint64 row, double *wx, double *wy)
{
  if (s->map == NULL || row < 0)
    return FALSE;
  for (gint64 i = 0; i < s->map->n; i++)
    if (s->map->rows[i] == row) {
      data_to_widget (s, width, height, s->map->xy[2 * i], s->map->xy[2 * i + 1], wx, wy);
      return TRUE;
    }
  return FALSE;
}

static void
draw (GtkDrawingArea *area, cairo_t *cr, int width, int height, gpointer user_data)
{
  MapState *s = state_of (GTK_WIDGET (area));
  if (s == NULL || s->map == NULL)
    return;
  if (s->points == NULL || s->surface_width != width || s->surface_height != height)
    render_points (s, width, height);
  cairo_set_source_surface (cr, s->points, 0, 0);
  cairo_paint (cr);
  /* Neighbours as coloured rings, the selected galaxy as a black-and-white cross on top. */
  cairo_set_line_width (cr, 2.0);
  for (int i = s->n_highlight - 1; i >= 0; i--) {
    double wx, wy;
    if (!point_of_row (s, width, height, s->highlight_rows[i], &wx, &wy))
      continue;
    gdk_cairo_set_source_rgba (cr, &s->highlight_colours[i]);
    cairo_arc (cr, wx, wy, 5, 0, 2 * G_PI);
    cairo_stroke (cr);
  }
  double wx, wy;
  if (point_of_row (s, width, height, s->selected_row, &wx, &wy)) {
    for (int pass = 0; pass < 2; pass++) {
      cairo_set_line_width (cr, pass == 0 ? 4.0 : 2.0);
      cairo_set_source_rgb (cr, pass, pass, pass);
      cairo_move_to (cr, wx - 8, wy);
      cairo_line_to (cr, wx + 8, wy);
      cairo_move_to (cr, wx, wy - 8);
      cairo_line_to (cr, wx, wy + 8);
      cairo_stroke (cr);
    }
  }
}

void
gv_astroclip_map_view_click (GtkWidget *view, double x, double y)
{
  MapState *s = state_of (view);
  if (s == NULL || s->map == NULL || s->pick == NULL)
    return;
  int width = gtk_widget_get_width (view), height = gtk_widget_get_height (view);
  double best = PICK_RADIUS * PICK_RADIUS;
  gint64 best_i = -1;
  for (gint64 i = 0; i < s->map->n; i++) {
    double wx, wy;
    data_to_widget (s, width, height, s->map->xy[2 * i], s->map->xy[2 * i + 1], &wx, &wy);
    double d2 = (wx - x) * (wx - x) + (wy - y) * (wy - y);
    if (d2 < best) {
      best = d2;
      best_i = i;
    }
  }
  if (best_i >= 0)
    s->pick (s->map->rows[best_i], s->map->ids[best_i], s->pick_data);
}

static void
on_pressed (GtkGestureClick *gesture, int n_press, double x, double y, gpointer user_data)
{
  gv_astroclip_map_view_click (gtk_event_controller_get_widget (GTK_EVENT_CONTROLLER (gesture)),
                               x, y);
}

GtkWidget *
gv_astroclip_map_view_new (GvAstroclipMapPickFunc pick, gpointer user_data)
{
  GtkWidget *view = gtk_drawing_area_new ();
  MapState *s = g_new0 (MapState, 1);
  s->selected_row = -1;
  s->lo = s->hi = NAN;
  s->pick = pick;
  s->pick_data = user_data;
  g_object_set_data_full (G_OBJECT (view), "gv-astroclip-map-state", s, state_free);
  gtk_drawing_area_set_draw_func (GTK_DRAWING_AREA (view), draw, NULL, NULL);
  gtk_widget_set_size_request (view, 240, 240);
  gtk_widget_set_hexpand (view, TRUE);
  gtk_widget_set_vexpand (view, TRUE);
  GtkGesture *click = gtk_gesture_click_new ();
  g_signal_connect (click, "pressed", G_CALLBACK (on_pressed), NULL);
  gtk_widget_add_controller (view, GTK_EVENT_CONTROLLER (click));
  return view;
}

void
gv_astroclip_map_view_set_values (GtkWidget *view, const double *values)
{
  MapState *s = state_of (view);
  g_return_if_fail (s != NULL);
  g_clear_pointer (&s->values, g_free);
  if (values != NULL && s->map != NULL) {
    s->values = g_new (float, MAX (s->map->n, 1));
    for (gint64 i = 0; i < s->map->n; i++)
      s->values[i] = s->map->rows[i] >= 0 ? (float) values[s->map->rows[i]] : NAN;
  }
  update_range (s);
  g_clear_pointer (&s->points, cairo_surface_destroy);
  gtk_widget_queue_draw (view);
}

void
gv_astroclip_map_view_set_map (GtkWidget *view, GvAstroclipMap *map, const double *values)
{
  MapState *s = state_of (view);
  g_return_if_fail (s != NULL);
  gv_astroclip_map_free (s->map);
  s->map = map;
  if (map != NULL && map->n > 0) {
    s->xmin = s->ymin = INFINITY;
    s->xmax = s->ymax = -INFINITY;
    for (gint64 i = 0; i < map->n; i++) {
      s->xmin = MIN (s->xmin, map->xy[2 * i]);
      s->xmax = MAX (s->xmax, map->xy[2 * i]);
      s->ymin = MIN (s->ymin, map->xy[2 * i + 1]);
      s->ymax = MAX (s->ymax, map->xy[2 * i + 1]);
    }
    if (!(s->xmax > s->xmin))
      s->xmax = s->xmin + 1;
    if (!(s->ymax > s->ymin))
      s->ymax = s->ymin + 1;
  }
  gv_astroclip_map_view_set_values (view, values);
}

void
gv_astroclip_map_view_set_highlight (GtkWidget *view, gint64 selected_row, const gint64 *rows,
                                     const GdkRGBA *colours, int n)
{
  MapState *s = state_of (view);
  g_return_if_fail (s != NULL);
  s->selected_row = selected_row;
  g_free (s->highlight_rows);
  g_free (s->highlight_colours);
  s->n_highlight = MAX (n, 0);
  s->highlight_rows = n > 0 ? g_memdup2 (rows, sizeof (gint64) * n) : NULL;
  s->highlight_colours = n > 0 ? g_memdup2 (colours, sizeof (GdkRGBA) * n) : NULL;
  gtk_widget_queue_draw (view);
}

void
gv_astroclip_map_view_get_range (GtkWidget *view, double *lo, double *hi)
{
  MapState *s = state_of (view);
  g_return_if_fail (s != NULL);
  *lo = s->lo;
  *hi = s->hi;
}

gint64
gv_astroclip_map_view_get_n_points (GtkWidget *view)
{
  MapState *s = state_of (view);
  g_return_val_if_fail (s != NULL, 0);
  return s->map ? s->map->n : 0;
}

gboolean
gv_astroclip_map_view_point_of_row (GtkWidget *view, gint64 row, double *x, double *y)
{
  MapState *s = state_of (view);
  g_return_val_if_fail (s != NULL, FALSE);
  return point_of_row (s, gtk_widget_get_width (view), gtk_widget_get_height (view), row, x, y);
}
