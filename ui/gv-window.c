/* gv-window.c — the viewer window.
 *
 * Layout: a header bar (open button, title with the catalogue's name, primary menu); a message
 * bar; then, side by side in two GtkPaneds, the grid of galaxies, the detail view of the
 * selected one, and the side area where addins put panels (a stack with a switcher, hidden
 * while empty).
 *
 * Selection: the grid reports a row; the window reads that galaxy (image and spectrum) on a
 * worker thread, drops the result if another row was selected meanwhile, then shows it in the
 * detail view, tells every addin and emits `selection-changed`.
 *
 * Addins: one PeasExtensionSet of GvWindowAddin per window. What an addin adds through the API
 * while the window is calling it (load, selection_changed, catalogue_changed) is recorded
 * against it, and whatever of that is still there after its unload () is removed, so that
 * unloading a plugin always leaves the window as it was.
 */
#include "gv-window.h"

#include "gv-detail-view.h"
#include "gv-galaxy-grid.h"
#include "gv-window-addin.h"

#include <glib/gi18n.h>
#include <string.h>

#define MESSAGE_INFO_SECONDS 8 /* an information message goes away by itself after this */
#define RECENT_MAX           10

typedef enum
{
  ADDITION_PANEL,
  ADDITION_ACTION,
  ADDITION_MENU_ITEM,
} AdditionKind;

typedef struct
{
  AdditionKind kind;
  char *key; /* panel id, action name or detailed action */
} Addition;

/* What the window knows of one addin: its plugin and what it added while called. */
typedef struct
{
  PeasPluginInfo *info;
  GPtrArray *additions; /* Addition */
} AddinState;

struct _GvWindow
{
  GtkApplicationWindow parent_instance;

  GSettings *settings;

  /* Addins: the extension set, their states (GvWindowAddin* → AddinState*) and the addin
   * being called, to which additions are attributed. */
  PeasExtensionSet *addins;
  GHashTable *addin_states;
  GvWindowAddin *current_addin;

  /* Widgets */
  GtkWidget *title_label;
  GtkWidget *subtitle_label;
  GtkWidget *open_spinner;
  GtkWidget *info_bar;
  GtkWidget *message_label;
  GtkWidget *outer_paned;
  GtkWidget *inner_paned;
  GtkWidget *grid;   /* GvGalaxyGrid */
  GtkWidget *detail; /* GvDetailView */
  GtkWidget *side_box;
  GtkWidget *panel_switcher;
  GtkWidget *panel_stack;
  GHashTable *panels; /* id → widget */

  /* Menus */
  GMenu *recent_menu;
  GHashTable *sections; /* section name → GMenu (borrowed from the primary menu) */

  /* State */
  GvCatalogue *catalogue;
  GvGalaxy *selected;
  GCancellable *open_cancellable;
  GCancellable *read_cancellable;
  guint64 read_serial;
  gint64 reading_row; /* the row being read (−1: none), so that it is not read twice */
  char *message_text;
  guint message_timeout;
  GtkNativeDialog *chooser;        /* File → Open's, while shown */
  GtkNativeDialog *export_chooser; /* an export's, while shown */
};

G_DEFINE_FINAL_TYPE (GvWindow, gv_window, GTK_TYPE_APPLICATION_WINDOW)

enum
{
  SIGNAL_CATALOGUE_CHANGED,
  SIGNAL_SELECTION_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void
addition_free (gpointer data)
{
  Addition *addition = data;
  g_free (addition->key);
  g_free (addition);
}

static void
addin_state_free (gpointer data)
{
  AddinState *state = data;
  g_ptr_array_unref (state->additions);
  g_free (state);
}

/* Attribution of additions ---------------------------------------------------------------- */

static void
note_addition (GvWindow *self, AdditionKind kind, const char *key)
{
  if (self->current_addin == NULL)
    return;
  AddinState *state = g_hash_table_lookup (self->addin_states, self->current_addin);
  if (state == NULL)
    return;
  Addition *addition = g_new0 (Addition, 1);
  addition->kind = kind;
  addition->key = g_strdup (key);
  g_ptr_array_add (state->additions, addition);
}

static void
forget_addition (GvWindow *self, AdditionKind kind, const char *key)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->addin_states);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      AddinState *state = value;
      for (guint i = state->additions->len; i-- > 0;)
        {
          Addition *addition = g_ptr_array_index (state->additions, i);
          if (addition->kind == kind && strcmp (addition->key, key) == 0)
            g_ptr_array_remove_index (state->additions, i);
        }
    }
}

/* Side panels ----------------------------------------------------------------------------- */

static void
update_side_area (GvWindow *self)
{
  guint n = g_hash_table_size (self->panels);
  gtk_widget_set_visible (self->side_box, n > 0);
  /* With one panel the switcher's single button serves as the panel's title. */
  gtk_widget_set_visible (self->panel_switcher, n > 0);
}

gboolean
gv_window_add_panel (GvWindow *self, const char *id, const char *title, const char *icon_name,
                     GtkWidget *widget)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), FALSE);
  g_return_val_if_fail (id != NULL && title != NULL, FALSE);
  g_return_val_if_fail (GTK_IS_WIDGET (widget), FALSE);
  g_return_val_if_fail (gtk_widget_get_parent (widget) == NULL, FALSE);

  if (g_hash_table_contains (self->panels, id))
    {
      g_warning ("A panel “%s” is already in the window", id);
      return FALSE;
    }

  GtkStackPage *page = gtk_stack_add_titled (GTK_STACK (self->panel_stack), widget, id, title);
  if (icon_name != NULL)
    gtk_stack_page_set_icon_name (page, icon_name);
  g_hash_table_insert (self->panels, g_strdup (id), g_object_ref (widget));
  note_addition (self, ADDITION_PANEL, id);
  update_side_area (self);
  return TRUE;
}

gboolean
gv_window_remove_panel (GvWindow *self, const char *id)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);

  GtkWidget *widget = g_hash_table_lookup (self->panels, id);
  if (widget == NULL)
    return FALSE;
  gtk_stack_remove (GTK_STACK (self->panel_stack), widget);
  g_hash_table_remove (self->panels, id); /* drops our reference */
  forget_addition (self, ADDITION_PANEL, id);
  update_side_area (self);
  return TRUE;
}

void
gv_window_present_panel (GvWindow *self, const char *id)
{
  g_return_if_fail (GV_IS_WINDOW (self));
  g_return_if_fail (id != NULL);

  GtkWidget *widget = g_hash_table_lookup (self->panels, id);
  if (widget != NULL)
    gtk_stack_set_visible_child (GTK_STACK (self->panel_stack), widget);
}

GtkWidget *
gv_window_get_panel (GvWindow *self, const char *id)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);
  return g_hash_table_lookup (self->panels, id);
}

GtkStack *
gv_window_get_panel_stack (GvWindow *self)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), NULL);
  return GTK_STACK (self->panel_stack);
}

/* Actions and menu items ------------------------------------------------------------------ */

void
gv_window_add_action (GvWindow *self, GAction *action)
{
  g_return_if_fail (GV_IS_WINDOW (self));
  g_return_if_fail (G_IS_ACTION (action));

  const char *name = g_action_get_name (action);
  if (g_action_map_lookup_action (G_ACTION_MAP (self), name) != NULL)
    g_warning ("The window already has an action “%s”; replacing it", name);
  g_action_map_add_action (G_ACTION_MAP (self), action);
  note_addition (self, ADDITION_ACTION, name);
}

