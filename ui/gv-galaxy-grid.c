/* gv-galaxy-grid.c — the grid of thumbnails with filter, sort and count (gv-galaxy-grid.h).
 *
 * Model chain: GvGalaxyList (rows sorted and filtered) → GtkSingleSelection → GtkGridView.
 * Cells are made by a GtkSignalListItemFactory: a picture with the ID and redshift labels
 * below. Binding a cell asks GvThumbnails for the row's texture; when it is not cached the
 * cell stays blank until "thumbnail-ready", which finds the cell through `bound` (row → cell).
 * Unbinding cancels the row's render if it has not happened yet, so a fast scroll only renders
 * what stays on screen.
 *
 * Selection is by catalogue row, kept across re-sorting and re-filtering: after each change of
 * the list the previously selected row is selected again at its new position (or the
 * selection becomes empty if the filter hides it), and "selection-changed" is emitted only
 * when the row actually changed.
 */
#include "gv-galaxy-grid.h"

#include "gv-galaxy-list.h"
#include "gv-thumbnails.h"

#include <glib/gi18n.h>
#include <math.h>

#define DEFAULT_THUMBNAIL_SIZE 96
#define MIN_THUMBNAIL_SIZE     48
#define MAX_THUMBNAIL_SIZE     256
/* Milliseconds of typing pause before a filter is applied (Enter applies at once). */
#define FILTER_DELAY_MS 300

struct _GvGalaxyGrid
{
  GtkWidget parent_instance;

  GtkWidget *toolbar;
  GtkWidget *filter_entry;
  GtkWidget *sort_dropdown;
  GtkWidget *direction_button;
  GtkWidget *count_label;
  GtkWidget *scrolled;
  GtkWidget *grid_view;

  GvCatalogue *catalogue;
  GvGalaxyList *list;
  GtkSingleSelection *selection;
  GvThumbnails *thumbnails;
  GHashTable *bound; /* row (GSIZE_TO_POINTER) → GtkListItem * currently showing it */
  int thumbnail_size;

  gint64 selected_row;     /* what was last reported */
  gboolean changing_model; /* while the list is being replaced: selection notifications wait */
  guint filter_timeout;
  GStrv sort_columns; /* the drop-down's column names after "File order" */
};

G_DEFINE_FINAL_TYPE (GvGalaxyGrid, gv_galaxy_grid, GTK_TYPE_WIDGET)

enum
{
  SIGNAL_SELECTION_CHANGED,
  SIGNAL_GALAXY_ACTIVATED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

enum
{
  PROP_0,
  PROP_SELECTED_ROW,
  PROP_CATALOGUE,
  PROP_THUMBNAIL_SIZE,
  N_PROPS
};
static GParamSpec *properties[N_PROPS];

/* Selection ---------------------------------------------------------------------------------- */

/* Reports the selection model's current row if it differs from the last one reported. */
static void
sync_selected_row (GvGalaxyGrid *self)
{
  if (self->changing_model)
    return;
  guint position = gtk_single_selection_get_selected (self->selection);
  gint64 row = position != GTK_INVALID_LIST_POSITION ? gv_galaxy_list_get_row (self->list, position)
                                                     : -1;
  if (row == self->selected_row)
    return;
  self->selected_row = row;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SELECTED_ROW]);
  g_signal_emit (self, signals[SIGNAL_SELECTION_CHANGED], 0, row);
}

static void
on_selection_changed (GtkSelectionModel *model, guint position, guint n_items,
                      GvGalaxyGrid *self)
{
  (void) model;
  (void) position;
  (void) n_items;
  sync_selected_row (self);
}

static void
scroll_to_position (GvGalaxyGrid *self, guint position)
{
  gtk_widget_activate_action (self->grid_view, "list.scroll-to-item", "u", position);
}

/* The list is about to change: hold selection reports until restore_selection. */
static void
begin_model_change (GvGalaxyGrid *self)
{
  self->changing_model = TRUE;
}

/* After the list changed: select the previously selected row again where it now is. */
static void
end_model_change (GvGalaxyGrid *self)
{
  gint64 position = self->selected_row >= 0
                        ? gv_galaxy_list_find_row (self->list, self->selected_row)
                        : -1;
  if (position >= 0)
    gtk_single_selection_set_selected (self->selection, (guint) position);
  else
    gtk_single_selection_set_selected (self->selection, GTK_INVALID_LIST_POSITION);
  self->changing_model = FALSE;
  sync_selected_row (self);
  if (position >= 0)
    scroll_to_position (self, (guint) position);
}

