/* example-leaky-addin.c — a plugin that adds a panel, an action and a menu item in load and
 * "forgets" to remove them in unload: the tests check that the window removes them anyway
 * (what an addin adds while the window calls it is recorded against it). Not an example to
 * follow: see example-addin.c.
 */
#include <gtk/gtk.h>
#include <libpeas/peas.h>

#include "gv-window-addin.h"
#include "gv-window.h"

typedef struct
{
  GObject parent_instance;
} GvLeakyAddin;

typedef struct
{
  GObjectClass parent_class;
} GvLeakyAddinClass;

GType gv_leaky_addin_get_type (void);
static void window_addin_iface_init (GvWindowAddinInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (GvLeakyAddin, gv_leaky_addin, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (GV_TYPE_WINDOW_ADDIN,
                                                               window_addin_iface_init))

static void
leaky_load (GvWindowAddin *addin, GvWindow *window)
{
  gv_window_add_panel (window, "example-leaky-panel", "Leaky", NULL,
                       gtk_label_new ("A panel nobody removes"));
  g_autoptr (GSimpleAction) action = g_simple_action_new ("example-leaky-hello", NULL);
  gv_window_add_action (window, G_ACTION (action));
  gv_window_add_menu_item (window, NULL, "Leaky Hello", "win.example-leaky-hello");
}

static void
window_addin_iface_init (GvWindowAddinInterface *iface)
{
  iface->load = leaky_load; /* and no unload */
}

static void
gv_leaky_addin_class_init (GvLeakyAddinClass *klass)
{
}

static void
gv_leaky_addin_class_finalize (GvLeakyAddinClass *klass)
{
}

static void
gv_leaky_addin_init (GvLeakyAddin *self)
{
}

G_MODULE_EXPORT void peas_register_types (PeasObjectModule *module);

G_MODULE_EXPORT void
peas_register_types (PeasObjectModule *module)
{
  gv_leaky_addin_register_type (G_TYPE_MODULE (module));
  peas_object_module_register_extension_type (module, GV_TYPE_WINDOW_ADDIN,
                                              gv_leaky_addin_get_type ());
}
