/* gv-application.h — the Galaxy Viewer application: windows, the plugin engine, settings.
 *
 * One PeasEngine per application (libpeas-1.0 only: no PeasGtk, no GTK 3 in the process). It
 * searches, in order: $GALAXY_VIEWER_PLUGIN_PATH (colon-separated folders), the user's folder
 * (~/.local/share/galaxy-viewer/plugins), the build tree's plugin/ folder when the program runs
 * from its build tree, and the installed folder (<libdir>/galaxy-viewer/plugins). Built-in
 * plugins (Builtin=true) are loaded on startup; the others when listed in the GSettings key
 * `enabled-plugins`, which the Plugins dialog edits.
 */
#pragma once

#include <gtk/gtk.h>
#include <libpeas/peas.h>

G_BEGIN_DECLS

#define GV_APPLICATION_ID "io.github.GalaxyViewer"

#define GV_TYPE_APPLICATION (gv_application_get_type ())
G_DECLARE_FINAL_TYPE (GvApplication, gv_application, GV, APPLICATION, GtkApplication)

GvApplication *gv_application_new (void);

/* The application's plugin engine and settings (schema GV_APPLICATION_ID). */
PeasEngine *gv_application_get_engine (GvApplication *self);
GSettings *gv_application_get_settings (GvApplication *self);

/* Loads or unloads a plugin by module name and records the choice in `enabled-plugins`.
 * FALSE with an error when there is no such plugin or it failed to load. Built-in plugins
 * cannot be unloaded (FALSE, error). */
gboolean gv_application_set_plugin_enabled (GvApplication *self, const char *module_name,
                                            gboolean enabled, GError **error);

/* The demo catalogue to open when none is given: $GALAXY_VIEWER_DEMO, else the build tree's
 * data/demo-catalogue.fits when running uninstalled, else the installed one; NULL when none
 * of them exists. */
char *gv_application_find_demo_catalogue (void);

/* Whether this process runs from the build tree (its executable lies under it). */
gboolean gv_application_is_uninstalled (void);

/* The engine's plumbing, usable without a display (the application does both at startup):
 * adds the search paths listed above, in that order; loads the built-in plugins and those in
 * `enabled` (module names) and unloads every other. */
void gv_application_add_plugin_search_paths (PeasEngine *engine);
void gv_application_sync_plugins (PeasEngine *engine, const char *const *enabled);

/* Records a successfully opened catalogue in GtkRecentManager and in `last-catalogue`. */
void gv_application_note_opened (GvApplication *self, GFile *file);

G_END_DECLS
