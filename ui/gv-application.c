/* gv-application.c — the application object: startup (settings, plugin engine, actions and
 * accelerators), command-line files, the app-wide actions and the plugin bookkeeping.
 *
 * The set of loaded plugins follows the GSettings key `enabled-plugins` (plus every built-in
 * plugin): changing the key — from the Plugins dialog, the Preferences or `gsettings` — loads
 * and unloads plugins in the running application.
 */
#include "gv-application.h"

#include "gv-config.h"
#include "gv-plugins-dialog.h"
#include "gv-preferences-dialog.h"
#include "gv-window.h"

#include <glib/gi18n.h>
#include <string.h>

struct _GvApplication
{
  GtkApplication parent_instance;

  PeasEngine *engine;
  GSettings *settings;
};

G_DEFINE_FINAL_TYPE (GvApplication, gv_application, GTK_TYPE_APPLICATION)

/* Paths ----------------------------------------------------------------------------------- */

gboolean
gv_application_is_uninstalled (void)
{
  static gsize once = 0;
  static gboolean uninstalled = FALSE;

  if (g_once_init_enter (&once))
    {
      /* The executable (the viewer or a test) lies under the build root: take plugins, the
       * schema and the demo from the build tree rather than from the installed folders. */
      g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
      g_autofree char *root = g_strconcat (GV_BUILD_ROOT, G_DIR_SEPARATOR_S, NULL);
      uninstalled = exe != NULL && g_str_has_prefix (exe, root);
      g_once_init_leave (&once, 1);
    }
  return uninstalled;
}

