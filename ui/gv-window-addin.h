/* gv-window-addin.h — the extension interface plugins implement to add to a viewer window.
 *
 * One instance per window and per loaded plugin: the window creates it through its
 * PeasExtensionSet when the plugin is loaded (or when the window opens with the plugin already
 * loaded), calls load (), forwards the window's changes, and calls unload () before dropping
 * it — when the plugin is unloaded or the window is closed (early in the window's dispose, so
 * every widget still exists). docs/plugins.md is the guide.
 */
#pragma once

#include <glib-object.h>

#include "gv-catalogue.h"
#include "gv-galaxy.h"

G_BEGIN_DECLS

typedef struct _GvWindow GvWindow;

#define GV_TYPE_WINDOW_ADDIN (gv_window_addin_get_type ())
G_DECLARE_INTERFACE (GvWindowAddin, gv_window_addin, GV, WINDOW_ADDIN, GObject)

struct _GvWindowAddinInterface
{
  GTypeInterface parent_iface;

  /* The addin joins `window`: add panels, actions and menu items here (gv-window.h). */
  void (*load) (GvWindowAddin *self, GvWindow *window);
  /* The addin leaves `window`: cancel work, remove what load () added. Whatever it added
   * during load () and is still there afterwards is removed by the window. */
  void (*unload) (GvWindowAddin *self, GvWindow *window);
  /* The selected galaxy changed; `galaxy` is NULL when nothing is selected. The galaxy has
   * its image and spectrum read (when the catalogue has them). */
  void (*selection_changed) (GvWindowAddin *self, GvWindow *window, GvGalaxy *galaxy);
  /* Another catalogue was opened in the window (NULL: none). Called before the selection
   * of the new catalogue is announced. Optional, like selection_changed. */
  void (*catalogue_changed) (GvWindowAddin *self, GvWindow *window, GvCatalogue *catalogue);

  gpointer padding[8];
};

void gv_window_addin_load (GvWindowAddin *self, GvWindow *window);
void gv_window_addin_unload (GvWindowAddin *self, GvWindow *window);
void gv_window_addin_selection_changed (GvWindowAddin *self, GvWindow *window,
                                        GvGalaxy *galaxy);
void gv_window_addin_catalogue_changed (GvWindowAddin *self, GvWindow *window,
                                        GvCatalogue *catalogue);

G_END_DECLS