void
gv_window_remove_action (GvWindow *self, const char *name)
{
  g_return_if_fail (GV_IS_WINDOW (self));
  g_return_if_fail (name != NULL);

  g_action_map_remove_action (G_ACTION_MAP (self), name);
  forget_addition (self, ADDITION_ACTION, name);
}

#define DETAILED_ACTION_ATTRIBUTE "gv-detailed-action"

void
gv_window_add_menu_item (GvWindow *self, const char *section, const char *label,
                         const char *detailed_action)
{
  g_return_if_fail (GV_IS_WINDOW (self));
  g_return_if_fail (label != NULL && detailed_action != NULL);

  GMenu *menu = g_hash_table_lookup (self->sections,
                                     section != NULL ? section : GV_MENU_SECTION_PLUGINS);
  if (menu == NULL)
    {
      g_warning ("No menu section “%s”; using “%s”", section, GV_MENU_SECTION_PLUGINS);
      menu = g_hash_table_lookup (self->sections, GV_MENU_SECTION_PLUGINS);
    }

  g_autoptr (GMenuItem) item = g_menu_item_new (label, detailed_action);
  /* Kept verbatim so that removal can match it whatever the target's form. */
  g_menu_item_set_attribute (item, DETAILED_ACTION_ATTRIBUTE, "s", detailed_action);
  g_menu_append_item (menu, item);
  note_addition (self, ADDITION_MENU_ITEM, detailed_action);
}

gboolean
gv_window_remove_menu_item (GvWindow *self, const char *detailed_action)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), FALSE);
  g_return_val_if_fail (detailed_action != NULL, FALSE);

  gboolean removed = FALSE;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init (&iter, self->sections);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      GMenuModel *menu = value;
      for (int i = g_menu_model_get_n_items (menu); i-- > 0;)
        {
          g_autofree char *stored = NULL;
          if (g_menu_model_get_item_attribute (menu, i, DETAILED_ACTION_ATTRIBUTE, "s", &stored)
              && strcmp (stored, detailed_action) == 0)
            {
              g_menu_remove (G_MENU (menu), i);
              removed = TRUE;
            }
        }
    }
  forget_addition (self, ADDITION_MENU_ITEM, detailed_action);
  return removed;
}

/* Messages -------------------------------------------------------------------------------- */

static void
hide_message (GvWindow *self)
{
  g_clear_handle_id (&self->message_timeout, g_source_remove);
  g_clear_pointer (&self->message_text, g_free);
  gtk_info_bar_set_revealed (GTK_INFO_BAR (self->info_bar), FALSE);
}

static gboolean
on_message_timeout (gpointer user_data)
{
  GvWindow *self = GV_WINDOW (user_data);
  self->message_timeout = 0;
  hide_message (self);
  return G_SOURCE_REMOVE;
}

static void
on_info_bar_response (GtkInfoBar *bar, int response, GvWindow *self)
{
  hide_message (self);
}

void
gv_window_show_message (GvWindow *self, GtkMessageType type, const char *text)
{
  g_return_if_fail (GV_IS_WINDOW (self));
  g_return_if_fail (text != NULL);

  g_clear_handle_id (&self->message_timeout, g_source_remove);
  g_free (self->message_text);
  self->message_text = g_strdup (text);
  gtk_label_set_text (GTK_LABEL (self->message_label), text);
  gtk_info_bar_set_message_type (GTK_INFO_BAR (self->info_bar), type);
  gtk_widget_set_visible (self->info_bar, TRUE);
  gtk_info_bar_set_revealed (GTK_INFO_BAR (self->info_bar), TRUE);
  if (type == GTK_MESSAGE_INFO)
    self->message_timeout = g_timeout_add_seconds (MESSAGE_INFO_SECONDS, on_message_timeout,
                                                   self);
}

const char *
gv_window_get_message (GvWindow *self)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), NULL);
  return self->message_text;
}

/* Addins ---------------------------------------------------------------------------------- */

/* Calls `func` on each addin with the addin set as the one additions are attributed to. */
typedef void (*AddinCall) (GvWindow *self, GvWindowAddin *addin, gpointer data);

typedef struct
{
  GvWindow *self;
  AddinCall call;
  gpointer data;
} ForeachClosure;

static void
call_addin (GvWindow *self, GvWindowAddin *addin, AddinCall call, gpointer data)
{
  GvWindowAddin *previous = self->current_addin;
  self->current_addin = addin;
  call (self, addin, data);
  self->current_addin = previous;
}

static void
foreach_addin_cb (PeasExtensionSet *set, PeasPluginInfo *info, PeasExtension *extension,
                  gpointer user_data)
{
  ForeachClosure *closure = user_data;
  /* Only addins the window has loaded (not one being added or removed right now). */
  if (g_hash_table_contains (closure->self->addin_states, extension))
    call_addin (closure->self, GV_WINDOW_ADDIN (extension), closure->call, closure->data);
}

static void
foreach_addin (GvWindow *self, AddinCall call, gpointer data)
{
  if (self->addins == NULL)
    return;
  ForeachClosure closure = { self, call, data };
  peas_extension_set_foreach (self->addins, foreach_addin_cb, &closure);
}

static void
call_selection_changed (GvWindow *self, GvWindowAddin *addin, gpointer data)
{
  gv_window_addin_selection_changed (addin, self, data);
}

static void
call_catalogue_changed (GvWindow *self, GvWindowAddin *addin, gpointer data)
{
  gv_window_addin_catalogue_changed (addin, self, data);
}

static void
call_load (GvWindow *self, GvWindowAddin *addin, gpointer data)
{
  gv_window_addin_load (addin, self);
  /* Bring the addin up to date with what the window shows. */
  if (self->catalogue != NULL)
    gv_window_addin_catalogue_changed (addin, self, self->catalogue);
  if (self->selected != NULL)
    gv_window_addin_selection_changed (addin, self, self->selected);
}

static void
call_unload (GvWindow *self, GvWindowAddin *addin, gpointer data)
{
  gv_window_addin_unload (addin, self);
}

static void
on_extension_added (PeasExtensionSet *set, PeasPluginInfo *info, PeasExtension *extension,
                    GvWindow *self)
{
  if (g_hash_table_contains (self->addin_states, extension))
    return;
  AddinState *state = g_new0 (AddinState, 1);
  state->info = info;
  state->additions = g_ptr_array_new_with_free_func (addition_free);
  g_hash_table_insert (self->addin_states, g_object_ref (extension), state);

  g_debug ("Loading the window addin of plugin “%s”", peas_plugin_info_get_module_name (info));
  call_addin (self, GV_WINDOW_ADDIN (extension), call_load, NULL);
}

