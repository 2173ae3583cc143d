/* gv-plugins-dialog.c — the plugin list and its dialog.
 *
 * Each row holds a switch; flipping it calls gv_application_set_plugin_enabled. The rows
 * follow the engine's load-plugin/unload-plugin signals, so a plugin loaded or unloaded
 * elsewhere (Preferences, gsettings, a test) shows its state here too.
 */
#include "gv-plugins-dialog.h"

#include <glib/gi18n.h>

/* Per-row data, attached to the switch. */
typedef struct
{
  GvApplication *application; /* not owned: outlives its dialogs */
  PeasPluginInfo *info;        /* owned by the engine */
  GtkLabel *error_label;
  gboolean updating; /* the switch is being set from the engine, not by the user */
} Row;

static void
row_sync (GtkSwitch *toggle)
{
  Row *row = g_object_get_data (G_OBJECT (toggle), "gv-row");
  row->updating = TRUE;
  gtk_switch_set_active (toggle, peas_plugin_info_is_loaded (row->info));
  row->updating = FALSE;
}

static void
on_switch_active (GtkSwitch *toggle, GParamSpec *pspec, gpointer user_data)
{
  Row *row = g_object_get_data (G_OBJECT (toggle), "gv-row");
  if (row->updating)
    return;

  g_autoptr (GError) error = NULL;
  gboolean wanted = gtk_switch_get_active (toggle);
  if (!gv_application_set_plugin_enabled (row->application,
                                          peas_plugin_info_get_module_name (row->info), wanted,
                                          &error))
    {
      gtk_label_set_text (row->error_label, error->message);
      gtk_widget_set_visible (GTK_WIDGET (row->error_label), TRUE);
      row_sync (toggle);
      return;
    }
  gtk_widget_set_visible (GTK_WIDGET (row->error_label), FALSE);
}

/* Engine signals: refresh every row's switch (a plugin's dependencies may load with it). */
static void
on_engine_changed (PeasEngine *engine, PeasPluginInfo *info, GtkWidget *list)
{
  for (GtkWidget *child = gtk_widget_get_first_child (list); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkSwitch *toggle = g_object_get_data (G_OBJECT (child), "gv-switch");
      if (toggle != NULL)
        row_sync (toggle);
    }
}

static GtkWidget *
make_row (GvApplication *application, PeasPluginInfo *info)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_widget_set_margin_start (box, 12);
  gtk_widget_set_margin_end (box, 12);
  gtk_widget_set_margin_top (box, 8);
  gtk_widget_set_margin_bottom (box, 8);

  GtkWidget *texts = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_set_hexpand (texts, TRUE);
  gtk_box_append (GTK_BOX (box), texts);

  GtkWidget *name = gtk_label_new (peas_plugin_info_get_name (info));
  gtk_widget_add_css_class (name, "heading");
  gtk_label_set_xalign (GTK_LABEL (name), 0);
  gtk_box_append (GTK_BOX (texts), name);

  const char *description = peas_plugin_info_get_description (info);
  if (description != NULL && *description != '\0')
    {
      GtkWidget *label = gtk_label_new (description);
      gtk_label_set_xalign (GTK_LABEL (label), 0);
      gtk_label_set_wrap (GTK_LABEL (label), TRUE);
      gtk_label_set_max_width_chars (GTK_LABEL (label), 50);
      gtk_widget_add_css_class (label, "dim-label");
      gtk_box_append (GTK_BOX (texts), label);
    }
  if (peas_plugin_info_is_builtin (info))
    {
      GtkWidget *label = gtk_label_new (_("Built in: always loaded"));
      gtk_label_set_xalign (GTK_LABEL (label), 0);
      gtk_widget_add_css_class (label, "caption");
      gtk_widget_add_css_class (label, "dim-label");
      gtk_box_append (GTK_BOX (texts), label);
    }

  GtkWidget *error_label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (error_label), 0);
  gtk_label_set_wrap (GTK_LABEL (error_label), TRUE);
  gtk_widget_add_css_class (error_label, "error");
  gtk_widget_set_visible (error_label, FALSE);
  gtk_box_append (GTK_BOX (texts), error_label);

  GtkWidget *toggle = gtk_switch_new ();
  g_autofree char *switch_name = g_strconcat ("plugin-switch-",
                                              peas_plugin_info_get_module_name (info), NULL);
  gtk_widget_set_name (toggle, switch_name);
  gtk_widget_set_valign (toggle, GTK_ALIGN_CENTER);
  gtk_widget_set_sensitive (toggle, !peas_plugin_info_is_builtin (info));
  gtk_accessible_update_relation (GTK_ACCESSIBLE (toggle), GTK_ACCESSIBLE_RELATION_LABELLED_BY,
                                  name, NULL, -1);
  gtk_box_append (GTK_BOX (box), toggle);

  Row *row = g_new0 (Row, 1);
  row->application = application;
  row->info = info;
  row->error_label = GTK_LABEL (error_label);
  g_object_set_data_full (G_OBJECT (toggle), "gv-row", row, g_free);
  row_sync (GTK_SWITCH (toggle));
  g_signal_connect (toggle, "notify::active", G_CALLBACK (on_switch_active), NULL);

  GtkWidget *list_row = gtk_list_box_row_new ();
  gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (list_row), box);
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (list_row), FALSE);
  g_object_set_data (G_OBJECT (list_row), "gv-switch", toggle);
  return list_row;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return g_utf8_collate (peas_plugin_info_get_name ((PeasPluginInfo *) a),
                         peas_plugin_info_get_name ((PeasPluginInfo *) b));
}