/* Count label ------------------------------------------------------------------------------- */

static void
update_count (GvGalaxyGrid *self)
{
  guint shown = gv_galaxy_list_get_n_shown (self->list);
  guint total = gv_galaxy_list_get_n_total (self->list);
  if (self->catalogue == NULL)
    {
      gtk_label_set_text (GTK_LABEL (self->count_label), "");
      return;
    }
  /* TRANSLATORS: galaxies shown by the filter / galaxies in the catalogue, e.g. "812 / 3000
   * galaxies" */
  g_autofree char *text
      = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u / %u galaxy", "%u / %u galaxies",
                                      total),
                         shown, total);
  gtk_label_set_text (GTK_LABEL (self->count_label), text);
}

/* Cells ------------------------------------------------------------------------------------- */

/* The widgets of one cell, found again from the GtkListItem's child. */
typedef struct
{
  GtkWidget *picture;
  GtkWidget *id_label;
  GtkWidget *z_label;
  gint64 row; /* bound row or −1 */
} Cell;

static Cell *
cell_of (GtkListItem *item)
{
  return g_object_get_data (G_OBJECT (gtk_list_item_get_child (item)), "gv-cell");
}

/* The ID label's tooltip (the whole ID, which the label may ellipsize) is made when asked
 * for: gtk_widget_set_tooltip_text in bind_cell made every bind query the pointer from the
 * display server, half the time of a selection or a scroll through the grid. */
static gboolean
on_id_query_tooltip (GtkWidget *label, int x, int y, gboolean keyboard, GtkTooltip *tooltip,
                     gpointer user_data)
{
  (void) x;
  (void) y;
  (void) keyboard;
  (void) user_data;
  const char *id = gtk_label_get_text (GTK_LABEL (label));
  if (id == NULL || *id == '\0')
    return FALSE;
  gtk_tooltip_set_text (tooltip, id);
  return TRUE;
}

static void
setup_cell (GtkSignalListItemFactory *factory, GtkListItem *item, GvGalaxyGrid *self)
{
  (void) factory;
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_add_css_class (box, "gv-galaxy-cell");
  Cell *cell = g_new0 (Cell, 1);
  cell->row = -1;
  cell->picture = gtk_picture_new ();
  gtk_picture_set_can_shrink (GTK_PICTURE (cell->picture), TRUE);
  gtk_picture_set_content_fit (GTK_PICTURE (cell->picture), GTK_CONTENT_FIT_CONTAIN);
  gtk_widget_set_size_request (cell->picture, self->thumbnail_size, self->thumbnail_size);
  gtk_widget_add_css_class (cell->picture, "gv-thumbnail");
  cell->id_label = gtk_label_new (NULL);
  gtk_label_set_ellipsize (GTK_LABEL (cell->id_label), PANGO_ELLIPSIZE_MIDDLE);
  gtk_label_set_max_width_chars (GTK_LABEL (cell->id_label), 1);
  gtk_widget_add_css_class (cell->id_label, "caption");
  gtk_widget_set_has_tooltip (cell->id_label, TRUE);
  g_signal_connect (cell->id_label, "query-tooltip", G_CALLBACK (on_id_query_tooltip), NULL);
  cell->z_label = gtk_label_new (NULL);
  gtk_widget_add_css_class (cell->z_label, "caption");
  gtk_widget_add_css_class (cell->z_label, "dim-label");
  gtk_box_append (GTK_BOX (box), cell->picture);
  gtk_box_append (GTK_BOX (box), cell->id_label);
  gtk_box_append (GTK_BOX (box), cell->z_label);
  g_object_set_data_full (G_OBJECT (box), "gv-cell", cell, g_free);
  gtk_list_item_set_child (item, box);
}