static void
on_extension_removed (PeasExtensionSet *set, PeasPluginInfo *info, PeasExtension *extension,
                      GvWindow *self)
{
  AddinState *state = g_hash_table_lookup (self->addin_states, extension);
  if (state == NULL)
    return;

  call_addin (self, GV_WINDOW_ADDIN (extension), call_unload, NULL);

  /* Whatever it added and left behind goes now (in reverse order of addition). */
  g_autoptr (GPtrArray) left = g_ptr_array_new_with_free_func (addition_free);
  while (state->additions->len > 0)
    g_ptr_array_add (left, g_ptr_array_steal_index (state->additions,
                                                    state->additions->len - 1));
  for (guint i = 0; i < left->len; i++)
    {
      Addition *addition = g_ptr_array_index (left, i);
      g_debug ("Plugin “%s” left %s “%s” behind; removing it",
               peas_plugin_info_get_module_name (info),
               addition->kind == ADDITION_PANEL    ? "a panel"
               : addition->kind == ADDITION_ACTION ? "an action"
                                                   : "a menu item",
               addition->key);
      switch (addition->kind)
        {
          case ADDITION_PANEL:
            gv_window_remove_panel (self, addition->key);
            break;
          case ADDITION_ACTION:
            gv_window_remove_action (self, addition->key);
            break;
          case ADDITION_MENU_ITEM:
            gv_window_remove_menu_item (self, addition->key);
            break;
        }
    }
  g_hash_table_remove (self->addin_states, extension);
}

static void
on_extension_foreach_added (PeasExtensionSet *set, PeasPluginInfo *info,
                            PeasExtension *extension, gpointer user_data)
{
  on_extension_added (set, info, extension, GV_WINDOW (user_data));
}

static void
on_extension_foreach_removed (PeasExtensionSet *set, PeasPluginInfo *info,
                              PeasExtension *extension, gpointer user_data)
{
  on_extension_removed (set, info, extension, GV_WINDOW (user_data));
}

static void
setup_addins (GvWindow *self, GvApplication *application)
{
  PeasEngine *engine = gv_application_get_engine (application);
  if (engine == NULL)
    return; /* not started up (cannot happen once the application runs) */

  self->addins = peas_extension_set_new (engine, GV_TYPE_WINDOW_ADDIN, NULL);
  peas_extension_set_foreach (self->addins, on_extension_foreach_added, self);
  g_signal_connect (self->addins, "extension-added", G_CALLBACK (on_extension_added), self);
  g_signal_connect (self->addins, "extension-removed", G_CALLBACK (on_extension_removed), self);
}

static void
teardown_addins (GvWindow *self)
{
  if (self->addins == NULL)
    return;
  g_signal_handlers_disconnect_by_data (self->addins, self);
  peas_extension_set_foreach (self->addins, on_extension_foreach_removed, self);
  g_clear_object (&self->addins);
}

/* Selection ------------------------------------------------------------------------------- */

static void update_actions (GvWindow *self);

static void
set_selected (GvWindow *self, GvGalaxy *galaxy)
{
  if (self->selected == galaxy)
    return;
  g_set_object (&self->selected, galaxy);
  gv_detail_view_set_galaxy (GV_DETAIL_VIEW (self->detail), galaxy);
  update_actions (self);
  foreach_addin (self, call_selection_changed, galaxy);
  g_signal_emit (self, signals[SIGNAL_SELECTION_CHANGED], 0, galaxy);
}

typedef struct
{
  GvCatalogue *catalogue;
  gint64 row;
  guint64 serial;
} ReadRequest;

static void
read_request_free (gpointer data)
{
  ReadRequest *request = data;
  g_object_unref (request->catalogue);
  g_free (request);
}

static void
read_galaxy_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  ReadRequest *request = task_data;
  if (g_task_return_error_if_cancelled (task))
    return;
  GError *error = NULL;
  GvGalaxy *galaxy = gv_catalogue_read_galaxy (request->catalogue, request->row, TRUE, TRUE,
                                               &error);
  if (galaxy == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, galaxy, g_object_unref);
}

static void
on_galaxy_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GvWindow *self = GV_WINDOW (source);
  ReadRequest *request = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;
  g_autoptr (GvGalaxy) galaxy = g_task_propagate_pointer (G_TASK (result), &error);

  /* A newer selection, or another catalogue, supersedes this one: drop it. */
  if (request->serial != self->read_serial || request->catalogue != self->catalogue)
    return;
  self->reading_row = -1;
  if (galaxy == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          /* Rows are shown 1-based, like TOPCAT and the grid's tooltips. */
          g_autofree char *row = g_strdup_printf ("%" G_GINT64_FORMAT, request->row + 1);
          g_autofree char *text = g_strdup_printf (_("Could not read the galaxy in row %s: %s"),
                                                   row, error->message);
          gv_window_show_message (self, GTK_MESSAGE_ERROR, text);
        }
      return;
    }
  set_selected (self, galaxy);
}

/* Reads the galaxy at `row` (−1: none) and selects it when read. */
static void
select_row (GvWindow *self, gint64 row)
{
  /* gv_window_select_id selects in the grid, which reports the row back: read it once. */
  if (row >= 0 && row == self->reading_row)
    return;
  self->reading_row = -1;
  self->read_serial++;
  g_cancellable_cancel (self->read_cancellable);
  g_clear_object (&self->read_cancellable);

  if (row < 0 || self->catalogue == NULL)
    {
      set_selected (self, NULL);
      return;
    }
  if (self->selected != NULL && gv_galaxy_get_row (self->selected) == row
      && gv_galaxy_get_catalogue (self->selected) == self->catalogue)
    return;

  self->read_cancellable = g_cancellable_new ();
  ReadRequest *request = g_new0 (ReadRequest, 1);
  request->catalogue = g_object_ref (self->catalogue);
  request->row = row;
  request->serial = self->read_serial;
  self->reading_row = row;

  g_autoptr (GTask) task = g_task_new (self, self->read_cancellable, on_galaxy_read, NULL);
  g_task_set_source_tag (task, select_row);
  g_task_set_task_data (task, request, read_request_free);
  g_task_run_in_thread (task, read_galaxy_thread);
}

static void
on_grid_selection_changed (GvGalaxyGrid *grid, gint64 row, GvWindow *self)
{
  /* −1 comes when the filter hides the selected galaxy (or the catalogue is replaced, which
   * gv_window_set_catalogue handles): the detail keeps showing the galaxy. */
  if (row >= 0)
    select_row (self, row);
}

static void
on_grid_activated (GvGalaxyGrid *grid, gint64 row, GvWindow *self)
{
  /* Enter or a double click: the detail of that galaxy, with the keyboard focus on its image
   * (where + and − zoom). */
  select_row (self, row);
  GvImageView *image = gv_detail_view_get_image_view (GV_DETAIL_VIEW (self->detail));
  gtk_widget_grab_focus (GTK_WIDGET (image));
}

GvGalaxy *
gv_window_get_selected_galaxy (GvWindow *self)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), NULL);
  return self->selected;
}

gboolean
gv_window_select_id (GvWindow *self, gint64 id)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), FALSE);

  if (self->catalogue == NULL)
    return FALSE;
  gint64 row = gv_catalogue_find_id (self->catalogue, id);
  if (row < 0)
    return FALSE;
  /* The grid reports the selection back (on_grid_selection_changed), which reads it. When its
   * filter hides the galaxy, the grid keeps its selection and the window selects it alone. */
  gv_galaxy_grid_select_row (GV_GALAXY_GRID (self->grid), row);
  select_row (self, row);
  return TRUE;
}