char *
gv_application_find_demo_catalogue (void)
{
  const char *from_env = g_getenv ("GALAXY_VIEWER_DEMO");
  if (from_env != NULL && *from_env != '\0')
    return g_file_test (from_env, G_FILE_TEST_IS_REGULAR) ? g_strdup (from_env) : NULL;

  if (gv_application_is_uninstalled ())
    {
      g_autofree char *built = g_build_filename (GV_BUILD_ROOT, "data", "demo-catalogue.fits",
                                                 NULL);
      if (g_file_test (built, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&built);
    }

  g_autofree char *installed = g_build_filename (GV_PKGDATADIR, "demo-catalogue.fits", NULL);
  if (g_file_test (installed, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&installed);
  return NULL;
}

/* Plugins --------------------------------------------------------------------------------- */

void
gv_application_add_plugin_search_paths (PeasEngine *engine)
{
  g_return_if_fail (PEAS_IS_ENGINE (engine));

  /* First found wins when two folders hold a plugin of the same module name, so the
   * developer's folders come before the installed one. */
  const char *env = g_getenv ("GALAXY_VIEWER_PLUGIN_PATH");
  if (env != NULL && *env != '\0')
    {
      g_auto (GStrv) dirs = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
      for (guint i = 0; dirs[i] != NULL; i++)
        if (*dirs[i] != '\0')
          peas_engine_add_search_path (engine, dirs[i], NULL);
    }

  g_autofree char *user_dir = g_build_filename (g_get_user_data_dir (), "galaxy-viewer",
                                                "plugins", NULL);
  peas_engine_add_search_path (engine, user_dir, NULL);

  if (gv_application_is_uninstalled ())
    {
      /* plugin/<name>/<name>.plugin and its module, one folder level down. */
      g_autofree char *built = g_build_filename (GV_BUILD_ROOT, "plugin", NULL);
      peas_engine_add_search_path (engine, built, NULL);
    }

  peas_engine_add_search_path (engine, GV_PLUGINDIR, NULL);
}

static gboolean
plugin_wanted (PeasPluginInfo *info, const char *const *enabled)
{
  return peas_plugin_info_is_builtin (info)
         || g_strv_contains (enabled, peas_plugin_info_get_module_name (info));
}

void
gv_application_sync_plugins (PeasEngine *engine, const char *const *enabled)
{
  g_return_if_fail (PEAS_IS_ENGINE (engine));
  g_return_if_fail (enabled != NULL);

  for (const GList *l = peas_engine_get_plugin_list (engine); l != NULL; l = l->next)
    {
      PeasPluginInfo *info = l->data;
      gboolean wanted = plugin_wanted (info, enabled);
      gboolean loaded = peas_plugin_info_is_loaded (info);

      if (wanted && !loaded)
        {
          if (!peas_engine_load_plugin (engine, info))
            g_warning ("Could not load plugin “%s”", peas_plugin_info_get_module_name (info));
        }
      else if (!wanted && loaded)
        peas_engine_unload_plugin (engine, info);
    }
}

static void
sync_plugins (GvApplication *self)
{
  g_auto (GStrv) enabled = g_settings_get_strv (self->settings, "enabled-plugins");
  gv_application_sync_plugins (self->engine, (const char *const *) enabled);
}

static void
on_enabled_plugins_changed (GSettings *settings, const char *key, GvApplication *self)
{
  sync_plugins (self);
}

gboolean
gv_application_set_plugin_enabled (GvApplication *self, const char *module_name,
                                   gboolean enabled, GError **error)
{
  g_return_val_if_fail (GV_IS_APPLICATION (self), FALSE);
  g_return_val_if_fail (module_name != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_return_val_if_fail (self->engine != NULL, FALSE); /* after startup */

  PeasPluginInfo *info = peas_engine_get_plugin_info (self->engine, module_name);
  if (info == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("No plugin is named “%s”."),
                   module_name);
      return FALSE;
    }
  if (!enabled && peas_plugin_info_is_builtin (info))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("The plugin “%s” is built in and cannot be disabled."),
                   peas_plugin_info_get_name (info));
      return FALSE;
    }

  if (enabled && !peas_plugin_info_is_loaded (info)
      && !peas_engine_load_plugin (self->engine, info))
    {
      g_autoptr (GError) reason = NULL;
      if (peas_plugin_info_is_available (info, &reason) || reason == NULL)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                     _("The plugin “%s” could not be loaded."), peas_plugin_info_get_name (info));
      else
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                     _("The plugin “%s” could not be loaded: %s"),
                     peas_plugin_info_get_name (info), reason->message);
      return FALSE;
    }
  if (!enabled && peas_plugin_info_is_loaded (info))
    peas_engine_unload_plugin (self->engine, info);

  /* Record the choice; the change notification finds the engine already in agreement. */
  g_auto (GStrv) old = g_settings_get_strv (self->settings, "enabled-plugins");
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  for (guint i = 0; old[i] != NULL; i++)
    if (strcmp (old[i], module_name) != 0)
      g_strv_builder_add (builder, old[i]);
  if (enabled)
    g_strv_builder_add (builder, module_name);
  g_auto (GStrv) updated = g_strv_builder_end (builder);
  g_settings_set_strv (self->settings, "enabled-plugins", (const char *const *) updated);
  return TRUE;
}

PeasEngine *
gv_application_get_engine (GvApplication *self)
{
  g_return_val_if_fail (GV_IS_APPLICATION (self), NULL);
  return self->engine;
}

GSettings *
gv_application_get_settings (GvApplication *self)
{
  g_return_val_if_fail (GV_IS_APPLICATION (self), NULL);
  return self->settings;
}

/* Recent files ---------------------------------------------------------------------------- */

void
gv_application_note_opened (GvApplication *self, GFile *file)
{
  g_return_if_fail (GV_IS_APPLICATION (self));
  g_return_if_fail (G_IS_FILE (file));

  g_autofree char *uri = g_file_get_uri (file);
  GtkRecentData data = {
    .display_name = NULL,
    .description = NULL,
    .mime_type = (char *) "image/fits",
    .app_name = (char *) g_get_application_name (),
    .app_exec = (char *) "galaxy-viewer %u",
    .groups = NULL,
    .is_private = FALSE,
  };
  gtk_recent_manager_add_full (gtk_recent_manager_get_default (), uri, &data);

  g_autofree char *path = g_file_get_path (file);
  if (path != NULL && self->settings != NULL)
    g_settings_set_string (self->settings, "last-catalogue", path);
}

/* Windows and actions --------------------------------------------------------------------- */

