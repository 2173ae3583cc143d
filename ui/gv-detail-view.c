/* gv-detail-view.c — the detail pane (gv-detail-view.h).
 *
 * Built in code: a title, then a vertical GtkPaned with the image (and its controls and
 * read-out) beside the column table on top, and the spectrum with its controls below. The
 * controls are bound to the views' properties, so the views stay the single source of truth
 * and plugins can drive them too. Every control has a mnemonic label or an accessible label.
 */
#include "gv-detail-view.h"

#include "gv-catalogue.h"

#include <glib/gi18n.h>
#include <math.h>

struct _GvDetailView
{
  GtkWidget parent_instance;

  GvGalaxy *galaxy;
  AclipStretch default_stretch;

  GtkWidget *box; /* the one child */
  GtkWidget *title;
  GtkWidget *image_view, *image_box, *no_image_label, *readout;
  GtkWidget *low_spin, *high_spin, *stretch_dropdown, *limits_dropdown;
  GtkWidget *spectrum_view;
  GtkWidget *columns_grid;
};

enum
{
  PROP_0,
  PROP_GALAXY,
  PROP_DEFAULT_STRETCH,
  PROP_SMOOTHING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (GvDetailView, gv_detail_view, GTK_TYPE_WIDGET)

/* Stretch names as stored in settings, in AclipStretch order. */
static const char *const stretch_names[] = { "linear", "log", "sqrt", "asinh" };

/* ---------------------------------------------------------------------------------------- */
/* The pixel read-out                                                                        */
/* ---------------------------------------------------------------------------------------- */

static void
on_pixel_hovered (GvImageView *view, int x, int y, GvDetailView *self)
{
  double ra, dec, flux[3];

  if (x < 0 || !gv_image_view_get_pixel_info (view, x, y, &ra, &dec, flux)) {
    gtk_label_set_text (GTK_LABEL (self->readout), gv_image_view_has_image (view)
                                                       ? _("Point at the image to read a pixel")
                                                       : "");
    return;
  }
  /* RA/Dec in decimal degrees to 10⁻⁶° (3.6 mas, far below the 0.262″ pixel); flux to 4
   * significant digits, well beyond the noise. */
  g_autofree char *text = g_strdup_printf (_("x %d  y %d   RA %.6f°  Dec %+.6f°   "
                                             "g %.4g  r %.4g  z %.4g nanomaggies"),
                                           x, y, ra, dec, flux[0], flux[1], flux[2]);
  gtk_label_set_text (GTK_LABEL (self->readout), text);
}

/* ---------------------------------------------------------------------------------------- */
/* The column table                                                                          */
/* ---------------------------------------------------------------------------------------- */

static GtkWidget *
table_label (const char *text, gboolean header, float xalign)
{
  GtkWidget *label = gtk_label_new (text);

  gtk_label_set_xalign (GTK_LABEL (label), xalign);
  if (header)
    gtk_widget_add_css_class (label, "heading");
  else
    gtk_widget_add_css_class (label, "numeric");
  return label;
}

static char *
format_column_value (const char *name, double value, gint64 id)
{
  if (g_strcmp0 (name, "ID") == 0)
    return g_strdup_printf ("%" G_GINT64_FORMAT, id);
  if (!isfinite (value))
    return g_strdup ("—");
  if (g_strcmp0 (name, "RA") == 0 || g_strcmp0 (name, "DEC") == 0)
    return g_strdup_printf ("%.6f", value);
  if (value == floor (value) && fabs (value) < 1e15)
    return g_strdup_printf ("%.0f", value);
  return g_strdup_printf ("%.6g", value);
}

static void
fill_columns (GvDetailView *self)
{
  GtkGrid *grid = GTK_GRID (self->columns_grid);
  GtkWidget *child;

  while ((child = gtk_widget_get_first_child (self->columns_grid)) != NULL)
    gtk_grid_remove (grid, child);

  gtk_grid_attach (grid, table_label (_("Column"), TRUE, 0.0f), 0, 0, 1, 1);
  gtk_grid_attach (grid, table_label (_("Value"), TRUE, 1.0f), 1, 0, 1, 1);
  gtk_grid_attach (grid, table_label (_("Unit"), TRUE, 0.0f), 2, 0, 1, 1);
  if (self->galaxy == NULL)
    return;

  GvCatalogue *catalogue = gv_galaxy_get_catalogue (self->galaxy);
  const char *const *columns = gv_catalogue_get_columns (catalogue);
  for (int i = 0; columns != NULL && columns[i] != NULL; i++) {
    const char *name = columns[i];
    g_autofree char *value = format_column_value (name, gv_galaxy_get_column (self->galaxy, name),
                                                  gv_galaxy_get_id (self->galaxy));
    const char *unit = gv_catalogue_get_column_unit (catalogue, name);
    GtkWidget *value_label = table_label (value, FALSE, 1.0f);

    /* Values can be selected and copied; the label is then a tab stop, which also lets a
     * keyboard or screen-reader user walk the table. */
    gtk_label_set_selectable (GTK_LABEL (value_label), TRUE);
    gtk_grid_attach (grid, table_label (name, FALSE, 0.0f), 0, i + 1, 1, 1);
    gtk_grid_attach (grid, value_label, 1, i + 1, 1, 1);
    gtk_grid_attach (grid, table_label (unit != NULL ? unit : "", FALSE, 0.0f), 2, i + 1, 1, 1);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Showing a galaxy                                                                          */
/* ---------------------------------------------------------------------------------------- */

void
gv_detail_view_set_galaxy (GvDetailView *self, GvGalaxy *galaxy)
{
  g_return_if_fail (GV_IS_DETAIL_VIEW (self));
  g_return_if_fail (galaxy == NULL || GV_IS_GALAXY (galaxy));

  if (self->galaxy == galaxy)
    return;
  g_set_object (&self->galaxy, galaxy);

  const float *image = NULL, *spectrum = NULL;
  int height = 0, width = 0, n_wave = 0;
  double z = NAN;

  if (galaxy != NULL) {
    GvCatalogue *catalogue = gv_galaxy_get_catalogue (galaxy);
    z = gv_galaxy_get_z (galaxy);
    g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, gv_galaxy_get_id (galaxy));
    /* TRANSLATORS: the title of the detail view: the galaxy's ID and its redshift. */
    g_autofree char *title = isfinite (z) ? g_strdup_printf (_("Galaxy %s, z = %.4f"), id, z)
                                          : g_strdup_printf (_("Galaxy %s, redshift unknown"), id);
    gtk_label_set_text (GTK_LABEL (self->title), title);

    image = gv_galaxy_get_image (galaxy, &height, &width);
    gv_image_view_set_image (GV_IMAGE_VIEW (self->image_view), image, height, width,
                             gv_galaxy_get_ra (galaxy), gv_galaxy_get_dec (galaxy),
                             gv_catalogue_get_pixscale (catalogue));
    spectrum = gv_galaxy_get_spectrum (galaxy, &n_wave);
  } else {
    gtk_label_set_text (GTK_LABEL (self->title), _("No galaxy selected"));
    gv_image_view_set_image (GV_IMAGE_VIEW (self->image_view), NULL, 0, 0, 0, 0, 0);
  }

  if (spectrum != NULL)
    gv_spectrum_view_set_spectrum (GV_SPECTRUM_VIEW (self->spectrum_view),
                                   gv_galaxy_get_wavelength (galaxy), spectrum,
                                   gv_galaxy_get_spectrum_ivar (galaxy), n_wave, z);
  else
    gv_spectrum_view_set_spectrum (GV_SPECTRUM_VIEW (self->spectrum_view), NULL, NULL, NULL, 0,
                                   NAN);

  gtk_widget_set_visible (self->image_view, image != NULL || galaxy == NULL);
  gtk_widget_set_visible (self->no_image_label, image == NULL && galaxy != NULL);
  on_pixel_hovered (GV_IMAGE_VIEW (self->image_view), -1, -1, self);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "detail.save-image", image != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "detail.save-spectrum", spectrum != NULL);
  fill_columns (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_GALAXY]);
}