static void
bind_cell (GtkSignalListItemFactory *factory, GtkListItem *item, GvGalaxyGrid *self)
{
  (void) factory;
  GvGalaxyItem *galaxy = gtk_list_item_get_item (item);
  Cell *cell = cell_of (item);
  cell->row = gv_galaxy_item_get_row (galaxy);

  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, gv_galaxy_item_get_id (galaxy));
  double z = gv_galaxy_item_get_z (galaxy);
  /* TRANSLATORS: redshift under a thumbnail */
  g_autofree char *z_text = isnan (z) ? g_strdup (_("z unknown")) : g_strdup_printf (_("z = %.4f"), z);
  gtk_label_set_text (GTK_LABEL (cell->id_label), id);
  gtk_label_set_text (GTK_LABEL (cell->z_label), z_text);

  g_autofree char *accessible = isnan (z) ? g_strdup_printf (_("Galaxy %s, redshift unknown"), id)
                                          : g_strdup_printf (_("Galaxy %s, redshift %.4f"), id, z);
  gtk_accessible_update_property (GTK_ACCESSIBLE (gtk_list_item_get_child (item)),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, accessible, -1);

  g_hash_table_insert (self->bound, GSIZE_TO_POINTER ((gsize) cell->row), item);
  g_autoptr (GdkTexture) texture
      = self->thumbnails != NULL ? gv_thumbnails_request (self->thumbnails, cell->row) : NULL;
  gtk_picture_set_paintable (GTK_PICTURE (cell->picture), GDK_PAINTABLE (texture));
}

static void
unbind_cell (GtkSignalListItemFactory *factory, GtkListItem *item, GvGalaxyGrid *self)
{
  (void) factory;
  Cell *cell = cell_of (item);
  if (cell == NULL || cell->row < 0)
    return;
  gpointer key = GSIZE_TO_POINTER ((gsize) cell->row);
  if (g_hash_table_lookup (self->bound, key) == item)
    g_hash_table_remove (self->bound, key);
  /* Not on screen any more: a render not yet begun is skipped. */
  if (self->thumbnails != NULL && gtk_picture_get_paintable (GTK_PICTURE (cell->picture)) == NULL)
    gv_thumbnails_cancel (self->thumbnails, cell->row);
  gtk_picture_set_paintable (GTK_PICTURE (cell->picture), NULL);
  cell->row = -1;
}

static void
on_thumbnail_ready (GvThumbnails *thumbnails, gint64 row, GdkTexture *texture,
                    GvGalaxyGrid *self)
{
  (void) thumbnails;
  GtkListItem *item = g_hash_table_lookup (self->bound, GSIZE_TO_POINTER ((gsize) row));
  if (item == NULL)
    return;
  Cell *cell = cell_of (item);
  if (cell != NULL && cell->row == row)
    gtk_picture_set_paintable (GTK_PICTURE (cell->picture), GDK_PAINTABLE (texture));
}

static GtkListItemFactory *
make_factory (GvGalaxyGrid *self)
{
  GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (setup_cell), self);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_cell), self);
  g_signal_connect (factory, "unbind", G_CALLBACK (unbind_cell), self);
  return factory;
}

static void
on_activate (GtkGridView *grid_view, guint position, GvGalaxyGrid *self)
{
  (void) grid_view;
  gint64 row = gv_galaxy_list_get_row (self->list, position);
  if (row < 0)
    return;
  /* Activation implies selection (a double click already selected; Enter on a focused but
   * unselected cell after Ctrl+arrows did not). */
  gtk_single_selection_set_selected (self->selection, position);
  g_signal_emit (self, signals[SIGNAL_GALAXY_ACTIVATED], 0, row);
}

/* Filter entry -------------------------------------------------------------------------------- */

static void
show_filter_error (GvGalaxyGrid *self, const GError *error)
{
  GtkEntry *entry = GTK_ENTRY (self->filter_entry);
  if (error == NULL)
    {
      gtk_widget_remove_css_class (self->filter_entry, "error");
      gtk_entry_set_icon_from_icon_name (entry, GTK_ENTRY_ICON_SECONDARY, NULL);
      gtk_widget_set_tooltip_text (self->filter_entry, _("Filter by columns, e.g. "
                                                         "“Z < 0.2 and 17 < FLUX_R”"));
      gtk_accessible_reset_property (GTK_ACCESSIBLE (self->filter_entry),
                                     GTK_ACCESSIBLE_PROPERTY_DESCRIPTION);
      return;
    }
  gtk_widget_add_css_class (self->filter_entry, "error");
  gtk_entry_set_icon_from_icon_name (entry, GTK_ENTRY_ICON_SECONDARY, "dialog-warning-symbolic");
  gtk_entry_set_icon_tooltip_text (entry, GTK_ENTRY_ICON_SECONDARY, error->message);
  gtk_widget_set_tooltip_text (self->filter_entry, error->message);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->filter_entry),
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, error->message, -1);
}

