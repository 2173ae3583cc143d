/* gv-galaxy-grid.h — the grid of galaxy thumbnails, with its filter entry, sort control and
 * count of shown/total galaxies.
 *
 * Layout: a tool row (filter entry, sort column drop-down, ascending/descending toggle, a
 * "shown / total" label) above a scrolled GtkGridView. Each cell shows the galaxy's thumbnail
 * (Legacy Survey RGB mapping, rendered off the main thread and cached) with its ID and
 * redshift below it.
 *
 * Keyboard: arrows move the selection (GtkGridView), Enter (or a double click) activates the
 * selected galaxy, Escape in the filter entry clears it. Ctrl+F is the window's business: bind
 * it to gv_galaxy_grid_focus_filter (or activate the widget action "grid.focus-filter").
 *
 * Signals:
 *   selection-changed (GvGalaxyGrid *grid, gint64 row, gpointer user_data)
 *       The selected row changed (−1: none, e.g. the catalogue was replaced or the filter
 *       hid the selected galaxy). The "selected-row" property notifies at the same time, so
 *       a handler of `notify::selected-row` with gv_galaxy_grid_get_selected_row works too.
 *   galaxy-activated (GvGalaxyGrid *grid, gint64 row, gpointer user_data)
 *       Enter or a double click on a galaxy: open its detail.
 *
 * Rows are 0-based catalogue rows (gv_catalogue_read_galaxy), independent of the shown order.
 */
#pragma once

#include <gtk/gtk.h>

#include "gv-catalogue.h"
#include "gv-thumbnails.h"

G_BEGIN_DECLS

#define GV_TYPE_GALAXY_GRID (gv_galaxy_grid_get_type ())
G_DECLARE_FINAL_TYPE (GvGalaxyGrid, gv_galaxy_grid, GV, GALAXY_GRID, GtkWidget)

GtkWidget *gv_galaxy_grid_new (void);

/* Shows this catalogue (NULL: nothing), with no filter, in file order, nothing selected. */
void gv_galaxy_grid_set_catalogue (GvGalaxyGrid *self, GvCatalogue *catalogue);
GvCatalogue *gv_galaxy_grid_get_catalogue (GvGalaxyGrid *self);

/* The selected catalogue row, or −1. */
gint64 gv_galaxy_grid_get_selected_row (GvGalaxyGrid *self);
/* Selects the row and scrolls it into view. FALSE (selection unchanged) when the row does not
 * exist or the current filter hides it. */
gboolean gv_galaxy_grid_select_row (GvGalaxyGrid *self, gint64 row);
/* The same by galaxy ID (gv_catalogue_find_id). */
gboolean gv_galaxy_grid_select_id (GvGalaxyGrid *self, gint64 id);

/* Moves the keyboard focus to the filter entry and selects its text (Ctrl+F). */
void gv_galaxy_grid_focus_filter (GvGalaxyGrid *self);
/* Applies a filter expression (gv-filter.h) as if typed in the entry; blank text removes the
 * filter. FALSE with an error when it does not parse (the previous filter stays). */
gboolean gv_galaxy_grid_set_filter_text (GvGalaxyGrid *self, const char *text, GError **error);
/* Sorts by a numeric column (NULL: file order), missing values last. FALSE if no such column. */
gboolean gv_galaxy_grid_set_sort (GvGalaxyGrid *self, const char *column, gboolean descending);

/* How many galaxies the filter lets through, and in total. */
guint gv_galaxy_grid_get_n_shown (GvGalaxyGrid *self);
guint gv_galaxy_grid_get_n_total (GvGalaxyGrid *self);
/* The rows shown, in the shown order (n_shown values, a new array), e.g. to export them. */
gint64 *gv_galaxy_grid_dup_shown_rows (GvGalaxyGrid *self, gsize *n_rows);

/* Thumbnail edge in pixels (the preference; 48–256). */
void gv_galaxy_grid_set_thumbnail_size (GvGalaxyGrid *self, int size);
int gv_galaxy_grid_get_thumbnail_size (GvGalaxyGrid *self);

/* For tests and the benchmark: the parts inside. */
GvThumbnails *gv_galaxy_grid_get_thumbnails (GvGalaxyGrid *self); /* NULL without catalogue */
GtkWidget *gv_galaxy_grid_get_grid_view (GvGalaxyGrid *self);
GtkWidget *gv_galaxy_grid_get_filter_entry (GvGalaxyGrid *self);
const char *gv_galaxy_grid_get_count_text (GvGalaxyGrid *self); /* the "shown / total" label */

G_END_DECLS