GvGalaxy *
gv_detail_view_get_galaxy (GvDetailView *self)
{
  g_return_val_if_fail (GV_IS_DETAIL_VIEW (self), NULL);
  return self->galaxy;
}

void
gv_detail_view_set_default_stretch (GvDetailView *self, AclipStretch stretch)
{
  g_return_if_fail (GV_IS_DETAIL_VIEW (self));
  g_return_if_fail (stretch <= ACLIP_STRETCH_ASINH);

  gv_image_view_set_stretch (GV_IMAGE_VIEW (self->image_view), stretch);
  if (self->default_stretch == stretch)
    return;
  self->default_stretch = stretch;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DEFAULT_STRETCH]);
}

AclipStretch
gv_detail_view_get_default_stretch (GvDetailView *self)
{
  g_return_val_if_fail (GV_IS_DETAIL_VIEW (self), ACLIP_STRETCH_ASINH);
  return self->default_stretch;
}

void
gv_detail_view_set_smoothing (GvDetailView *self, double width_pixels)
{
  g_return_if_fail (GV_IS_DETAIL_VIEW (self));
  gv_spectrum_view_set_smoothing (GV_SPECTRUM_VIEW (self->spectrum_view), width_pixels);
}

double
gv_detail_view_get_smoothing (GvDetailView *self)
{
  g_return_val_if_fail (GV_IS_DETAIL_VIEW (self), 0.0);
  return gv_spectrum_view_get_smoothing (GV_SPECTRUM_VIEW (self->spectrum_view));
}