static gboolean
apply_filter_text (GvGalaxyGrid *self, const char *text, GError **error)
{
  g_autoptr (GvFilter) filter = NULL;
  if (self->catalogue != NULL && !gv_filter_text_is_blank (text))
    {
      filter = gv_catalogue_parse_filter (self->catalogue, text, error);
      if (filter == NULL)
        return FALSE;
    }
  begin_model_change (self);
  gv_galaxy_list_set_filter (self->list, filter);
  end_model_change (self);
  update_count (self);
  return TRUE;
}

static void
apply_entry_now (GvGalaxyGrid *self)
{
  g_clear_handle_id (&self->filter_timeout, g_source_remove);
  g_autoptr (GError) error = NULL;
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->filter_entry));
  apply_filter_text (self, text, &error);
  show_filter_error (self, error);
}

static gboolean
on_filter_timeout (gpointer data)
{
  GvGalaxyGrid *self = data;
  self->filter_timeout = 0;
  apply_entry_now (self);
  return G_SOURCE_REMOVE;
}

static void
on_filter_changed (GtkEditable *editable, GvGalaxyGrid *self)
{
  (void) editable;
  g_clear_handle_id (&self->filter_timeout, g_source_remove);
  self->filter_timeout = g_timeout_add (FILTER_DELAY_MS, on_filter_timeout, self);
}

static void
on_filter_activate (GtkEntry *entry, GvGalaxyGrid *self)
{
  (void) entry;
  apply_entry_now (self);
}

static gboolean
on_filter_escape (GtkWidget *widget, GVariant *args, gpointer data)
{
  (void) widget;
  (void) args;
  GvGalaxyGrid *self = data;
  if (gtk_editable_get_text (GTK_EDITABLE (self->filter_entry))[0] == '\0')
    {
      /* Already empty: Escape goes back to the grid. */
      gtk_widget_grab_focus (self->grid_view);
      return TRUE;
    }
  gtk_editable_set_text (GTK_EDITABLE (self->filter_entry), "");
  apply_entry_now (self);
  return TRUE;
}

/* Sorting ------------------------------------------------------------------------------------ */

static void
apply_sort_from_controls (GvGalaxyGrid *self)
{
  guint index = gtk_drop_down_get_selected (GTK_DROP_DOWN (self->sort_dropdown));
  const char *column = NULL;
  if (index != GTK_INVALID_LIST_POSITION && index > 0 && self->sort_columns != NULL
      && index - 1 < g_strv_length (self->sort_columns))
    column = self->sort_columns[index - 1];
  gboolean descending
      = gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (self->direction_button));
  gtk_button_set_icon_name (GTK_BUTTON (self->direction_button),
                            descending ? "view-sort-descending-symbolic"
                                       : "view-sort-ascending-symbolic");
  gtk_widget_set_tooltip_text (self->direction_button,
                               descending ? _("Descending (click for ascending)")
                                          : _("Ascending (click for descending)"));
  gtk_widget_set_sensitive (self->direction_button, column != NULL);

  const char *current = gv_galaxy_list_get_sort_column (self->list);
  if (g_strcmp0 (current, column) == 0
      && (column == NULL || gv_galaxy_list_get_sort_descending (self->list) == descending))
    return;
  begin_model_change (self);
  gv_galaxy_list_set_sort (self->list, column, descending);
  end_model_change (self);
}

static void
on_sort_changed (GObject *object, GParamSpec *pspec, GvGalaxyGrid *self)
{
  (void) object;
  (void) pspec;
  apply_sort_from_controls (self);
}

static void
on_direction_toggled (GtkToggleButton *button, GvGalaxyGrid *self)
{
  (void) button;
  apply_sort_from_controls (self);
}

/* The drop-down's entries: "File order" and the catalogue's numeric columns. */
static void
fill_sort_dropdown (GvGalaxyGrid *self)
{
  g_clear_pointer (&self->sort_columns, g_strfreev);
  GtkStringList *strings = gtk_string_list_new (NULL);
  gtk_string_list_append (strings, _("File order"));
  if (self->catalogue != NULL)
    {
      self->sort_columns = g_strdupv ((char **) gv_catalogue_get_columns (self->catalogue));
      for (guint i = 0; self->sort_columns[i] != NULL; i++)
        gtk_string_list_append (strings, self->sort_columns[i]);
    }
  g_signal_handlers_block_by_func (self->sort_dropdown, on_sort_changed, self);
  gtk_drop_down_set_model (GTK_DROP_DOWN (self->sort_dropdown), G_LIST_MODEL (strings));
  gtk_drop_down_set_selected (GTK_DROP_DOWN (self->sort_dropdown), 0);
  g_signal_handlers_unblock_by_func (self->sort_dropdown, on_sort_changed, self);
  g_object_unref (strings);
  gtk_widget_set_sensitive (self->sort_dropdown, self->catalogue != NULL);
  gtk_widget_set_sensitive (self->direction_button, FALSE);
}

