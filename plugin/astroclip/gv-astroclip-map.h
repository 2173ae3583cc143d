/* gv-astroclip-map.h — the Map panel's plot: the 2-D PCA projection of the embeddings
 * (GvAstroclipMap) as a scatter plot coloured by a catalogue column (viridis between the
 * column's 2nd and 98th percentiles; grey where unknown), with the selected galaxy and its
 * neighbours highlighted in their thumbnail colours. A click picks the nearest point within
 * 10 pixels. A GtkDrawingArea with its state attached (no type of its own). Main thread only.
 */
#pragma once

#include <gtk/gtk.h>

#include "gv-astroclip-engine.h"

G_BEGIN_DECLS

typedef void (*GvAstroclipMapPickFunc) (gint64 catalogue_row, gint64 id, gpointer user_data);

GtkWidget *gv_astroclip_map_view_new (GvAstroclipMapPickFunc pick, gpointer user_data);
/* Shows a map (taken over; NULL: none) coloured by `values` (the column's values by catalogue
 * row, n_rows of them; copied per point; NULL: one colour). */
void gv_astroclip_map_view_set_map (GtkWidget *view, GvAstroclipMap *map, const double *values);
void gv_astroclip_map_view_set_values (GtkWidget *view, const double *values);
/* Highlights: the selected galaxy's catalogue row (−1: none) and n neighbours' rows with their
 * colours. */
void gv_astroclip_map_view_set_highlight (GtkWidget *view, gint64 selected_row,
                                          const gint64 *rows, const GdkRGBA *colours, int n);
/* The range the colours span (NaN when no values). */
void gv_astroclip_map_view_get_range (GtkWidget *view, double *lo, double *hi);
/* Points drawn, for tests. */
gint64 gv_astroclip_map_view_get_n_points (GtkWidget *view);
/* The point of a catalogue row in widget coordinates (FALSE if not on the map). For tests. */
gboolean gv_astroclip_map_view_point_of_row (GtkWidget *view, gint64 row, double *x, double *y);
/* Picks as a click at (x, y) would. */
void gv_astroclip_map_view_click (GtkWidget *view, double x, double y);

/* Viridis at t in [0, 1]. */
void gv_astroclip_viridis (double t, double rgb[3]);

G_END_DECLS