GvImageView *
gv_detail_view_get_image_view (GvDetailView *self)
{
  g_return_val_if_fail (GV_IS_DETAIL_VIEW (self), NULL);
  return GV_IMAGE_VIEW (self->image_view);
}

GvSpectrumView *
gv_detail_view_get_spectrum_view (GvDetailView *self)
{
  g_return_val_if_fail (GV_IS_DETAIL_VIEW (self), NULL);
  return GV_SPECTRUM_VIEW (self->spectrum_view);
}

/* ---------------------------------------------------------------------------------------- */
/* Exports                                                                                   */
/* ---------------------------------------------------------------------------------------- */

gboolean
gv_detail_view_export_png (GvDetailView *self, const char *path, GError **error)
{
  g_return_val_if_fail (GV_IS_DETAIL_VIEW (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return gv_image_view_save_png (GV_IMAGE_VIEW (self->image_view), path, error);
}

gboolean
gv_detail_view_export_spectrum_csv (GvDetailView *self, const char *path, GError **error)
{
  g_return_val_if_fail (GV_IS_DETAIL_VIEW (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  int n = 0;
  const float *flux = self->galaxy != NULL ? gv_galaxy_get_spectrum (self->galaxy, &n) : NULL;
  if (flux == NULL) {
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                         _("There is no spectrum to save"));
    return FALSE;
  }
  const float *smoothed =
      gv_spectrum_view_get_smoothed (GV_SPECTRUM_VIEW (self->spectrum_view), NULL);
  return gv_write_spectrum_csv (path, gv_galaxy_get_id (self->galaxy),
                                gv_galaxy_get_z (self->galaxy),
                                gv_galaxy_get_wavelength (self->galaxy), flux,
                                gv_galaxy_get_spectrum_ivar (self->galaxy), smoothed, n, error);
}

typedef gboolean (*ExportFunc) (GvDetailView *self, const char *path, GError **error);

static void
show_error (GvDetailView *self, const char *primary, const GError *error)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkWidget *dialog = gtk_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                              GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                              GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE, "%s", primary);
  gtk_message_dialog_format_secondary_text (GTK_MESSAGE_DIALOG (dialog), "%s", error->message);
  g_signal_connect (dialog, "response", G_CALLBACK (gtk_window_destroy), NULL);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
on_save_response (GtkNativeDialog *native, int response, GvDetailView *self)
{
  ExportFunc export = g_object_get_data (G_OBJECT (native), "gv-export");

  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (native));
    g_autofree char *path = file != NULL ? g_file_get_path (file) : NULL;
    g_autoptr (GError) error = NULL;
    if (path != NULL && !export(self, path, &error))
      show_error (self, _("Could not save the file"), error);
  }
  g_object_unref (native);
  g_object_unref (self);
}

