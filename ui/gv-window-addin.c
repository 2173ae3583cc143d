/* gv-window-addin.c — the window addin interface: dispatch to the vfuncs, each optional. */
#include "gv-window-addin.h"

#include "gv-window.h"

G_DEFINE_INTERFACE (GvWindowAddin, gv_window_addin, G_TYPE_OBJECT)

static void
gv_window_addin_default_init (GvWindowAddinInterface *iface)
{
}

void
gv_window_addin_load (GvWindowAddin *self, GvWindow *window)
{
  g_return_if_fail (GV_IS_WINDOW_ADDIN (self));
  g_return_if_fail (GV_IS_WINDOW (window));

  GvWindowAddinInterface *iface = GV_WINDOW_ADDIN_GET_IFACE (self);
  if (iface->load != NULL)
    iface->load (self, window);
}

void
gv_window_addin_unload (GvWindowAddin *self, GvWindow *window)
{
  g_return_if_fail (GV_IS_WINDOW_ADDIN (self));
  g_return_if_fail (GV_IS_WINDOW (window));

  GvWindowAddinInterface *iface = GV_WINDOW_ADDIN_GET_IFACE (self);
  if (iface->unload != NULL)
    iface->unload (self, window);
}

void
gv_window_addin_selection_changed (GvWindowAddin *self, GvWindow *window, GvGalaxy *galaxy)
{
  g_return_if_fail (GV_IS_WINDOW_ADDIN (self));
  g_return_if_fail (GV_IS_WINDOW (window));
  g_return_if_fail (galaxy == NULL || GV_IS_GALAXY (galaxy));

  GvWindowAddinInterface *iface = GV_WINDOW_ADDIN_GET_IFACE (self);
  if (iface->selection_changed != NULL)
    iface->selection_changed (self, window, galaxy);
}

void
gv_window_addin_catalogue_changed (GvWindowAddin *self, GvWindow *window,
                                   GvCatalogue *catalogue)
{
  g_return_if_fail (GV_IS_WINDOW_ADDIN (self));
  g_return_if_fail (GV_IS_WINDOW (window));
  g_return_if_fail (catalogue == NULL || GV_IS_CATALOGUE (catalogue));

  GvWindowAddinInterface *iface = GV_WINDOW_ADDIN_GET_IFACE (self);
  if (iface->catalogue_changed != NULL)
    iface->catalogue_changed (self, window, catalogue);
}