/* Catalogue ------------------------------------------------------------------------------- */

static void
update_title (GvWindow *self)
{
  if (self->catalogue == NULL)
    {
      gtk_window_set_title (GTK_WINDOW (self), _("Galaxy Viewer"));
      gtk_label_set_text (GTK_LABEL (self->subtitle_label), "");
      gtk_widget_set_visible (self->subtitle_label, FALSE);
      return;
    }
  g_autofree char *name = g_path_get_basename (gv_catalogue_get_path (self->catalogue));
  gint64 n = gv_catalogue_get_n_rows (self->catalogue);
  g_autofree char *count = g_strdup_printf ("%" G_GINT64_FORMAT, n);
  /* Translators: the window's subtitle: the catalogue's file name and its number of galaxies. */
  g_autofree char *subtitle = g_strdup_printf (
      g_dngettext (GETTEXT_PACKAGE, "%s — %s galaxy", "%s — %s galaxies", (gulong) n),
      name, count);
  g_autofree char *title = g_strdup_printf (_("%s — Galaxy Viewer"), name);
  gtk_window_set_title (GTK_WINDOW (self), title);
  gtk_label_set_text (GTK_LABEL (self->subtitle_label), subtitle);
  gtk_widget_set_visible (self->subtitle_label, TRUE);
}

void
gv_window_set_catalogue (GvWindow *self, GvCatalogue *catalogue)
{
  g_return_if_fail (GV_IS_WINDOW (self));
  g_return_if_fail (catalogue == NULL || GV_IS_CATALOGUE (catalogue));

  if (self->catalogue == catalogue)
    return;

  /* The old selection goes first, so that addins never see a galaxy of another catalogue
   * than the window's. */
  self->reading_row = -1;
  self->read_serial++;
  g_cancellable_cancel (self->read_cancellable);
  g_clear_object (&self->read_cancellable);
  set_selected (self, NULL);

  g_set_object (&self->catalogue, catalogue);
  gv_galaxy_grid_set_catalogue (GV_GALAXY_GRID (self->grid), catalogue);
  update_title (self);
  update_actions (self);
  foreach_addin (self, call_catalogue_changed, catalogue);
  g_signal_emit (self, signals[SIGNAL_CATALOGUE_CHANGED], 0, catalogue);

  /* Show the first galaxy, so that the detail view is never empty on a fresh catalogue. */
  if (catalogue != NULL && gv_catalogue_get_n_rows (catalogue) > 0)
    gv_galaxy_grid_select_row (GV_GALAXY_GRID (self->grid), 0);
}

GvCatalogue *
gv_window_get_catalogue (GvWindow *self)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), NULL);
  return self->catalogue;
}

typedef struct
{
  GvWindow *self; /* a reference */
  GFile *file;
} OpenRequest;

static void
open_request_free (OpenRequest *request)
{
  g_object_unref (request->self);
  g_object_unref (request->file);
  g_free (request);
}

static void
on_catalogue_opened (GObject *source, GAsyncResult *result, gpointer user_data)
{
  OpenRequest *request = user_data;
  GvWindow *self = request->self;
  g_autoptr (GError) error = NULL;
  g_autoptr (GvCatalogue) catalogue = gv_catalogue_open_finish (result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      /* Superseded by another open, or the window closed. */
      open_request_free (request);
      return;
    }

  gtk_spinner_stop (GTK_SPINNER (self->open_spinner));
  gtk_widget_set_visible (self->open_spinner, FALSE);
  g_clear_object (&self->open_cancellable);

  if (catalogue == NULL)
    {
      g_autofree char *name = g_file_get_parse_name (request->file);
      g_autofree char *text = g_strdup_printf (_("Could not open “%s”: %s"), name,
                                               error->message);
      gv_window_show_message (self, GTK_MESSAGE_ERROR, text);
      open_request_free (request);
      return;
    }

  hide_message (self);
  gv_window_set_catalogue (self, catalogue);
  GtkApplication *application = gtk_window_get_application (GTK_WINDOW (self));
  if (GV_IS_APPLICATION (application))
    gv_application_note_opened (GV_APPLICATION (application), request->file);
  open_request_free (request);
}

void
gv_window_open (GvWindow *self, GFile *file)
{
  g_return_if_fail (GV_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));

  g_autofree char *path = g_file_get_path (file);
  if (path == NULL)
    {
      g_autofree char *name = g_file_get_parse_name (file);
      g_autofree char *text = g_strdup_printf (
          _("Could not open “%s”: only local files can be opened."), name);
      gv_window_show_message (self, GTK_MESSAGE_ERROR, text);
      return;
    }

  g_cancellable_cancel (self->open_cancellable);
  g_clear_object (&self->open_cancellable);
  self->open_cancellable = g_cancellable_new ();

  gtk_widget_set_visible (self->open_spinner, TRUE);
  gtk_spinner_start (GTK_SPINNER (self->open_spinner));

  OpenRequest *request = g_new0 (OpenRequest, 1);
  request->self = g_object_ref (self);
  request->file = g_object_ref (file);
  gv_catalogue_open_async (path, self->open_cancellable, on_catalogue_opened, request);
}

/* File chooser and drag and drop -------------------------------------------------------- */

static GtkFileFilter *
make_fits_filter (void)
{
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _("FITS catalogues"));
  gtk_file_filter_add_mime_type (filter, "image/fits");
  gtk_file_filter_add_mime_type (filter, "application/fits");
  gtk_file_filter_add_suffix (filter, "fits");
  gtk_file_filter_add_suffix (filter, "fit");
  gtk_file_filter_add_suffix (filter, "fts");
  return filter;
}

static void
on_open_response (GtkNativeDialog *dialog, int response, GvWindow *self)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      if (file != NULL)
        gv_window_open (self, file);
    }
  gtk_native_dialog_destroy (dialog);
  if (self->chooser == dialog)
    g_clear_object (&self->chooser);
}

void
gv_window_choose_file (GvWindow *self)
{
  g_return_if_fail (GV_IS_WINDOW (self));

  if (self->chooser != NULL)
    {
      gtk_native_dialog_show (self->chooser);
      return;
    }
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new (
      _("Open a Catalogue"), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"),
      _("_Cancel"));
  g_autoptr (GtkFileFilter) fits = make_fits_filter ();
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), fits);
  GtkFileFilter *all = gtk_file_filter_new ();
  gtk_file_filter_set_name (all, _("All files"));
  gtk_file_filter_add_pattern (all, "*");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), all);
  g_object_unref (all);
  gtk_file_chooser_set_filter (GTK_FILE_CHOOSER (chooser), fits);
  if (self->catalogue != NULL)
    {
      g_autoptr (GFile) current = g_file_new_for_path (gv_catalogue_get_path (self->catalogue));
      g_autoptr (GFile) folder = g_file_get_parent (current);
      if (folder != NULL)
        gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (chooser), folder, NULL);
    }
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect (chooser, "response", G_CALLBACK (on_open_response), self);
  self->chooser = GTK_NATIVE_DIALOG (chooser);
  gtk_native_dialog_show (self->chooser);
}

