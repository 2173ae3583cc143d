/* gv-preferences-dialog.c — the Preferences window: a General page bound to the settings and a
 * Plugins page (the list of gv-plugins-dialog.c). Changes apply immediately (no OK button), as
 * in GNOME's own applications; windows listen to the settings.
 */
#include "gv-preferences-dialog.h"

#include "gv-plugins-dialog.h"

#include <glib/gi18n.h>

/* The stretches in the order of the drop-down, by their nick in the schema's enum. */
static const char *const stretch_nicks[] = { "linear", "log", "sqrt", "asinh" };

static gboolean
stretch_get_mapping (GValue *value, GVariant *variant, gpointer user_data)
{
  const char *nick = g_variant_get_string (variant, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (stretch_nicks); i++)
    if (g_str_equal (nick, stretch_nicks[i]))
      {
        g_value_set_uint (value, i);
        return TRUE;
      }
  return FALSE;
}

static GVariant *
stretch_set_mapping (const GValue *value, const GVariantType *expected_type,
                     gpointer user_data)
{
  guint i = g_value_get_uint (value);
  if (i >= G_N_ELEMENTS (stretch_nicks))
    return NULL;
  return g_variant_new_string (stretch_nicks[i]);
}

/* A label for `widget` in column 0 of `grid`, row `row`, with the widget in column 1. */
static void
attach_row (GtkGrid *grid, int row, const char *text, GtkWidget *widget)
{
  GtkWidget *label = gtk_label_new_with_mnemonic (text);
  gtk_label_set_xalign (GTK_LABEL (label), 1);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), widget);
  gtk_widget_set_hexpand (widget, TRUE);
  gtk_widget_set_halign (widget, GTK_ALIGN_START);
  gtk_grid_attach (grid, label, 0, row, 1, 1);
  gtk_grid_attach (grid, widget, 1, row, 1, 1);
}

static GtkWidget *
make_general_page (GSettings *settings)
{
  GtkWidget *grid = gtk_grid_new ();
  gtk_grid_set_row_spacing (GTK_GRID (grid), 12);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 12);
  gtk_widget_set_margin_start (grid, 24);
  gtk_widget_set_margin_end (grid, 24);
  gtk_widget_set_margin_top (grid, 24);
  gtk_widget_set_margin_bottom (grid, 24);

  /* Translators: the stretches of image intensities (how flux maps to brightness). */
  const char *stretch_labels[] = { C_("stretch", "Linear"), C_("stretch", "Logarithmic"),
                                   C_("stretch", "Square root"), C_("stretch", "Asinh"), NULL };
  GtkWidget *stretch = gtk_drop_down_new_from_strings (stretch_labels);
  gtk_widget_set_name (stretch, "default-stretch");
  g_settings_bind_with_mapping (settings, "default-stretch", stretch, "selected",
                                G_SETTINGS_BIND_DEFAULT, stretch_get_mapping,
                                stretch_set_mapping, NULL, NULL);
  attach_row (GTK_GRID (grid), 0, _("Default _stretch"), stretch);

  GtkWidget *smoothing = gtk_spin_button_new_with_range (1, 101, 2);
  gtk_widget_set_name (smoothing, "smoothing-width");
  g_settings_bind (settings, "smoothing-width", smoothing, "value", G_SETTINGS_BIND_DEFAULT);
  attach_row (GTK_GRID (grid), 1, _("Spectrum s_moothing (pixels)"), smoothing);

  GtkWidget *thumbnails = gtk_spin_button_new_with_range (48, 256, 16);
  gtk_widget_set_name (thumbnails, "thumbnail-size");
  g_settings_bind (settings, "thumbnail-size", thumbnails, "value", G_SETTINGS_BIND_DEFAULT);
  attach_row (GTK_GRID (grid), 2, _("_Thumbnail size (pixels)"), thumbnails);

  GtkWidget *note = gtk_label_new (_("The stretch applies when one band is shown; the colour "
                                     "image always uses the Legacy Surveys mapping."));
  gtk_label_set_wrap (GTK_LABEL (note), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (note), 50);
  gtk_label_set_xalign (GTK_LABEL (note), 0);
  gtk_widget_add_css_class (note, "dim-label");
  gtk_grid_attach (GTK_GRID (grid), note, 0, 3, 2, 1);
  return grid;
}

GtkWindow *
gv_preferences_dialog_new (GvApplication *application, GtkWindow *parent)
{
  g_return_val_if_fail (GV_IS_APPLICATION (application), NULL);
  g_return_val_if_fail (parent == NULL || GTK_IS_WINDOW (parent), NULL);

  GtkWidget *window = gtk_window_new ();
  gtk_window_set_title (GTK_WINDOW (window), _("Preferences"));
  gtk_window_set_default_size (GTK_WINDOW (window), 520, 440);
  gtk_window_set_modal (GTK_WINDOW (window), TRUE);
  gtk_window_set_transient_for (GTK_WINDOW (window), parent);
  gtk_window_set_destroy_with_parent (GTK_WINDOW (window), TRUE);
  gtk_window_set_application (GTK_WINDOW (window), GTK_APPLICATION (application));

  GtkWidget *stack = gtk_stack_new ();
  gtk_stack_add_titled (GTK_STACK (stack),
                        make_general_page (gv_application_get_settings (application)), "general",
                        _("General"));

  GtkWidget *scrolled = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scrolled), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  GtkWidget *plugins = gv_plugins_list_new (application);
  gtk_widget_set_margin_start (plugins, 18);
  gtk_widget_set_margin_end (plugins, 18);
  gtk_widget_set_margin_top (plugins, 18);
  gtk_widget_set_margin_bottom (plugins, 18);
  gtk_widget_set_valign (plugins, GTK_ALIGN_START);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scrolled), plugins);
  gtk_stack_add_titled (GTK_STACK (stack), scrolled, "plugins", _("Plugins"));

  /* The page switcher in the title bar. */
  GtkWidget *header = gtk_header_bar_new ();
  GtkWidget *switcher = gtk_stack_switcher_new ();
  gtk_stack_switcher_set_stack (GTK_STACK_SWITCHER (switcher), GTK_STACK (stack));
  gtk_header_bar_set_title_widget (GTK_HEADER_BAR (header), switcher);
  gtk_window_set_titlebar (GTK_WINDOW (window), header);
  gtk_window_set_child (GTK_WINDOW (window), stack);

  GtkEventController *keys = gtk_shortcut_controller_new ();
  gtk_shortcut_controller_add_shortcut (
      GTK_SHORTCUT_CONTROLLER (keys),
      gtk_shortcut_new (gtk_keyval_trigger_new (GDK_KEY_Escape, 0),
                        gtk_named_action_new ("window.close")));
  gtk_widget_add_controller (window, keys);
  return GTK_WINDOW (window);
}