/* GObject ------------------------------------------------------------------------------------ */

static void
focus_filter_action (GtkWidget *widget, const char *action_name, GVariant *parameter)
{
  (void) action_name;
  (void) parameter;
  gv_galaxy_grid_focus_filter (GV_GALAXY_GRID (widget));
}

static void
gv_galaxy_grid_dispose (GObject *object)
{
  GvGalaxyGrid *self = GV_GALAXY_GRID (object);

  g_clear_handle_id (&self->filter_timeout, g_source_remove);
  if (self->thumbnails != NULL)
    g_signal_handlers_disconnect_by_data (self->thumbnails, self);
  if (self->selection != NULL)
    g_signal_handlers_disconnect_by_data (self->selection, self);
  g_clear_pointer (&self->toolbar, gtk_widget_unparent);
  g_clear_pointer (&self->scrolled, gtk_widget_unparent);
  g_clear_object (&self->thumbnails);
  g_clear_object (&self->selection);
  g_clear_object (&self->list);
  g_clear_object (&self->catalogue);
  g_clear_pointer (&self->bound, g_hash_table_unref);
  g_clear_pointer (&self->sort_columns, g_strfreev);

  G_OBJECT_CLASS (gv_galaxy_grid_parent_class)->dispose (object);
}

static void
gv_galaxy_grid_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GvGalaxyGrid *self = GV_GALAXY_GRID (object);
  switch (prop_id)
    {
    case PROP_SELECTED_ROW:
      g_value_set_int64 (value, self->selected_row);
      break;
    case PROP_CATALOGUE:
      g_value_set_object (value, self->catalogue);
      break;
    case PROP_THUMBNAIL_SIZE:
      g_value_set_int (value, self->thumbnail_size);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gv_galaxy_grid_set_property (GObject *object, guint prop_id, const GValue *value,
                             GParamSpec *pspec)
{
  GvGalaxyGrid *self = GV_GALAXY_GRID (object);
  switch (prop_id)
    {
    case PROP_CATALOGUE:
      gv_galaxy_grid_set_catalogue (self, g_value_get_object (value));
      break;
    case PROP_THUMBNAIL_SIZE:
      gv_galaxy_grid_set_thumbnail_size (self, g_value_get_int (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gv_galaxy_grid_class_init (GvGalaxyGridClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = gv_galaxy_grid_dispose;
  object_class->get_property = gv_galaxy_grid_get_property;
  object_class->set_property = gv_galaxy_grid_set_property;

  properties[PROP_SELECTED_ROW]
      = g_param_spec_int64 ("selected-row", NULL, NULL, -1, G_MAXINT64, -1,
                            G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_CATALOGUE]
      = g_param_spec_object ("catalogue", NULL, NULL, GV_TYPE_CATALOGUE,
                             G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_THUMBNAIL_SIZE] = g_param_spec_int (
      "thumbnail-size", NULL, NULL, MIN_THUMBNAIL_SIZE, MAX_THUMBNAIL_SIZE,
      DEFAULT_THUMBNAIL_SIZE,
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[SIGNAL_SELECTION_CHANGED]
      = g_signal_new ("selection-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                      NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
  signals[SIGNAL_GALAXY_ACTIVATED]
      = g_signal_new ("galaxy-activated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                      NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT64);

  gtk_widget_class_install_action (widget_class, "grid.focus-filter", NULL, focus_filter_action);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BOX_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "gv-galaxy-grid");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_GROUP);
}

/* A dark frame behind thumbnails while they render, like the sky. Loaded once per display. */
static void
ensure_css (void)
{
  GdkDisplay *display = gdk_display_get_default ();
  if (display == NULL || g_object_get_data (G_OBJECT (display), "gv-galaxy-grid-css") != NULL)
    return;
  GtkCssProvider *provider = gtk_css_provider_new ();
  gtk_css_provider_load_from_data (provider,
                                   ".gv-thumbnail { background-color: #101014; }\n"
                                   ".gv-galaxy-cell { padding: 3px; }\n",
                                   -1);
  gtk_style_context_add_provider_for_display (display, GTK_STYLE_PROVIDER (provider),
                                              GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  g_object_set_data_full (G_OBJECT (display), "gv-galaxy-grid-css", provider, g_object_unref);
}

static void
gv_galaxy_grid_init (GvGalaxyGrid *self)
{
  self->thumbnail_size = DEFAULT_THUMBNAIL_SIZE;
  self->selected_row = -1;
  self->bound = g_hash_table_new (g_direct_hash, g_direct_equal);
  ensure_css ();

  GtkLayoutManager *layout = gtk_widget_get_layout_manager (GTK_WIDGET (self));
  gtk_orientable_set_orientation (GTK_ORIENTABLE (layout), GTK_ORIENTATION_VERTICAL);
  gtk_box_layout_set_spacing (GTK_BOX_LAYOUT (layout), 6);

  /* Tool row: filter, sort, direction, count. */
  self->toolbar = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_margin_start (self->toolbar, 6);
  gtk_widget_set_margin_end (self->toolbar, 6);
  gtk_widget_set_margin_top (self->toolbar, 6);
  gtk_widget_set_parent (self->toolbar, GTK_WIDGET (self));

  self->filter_entry = gtk_entry_new ();
  gtk_widget_set_hexpand (self->filter_entry, TRUE);
  gtk_entry_set_placeholder_text (GTK_ENTRY (self->filter_entry), _("Filter, e.g. Z < 0.2"));
  gtk_entry_set_icon_from_icon_name (GTK_ENTRY (self->filter_entry), GTK_ENTRY_ICON_PRIMARY,
                                     "edit-find-symbolic");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->filter_entry),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Filter galaxies"), -1);
  g_signal_connect (self->filter_entry, "changed", G_CALLBACK (on_filter_changed), self);
  g_signal_connect (self->filter_entry, "activate", G_CALLBACK (on_filter_activate), self);
  GtkEventController *shortcuts = gtk_shortcut_controller_new ();
  gtk_shortcut_controller_add_shortcut (
      GTK_SHORTCUT_CONTROLLER (shortcuts),
      gtk_shortcut_new (gtk_keyval_trigger_new (GDK_KEY_Escape, 0),
                        gtk_callback_action_new (on_filter_escape, self, NULL)));
  gtk_widget_add_controller (self->filter_entry, shortcuts);
  gtk_box_append (GTK_BOX (self->toolbar), self->filter_entry);
  show_filter_error (self, NULL);

  GtkWidget *sort_label = gtk_label_new_with_mnemonic (_("_Sort"));
  gtk_box_append (GTK_BOX (self->toolbar), sort_label);
  self->sort_dropdown = gtk_drop_down_new (NULL, NULL);
  gtk_label_set_mnemonic_widget (GTK_LABEL (sort_label), self->sort_dropdown);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->sort_dropdown),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Sort by column"), -1);
  gtk_widget_set_tooltip_text (self->sort_dropdown, _("Sort by column"));
  g_signal_connect (self->sort_dropdown, "notify::selected", G_CALLBACK (on_sort_changed), self);
  gtk_box_append (GTK_BOX (self->toolbar), self->sort_dropdown);

  self->direction_button = gtk_toggle_button_new ();
  gtk_button_set_icon_name (GTK_BUTTON (self->direction_button), "view-sort-ascending-symbolic");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->direction_button),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Descending order"), -1);
  g_signal_connect (self->direction_button, "toggled", G_CALLBACK (on_direction_toggled), self);
  gtk_box_append (GTK_BOX (self->toolbar), self->direction_button);

  self->count_label = gtk_label_new (NULL);
  gtk_widget_add_css_class (self->count_label, "dim-label");
  gtk_label_set_width_chars (GTK_LABEL (self->count_label), 12);
  gtk_label_set_xalign (GTK_LABEL (self->count_label), 1.0f);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->count_label),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Galaxies shown"), -1);
  gtk_box_append (GTK_BOX (self->toolbar), self->count_label);

  /* The grid. */
  self->list = gv_galaxy_list_new (NULL);
  self->selection = gtk_single_selection_new (G_LIST_MODEL (g_object_ref (self->list)));
  gtk_single_selection_set_autoselect (self->selection, FALSE);
  gtk_single_selection_set_can_unselect (self->selection, TRUE);
  g_signal_connect (self->selection, "selection-changed", G_CALLBACK (on_selection_changed),
                    self);

  g_autoptr (GtkListItemFactory) factory = make_factory (self);
  self->grid_view = gtk_grid_view_new (GTK_SELECTION_MODEL (g_object_ref (self->selection)),
                                       g_steal_pointer (&factory));
  /* GtkGridView keeps max-columns × 30 cells alive (bound, hence thumbnails requested)
   * whatever the width: 12 columns fill 1,300 pixels of 96-pixel thumbnails and keep 360
   * cells, about five screens — prefetch for scrolling, not thousands of renders. */
  gtk_grid_view_set_max_columns (GTK_GRID_VIEW (self->grid_view), 12);
  gtk_grid_view_set_single_click_activate (GTK_GRID_VIEW (self->grid_view), FALSE);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->grid_view),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Galaxies"), -1);
  g_signal_connect (self->grid_view, "activate", G_CALLBACK (on_activate), self);

  self->scrolled = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (self->scrolled), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_widget_set_vexpand (self->scrolled, TRUE);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (self->scrolled), self->grid_view);
  gtk_widget_set_parent (self->scrolled, GTK_WIDGET (self));

  fill_sort_dropdown (self);
  update_count (self);
}

/* Public ------------------------------------------------------------------------------------ */

GtkWidget *
gv_galaxy_grid_new (void)
{
  return g_object_new (GV_TYPE_GALAXY_GRID, NULL);
}

void
gv_galaxy_grid_set_catalogue (GvGalaxyGrid *self, GvCatalogue *catalogue)
{
  g_return_if_fail (GV_IS_GALAXY_GRID (self));
  g_return_if_fail (catalogue == NULL || GV_IS_CATALOGUE (catalogue));

  if (self->catalogue == catalogue)
    return;
  g_set_object (&self->catalogue, catalogue);

  if (self->thumbnails != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->thumbnails, self);
      g_clear_object (&self->thumbnails);
    }
  if (catalogue != NULL)
    {
      self->thumbnails = gv_thumbnails_new (catalogue, self->thumbnail_size, 0);
      g_signal_connect (self->thumbnails, "thumbnail-ready", G_CALLBACK (on_thumbnail_ready),
                        self);
    }

  /* A new catalogue: no filter, file order, nothing selected. */
  g_clear_handle_id (&self->filter_timeout, g_source_remove);
  g_signal_handlers_block_by_func (self->filter_entry, on_filter_changed, self);
  gtk_editable_set_text (GTK_EDITABLE (self->filter_entry), "");
  g_signal_handlers_unblock_by_func (self->filter_entry, on_filter_changed, self);
  show_filter_error (self, NULL);
  g_signal_handlers_block_by_func (self->direction_button, on_direction_toggled, self);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->direction_button), FALSE);
  g_signal_handlers_unblock_by_func (self->direction_button, on_direction_toggled, self);
  fill_sort_dropdown (self);

  begin_model_change (self);
  gint64 previous = self->selected_row;
  self->selected_row = -1; /* rows of the old catalogue mean nothing in the new one */
  gv_galaxy_list_set_catalogue (self->list, catalogue);
  gtk_single_selection_set_selected (self->selection, GTK_INVALID_LIST_POSITION);
  self->changing_model = FALSE;
  if (previous != -1)
    {
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SELECTED_ROW]);
      g_signal_emit (self, signals[SIGNAL_SELECTION_CHANGED], 0, (gint64) -1);
    }
  if (gv_galaxy_list_get_n_shown (self->list) > 0)
    scroll_to_position (self, 0);
  update_count (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CATALOGUE]);
}