static gboolean
on_drop (GtkDropTarget *target, const GValue *value, double x, double y, GvWindow *self)
{
  GFile *file = NULL;

  if (G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST))
    {
      GSList *files = gdk_file_list_get_files (g_value_get_boxed (value));
      file = files != NULL ? files->data : NULL;
      g_slist_free (files); /* the list, not the files: those belong to the GdkFileList */
    }
  else if (G_VALUE_HOLDS (value, G_TYPE_FILE))
    file = g_value_get_object (value);

  if (file == NULL)
    return FALSE;
  gv_window_open (self, file);
  return TRUE;
}

/* Exports --------------------------------------------------------------------------------- */

typedef enum
{
  EXPORT_IMAGE,
  EXPORT_SPECTRUM,
  EXPORT_SELECTION,
} ExportKind;

/* Exporting the rows the grid shows (in its order) as a FITS catalogue: on a worker thread,
 * since it reads every image and spectrum of the selection. */
typedef struct
{
  GvCatalogue *catalogue;
  gint64 *rows;
  gsize n_rows;
  char *path;
  char *display_name;
} ExportJob;

static void
export_job_free (gpointer data)
{
  ExportJob *job = data;
  g_object_unref (job->catalogue);
  g_free (job->rows);
  g_free (job->path);
  g_free (job->display_name);
  g_free (job);
}

static void
export_selection_thread (GTask *task, gpointer source, gpointer task_data,
                         GCancellable *cancellable)
{
  ExportJob *job = task_data;
  GError *error = NULL;
  if (gv_catalogue_export_rows (job->catalogue, job->rows, job->n_rows, job->path, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
on_selection_exported (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GvWindow *self = GV_WINDOW (source);
  ExportJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;

  if (g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_autofree char *text = g_strdup_printf (
          g_dngettext (GETTEXT_PACKAGE, "Saved %zu galaxy to “%s”.",
                       "Saved %zu galaxies to “%s”.", job->n_rows),
          job->n_rows, job->display_name);
      gv_window_show_message (self, GTK_MESSAGE_INFO, text);
    }
  else
    {
      g_autofree char *text = g_strdup_printf (_("Could not save “%s”: %s"),
                                               job->display_name, error->message);
      gv_window_show_message (self, GTK_MESSAGE_ERROR, text);
    }
}

static void
export_selection_async (GvWindow *self, const char *path, const char *display_name)
{
  ExportJob *job = g_new0 (ExportJob, 1);
  job->catalogue = g_object_ref (self->catalogue);
  job->rows = gv_galaxy_grid_dup_shown_rows (GV_GALAXY_GRID (self->grid), &job->n_rows);
  job->path = g_strdup (path);
  job->display_name = g_strdup (display_name);

  g_autoptr (GTask) task = g_task_new (self, NULL, on_selection_exported, NULL);
  g_task_set_source_tag (task, export_selection_async);
  g_task_set_task_data (task, job, export_job_free);
  g_task_run_in_thread (task, export_selection_thread);
}

/* Writes what `kind` exports to `file`, and says so in the message bar. */
static void
export_to_file (GvWindow *self, ExportKind kind, GFile *file)
{
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *name = g_file_get_parse_name (file);
  g_autoptr (GError) error = NULL;
  gboolean ok = FALSE;

  if (path != NULL && kind == EXPORT_SELECTION && self->catalogue != NULL)
    {
      /* Reported when done. */
      export_selection_async (self, path, name);
      return;
    }
  if (path == NULL)
    g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                         _("Only local files can be written."));
  else if (kind == EXPORT_IMAGE)
    ok = gv_detail_view_export_png (GV_DETAIL_VIEW (self->detail), path, &error);
  else if (kind == EXPORT_SPECTRUM)
    ok = gv_detail_view_export_spectrum_csv (GV_DETAIL_VIEW (self->detail), path, &error);
  else
    g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_FAILED, _("No catalogue is open."));

  if (ok)
    {
      g_autofree char *text = g_strdup_printf (_("Saved “%s”."), name);
      gv_window_show_message (self, GTK_MESSAGE_INFO, text);
    }
  else
    {
      g_autofree char *text = g_strdup_printf (_("Could not save “%s”: %s"), name,
                                               error->message);
      gv_window_show_message (self, GTK_MESSAGE_ERROR, text);
    }
}

static void
on_export_response (GtkNativeDialog *dialog, int response, GvWindow *self)
{
  ExportKind kind = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (dialog), "gv-export-kind"));

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      if (file != NULL)
        export_to_file (self, kind, file);
    }
  gtk_native_dialog_destroy (dialog);
  if (self->export_chooser == dialog)
    g_clear_object (&self->export_chooser);
}

static void
export_with_chooser (GvWindow *self, ExportKind kind)
{
  static const char *const titles[] = { N_("Export Image"), N_("Export Spectrum"),
                                        N_("Export Selection") };
  static const char *const suffixes[] = { "png", "csv", "fits" };

  /* One export at a time: the window owns its chooser, so that closing the window takes the
   * chooser with it (its response handler uses the window). */
  if (self->export_chooser != NULL)
    {
      gtk_native_dialog_destroy (self->export_chooser);
      g_clear_object (&self->export_chooser);
    }
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new (
      _(titles[kind]), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"),
      _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);

  /* A suggested name from the galaxy's ID or the catalogue's name. */
  g_autofree char *name = NULL;
  if (kind != EXPORT_SELECTION && self->selected != NULL)
    name = g_strdup_printf ("galaxy-%" G_GINT64_FORMAT "%s.%s", gv_galaxy_get_id (self->selected),
                            kind == EXPORT_SPECTRUM ? "-spectrum" : "", suffixes[kind]);
  else if (self->catalogue != NULL)
    {
      g_autofree char *base = g_path_get_basename (gv_catalogue_get_path (self->catalogue));
      char *dot = strrchr (base, '.');
      if (dot != NULL)
        *dot = '\0';
      name = g_strdup_printf ("%s-selection.fits", base);
    }
  if (name != NULL)
    gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (chooser), name);

  g_object_set_data (G_OBJECT (chooser), "gv-export-kind", GINT_TO_POINTER (kind));
  g_signal_connect (chooser, "response", G_CALLBACK (on_export_response), self);
  self->export_chooser = GTK_NATIVE_DIALOG (chooser);
  gtk_native_dialog_show (self->export_chooser);
}

/* Recent files ---------------------------------------------------------------------------- */

static int
compare_recent (gconstpointer a, gconstpointer b)
{
  GDateTime *ta = gtk_recent_info_get_modified ((GtkRecentInfo *) a);
  GDateTime *tb = gtk_recent_info_get_modified ((GtkRecentInfo *) b);
  return g_date_time_compare (tb, ta); /* newest first */
}