static GvWindow *
get_or_create_window (GvApplication *self)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));
  if (GV_IS_WINDOW (window))
    return GV_WINDOW (window);
  return gv_window_new (self);
}

static void
on_open_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GvWindow *window = get_or_create_window (GV_APPLICATION (user_data));
  gtk_window_present (GTK_WINDOW (window));
  gv_window_choose_file (window);
}

static void
on_plugins_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GvApplication *self = GV_APPLICATION (user_data);
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (self));
  GtkWindow *dialog = gv_plugins_dialog_new (self, parent);
  gtk_window_present (dialog);
}

static void
on_preferences_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GvApplication *self = GV_APPLICATION (user_data);
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (self));
  GtkWindow *dialog = gv_preferences_dialog_new (self, parent);
  gtk_window_present (dialog);
}

static void
on_about_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GvApplication *self = GV_APPLICATION (user_data);
  static const char *authors[] = { "The Galaxy Viewer developers", NULL };

  gtk_show_about_dialog (gtk_application_get_active_window (GTK_APPLICATION (self)),
                         "program-name", _("Galaxy Viewer"),
                         "logo-icon-name", GV_APPLICATION_ID,
                         "version", PACKAGE_VERSION,
                         "comments", _("Browse galaxy catalogues: images, spectra, and look-alike "
                                       "galaxies found by AstroCLIP"),
                         "license-type", GTK_LICENSE_GPL_3_0,
                         "authors", authors,
                         "translator-credits", _("translator-credits"),
                         NULL);
}

static void
on_quit_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GvApplication *self = GV_APPLICATION (user_data);

  /* Destroying the windows runs their dispose, which unloads the addins first. */
  GList *windows = gtk_application_get_windows (GTK_APPLICATION (self));
  g_autoptr (GList) copy = g_list_copy (windows);
  for (GList *l = copy; l != NULL; l = l->next)
    gtk_window_destroy (GTK_WINDOW (l->data));
  g_application_quit (G_APPLICATION (self));
}

static const GActionEntry app_actions[] = {
  { .name = "open", .activate = on_open_action },
  { .name = "plugins", .activate = on_plugins_action },
  { .name = "preferences", .activate = on_preferences_action },
  { .name = "about", .activate = on_about_action },
  { .name = "quit", .activate = on_quit_action },
};