static void
save_with_chooser (GvDetailView *self, const char *title, const char *suffix, ExportFunc export)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkFileChooserNative *native =
      gtk_file_chooser_native_new (title, GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                   GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), _("_Cancel"));
  g_autofree char *name =
      g_strdup_printf ("galaxy-%" G_GINT64_FORMAT "%s",
                       self->galaxy != NULL ? gv_galaxy_get_id (self->galaxy) : 0, suffix);

  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (native), TRUE);
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (native), name);
  g_object_set_data (G_OBJECT (native), "gv-export", (gpointer) export);
  g_signal_connect (native, "response", G_CALLBACK (on_save_response), g_object_ref (self));
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (native));
}

static void
save_image_action (GtkWidget *widget, const char *action_name, GVariant *parameter)
{
  save_with_chooser (GV_DETAIL_VIEW (widget), _("Save Image"), ".png", gv_detail_view_export_png);
}

static void
save_spectrum_action (GtkWidget *widget, const char *action_name, GVariant *parameter)
{
  save_with_chooser (GV_DETAIL_VIEW (widget), _("Save Spectrum"), ".csv",
                     gv_detail_view_export_spectrum_csv);
}

/* ---------------------------------------------------------------------------------------- */
/* Building the pane                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* A row of controls that wraps when the pane is narrow (GTK 4.8 has no wrap box; a flow box
 * without selection is one). Its children are not focus stops themselves: Tab goes straight
 * to the controls. */
static GtkWidget *
controls_new (void)
{
  GtkWidget *flow = gtk_flow_box_new ();

  gtk_flow_box_set_selection_mode (GTK_FLOW_BOX (flow), GTK_SELECTION_NONE);
  gtk_flow_box_set_max_children_per_line (GTK_FLOW_BOX (flow), 32);
  gtk_flow_box_set_column_spacing (GTK_FLOW_BOX (flow), 12);
  gtk_flow_box_set_row_spacing (GTK_FLOW_BOX (flow), 4);
  return flow;
}

static void
controls_add (GtkWidget *flow, GtkWidget *widget)
{
  gtk_flow_box_append (GTK_FLOW_BOX (flow), widget);
  gtk_widget_set_focusable (gtk_widget_get_parent (widget), FALSE);
}

static GtkWidget *
labelled (GtkWidget *flow, const char *mnemonic, GtkWidget *control)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *label = gtk_label_new_with_mnemonic (mnemonic);

  /* The mnemonic widget also makes the label the control's accessible label. */
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), control);
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), control);
  controls_add (flow, box);
  return control;
}

/* Buttons that belong together, drawn joined. */
static GtkWidget *
linked_new (void)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 0);
  gtk_widget_add_css_class (box, "linked");
  return box;
}

static GtkWidget *
icon_button (const char *icon, const char *tooltip, GCallback callback, gpointer data)
{
  GtkWidget *button = gtk_button_new_from_icon_name (icon);

  gtk_widget_set_tooltip_text (button, tooltip);
  gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL, tooltip,
                                  -1);
  g_signal_connect_swapped (button, "clicked", callback, data);
  return button;
}

static GtkWidget *
drop_down (const char *const *items)
{
  return gtk_drop_down_new_from_strings (items);
}

static gboolean
limits_to_sensitive (GBinding *binding, const GValue *from, GValue *to, gpointer data)
{
  g_value_set_boolean (to, g_value_get_uint (from) == ACLIP_LIMITS_PERCENTILE);
  return TRUE;
}

static gboolean
mode_is_band (GBinding *binding, const GValue *from, GValue *to, gpointer data)
{
  g_value_set_boolean (to, g_value_get_uint (from) != GV_IMAGE_MODE_COLOUR);
  return TRUE;
}