static void
rebuild_recent_menu (GvWindow *self)
{
  GtkRecentManager *manager = gtk_recent_manager_get_default ();
  GList *items = gtk_recent_manager_get_items (manager);
  items = g_list_sort (items, compare_recent);

  g_menu_remove_all (self->recent_menu);
  guint n = 0;
  for (GList *l = items; l != NULL && n < RECENT_MAX; l = l->next)
    {
      GtkRecentInfo *info = l->data;
      const char *mime = gtk_recent_info_get_mime_type (info);
      const char *uri = gtk_recent_info_get_uri (info);
      gboolean fits = g_strcmp0 (mime, "image/fits") == 0
                      || g_strcmp0 (mime, "application/fits") == 0;
      if (!fits || !gtk_recent_info_is_local (info) || !gtk_recent_info_exists (info))
        continue;
      g_autoptr (GMenuItem) item = g_menu_item_new (gtk_recent_info_get_display_name (info),
                                                    NULL);
      g_menu_item_set_action_and_target (item, "win.open-recent", "s", uri);
      g_menu_append_item (self->recent_menu, item);
      n++;
    }
  g_list_free_full (items, (GDestroyNotify) gtk_recent_info_unref);

  if (n == 0)
    {
      g_autoptr (GMenuItem) item = g_menu_item_new (_("No recent catalogues"), "win.no-recent");
      g_menu_append_item (self->recent_menu, item);
    }
}

/* Window actions -------------------------------------------------------------------------- */

static void
update_actions (GvWindow *self)
{
  GActionMap *map = G_ACTION_MAP (self);
  gboolean has_image = FALSE, has_spectrum = FALSE;

  if (self->selected != NULL)
    {
      int h = 0, w = 0, n = 0;
      has_image = gv_galaxy_get_image (self->selected, &h, &w) != NULL;
      has_spectrum = gv_galaxy_get_spectrum (self->selected, &n) != NULL;
    }
  g_simple_action_set_enabled (G_SIMPLE_ACTION (g_action_map_lookup_action (map, "export-image")),
                               has_image);
  g_simple_action_set_enabled (
      G_SIMPLE_ACTION (g_action_map_lookup_action (map, "export-spectrum")), has_spectrum);
  g_simple_action_set_enabled (
      G_SIMPLE_ACTION (g_action_map_lookup_action (map, "export-selection")),
      self->catalogue != NULL);
}

static void
on_open_recent (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  g_autoptr (GFile) file = g_file_new_for_uri (g_variant_get_string (parameter, NULL));
  gv_window_open (GV_WINDOW (user_data), file);
}

static void
on_export_image (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  export_with_chooser (GV_WINDOW (user_data), EXPORT_IMAGE);
}

static void
on_export_spectrum (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  export_with_chooser (GV_WINDOW (user_data), EXPORT_SPECTRUM);
}

static void
on_export_selection (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  export_with_chooser (GV_WINDOW (user_data), EXPORT_SELECTION);
}

static void
on_filter (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GvWindow *self = GV_WINDOW (user_data);
  gv_galaxy_grid_focus_filter (GV_GALAXY_GRID (self->grid));
}

static void
on_zoom (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GvWindow *self = GV_WINDOW (user_data);
  GvImageView *image = gv_detail_view_get_image_view (GV_DETAIL_VIEW (self->detail));
  const char *name = g_action_get_name (G_ACTION (action));

  if (g_str_equal (name, "zoom-in"))
    gv_image_view_zoom_in (image);
  else if (g_str_equal (name, "zoom-out"))
    gv_image_view_zoom_out (image);
  else
    gv_image_view_zoom_fit (image);
}

static void
on_show_detail (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GvWindow *self = GV_WINDOW (user_data);
  on_grid_activated (GV_GALAXY_GRID (self->grid),
                     gv_galaxy_grid_get_selected_row (GV_GALAXY_GRID (self->grid)), self);
}

static void
on_close (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  gtk_window_close (GTK_WINDOW (user_data));
}

static const GActionEntry window_actions[] = {
  { .name = "open-recent", .activate = on_open_recent, .parameter_type = "s" },
  { .name = "no-recent" }, /* the disabled placeholder item */
  { .name = "export-image", .activate = on_export_image },
  { .name = "export-spectrum", .activate = on_export_spectrum },
  { .name = "export-selection", .activate = on_export_selection },
  { .name = "filter", .activate = on_filter },
  { .name = "zoom-in", .activate = on_zoom },
  { .name = "zoom-out", .activate = on_zoom },
  { .name = "zoom-reset", .activate = on_zoom },
  { .name = "show-detail", .activate = on_show_detail },
  { .name = "close", .activate = on_close },
};

/* Construction ---------------------------------------------------------------------------- */

static GMenu *
build_primary_menu (GvWindow *self)
{
  GMenu *menu = g_menu_new ();

  GMenu *file = g_menu_new ();
  g_menu_append (file, _("_Open…"), "app.open");
  self->recent_menu = g_menu_new ();
  g_menu_append_submenu (file, _("Open _Recent"), G_MENU_MODEL (self->recent_menu));
  g_menu_append_section (menu, NULL, G_MENU_MODEL (file));

  GMenu *export = g_menu_new ();
  g_menu_append (export, _("Export _Image…"), "win.export-image");
  g_menu_append (export, _("Export _Spectrum…"), "win.export-spectrum");
  g_menu_append (export, _("Export S_election…"), "win.export-selection");
  g_menu_append_section (menu, NULL, G_MENU_MODEL (export));

  GMenu *plugins = g_menu_new ();
  g_menu_append_section (menu, NULL, G_MENU_MODEL (plugins));

  GMenu *app = g_menu_new ();
  g_menu_append (app, _("_Plugins"), "app.plugins");
  g_menu_append (app, _("_Preferences"), "app.preferences");
  g_menu_append (app, _("_Keyboard Shortcuts"), "win.show-help-overlay");
  g_menu_append (app, _("_About Galaxy Viewer"), "app.about");
  g_menu_append_section (menu, NULL, G_MENU_MODEL (app));

  /* The hash table keeps the section menus alive along with the primary menu. */
  g_hash_table_insert (self->sections, g_strdup (GV_MENU_SECTION_FILE), file);
  g_hash_table_insert (self->sections, g_strdup (GV_MENU_SECTION_EXPORT), export);
  g_hash_table_insert (self->sections, g_strdup (GV_MENU_SECTION_PLUGINS), plugins);
  g_object_unref (app);
  return menu;
}

