/* gv-plugins-dialog.h — the Plugins dialog: every plugin the engine found, with its name,
 * description and a switch that loads or unloads it (remembered in `enabled-plugins`).
 * Our own GTK 4 widgets: PeasGtk is GTK 3 and must never be used.
 */
#pragma once

#include <gtk/gtk.h>

#include "gv-application.h"

G_BEGIN_DECLS

/* A new dialog, transient for `parent` (may be NULL); destroyed when closed. */
GtkWindow *gv_plugins_dialog_new (GvApplication *application, GtkWindow *parent);

/* The list itself (a GtkListBox, one row per visible plugin), kept in step with the engine;
 * the Preferences dialog shows it too. Each row's switch is named "plugin-switch-<module>"
 * (gtk_widget_get_name), for tests. */
GtkWidget *gv_plugins_list_new (GvApplication *application);

G_END_DECLS