static void
set_accels (GtkApplication *app)
{
  static const struct
  {
    const char *action;
    const char *accels[3];
  } table[] = {
    { "app.open", { "<Control>o", NULL } },
    { "app.quit", { "<Control>q", NULL } },
    { "app.preferences", { "<Control>comma", NULL } },
    { "win.filter", { "<Control>f", NULL } },
    /* Plain +, − and Enter are bound by the window in the bubble phase instead (gv-window.c),
     * so that they do not take these keys from a focused text entry. */
    { "win.zoom-reset", { "<Control>0", NULL } },
    { "win.close", { "<Control>w", NULL } },
    { "win.show-help-overlay", { "<Control>question", NULL } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    gtk_application_set_accels_for_action (app, table[i].action, table[i].accels);
}

static void
gv_application_startup (GApplication *app)
{
  GvApplication *self = GV_APPLICATION (app);

  G_APPLICATION_CLASS (gv_application_parent_class)->startup (app);

  g_set_application_name (_("Galaxy Viewer"));
  gtk_window_set_default_icon_name (GV_APPLICATION_ID);
  if (gv_application_is_uninstalled ())
    {
      /* The icon from the source tree, for running uninstalled. */
      GdkDisplay *display = gdk_display_get_default ();
      if (display != NULL)
        gtk_icon_theme_add_search_path (gtk_icon_theme_get_for_display (display),
                                        GV_SOURCE_ROOT "/data/icons");
    }

  self->settings = g_settings_new (GV_APPLICATION_ID);
  g_signal_connect (self->settings, "changed::enabled-plugins",
                    G_CALLBACK (on_enabled_plugins_changed), self);

  self->engine = peas_engine_new ();
  gv_application_add_plugin_search_paths (self->engine);
  sync_plugins (self);

  g_action_map_add_action_entries (G_ACTION_MAP (self), app_actions, G_N_ELEMENTS (app_actions),
                                   self);
  set_accels (GTK_APPLICATION (self));
}

static void
gv_application_shutdown (GApplication *app)
{
  GvApplication *self = GV_APPLICATION (app);

  /* The windows are gone (closed, or destroyed by app.quit) and their addins unloaded; now
   * unload the plugins themselves, before the engine goes. */
  if (self->settings != NULL)
    g_signal_handlers_disconnect_by_func (self->settings, on_enabled_plugins_changed, self);
  if (self->engine != NULL)
    peas_engine_set_loaded_plugins (self->engine, NULL);

  G_APPLICATION_CLASS (gv_application_parent_class)->shutdown (app);
}

/* Opens the most recent catalogue if it still exists, else the demo; or shows how to get one. */
static void
open_default_catalogue (GvApplication *self, GvWindow *window)
{
  g_autofree char *last = g_settings_get_string (self->settings, "last-catalogue");
  g_autofree char *path = NULL;

  if (last != NULL && *last != '\0' && g_file_test (last, G_FILE_TEST_IS_REGULAR))
    path = g_steal_pointer (&last);
  else
    path = gv_application_find_demo_catalogue ();

  if (path != NULL)
    {
      g_autoptr (GFile) file = g_file_new_for_path (path);
      gv_window_open (window, file);
    }
  else
    gv_window_show_message (window, GTK_MESSAGE_INFO,
                            _("No catalogue is open. Open a FITS catalogue with Ctrl+O or drop "
                              "one onto the window."));
}

static void
gv_application_activate (GApplication *app)
{
  GvApplication *self = GV_APPLICATION (app);
  GtkWindow *active = gtk_application_get_active_window (GTK_APPLICATION (app));

  if (GV_IS_WINDOW (active))
    {
      gtk_window_present (active);
      return;
    }

  GvWindow *window = gv_window_new (self);
  gtk_window_present (GTK_WINDOW (window));
  open_default_catalogue (self, window);
}

static void
gv_application_open (GApplication *app, GFile **files, int n_files, const char *hint)
{
  GvApplication *self = GV_APPLICATION (app);

  for (int i = 0; i < n_files; i++)
    {
      /* The first file reuses a window that shows nothing yet; each other gets its own. */
      GvWindow *window = NULL;
      GtkWindow *active = gtk_application_get_active_window (GTK_APPLICATION (app));
      if (i == 0 && GV_IS_WINDOW (active) && gv_window_get_catalogue (GV_WINDOW (active)) == NULL)
        window = GV_WINDOW (active);
      else
        window = gv_window_new (self);
      gtk_window_present (GTK_WINDOW (window));
      gv_window_open (window, files[i]);
    }
}

static int
gv_application_handle_local_options (GApplication *app, GVariantDict *options)
{
  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("galaxy-viewer %s\n", PACKAGE_VERSION);
      return 0;
    }
  return -1; /* go on */
}

static void
gv_application_dispose (GObject *object)
{
  GvApplication *self = GV_APPLICATION (object);

  g_clear_object (&self->engine);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (gv_application_parent_class)->dispose (object);
}

static void
gv_application_class_init (GvApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  object_class->dispose = gv_application_dispose;
  app_class->startup = gv_application_startup;
  app_class->shutdown = gv_application_shutdown;
  app_class->activate = gv_application_activate;
  app_class->open = gv_application_open;
  app_class->handle_local_options = gv_application_handle_local_options;
}

static void
gv_application_init (GvApplication *self)
{
  static const GOptionEntry options[] = {
    { "version", 'v', 0, G_OPTION_ARG_NONE, NULL, N_("Print the version and exit"), NULL },
    { NULL },
  };
  g_application_add_main_option_entries (G_APPLICATION (self), options);
}

GvApplication *
gv_application_new (void)
{
  return g_object_new (GV_TYPE_APPLICATION,
                       "application-id", GV_APPLICATION_ID,
                       "flags", G_APPLICATION_HANDLES_OPEN,
                       NULL);
}
