/* gv-window.h — a viewer window: the catalogue grid, the selected galaxy's detail view and the
 * side panels of plugins; and the small API that window addins (gv-window-addin.h) use.
 *
 * docs/plugins.md documents the addin API (the functions from gv_window_add_panel on).
 * Everything here runs on the main thread.
 */
#pragma once

#include <gtk/gtk.h>

#include "gv-application.h"
#include "gv-catalogue.h"
#include "gv-detail-view.h"
#include "gv-galaxy-grid.h"
#include "gv-galaxy.h"

G_BEGIN_DECLS

#define GV_TYPE_WINDOW (gv_window_get_type ())
G_DECLARE_FINAL_TYPE (GvWindow, gv_window, GV, WINDOW, GtkApplicationWindow)

GvWindow *gv_window_new (GvApplication *application);

/* Opens a catalogue file off the main thread; the window shows it when it is read (signal
 * `catalogue-changed`), or shows the error in its message area. A later call supersedes an
 * open still in progress. */
void gv_window_open (GvWindow *self, GFile *file);
/* Shows the file chooser (FITS files) and opens the chosen file. */
void gv_window_choose_file (GvWindow *self);
/* Shows an already open catalogue (NULL: none). Emits `catalogue-changed`. */
void gv_window_set_catalogue (GvWindow *self, GvCatalogue *catalogue);

/* Addin API --------------------------------------------------------------------------------- */

/* Side panels: `widget` is shown in the side area under `title` (and `icon_name`, may be
 * NULL) in a stack with a switcher; the area is hidden while it has no panel. `id` must be
 * unique in the window (prefix it with the plugin's module name); FALSE if it is taken. The
 * window holds a reference to the widget until gv_window_remove_panel. */
gboolean gv_window_add_panel (GvWindow *self, const char *id, const char *title,
                              const char *icon_name, GtkWidget *widget);
/* Removes a panel; FALSE if there is none with this id. */
gboolean gv_window_remove_panel (GvWindow *self, const char *id);
/* Brings a panel to the front of the side area. */
void gv_window_present_panel (GvWindow *self, const char *id);
/* The panel's widget, or NULL. */
GtkWidget *gv_window_get_panel (GvWindow *self, const char *id);

/* Actions, in the window's action group: activatable as "win.<name>". Names must not collide
 * with the window's own (open-recent, export-image, export-spectrum, export-selection, filter,
 * zoom-in, zoom-out, zoom-reset, show-detail, close): prefix them with the plugin's name. */
void gv_window_add_action (GvWindow *self, GAction *action);
void gv_window_remove_action (GvWindow *self, const char *name);

/* Menu sections of the window's primary menu, for gv_window_add_menu_item. */
#define GV_MENU_SECTION_FILE    "file"    /* Open, Open Recent */
#define GV_MENU_SECTION_EXPORT  "export"  /* Export image / spectrum / selection */
#define GV_MENU_SECTION_PLUGINS "plugins" /* items of plugins (the usual place) */

/* Appends an item `label` that activates `detailed_action` (e.g. "win.myplugin-train" or
 * "win.myplugin-mode::image") to a section (one of GV_MENU_SECTION_*; NULL means plugins). */
void gv_window_add_menu_item (GvWindow *self, const char *section, const char *label,
                              const char *detailed_action);
/* Removes the items of any section that activate `detailed_action`; FALSE if none did. */
gboolean gv_window_remove_menu_item (GvWindow *self, const char *detailed_action);

/* The open catalogue, or NULL (not a new reference). */
GvCatalogue *gv_window_get_catalogue (GvWindow *self);
/* The selected galaxy (with image and spectrum read), or NULL (not a new reference). */
GvGalaxy *gv_window_get_selected_galaxy (GvWindow *self);
/* Selects the galaxy with this ID: in the grid, scrolled into view (unless the grid's filter
 * hides it), in the detail view and for the addins; `selection-changed` follows once its data
 * are read (off the main thread). FALSE if there is no catalogue or it has no such ID. */
gboolean gv_window_select_id (GvWindow *self, gint64 id);
/* Shows a message in the window's message area (replacing the previous one) until the user
 * closes it; GTK_MESSAGE_INFO messages also go away after a while. */
void gv_window_show_message (GvWindow *self, GtkMessageType type, const char *text);
/* The text of the message shown, or NULL (for tests). */
const char *gv_window_get_message (GvWindow *self);

/* The detail view (e.g. for gv_detail_view_get_spectrum_view) and the grid (e.g. for
 * gv_galaxy_grid_get_n_shown or gv_galaxy_grid_set_filter_text). Not new references. */
GvDetailView *gv_window_get_detail_view (GvWindow *self);
GvGalaxyGrid *gv_window_get_grid (GvWindow *self);

/* For tests: the side area's stack (its pages are the panels). */
GtkStack *gv_window_get_panel_stack (GvWindow *self);

G_END_DECLS