static GtkWidget *
build_header (GvWindow *self)
{
  GtkWidget *header = gtk_header_bar_new ();

  GtkWidget *open = gtk_button_new_with_mnemonic (_("_Open"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (open), "app.open");
  gtk_widget_set_tooltip_text (open, _("Open a catalogue (Ctrl+O)"));
  gtk_header_bar_pack_start (GTK_HEADER_BAR (header), open);

  self->open_spinner = gtk_spinner_new ();
  gtk_widget_set_visible (self->open_spinner, FALSE);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->open_spinner),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Opening the catalogue"), -1);
  gtk_header_bar_pack_start (GTK_HEADER_BAR (header), self->open_spinner);

  GtkWidget *titles = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_widget_set_valign (titles, GTK_ALIGN_CENTER);
  self->title_label = gtk_label_new (_("Galaxy Viewer"));
  gtk_widget_add_css_class (self->title_label, "title");
  self->subtitle_label = gtk_label_new (NULL);
  gtk_widget_add_css_class (self->subtitle_label, "subtitle");
  gtk_label_set_ellipsize (GTK_LABEL (self->subtitle_label), PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_set_visible (self->subtitle_label, FALSE);
  gtk_box_append (GTK_BOX (titles), self->title_label);
  gtk_box_append (GTK_BOX (titles), self->subtitle_label);
  gtk_header_bar_set_title_widget (GTK_HEADER_BAR (header), titles);

  g_autoptr (GMenu) menu = build_primary_menu (self);
  GtkWidget *menu_button = gtk_menu_button_new ();
  gtk_menu_button_set_icon_name (GTK_MENU_BUTTON (menu_button), "open-menu-symbolic");
  gtk_menu_button_set_menu_model (GTK_MENU_BUTTON (menu_button), G_MENU_MODEL (menu));
  gtk_menu_button_set_primary (GTK_MENU_BUTTON (menu_button), TRUE);
  gtk_widget_set_tooltip_text (menu_button, _("Main Menu"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (menu_button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Main Menu"), -1);
  gtk_header_bar_pack_end (GTK_HEADER_BAR (header), menu_button);
  return header;
}

/* The Keyboard Shortcuts window (win.show-help-overlay), written as GtkBuilder XML here so
 * that its strings are translated with the others. */
static void
setup_help_overlay (GvWindow *self)
{
  static const struct
  {
    const char *group; /* starts a new group when not NULL */
    const char *title;
    const char *accelerator;
  } shortcuts[] = {
    { N_("Catalogue"), N_("Open a catalogue"), "<Control>o" },
    { NULL, N_("Filter the galaxies"), "<Control>f" },
    { NULL, N_("Move through the grid"), "Left Right Up Down" },
    { NULL, N_("Show the selected galaxy in detail"), "Return" },
    { N_("Image"), N_("Zoom in"), "plus" },
    { NULL, N_("Zoom out"), "minus" },
    { NULL, N_("Fit the image"), "<Control>0" },
    { N_("General"), N_("Preferences"), "<Control>comma" },
    { NULL, N_("Keyboard shortcuts"), "<Control>question" },
    { NULL, N_("Close the window"), "<Control>w" },
    { NULL, N_("Quit"), "<Control>q" },
  };

  g_autoptr (GString) xml = g_string_new (
      "<interface><object class=\"GtkShortcutsWindow\" id=\"help_overlay\">"
      "<property name=\"modal\">1</property><child>"
      "<object class=\"GtkShortcutsSection\"><property name=\"section-name\">shortcuts"
      "</property>");
  for (guint i = 0; i < G_N_ELEMENTS (shortcuts); i++)
    {
      if (shortcuts[i].group != NULL)
        {
          if (i > 0)
            g_string_append (xml, "</object></child>");
          g_autofree char *group = g_markup_escape_text (_(shortcuts[i].group), -1);
          g_string_append_printf (xml, "<child><object class=\"GtkShortcutsGroup\">"
                                       "<property name=\"title\">%s</property>",
                                  group);
        }
      g_autofree char *title = g_markup_escape_text (_(shortcuts[i].title), -1);
      g_autofree char *accelerator = g_markup_escape_text (shortcuts[i].accelerator, -1);
      g_string_append_printf (xml, "<child><object class=\"GtkShortcutsShortcut\">"
                                   "<property name=\"title\">%s</property>"
                                   "<property name=\"accelerator\">%s</property>"
                                   "</object></child>",
                              title, accelerator);
    }
  g_string_append (xml, "</object></child></object></child></object></interface>");

  g_autoptr (GtkBuilder) builder = gtk_builder_new_from_string (xml->str, (gssize) xml->len);
  GtkShortcutsWindow *overlay = GTK_SHORTCUTS_WINDOW (gtk_builder_get_object (builder,
                                                                              "help_overlay"));
  gtk_application_window_set_help_overlay (GTK_APPLICATION_WINDOW (self), overlay);
}

static GtkWidget *
build_side_area (GvWindow *self)
{
  self->side_box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_widget_set_size_request (self->side_box, 280, -1);
  self->panel_stack = gtk_stack_new ();
  gtk_stack_set_transition_type (GTK_STACK (self->panel_stack),
                                 GTK_STACK_TRANSITION_TYPE_CROSSFADE);
  gtk_widget_set_vexpand (self->panel_stack, TRUE);
  self->panel_switcher = gtk_stack_switcher_new ();
  gtk_stack_switcher_set_stack (GTK_STACK_SWITCHER (self->panel_switcher),
                                GTK_STACK (self->panel_stack));
  gtk_widget_set_halign (self->panel_switcher, GTK_ALIGN_CENTER);
  gtk_widget_set_margin_top (self->panel_switcher, 6);
  gtk_widget_set_margin_bottom (self->panel_switcher, 6);
  gtk_box_append (GTK_BOX (self->side_box), self->panel_switcher);
  gtk_box_append (GTK_BOX (self->side_box), self->panel_stack);
  gtk_widget_set_visible (self->side_box, FALSE);
  return self->side_box;
}

static void
on_thumbnail_size_changed (GSettings *settings, const char *key, GvWindow *self)
{
  gv_galaxy_grid_set_thumbnail_size (GV_GALAXY_GRID (self->grid),
                                     g_settings_get_int (settings, key));
}

static void
bind_settings (GvWindow *self)
{
  /* Preferences apply to every window at once. */
  g_settings_bind (self->settings, "default-stretch", self->detail, "default-stretch",
                   G_SETTINGS_BIND_GET);
  g_settings_bind (self->settings, "smoothing-width", self->detail, "smoothing",
                   G_SETTINGS_BIND_GET);
  g_signal_connect_object (self->settings, "changed::thumbnail-size",
                           G_CALLBACK (on_thumbnail_size_changed), self, 0);
  on_thumbnail_size_changed (self->settings, "thumbnail-size", self);

  int width = g_settings_get_int (self->settings, "window-width");
  int height = g_settings_get_int (self->settings, "window-height");
  gtk_window_set_default_size (GTK_WINDOW (self), MAX (width, 640), MAX (height, 480));
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));
}

static gboolean
on_close_request (GtkWindow *window, gpointer user_data)
{
  GvWindow *self = GV_WINDOW (window);
  int width = 0, height = 0;

  if (self->settings == NULL)
    return FALSE;
  gtk_window_get_default_size (window, &width, &height);
  g_settings_set_boolean (self->settings, "window-maximized", gtk_window_is_maximized (window));
  if (!gtk_window_is_maximized (window) && width > 0 && height > 0)
    {
      g_settings_set_int (self->settings, "window-width", width);
      g_settings_set_int (self->settings, "window-height", height);
    }
  return FALSE; /* close */
}

GvWindow *
gv_window_new (GvApplication *application)
{
  g_return_val_if_fail (GV_IS_APPLICATION (application), NULL);

  GvWindow *self = g_object_new (GV_TYPE_WINDOW, "application", application, NULL);
  self->settings = g_object_ref (gv_application_get_settings (application));
  bind_settings (self);
  /* Addins last: they find the whole window built. */
  setup_addins (self, application);
  return self;
}

static void
gv_window_dispose (GObject *object)
{
  GvWindow *self = GV_WINDOW (object);

  /* Addins first, while every widget they may have touched still exists. */
  teardown_addins (self);

  g_cancellable_cancel (self->open_cancellable);
  g_clear_object (&self->open_cancellable);
  self->read_serial++;
  g_cancellable_cancel (self->read_cancellable);
  g_clear_object (&self->read_cancellable);
  g_clear_handle_id (&self->message_timeout, g_source_remove);
  if (self->chooser != NULL)
    {
      gtk_native_dialog_destroy (self->chooser);
      g_clear_object (&self->chooser);
    }
  if (self->export_chooser != NULL)
    {
      gtk_native_dialog_destroy (self->export_chooser);
      g_clear_object (&self->export_chooser);
    }
  g_signal_handlers_disconnect_by_data (gtk_recent_manager_get_default (), self);
  if (self->panels != NULL)
    g_hash_table_remove_all (self->panels);

  g_clear_object (&self->selected);
  g_clear_object (&self->catalogue);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (gv_window_parent_class)->dispose (object);
}

static void
gv_window_finalize (GObject *object)
{
  GvWindow *self = GV_WINDOW (object);

  g_clear_pointer (&self->addin_states, g_hash_table_unref);
  g_clear_pointer (&self->panels, g_hash_table_unref);
  g_clear_pointer (&self->sections, g_hash_table_unref);
  g_clear_object (&self->recent_menu);
  g_free (self->message_text);

  G_OBJECT_CLASS (gv_window_parent_class)->finalize (object);
}

static void
gv_window_class_init (GvWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = gv_window_dispose;
  object_class->finalize = gv_window_finalize;

  /* GvWindow::catalogue-changed (GvCatalogue *catalogue_or_NULL): another catalogue is shown. */
  signals[SIGNAL_CATALOGUE_CHANGED] = g_signal_new (
      "catalogue-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
      G_TYPE_NONE, 1, GV_TYPE_CATALOGUE);
  /* GvWindow::selection-changed (GvGalaxy *galaxy_or_NULL): the selected galaxy, read. */
  signals[SIGNAL_SELECTION_CHANGED] = g_signal_new (
      "selection-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
      G_TYPE_NONE, 1, GV_TYPE_GALAXY);
}

static void
gv_window_init (GvWindow *self)
{
  self->reading_row = -1;
  self->addin_states = g_hash_table_new_full (NULL, NULL, g_object_unref, addin_state_free);
  self->panels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->sections = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);

  g_action_map_add_action_entries (G_ACTION_MAP (self), window_actions,
                                   G_N_ELEMENTS (window_actions), self);
  g_simple_action_set_enabled (
      G_SIMPLE_ACTION (g_action_map_lookup_action (G_ACTION_MAP (self), "no-recent")), FALSE);

  gtk_window_set_titlebar (GTK_WINDOW (self), build_header (self));
  gtk_window_set_title (GTK_WINDOW (self), _("Galaxy Viewer"));

  GtkWidget *content = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);

  self->info_bar = gtk_info_bar_new ();
  gtk_info_bar_set_show_close_button (GTK_INFO_BAR (self->info_bar), TRUE);
  gtk_info_bar_set_revealed (GTK_INFO_BAR (self->info_bar), FALSE);
  self->message_label = gtk_label_new (NULL);
  gtk_label_set_wrap (GTK_LABEL (self->message_label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (self->message_label), 0);
  gtk_label_set_selectable (GTK_LABEL (self->message_label), TRUE);
  gtk_widget_set_hexpand (self->message_label, TRUE);
  gtk_info_bar_add_child (GTK_INFO_BAR (self->info_bar), self->message_label);
  g_signal_connect (self->info_bar, "response", G_CALLBACK (on_info_bar_response), self);
  gtk_box_append (GTK_BOX (content), self->info_bar);

  self->grid = gv_galaxy_grid_new ();
  gtk_widget_set_size_request (self->grid, 260, -1);
  g_signal_connect (self->grid, "selection-changed", G_CALLBACK (on_grid_selection_changed),
                    self);
  g_signal_connect (self->grid, "galaxy-activated", G_CALLBACK (on_grid_activated), self);

  self->detail = gv_detail_view_new ();
  gtk_widget_set_size_request (self->detail, 360, -1);

  self->inner_paned = gtk_paned_new (GTK_ORIENTATION_HORIZONTAL);
  gtk_paned_set_start_child (GTK_PANED (self->inner_paned), self->grid);
  gtk_paned_set_end_child (GTK_PANED (self->inner_paned), self->detail);
  gtk_paned_set_resize_start_child (GTK_PANED (self->inner_paned), TRUE);
  gtk_paned_set_shrink_start_child (GTK_PANED (self->inner_paned), FALSE);
  gtk_paned_set_shrink_end_child (GTK_PANED (self->inner_paned), FALSE);
  gtk_paned_set_position (GTK_PANED (self->inner_paned), 520);

  self->outer_paned = gtk_paned_new (GTK_ORIENTATION_HORIZONTAL);
  gtk_paned_set_start_child (GTK_PANED (self->outer_paned), self->inner_paned);
  gtk_paned_set_end_child (GTK_PANED (self->outer_paned), build_side_area (self));
  gtk_paned_set_resize_end_child (GTK_PANED (self->outer_paned), FALSE);
  gtk_paned_set_shrink_end_child (GTK_PANED (self->outer_paned), FALSE);
  gtk_widget_set_vexpand (self->outer_paned, TRUE);
  gtk_box_append (GTK_BOX (content), self->outer_paned);
  gtk_window_set_child (GTK_WINDOW (self), content);

  /* + and − zoom the detail's image, Enter shows the selected galaxy's detail: in the bubble
   * phase, so that a focused text entry (the filter) gets these keys first. */
  GtkEventController *keys = gtk_shortcut_controller_new ();
  gtk_event_controller_set_propagation_phase (keys, GTK_PHASE_BUBBLE);
  static const struct
  {
    guint keyval;
    const char *action;
  } bindings[] = {
    { GDK_KEY_plus, "win.zoom-in" },        { GDK_KEY_KP_Add, "win.zoom-in" },
    { GDK_KEY_equal, "win.zoom-in" },       { GDK_KEY_minus, "win.zoom-out" },
    { GDK_KEY_KP_Subtract, "win.zoom-out" }, { GDK_KEY_Return, "win.show-detail" },
    { GDK_KEY_KP_Enter, "win.show-detail" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bindings); i++)
    gtk_shortcut_controller_add_shortcut (
        GTK_SHORTCUT_CONTROLLER (keys),
        gtk_shortcut_new (gtk_keyval_trigger_new (bindings[i].keyval, 0),
                          gtk_named_action_new (bindings[i].action)));
  gtk_widget_add_controller (GTK_WIDGET (self), keys);

  GtkDropTarget *drop = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  gtk_drop_target_set_gtypes (drop, (GType[]){ GDK_TYPE_FILE_LIST, G_TYPE_FILE }, 2);
  g_signal_connect (drop, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop));

  setup_help_overlay (self);
  g_signal_connect (self, "close-request", G_CALLBACK (on_close_request), NULL);
  g_signal_connect_swapped (gtk_recent_manager_get_default (), "changed",
                            G_CALLBACK (rebuild_recent_menu), self);
  rebuild_recent_menu (self);
  update_actions (self);
}

GvDetailView *
gv_window_get_detail_view (GvWindow *self)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), NULL);
  return GV_DETAIL_VIEW (self->detail);
}

GvGalaxyGrid *
gv_window_get_grid (GvWindow *self)
{
  g_return_val_if_fail (GV_IS_WINDOW (self), NULL);
  return GV_GALAXY_GRID (self->grid);
}
