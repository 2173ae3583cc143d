/* gv-galaxy-list.h — the catalogue's rows as a GListModel, sorted and filtered (GTK-free).
 *
 * The model is a permutation of row numbers: every row sorted by one numeric column (or in
 * file order), then those the filter lets through. Items are GvGalaxyItem objects made on
 * demand in g_list_model_get_item — a grid showing 40 cells holds 40 items, not 100,000.
 * Sorting works on the catalogue's column arrays (100,000 rows in a few milliseconds);
 * changing the filter does not re-sort.
 *
 * Changes emit items-changed (0, old n_shown, new n_shown) and notify "n-shown".
 */
#pragma once

#include <gio/gio.h>

#include "gv-catalogue.h"
#include "gv-filter.h"

G_BEGIN_DECLS

/* One row as an item of the list: row, ID and redshift (for the cell's labels). */
#define GV_TYPE_GALAXY_ITEM (gv_galaxy_item_get_type ())
G_DECLARE_FINAL_TYPE (GvGalaxyItem, gv_galaxy_item, GV, GALAXY_ITEM, GObject)

gint64 gv_galaxy_item_get_row (GvGalaxyItem *self);
gint64 gv_galaxy_item_get_id (GvGalaxyItem *self);
double gv_galaxy_item_get_z (GvGalaxyItem *self); /* NaN when unknown or no Z column */

#define GV_TYPE_GALAXY_LIST (gv_galaxy_list_get_type ())
G_DECLARE_FINAL_TYPE (GvGalaxyList, gv_galaxy_list, GV, GALAXY_LIST, GObject)

/* A list over the catalogue's rows in file order, unfiltered; catalogue may be NULL (empty). */
GvGalaxyList *gv_galaxy_list_new (GvCatalogue *catalogue);
GvCatalogue *gv_galaxy_list_get_catalogue (GvGalaxyList *self);
/* Replaces the catalogue; sort and filter are reset. */
void gv_galaxy_list_set_catalogue (GvGalaxyList *self, GvCatalogue *catalogue);

/* Sorts by a numeric column (case-insensitive name; NULL for file order), rows with a
 * missing (NaN) value last in either direction, ties in file order. FALSE if there is no such
 * column (nothing changes). */
gboolean gv_galaxy_list_set_sort (GvGalaxyList *self, const char *column, gboolean descending);
const char *gv_galaxy_list_get_sort_column (GvGalaxyList *self); /* NULL: file order */
gboolean gv_galaxy_list_get_sort_descending (GvGalaxyList *self);

/* Shows only the rows the filter matches (NULL: all). The filter must be bound to this
 * list's catalogue's columns (gv_galaxy_list_parse_filter). */
void gv_galaxy_list_set_filter (GvGalaxyList *self, GvFilter *filter);
GvFilter *gv_galaxy_list_get_filter (GvGalaxyList *self);
/* Parses an expression against the catalogue's columns and applies it; blank text removes
 * the filter. FALSE with an error if it does not parse (the filter is unchanged). */
gboolean gv_galaxy_list_set_filter_text (GvGalaxyList *self, const char *text, GError **error);
/* Parses an expression against a catalogue's columns (no list involved). */
GvFilter *gv_catalogue_parse_filter (GvCatalogue *catalogue, const char *text, GError **error);

guint gv_galaxy_list_get_n_shown (GvGalaxyList *self);
guint gv_galaxy_list_get_n_total (GvGalaxyList *self);
/* The catalogue row at a position of the list, or −1 past the end. */
gint64 gv_galaxy_list_get_row (GvGalaxyList *self, guint position);
/* The position of a catalogue row in the list, or −1 when it is filtered out or absent. */
gint64 gv_galaxy_list_find_row (GvGalaxyList *self, gint64 row);
/* The shown rows in order (n_shown values), owned by the list, valid until the next change. */
const gint64 *gv_galaxy_list_get_rows (GvGalaxyList *self, guint *n_rows);

G_END_DECLS