GtkWidget *
gv_plugins_list_new (GvApplication *application)
{
  g_return_val_if_fail (GV_IS_APPLICATION (application), NULL);

  PeasEngine *engine = gv_application_get_engine (application);
  GtkWidget *list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (list), GTK_SELECTION_NONE);
  gtk_widget_add_css_class (list, "boxed-list");
  gtk_accessible_update_property (GTK_ACCESSIBLE (list), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Plugins"), -1);

  g_autoptr (GList) sorted = g_list_copy ((GList *) peas_engine_get_plugin_list (engine));
  sorted = g_list_sort (sorted, compare_names);
  guint n_shown = 0;
  for (GList *l = sorted; l != NULL; l = l->next)
    {
      PeasPluginInfo *info = l->data;
      if (peas_plugin_info_is_hidden (info))
        continue;
      gtk_list_box_append (GTK_LIST_BOX (list), make_row (application, info));
      n_shown++;
    }
  if (n_shown == 0)
    {
      GtkWidget *label = gtk_label_new (_("No plugins were found."));
      gtk_widget_set_margin_top (label, 12);
      gtk_widget_set_margin_bottom (label, 12);
      gtk_widget_add_css_class (label, "dim-label");
      gtk_list_box_set_placeholder (GTK_LIST_BOX (list), label);
    }

  g_signal_connect_object (engine, "load-plugin", G_CALLBACK (on_engine_changed), list,
                           G_CONNECT_AFTER);
  g_signal_connect_object (engine, "unload-plugin", G_CALLBACK (on_engine_changed), list,
                           G_CONNECT_AFTER);
  return list;
}

GtkWindow *
gv_plugins_dialog_new (GvApplication *application, GtkWindow *parent)
{
  g_return_val_if_fail (GV_IS_APPLICATION (application), NULL);
  g_return_val_if_fail (parent == NULL || GTK_IS_WINDOW (parent), NULL);

  GtkWidget *window = gtk_window_new ();
  gtk_window_set_title (GTK_WINDOW (window), _("Plugins"));
  gtk_window_set_default_size (GTK_WINDOW (window), 480, 420);
  gtk_window_set_modal (GTK_WINDOW (window), TRUE);
  gtk_window_set_transient_for (GTK_WINDOW (window), parent);
  gtk_window_set_destroy_with_parent (GTK_WINDOW (window), TRUE);
  gtk_window_set_hide_on_close (GTK_WINDOW (window), FALSE);
  gtk_window_set_application (GTK_WINDOW (window), GTK_APPLICATION (application));

  GtkWidget *scrolled = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scrolled), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  gtk_widget_set_margin_start (box, 18);
  gtk_widget_set_margin_end (box, 18);
  gtk_widget_set_margin_top (box, 18);
  gtk_widget_set_margin_bottom (box, 18);

  GtkWidget *intro = gtk_label_new (_("Plugins add panels and commands to the viewer. Switch "
                                      "one off to unload it; the choice is remembered."));
  gtk_label_set_wrap (GTK_LABEL (intro), TRUE);
  gtk_label_set_xalign (GTK_LABEL (intro), 0);
  gtk_box_append (GTK_BOX (box), intro);
  gtk_box_append (GTK_BOX (box), gv_plugins_list_new (application));

  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scrolled), box);
  gtk_window_set_child (GTK_WINDOW (window), scrolled);

  /* Escape closes the dialog. */
  GtkEventController *keys = gtk_shortcut_controller_new ();
  gtk_shortcut_controller_add_shortcut (
      GTK_SHORTCUT_CONTROLLER (keys),
      gtk_shortcut_new (gtk_keyval_trigger_new (GDK_KEY_Escape, 0),
                        gtk_named_action_new ("window.close")));
  gtk_widget_add_controller (window, keys);
  return GTK_WINDOW (window);
}