GvCatalogue *
gv_galaxy_grid_get_catalogue (GvGalaxyGrid *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), NULL);
  return self->catalogue;
}

gint64
gv_galaxy_grid_get_selected_row (GvGalaxyGrid *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), -1);
  return self->selected_row;
}

gboolean
gv_galaxy_grid_select_row (GvGalaxyGrid *self, gint64 row)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), FALSE);
  gint64 position = gv_galaxy_list_find_row (self->list, row);
  if (position < 0)
    return FALSE;
  /* Scrolling first binds the cells around the galaxy once; selecting first bound the cells
   * around it for the selection and again for the scroll. */
  scroll_to_position (self, (guint) position);
  gtk_single_selection_set_selected (self->selection, (guint) position);
  sync_selected_row (self);
  return TRUE;
}

gboolean
gv_galaxy_grid_select_id (GvGalaxyGrid *self, gint64 id)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), FALSE);
  if (self->catalogue == NULL)
    return FALSE;
  gint64 row = gv_catalogue_find_id (self->catalogue, id);
  return row >= 0 && gv_galaxy_grid_select_row (self, row);
}

void
gv_galaxy_grid_focus_filter (GvGalaxyGrid *self)
{
  g_return_if_fail (GV_IS_GALAXY_GRID (self));
  gtk_widget_grab_focus (self->filter_entry);
  gtk_editable_select_region (GTK_EDITABLE (self->filter_entry), 0, -1);
}