static GtkWidget *
build_image_part (GvDetailView *self)
{
  GtkWidget *part = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);

  self->image_view = gv_image_view_new ();
  gtk_widget_set_hexpand (self->image_view, TRUE);
  gtk_widget_set_vexpand (self->image_view, TRUE);
  g_signal_connect (self->image_view, "pixel-hovered", G_CALLBACK (on_pixel_hovered), self);
  self->no_image_label = gtk_label_new (_("No image of this galaxy"));
  gtk_widget_set_vexpand (self->no_image_label, TRUE);
  gtk_widget_set_visible (self->no_image_label, FALSE);
  gtk_box_append (GTK_BOX (part), self->image_view);
  gtk_box_append (GTK_BOX (part), self->no_image_label);

  /* Mode, stretch and limits. */
  GtkWidget *row = controls_new ();
  const char *modes[] = { _("Colour"), _("g band"), _("r band"), _("z band"), NULL };
  const char *stretches[] = { _("Linear"), _("Log"), _("Square root"), _("Asinh"), NULL };
  const char *limits[] = { _("Min/max"), _("Percentiles"), _("Zscale"), NULL };
  GtkWidget *mode = labelled (row, _("_Show"), drop_down (modes));
  self->stretch_dropdown = labelled (row, _("S_tretch"), drop_down (stretches));
  self->limits_dropdown = labelled (row, _("_Limits"), drop_down (limits));
  GBindingFlags both = G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE;
  g_object_bind_property (self->image_view, "mode", mode, "selected", both);
  g_object_bind_property (self->image_view, "stretch", self->stretch_dropdown, "selected", both);
  g_object_bind_property (self->image_view, "limits", self->limits_dropdown, "selected", both);
  gtk_box_append (GTK_BOX (part), row);

  /* Percentile limits: shown for single bands, editable for limits = percentiles. */
  row = controls_new ();
  self->low_spin = labelled (row, _("Lo_w %"), gtk_spin_button_new_with_range (0.0, 50.0, 0.1));
  self->high_spin =
      labelled (row, _("_High %"), gtk_spin_button_new_with_range (50.0, 100.0, 0.1));
  gtk_spin_button_set_digits (GTK_SPIN_BUTTON (self->low_spin), 1);
  gtk_spin_button_set_digits (GTK_SPIN_BUTTON (self->high_spin), 1);
  g_object_bind_property (self->image_view, "low-percent", self->low_spin, "value", both);
  g_object_bind_property (self->image_view, "high-percent", self->high_spin, "value", both);
  g_object_bind_property_full (self->image_view, "limits", row, "sensitive", G_BINDING_SYNC_CREATE,
                               limits_to_sensitive, NULL, NULL, NULL);
  g_object_bind_property_full (self->image_view, "mode", row, "visible", G_BINDING_SYNC_CREATE,
                               mode_is_band, NULL, NULL, NULL);
  g_object_bind_property_full (self->image_view, "mode", self->stretch_dropdown, "sensitive",
                               G_BINDING_SYNC_CREATE, mode_is_band, NULL, NULL, NULL);
  g_object_bind_property_full (self->image_view, "mode", self->limits_dropdown, "sensitive",
                               G_BINDING_SYNC_CREATE, mode_is_band, NULL, NULL, NULL);
  gtk_box_append (GTK_BOX (part), row);

  /* Zoom and save. */
  row = controls_new ();
  GtkWidget *zoom = linked_new ();
  gtk_box_append (GTK_BOX (zoom),
                  icon_button ("zoom-out-symbolic", _("Zoom out"),
                               G_CALLBACK (gv_image_view_zoom_out), self->image_view));
  gtk_box_append (GTK_BOX (zoom),
                  icon_button ("zoom-in-symbolic", _("Zoom in"),
                               G_CALLBACK (gv_image_view_zoom_in), self->image_view));
  gtk_box_append (GTK_BOX (zoom),
                  icon_button ("zoom-fit-best-symbolic", _("Fit the image"),
                               G_CALLBACK (gv_image_view_zoom_fit), self->image_view));
  gtk_box_append (GTK_BOX (zoom),
                  icon_button ("zoom-original-symbolic", _("One image pixel per screen pixel"),
                               G_CALLBACK (gv_image_view_zoom_actual), self->image_view));
  controls_add (row, zoom);
  GtkWidget *save = gtk_button_new_with_mnemonic (_("Save _Image…"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (save), "detail.save-image");
  controls_add (row, save);
  gtk_box_append (GTK_BOX (part), row);

  self->readout = gtk_label_new ("");
  gtk_label_set_xalign (GTK_LABEL (self->readout), 0.0f);
  gtk_label_set_ellipsize (GTK_LABEL (self->readout), PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (self->readout, "numeric");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->readout), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Pixel under the pointer"), -1);
  gtk_box_append (GTK_BOX (part), self->readout);
  return part;
}

