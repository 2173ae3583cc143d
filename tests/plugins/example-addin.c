/* example-addin.c — a minimal Galaxy Viewer plugin (docs/plugins.md walks through it).
 *
 * On load it adds a side panel with a label, an action "win.example-hello" and a menu item
 * for it; on selection-changed it writes the galaxy's ID in the label; on unload it removes
 * what it added. The tests load it into a window and check each step.
 */
#include <gtk/gtk.h>
#include <libpeas/peas.h>

#include "gv-window-addin.h"
#include "gv-window.h"

#define PANEL_ID    "example-panel"
#define ACTION_NAME "example-hello"
#define MENU_ACTION "win.example-hello"

/* The addin: one per window. It keeps the label it writes in (owned by the panel). */
typedef struct
{
  GObject parent_instance;
  GtkLabel *label;
} GvExampleAddin;

typedef struct
{
  GObjectClass parent_class;
} GvExampleAddinClass;

GType gv_example_addin_get_type (void);
static void window_addin_iface_init (GvWindowAddinInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (GvExampleAddin, gv_example_addin, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (GV_TYPE_WINDOW_ADDIN,
                                                               window_addin_iface_init))

static void
on_hello (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GvWindow *window = GV_WINDOW (user_data);
  GvGalaxy *galaxy = gv_window_get_selected_galaxy (window);
  g_autofree char *text = NULL;

  if (galaxy != NULL)
    text = g_strdup_printf ("Hello from the example plugin: galaxy %" G_GINT64_FORMAT
                            " is at z = %.4f.",
                            gv_galaxy_get_id (galaxy), gv_galaxy_get_z (galaxy));
  else
    text = g_strdup ("Hello from the example plugin: no galaxy is selected.");
  gv_window_show_message (window, GTK_MESSAGE_INFO, text);
}

static void
example_load (GvWindowAddin *addin, GvWindow *window)
{
  GvExampleAddin *self = (GvExampleAddin *) addin;

  GtkWidget *label = gtk_label_new ("No galaxy selected");
  gtk_widget_set_name (label, "example-label");
  gtk_widget_set_margin_top (label, 12);
  gtk_widget_set_valign (label, GTK_ALIGN_START);
  self->label = GTK_LABEL (label);
  gv_window_add_panel (window, PANEL_ID, "Example", "help-about-symbolic", label);

  /* The action holds the window weakly through its user data: the window outlives it, since
   * unload (or the window) removes it. */
  g_autoptr (GSimpleAction) action = g_simple_action_new (ACTION_NAME, NULL);
  g_signal_connect (action, "activate", G_CALLBACK (on_hello), window);
  gv_window_add_action (window, G_ACTION (action));
  gv_window_add_menu_item (window, GV_MENU_SECTION_PLUGINS, "Say Hello", MENU_ACTION);
}

static void
example_unload (GvWindowAddin *addin, GvWindow *window)
{
  GvExampleAddin *self = (GvExampleAddin *) addin;

  /* Recorded on the label for the tests: the panel was still in the window when asked. */
  GtkWidget *label = GTK_WIDGET (self->label);
  g_object_ref (label);
  gboolean removed = gv_window_remove_panel (window, PANEL_ID);
  g_object_set_data (G_OBJECT (label), "example-unloaded", GINT_TO_POINTER (removed ? 1 : -1));
  g_object_unref (label);
  gv_window_remove_menu_item (window, MENU_ACTION);
  gv_window_remove_action (window, ACTION_NAME);
  self->label = NULL;
}

static void
example_selection_changed (GvWindowAddin *addin, GvWindow *window, GvGalaxy *galaxy)
{
  GvExampleAddin *self = (GvExampleAddin *) addin;
  if (self->label == NULL)
    return;

  if (galaxy == NULL)
    {
      gtk_label_set_text (self->label, "No galaxy selected");
      return;
    }
  g_autofree char *text = g_strdup_printf ("Galaxy %" G_GINT64_FORMAT, gv_galaxy_get_id (galaxy));
  gtk_label_set_text (self->label, text);
}

static void
window_addin_iface_init (GvWindowAddinInterface *iface)
{
  iface->load = example_load;
  iface->unload = example_unload;
  iface->selection_changed = example_selection_changed;
}

static void
gv_example_addin_class_init (GvExampleAddinClass *klass)
{
}

static void
gv_example_addin_class_finalize (GvExampleAddinClass *klass)
{
}

static void
gv_example_addin_init (GvExampleAddin *self)
{
}

/* libpeas calls this when it loads the module: register our types with it. */
G_MODULE_EXPORT void peas_register_types (PeasObjectModule *module);

G_MODULE_EXPORT void
peas_register_types (PeasObjectModule *module)
{
  gv_example_addin_register_type (G_TYPE_MODULE (module));
  peas_object_module_register_extension_type (module, GV_TYPE_WINDOW_ADDIN,
                                              gv_example_addin_get_type ());
}