gboolean
gv_galaxy_grid_set_filter_text (GvGalaxyGrid *self, const char *text, GError **error)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autoptr (GError) local_error = NULL;
  if (!apply_filter_text (self, text != NULL ? text : "", &local_error))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  /* Show the text in the entry without re-applying it. */
  g_clear_handle_id (&self->filter_timeout, g_source_remove);
  g_signal_handlers_block_by_func (self->filter_entry, on_filter_changed, self);
  gtk_editable_set_text (GTK_EDITABLE (self->filter_entry), text != NULL ? text : "");
  g_signal_handlers_unblock_by_func (self->filter_entry, on_filter_changed, self);
  show_filter_error (self, NULL);
  return TRUE;
}

gboolean
gv_galaxy_grid_set_sort (GvGalaxyGrid *self, const char *column, gboolean descending)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), FALSE);

  guint index = 0;
  if (column != NULL)
    {
      if (self->sort_columns == NULL)
        return FALSE;
      guint i = 0;
      while (self->sort_columns[i] != NULL && g_ascii_strcasecmp (self->sort_columns[i], column))
        i++;
      if (self->sort_columns[i] == NULL)
        return FALSE;
      index = i + 1;
    }
  /* Through the controls, so that they show what is applied. */
  g_signal_handlers_block_by_func (self->sort_dropdown, on_sort_changed, self);
  g_signal_handlers_block_by_func (self->direction_button, on_direction_toggled, self);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (self->sort_dropdown), index);
  gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (self->direction_button), descending);
  g_signal_handlers_unblock_by_func (self->direction_button, on_direction_toggled, self);
  g_signal_handlers_unblock_by_func (self->sort_dropdown, on_sort_changed, self);
  apply_sort_from_controls (self);
  return TRUE;
}