static GtkWidget *
build_spectrum_part (GvDetailView *self)
{
  GtkWidget *part = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GBindingFlags both = G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE;

  self->spectrum_view = gv_spectrum_view_new ();
  gtk_widget_set_hexpand (self->spectrum_view, TRUE);
  gtk_widget_set_vexpand (self->spectrum_view, TRUE);
  gtk_box_append (GTK_BOX (part), self->spectrum_view);

  GtkWidget *row = controls_new ();
  GtkWidget *smoothing =
      labelled (row, _("S_moothing (pixels)"), gtk_spin_button_new_with_range (1.0, 101.0, 1.0));
  g_object_bind_property (self->spectrum_view, "smoothing", smoothing, "value", both);
  const char *kernels[] = { _("Boxcar"), _("Gaussian"), NULL };
  GtkWidget *kernel = labelled (row, _("_Kernel"), drop_down (kernels));
  g_object_bind_property (self->spectrum_view, "kernel", kernel, "selected", both);

  GtkWidget *rest = gtk_check_button_new_with_mnemonic (_("_Rest frame"));
  g_object_bind_property (self->spectrum_view, "rest-frame", rest, "active", both);
  controls_add (row, rest);
  GtkWidget *lines = gtk_check_button_new_with_mnemonic (_("Li_nes"));
  g_object_bind_property (self->spectrum_view, "show-lines", lines, "active", both);
  controls_add (row, lines);

  GtkWidget *zoom = linked_new ();
  gtk_box_append (GTK_BOX (zoom),
                  icon_button ("zoom-out-symbolic", _("Zoom out of the spectrum"),
                               G_CALLBACK (gv_spectrum_view_zoom_out), self->spectrum_view));
  gtk_box_append (GTK_BOX (zoom),
                  icon_button ("zoom-in-symbolic", _("Zoom into the spectrum"),
                               G_CALLBACK (gv_spectrum_view_zoom_in), self->spectrum_view));
  GtkWidget *reset = gtk_button_new_with_mnemonic (_("R_eset"));
  gtk_widget_set_tooltip_text (reset, _("Show the whole spectrum"));
  g_signal_connect_swapped (reset, "clicked", G_CALLBACK (gv_spectrum_view_reset_view),
                            self->spectrum_view);
  gtk_box_append (GTK_BOX (zoom), reset);
  controls_add (row, zoom);
  GtkWidget *save = gtk_button_new_with_mnemonic (_("Save Spectr_um…"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (save), "detail.save-spectrum");
  controls_add (row, save);
  gtk_box_append (GTK_BOX (part), row);
  return part;
}

static void
on_smoothing_notify (GObject *object, GParamSpec *pspec, GvDetailView *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SMOOTHING]);
}

