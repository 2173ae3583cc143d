/* gv-preferences-dialog.h — Preferences: the detail view's default stretch and spectrum
 * smoothing, the grid's thumbnail size, and the enabled plugins, all stored in GSettings
 * (data/io.github.GalaxyViewer.gschema.xml) and applied at once.
 */
#pragma once

#include <gtk/gtk.h>

#include "gv-application.h"

G_BEGIN_DECLS

/* A new dialog, transient for `parent` (may be NULL); destroyed when closed. */
GtkWindow *gv_preferences_dialog_new (GvApplication *application, GtkWindow *parent);

G_END_DECLS