guint
gv_galaxy_grid_get_n_shown (GvGalaxyGrid *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), 0);
  return gv_galaxy_list_get_n_shown (self->list);
}

guint
gv_galaxy_grid_get_n_total (GvGalaxyGrid *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), 0);
  return gv_galaxy_list_get_n_total (self->list);
}

gint64 *
gv_galaxy_grid_dup_shown_rows (GvGalaxyGrid *self, gsize *n_rows)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), NULL);
  guint n = 0;
  const gint64 *rows = gv_galaxy_list_get_rows (self->list, &n);
  if (n_rows != NULL)
    *n_rows = n;
  return g_memdup2 (rows, MAX (n, 1) * sizeof (gint64));
}

void
gv_galaxy_grid_set_thumbnail_size (GvGalaxyGrid *self, int size)
{
  g_return_if_fail (GV_IS_GALAXY_GRID (self));
  size = CLAMP (size, MIN_THUMBNAIL_SIZE, MAX_THUMBNAIL_SIZE);
  if (size == self->thumbnail_size)
    return;
  self->thumbnail_size = size;
  if (self->thumbnails != NULL)
    gv_thumbnails_set_size (self->thumbnails, size);
  /* New cells at the new size: a new factory rebuilds every cell (and re-requests). */
  g_autoptr (GtkListItemFactory) factory = make_factory (self);
  gtk_grid_view_set_factory (GTK_GRID_VIEW (self->grid_view), factory);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_THUMBNAIL_SIZE]);
}

int
gv_galaxy_grid_get_thumbnail_size (GvGalaxyGrid *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), 0);
  return self->thumbnail_size;
}

/* For the benchmark and tests: the thumbnail cache. */
GvThumbnails *
gv_galaxy_grid_get_thumbnails (GvGalaxyGrid *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), NULL);
  return self->thumbnails;
}

GtkWidget *
gv_galaxy_grid_get_grid_view (GvGalaxyGrid *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), NULL);
  return self->grid_view;
}

GtkWidget *
gv_galaxy_grid_get_filter_entry (GvGalaxyGrid *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), NULL);
  return self->filter_entry;
}

const char *
gv_galaxy_grid_get_count_text (GvGalaxyGrid *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_GRID (self), NULL);
  return gtk_label_get_text (GTK_LABEL (self->count_label));
}