static void
gv_detail_view_init (GvDetailView *self)
{
  self->default_stretch = ACLIP_STRETCH_ASINH;

  self->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_margin_start (self->box, 6);
  gtk_widget_set_margin_end (self->box, 6);
  gtk_widget_set_margin_top (self->box, 6);
  gtk_widget_set_margin_bottom (self->box, 6);
  gtk_widget_set_parent (self->box, GTK_WIDGET (self));

  self->title = gtk_label_new (_("No galaxy selected"));
  gtk_label_set_xalign (GTK_LABEL (self->title), 0.0f);
  gtk_widget_add_css_class (self->title, "title-3");
  gtk_box_append (GTK_BOX (self->box), self->title);

  GtkWidget *top = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
  self->image_box = build_image_part (self);
  gtk_box_append (GTK_BOX (top), self->image_box);

  self->columns_grid = gtk_grid_new ();
  gtk_grid_set_column_spacing (GTK_GRID (self->columns_grid), 12);
  gtk_grid_set_row_spacing (GTK_GRID (self->columns_grid), 2);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->columns_grid),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("The galaxy's columns"), -1);
  GtkWidget *scrolled = gtk_scrolled_window_new ();
  /* Scrollable both ways, so that the table never forces the pane wider. */
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scrolled), GTK_POLICY_AUTOMATIC,
                                  GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scrolled), self->columns_grid);
  gtk_scrolled_window_set_propagate_natural_width (GTK_SCROLLED_WINDOW (scrolled), TRUE);
  gtk_box_append (GTK_BOX (top), scrolled);

  GtkWidget *paned = gtk_paned_new (GTK_ORIENTATION_VERTICAL);
  gtk_paned_set_start_child (GTK_PANED (paned), top);
  gtk_paned_set_end_child (GTK_PANED (paned), build_spectrum_part (self));
  gtk_paned_set_resize_start_child (GTK_PANED (paned), TRUE);
  gtk_paned_set_shrink_start_child (GTK_PANED (paned), FALSE);
  gtk_paned_set_shrink_end_child (GTK_PANED (paned), FALSE);
  gtk_widget_set_vexpand (paned, TRUE);
  gtk_box_append (GTK_BOX (self->box), paned);

  gv_image_view_set_stretch (GV_IMAGE_VIEW (self->image_view), self->default_stretch);
  g_signal_connect (self->spectrum_view, "notify::smoothing", G_CALLBACK (on_smoothing_notify),
                    self);
  fill_columns (self);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "detail.save-image", FALSE);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "detail.save-spectrum", FALSE);
}

/* ---------------------------------------------------------------------------------------- */
/* GObject                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void
gv_detail_view_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GvDetailView *self = GV_DETAIL_VIEW (object);

  switch (prop_id) {
    case PROP_GALAXY:
      g_value_set_object (value, self->galaxy);
      break;
    case PROP_DEFAULT_STRETCH:
      g_value_set_string (value, stretch_names[self->default_stretch]);
      break;
    case PROP_SMOOTHING:
      g_value_set_double (value, gv_detail_view_get_smoothing (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
gv_detail_view_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GvDetailView *self = GV_DETAIL_VIEW (object);

  switch (prop_id) {
    case PROP_GALAXY:
      gv_detail_view_set_galaxy (self, g_value_get_object (value));
      break;
    case PROP_DEFAULT_STRETCH: {
      const char *name = g_value_get_string (value);
      for (guint i = 0; i < G_N_ELEMENTS (stretch_names); i++)
        if (g_strcmp0 (name, stretch_names[i]) == 0)
          gv_detail_view_set_default_stretch (self, (AclipStretch) i);
      break;
    }
    case PROP_SMOOTHING:
      gv_detail_view_set_smoothing (self, g_value_get_double (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
gv_detail_view_dispose (GObject *object)
{
  GvDetailView *self = GV_DETAIL_VIEW (object);

  g_clear_pointer (&self->box, gtk_widget_unparent);
  g_clear_object (&self->galaxy);

  G_OBJECT_CLASS (gv_detail_view_parent_class)->dispose (object);
}

static void
gv_detail_view_class_init (GvDetailViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->get_property = gv_detail_view_get_property;
  object_class->set_property = gv_detail_view_set_property;
  object_class->dispose = gv_detail_view_dispose;

  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  properties[PROP_GALAXY] = g_param_spec_object ("galaxy", NULL, NULL, GV_TYPE_GALAXY, flags);
  properties[PROP_DEFAULT_STRETCH] =
      g_param_spec_string ("default-stretch", NULL, NULL, "asinh", flags);
  properties[PROP_SMOOTHING] =
      g_param_spec_double ("smoothing", NULL, NULL, 0.0, 200.0, 5.0, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_install_action (widget_class, "detail.save-image", NULL, save_image_action);
  gtk_widget_class_install_action (widget_class, "detail.save-spectrum", NULL,
                                   save_spectrum_action);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "gv-detail-view");
}

GtkWidget *
gv_detail_view_new (void)
{
  return g_object_new (GV_TYPE_DETAIL_VIEW, NULL);
}
