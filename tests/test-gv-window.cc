/* test-gv-window.cc — the application and its window on a real display (under xvfb-run): a
 * small simulated catalogue opened off the main thread, the first galaxy shown, the example
 * plugin's panel following the selection made by ID, the detail view showing the galaxy's
 * image and spectrum, a filter, the Plugins list, preferences, unloading (and the window's
 * clean-up of what a leaky plugin leaves), the addins unloaded in the window's dispose, no GTK 3
 * in the process, and a screenshot of the whole window saved under the build tree and checked
 * not blank.
 *
 * Files in and out as a user moves them: File → Open through the file chooser, a catalogue
 * dropped on the window (through the window's own GtkDropTarget), a file that is no catalogue
 * dropped, and the three exports (image as PNG, spectrum as CSV, the grid's rows as a FITS
 * catalogue) through their menu actions and choosers, each result read back. GtkFileChooserNative
 * finds no portal under Xvfb and shows GTK's own GtkFileChooserDialog: the tests pick the file
 * in that dialog and answer it as its buttons would. */
#include "test-support.h"
#include "test-file-chooser.h"

#include <gtk/gtk.h>
#include <libpeas/peas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "aclip-catalogue.h"
#include "gv-application.h"
#include "gv-config.h"
#include "gv-plugins-dialog.h"
#include "gv-preferences-dialog.h"
#include "gv-window.h"

namespace {

const int kGalaxies = 60;
const int kOtherGalaxies = 9;

using file_chooser_test::spin_until;

/* Runs the main loop for `seconds`, so that frames are drawn and thumbnails arrive. */
void
spin_for (double seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  while (g_get_monotonic_time () < end)
    {
      g_main_context_iteration (nullptr, FALSE);
      g_usleep (1000);
    }
}

/* The label of the example plugin's panel, or nullptr. */
GtkLabel *
example_label (GvWindow *window, const char *panel = "example-panel")
{
  GtkWidget *panel_widget = gv_window_get_panel (window, panel);
  return GTK_IS_LABEL (panel_widget) ? GTK_LABEL (panel_widget) : nullptr;
}

/* The controller of this type among the widget's own, or nullptr. */
GtkEventController *
find_controller (GtkWidget *widget, GType type)
{
  GListModel *controllers = gtk_widget_observe_controllers (widget);
  GtkEventController *found = nullptr;
  for (guint i = 0; i < g_list_model_get_n_items (controllers) && found == nullptr; i++)
    {
      GtkEventController *controller
          = GTK_EVENT_CONTROLLER (g_list_model_get_item (controllers, i));
      if (G_TYPE_CHECK_INSTANCE_TYPE (controller, type))
        found = controller; /* the widget keeps it alive */
      g_object_unref (controller);
    }
  g_object_unref (controllers);
  return found;
}

/* The first widget of this type under `widget` (itself included), depth first, or nullptr. */
GtkWidget *
find_descendant (GtkWidget *widget, GType type)
{
  if (G_TYPE_CHECK_INSTANCE_TYPE (widget, type))
    return widget;
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child != nullptr;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found = find_descendant (child, type);
      if (found != nullptr)
        return found;
    }
  return nullptr;
}

/* Drops `value` (a GdkFileList or a GFile) on the window through its GtkDropTarget, as GTK does
 * at the end of a drag: emits the target's "drop" signal. Returns the handler's answer. */
bool
drop_on_window (GvWindow *window, const GValue *value)
{
  GtkEventController *target = find_controller (GTK_WIDGET (window), GTK_TYPE_DROP_TARGET);
  EXPECT_NE (target, nullptr) << "the window has no drop target";
  if (target == nullptr)
    return false;
  gboolean accepted = FALSE;
  g_signal_emit_by_name (target, "drop", value, 100.0, 100.0, &accepted);
  return accepted;
}

/* Luminance of pixel i of a texture downloaded in GDK_MEMORY_DEFAULT (B, G, R, A bytes). */
double
luminance (const std::vector<guchar> &pixels, size_t i)
{
  return 0.0722 * pixels[4 * i] + 0.7152 * pixels[4 * i + 1] + 0.2126 * pixels[4 * i + 2];
}

std::vector<std::string>
split (const std::string &line, char separator)
{
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in (line);
  while (std::getline (in, field, separator))
    fields.push_back (field);
  if (!line.empty () && line.back () == separator)
    fields.emplace_back ();
  return fields;
}

/* A number of a CSV field; NaN when empty or not a number. */
double
parse_number (const std::string &field)
{
  if (field.empty ())
    return NAN;
  char *end = nullptr;
  double value = g_ascii_strtod (field.c_str (), &end);
  return end != nullptr && *end == '\0' ? value : NAN;
}

class Viewer : public ::testing::Test {
protected:
  static void SetUpTestSuite ()
  {
    /* A critical from GTK or from us is a bug: make it fail the test (it aborts). */
    g_log_set_always_fatal ((GLogLevelFlags) (G_LOG_LEVEL_CRITICAL | G_LOG_FATAL_MASK));
    dir_ = new TempDir ();
    /* g_application_run names the program in the real viewer. Without a name, the file
     * chooser's entry in the recent files has no command, and GLib reports a critical when
     * GTK saves that list. */
    g_set_prgname ("test-gv-window");
    /* GIO (2.74) sets its MIME folders on first asking for them, which marks the MIME tables
     * for re-reading without freeing those already read: when a content-type lookup (an icon
     * loaded for the file chooser) has read them first, they are lost, and LeakSanitizer
     * reports 104 bytes from libgio. Setting the folders first, before any lookup, avoids it. */
    g_content_type_get_mime_dirs ();
    /* Settings in memory, schema and plugins from the build tree, recent files in the
     * temporary folder: the test touches nothing of the user's. */
    g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
    /* Xvfb has no GPU: no GL at all (GTK draws with cairo). Mesa's software GL is slower,
     * and its driver, unloaded at exit, leaves a leak report that LSan cannot attribute (an
     * "<unknown module>" frame, so no suppression can match it). */
    g_setenv ("GDK_DEBUG", "gl-disable", TRUE);
    g_setenv ("GSK_RENDERER", "cairo", TRUE);
    g_setenv ("GSETTINGS_SCHEMA_DIR", GV_BUILD_ROOT "/data", TRUE);
    g_setenv ("GALAXY_VIEWER_PLUGIN_PATH", GV_BUILD_ROOT "/tests/plugins", TRUE);
    g_setenv ("XDG_DATA_HOME", dir_->path ("data").c_str (), TRUE);

    path_ = dir_->path ("sim.fits");
    std::string out, err;
    int status = run_astroclip ({ "simulate", "--n", std::to_string (kGalaxies), "--image-size",
                                  "64", "--seed", "11", "--threads", "1", "--quiet", "--out",
                                  path_ },
                                &out, &err);
    ASSERT_EQ (status, 0) << err;
    /* Another, smaller catalogue in a folder of its own, to open by the chooser or a drop. */
    g_mkdir_with_parents (dir_->path ("other").c_str (), 0755);
    other_path_ = dir_->path ("other/other.fits");
    status = run_astroclip ({ "simulate", "--n", std::to_string (kOtherGalaxies), "--image-size",
                              "32", "--seed", "12", "--threads", "1", "--quiet", "--out",
                              other_path_ },
                            &out, &err);
    ASSERT_EQ (status, 0) << err;

    /* Only the example plugin, whatever else the build tree holds. */
    GSettings *settings = g_settings_new (GV_APPLICATION_ID);
    const char *enabled[] = { "example", nullptr };
    g_settings_set_strv (settings, "enabled-plugins", enabled);
    g_object_unref (settings);

    app_ = gv_application_new ();
    GError *error = nullptr;
    ASSERT_TRUE (g_application_register (G_APPLICATION (app_), nullptr, &error))
        << (error ? error->message : "");
    /* Keep the application running without windows between tests. */
    g_application_hold (G_APPLICATION (app_));
  }

  static void TearDownTestSuite ()
  {
    if (app_ != nullptr)
      {
        g_application_release (G_APPLICATION (app_));
        g_clear_object (&app_);
      }
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp () override
  {
    ASSERT_NE (app_, nullptr);
    set_plugin ("example", true);
    set_plugin ("example-leaky", false);

    window_ = gv_window_new (app_);
    g_object_ref (window_);
    gtk_window_set_default_size (GTK_WINDOW (window_), 1400, 900);
    g_signal_connect (window_, "selection-changed", G_CALLBACK (on_selection_changed), this);
    gtk_window_present (GTK_WINDOW (window_));

    GFile *file = g_file_new_for_path (path_.c_str ());
    gv_window_open (window_, file);
    g_object_unref (file);
    ASSERT_TRUE (spin_until ([this] { return gv_window_get_catalogue (window_) != nullptr; }))
        << "the catalogue was not opened: " << (gv_window_get_message (window_) ?: "");
    /* The first galaxy is selected and read. */
    ASSERT_TRUE (
        spin_until ([this] { return gv_window_get_selected_galaxy (window_) != nullptr; }));
    ASSERT_TRUE (spin_until ([this] { return gtk_widget_get_mapped (GTK_WIDGET (window_)); }));
  }

  void TearDown () override
  {
    /* A chooser a failed test left open goes, so that the next test finds only its own. */
    for (GtkFileChooserDialog *chooser; (chooser = visible_file_chooser ()) != nullptr;)
      {
        if (!HasFailure ())
          ADD_FAILURE () << "a file chooser was left open";
        /* The window's handler destroys the chooser; a stray one is hidden. */
        g_object_ref (chooser);
        gtk_dialog_response (GTK_DIALOG (chooser), GTK_RESPONSE_CANCEL);
        gtk_widget_set_visible (GTK_WIDGET (chooser), FALSE);
        g_object_unref (chooser);
      }
    if (window_ != nullptr)
      {
        g_signal_handlers_disconnect_by_data (window_, this);
        gtk_window_destroy (GTK_WINDOW (window_));
        g_object_unref (window_);
        window_ = nullptr;
      }
    spin_for (0.05);
  }

  static void set_plugin (const char *name, bool enabled)
  {
    GError *error = nullptr;
    EXPECT_TRUE (gv_application_set_plugin_enabled (app_, name, enabled, &error))
        << name << ": " << (error ? error->message : "");
    g_clear_error (&error);
  }

  static bool plugin_loaded (const char *name)
  {
    PeasPluginInfo *info = peas_engine_get_plugin_info (gv_application_get_engine (app_), name);
    return info != nullptr && peas_plugin_info_is_loaded (info);
  }

  static void on_selection_changed (GvWindow *, GvGalaxy *galaxy, Viewer *self)
  {
    self->selection_ids_.push_back (galaxy != nullptr ? gv_galaxy_get_id (galaxy) : -1);
  }

  /* Selects the galaxy of this row by its ID and waits until it is shown. */
  gint64 select_row_by_id (gint64 row)
  {
    GvCatalogue *catalogue = gv_window_get_catalogue (window_);
    gint64 id = gv_catalogue_get_ids (catalogue)[row];
    EXPECT_TRUE (gv_window_select_id (window_, id));
    EXPECT_TRUE (spin_until ([&] {
      GvGalaxy *galaxy = gv_window_get_selected_galaxy (window_);
      return galaxy != nullptr && gv_galaxy_get_id (galaxy) == id;
    })) << "galaxy " << id << " was never selected";
    return id;
  }

  /* Waits for the file chooser the window shows, checks it belongs to the window, picks `path`
   * in it as a user would (its folder, then the file or, to save, the name) and presses the
   * button that accepts it. Fills `suggested` with the name the chooser offered first. */
  void choose_in_chooser (const std::string &path, std::string *suggested = nullptr)
  {
    ASSERT_TRUE (spin_until ([] { return visible_file_chooser () != nullptr; }))
        << "no file chooser was shown";
    GtkFileChooserDialog *chooser = visible_file_chooser ();
    EXPECT_EQ (gtk_window_get_transient_for (GTK_WINDOW (chooser)), GTK_WINDOW (window_));
    EXPECT_TRUE (gtk_window_get_modal (GTK_WINDOW (chooser)));
    if (suggested != nullptr)
      {
        char *name = gtk_file_chooser_get_current_name (GTK_FILE_CHOOSER (chooser));
        *suggested = name != nullptr ? name : "";
        g_free (name);
      }

    accept_file_chooser (chooser, path);
  }

  static TempDir *dir_;
  static std::string path_;
  static std::string other_path_;
  static GvApplication *app_;
  GvWindow *window_ = nullptr;
  std::vector<gint64> selection_ids_;
};

TempDir *Viewer::dir_ = nullptr;
std::string Viewer::path_;
std::string Viewer::other_path_;
GvApplication *Viewer::app_ = nullptr;

TEST_F (Viewer, OpensTheCatalogueAndShowsTheFirstGalaxy)
{
  GvCatalogue *catalogue = gv_window_get_catalogue (window_);
  EXPECT_EQ (gv_catalogue_get_n_rows (catalogue), kGalaxies);
  GvGalaxy *galaxy = gv_window_get_selected_galaxy (window_);
  EXPECT_EQ (gv_galaxy_get_row (galaxy), 0);
  EXPECT_EQ (gv_galaxy_get_id (galaxy), gv_catalogue_get_ids (catalogue)[0]);

  GvDetailView *detail = gv_window_get_detail_view (window_);
  EXPECT_EQ (gv_detail_view_get_galaxy (detail), galaxy);
  EXPECT_TRUE (gv_image_view_has_image (gv_detail_view_get_image_view (detail)));
  EXPECT_TRUE (gv_spectrum_view_has_spectrum (gv_detail_view_get_spectrum_view (detail)));

  EXPECT_NE (std::string (gtk_window_get_title (GTK_WINDOW (window_))).find ("sim.fits"),
             std::string::npos);
  EXPECT_EQ (gv_galaxy_grid_get_n_total (gv_window_get_grid (window_)), (guint) kGalaxies);
}

TEST_F (Viewer, PluginPanelFollowsTheSelectionById)
{
  GtkLabel *label = example_label (window_);
  ASSERT_NE (label, nullptr) << "the example plugin's panel is missing";
  /* Loaded with the window, it was told of the galaxy already selected. */
  gint64 first = gv_galaxy_get_id (gv_window_get_selected_galaxy (window_));
  EXPECT_EQ (std::string (gtk_label_get_text (label)), "Galaxy " + std::to_string (first));
  EXPECT_TRUE (gtk_widget_get_visible (gtk_widget_get_parent (GTK_WIDGET (
      gv_window_get_panel_stack (window_)))));

  selection_ids_.clear ();
  gint64 id = select_row_by_id (37);
  EXPECT_EQ (std::string (gtk_label_get_text (label)), "Galaxy " + std::to_string (id));
  ASSERT_FALSE (selection_ids_.empty ());
  EXPECT_EQ (selection_ids_.back (), id);

  GvDetailView *detail = gv_window_get_detail_view (window_);
  ASSERT_NE (gv_detail_view_get_galaxy (detail), nullptr);
  EXPECT_EQ (gv_galaxy_get_id (gv_detail_view_get_galaxy (detail)), id);
  EXPECT_EQ (gv_galaxy_get_row (gv_detail_view_get_galaxy (detail)), 37);
  EXPECT_TRUE (gv_image_view_has_image (gv_detail_view_get_image_view (detail)));
  EXPECT_TRUE (gv_spectrum_view_has_spectrum (gv_detail_view_get_spectrum_view (detail)));
  EXPECT_EQ (gv_galaxy_grid_get_selected_row (gv_window_get_grid (window_)), 37);

  /* An ID the catalogue does not have. */
  gint64 max_id = 0;
  for (int i = 0; i < kGalaxies; i++)
    max_id = MAX (max_id, gv_catalogue_get_ids (gv_window_get_catalogue (window_))[i]);
  EXPECT_FALSE (gv_window_select_id (window_, max_id + 1));
}

TEST_F (Viewer, PluginActionAndMenuItemWork)
{
  GAction *action = g_action_map_lookup_action (G_ACTION_MAP (window_), "example-hello");
  ASSERT_NE (action, nullptr);
  g_action_activate (action, nullptr);
  const char *message = gv_window_get_message (window_);
  ASSERT_NE (message, nullptr);
  gint64 id = gv_galaxy_get_id (gv_window_get_selected_galaxy (window_));
  EXPECT_NE (std::string (message).find ("galaxy " + std::to_string (id)), std::string::npos)
      << message;
}

TEST_F (Viewer, FilterShowsTheMatchingGalaxies)
{
  GvCatalogue *catalogue = gv_window_get_catalogue (window_);
  const double *z = gv_catalogue_get_column (catalogue, "Z");
  ASSERT_NE (z, nullptr);
  guint expected = 0;
  for (int i = 0; i < kGalaxies; i++)
    expected += z[i] < 0.2;
  ASSERT_GT (expected, 0u);
  ASSERT_LT (expected, (guint) kGalaxies) << "the test needs some galaxies on each side";

  GvGalaxyGrid *grid = gv_window_get_grid (window_);
  GError *error = nullptr;
  ASSERT_TRUE (gv_galaxy_grid_set_filter_text (grid, "Z < 0.2", &error))
      << (error ? error->message : "");
  EXPECT_TRUE (spin_until ([&] { return gv_galaxy_grid_get_n_shown (grid) == expected; }))
      << gv_galaxy_grid_get_n_shown (grid) << " shown, " << expected << " expected";

  EXPECT_FALSE (gv_galaxy_grid_set_filter_text (grid, "Z <", &error));
  g_clear_error (&error);
  EXPECT_EQ (gv_galaxy_grid_get_n_shown (grid), expected); /* the previous filter stays */

  /* Selecting by ID still shows a galaxy the filter hides, in the detail view. */
  gint64 hidden_row = -1;
  for (int i = 0; i < kGalaxies && hidden_row < 0; i++)
    if (!(z[i] < 0.2))
      hidden_row = i;
  gint64 id = select_row_by_id (hidden_row);
  EXPECT_EQ (gv_galaxy_get_id (gv_detail_view_get_galaxy (gv_window_get_detail_view (window_))),
             id);
}

TEST_F (Viewer, UnloadingRemovesWhatThePluginAdded)
{
  GtkLabel *label = example_label (window_);
  ASSERT_NE (label, nullptr);
  g_object_ref (label);

  set_plugin ("example", false);
  EXPECT_FALSE (plugin_loaded ("example"));
  EXPECT_EQ (GPOINTER_TO_INT (g_object_get_data (G_OBJECT (label), "example-unloaded")), 1)
      << "the plugin's unload did not find its panel";
  EXPECT_EQ (gv_window_get_panel (window_, "example-panel"), nullptr);
  EXPECT_EQ (g_action_map_lookup_action (G_ACTION_MAP (window_), "example-hello"), nullptr);
  EXPECT_FALSE (gv_window_remove_menu_item (window_, "win.example-hello"));
  /* No panel left: the side area is hidden. */
  EXPECT_FALSE (gtk_widget_get_visible (
      gtk_widget_get_parent (GTK_WIDGET (gv_window_get_panel_stack (window_)))));
  g_object_unref (label);

  /* Loading it again brings the panel back, up to date with the selection. */
  set_plugin ("example", true);
  GtkLabel *again = example_label (window_);
  ASSERT_NE (again, nullptr);
  gint64 id = gv_galaxy_get_id (gv_window_get_selected_galaxy (window_));
  EXPECT_EQ (std::string (gtk_label_get_text (again)), "Galaxy " + std::to_string (id));
  EXPECT_NE (g_action_map_lookup_action (G_ACTION_MAP (window_), "example-hello"), nullptr);
}

TEST_F (Viewer, WindowRemovesWhatALeakyPluginLeaves)
{
  set_plugin ("example-leaky", true);
  ASSERT_NE (example_label (window_, "example-leaky-panel"), nullptr);
  ASSERT_NE (g_action_map_lookup_action (G_ACTION_MAP (window_), "example-leaky-hello"),
             nullptr);
  EXPECT_EQ (gtk_stack_get_pages (gv_window_get_panel_stack (window_)) != nullptr, true);

  set_plugin ("example-leaky", false);
  EXPECT_EQ (gv_window_get_panel (window_, "example-leaky-panel"), nullptr);
  EXPECT_EQ (g_action_map_lookup_action (G_ACTION_MAP (window_), "example-leaky-hello"),
             nullptr);
  EXPECT_FALSE (gv_window_remove_menu_item (window_, "win.example-leaky-hello"));
  /* The well-behaved example is untouched. */
  EXPECT_NE (example_label (window_), nullptr);
}

TEST_F (Viewer, DisposeUnloadsAddinsWhileWidgetsExist)
{
  GtkLabel *label = example_label (window_);
  ASSERT_NE (label, nullptr);
  g_object_ref (label);
  g_signal_handlers_disconnect_by_data (window_, this);
  gtk_window_destroy (GTK_WINDOW (window_));
  g_object_unref (window_);
  window_ = nullptr;
  EXPECT_EQ (GPOINTER_TO_INT (g_object_get_data (G_OBJECT (label), "example-unloaded")), 1);
  g_object_unref (label);
  EXPECT_TRUE (plugin_loaded ("example")); /* the plugin stays loaded for other windows */
}

TEST_F (Viewer, PluginsListSwitchesPlugins)
{
  GtkWidget *list = gv_plugins_list_new (app_);
  g_object_ref_sink (list);
  GtkWidget *toggle = nullptr;
  int n_rows = 0;
  for (GtkWidget *row = gtk_widget_get_first_child (list); row != nullptr;
       row = gtk_widget_get_next_sibling (row))
    {
      GtkWidget *candidate = GTK_WIDGET (g_object_get_data (G_OBJECT (row), "gv-switch"));
      if (candidate == nullptr)
        continue;
      n_rows++;
      if (g_str_equal (gtk_widget_get_name (candidate), "plugin-switch-example"))
        toggle = candidate;
      /* Hidden plugins are not listed. */
      EXPECT_STRNE (gtk_widget_get_name (candidate), "plugin-switch-example-leaky");
    }
  EXPECT_GE (n_rows, 1);
  ASSERT_NE (toggle, nullptr);
  EXPECT_TRUE (gtk_switch_get_active (GTK_SWITCH (toggle)));

  gtk_switch_set_active (GTK_SWITCH (toggle), FALSE);
  EXPECT_FALSE (plugin_loaded ("example"));
  EXPECT_EQ (gv_window_get_panel (window_, "example-panel"), nullptr);
  GSettings *settings = gv_application_get_settings (app_);
  char **enabled = g_settings_get_strv (settings, "enabled-plugins");
  EXPECT_FALSE (g_strv_contains (enabled, "example"));
  g_strfreev (enabled);

  /* Loading through the settings (as `gsettings set` would) moves the switch. */
  const char *again[] = { "example", nullptr };
  g_settings_set_strv (settings, "enabled-plugins", again);
  EXPECT_TRUE (plugin_loaded ("example"));
  EXPECT_TRUE (gtk_switch_get_active (GTK_SWITCH (toggle)));
  EXPECT_NE (gv_window_get_panel (window_, "example-panel"), nullptr);
  g_object_unref (list);
}

TEST_F (Viewer, PreferencesApplyToTheWindow)
{
  GSettings *settings = gv_application_get_settings (app_);
  GtkWindow *dialog = gv_preferences_dialog_new (app_, GTK_WINDOW (window_));
  gtk_window_present (dialog);

  g_settings_set_int (settings, "thumbnail-size", 96);
  EXPECT_EQ (gv_galaxy_grid_get_thumbnail_size (gv_window_get_grid (window_)), 96);
  g_settings_set_string (settings, "default-stretch", "log");
  EXPECT_EQ (gv_detail_view_get_default_stretch (gv_window_get_detail_view (window_)),
             ACLIP_STRETCH_LOG);
  g_settings_set_int (settings, "smoothing-width", 9);
  EXPECT_DOUBLE_EQ (gv_detail_view_get_smoothing (gv_window_get_detail_view (window_)), 9.0);

  g_settings_reset (settings, "thumbnail-size");
  g_settings_reset (settings, "default-stretch");
  g_settings_reset (settings, "smoothing-width");
  gtk_window_destroy (dialog);
}

TEST_F (Viewer, KeyboardActionsReachTheViews)
{
  GvImageView *image = gv_detail_view_get_image_view (gv_window_get_detail_view (window_));
  spin_for (0.2);
  double before = gv_image_view_get_zoom (image);
  g_action_group_activate_action (G_ACTION_GROUP (window_), "zoom-in", nullptr);
  EXPECT_GT (gv_image_view_get_zoom (image), before);
  g_action_group_activate_action (G_ACTION_GROUP (window_), "zoom-out", nullptr);
  EXPECT_NEAR (gv_image_view_get_zoom (image), before, 1e-9 + 1e-6 * before);

  /* Ctrl+F: the focus goes to the grid's filter entry. */
  g_action_group_activate_action (G_ACTION_GROUP (window_), "filter", nullptr);
  GtkWidget *focus = gtk_root_get_focus (GTK_ROOT (window_));
  ASSERT_NE (focus, nullptr);
  EXPECT_TRUE (GTK_IS_TEXT (focus) || GTK_IS_EDITABLE (focus));
  EXPECT_TRUE (gtk_widget_is_ancestor (focus, GTK_WIDGET (gv_window_get_grid (window_))));

  /* Enter: the detail's image takes the focus. */
  g_action_group_activate_action (G_ACTION_GROUP (window_), "show-detail", nullptr);
  EXPECT_TRUE (gtk_widget_has_focus (GTK_WIDGET (image)));

  /* The accelerators the application sets. */
  GtkApplication *app = GTK_APPLICATION (app_);
  char **accels = gtk_application_get_accels_for_action (app, "app.open");
  ASSERT_NE (accels[0], nullptr);
  EXPECT_STREQ (accels[0], "<Control>o");
  g_strfreev (accels);
  accels = gtk_application_get_accels_for_action (app, "win.filter");
  ASSERT_NE (accels[0], nullptr);
  EXPECT_STREQ (accels[0], "<Control>f");
  g_strfreev (accels);
}

TEST_F (Viewer, OpeningAMissingFileShowsAnError)
{
  std::string missing = dir_->path ("no-such-catalogue.fits");
  GFile *file = g_file_new_for_path (missing.c_str ());
  GvCatalogue *before = gv_window_get_catalogue (window_);
  gv_window_open (window_, file);
  g_object_unref (file);
  ASSERT_TRUE (spin_until ([this] { return gv_window_get_message (window_) != nullptr; }));
  EXPECT_NE (std::string (gv_window_get_message (window_)).find ("no-such-catalogue.fits"),
             std::string::npos)
      << gv_window_get_message (window_);
  EXPECT_EQ (gv_window_get_catalogue (window_), before); /* the open catalogue stays */
}

/* File → Open (Ctrl+O, app.open): the chooser starts in the open catalogue's folder; the file
 * picked in it is opened, replacing the catalogue. */
TEST_F (Viewer, FileChooserOpensTheChosenCatalogue)
{
  GvCatalogue *before = gv_window_get_catalogue (window_);
  ASSERT_EQ (gtk_application_get_active_window (GTK_APPLICATION (app_)), GTK_WINDOW (window_));
  g_action_group_activate_action (G_ACTION_GROUP (app_), "open", nullptr);
  ASSERT_TRUE (spin_until ([] { return visible_file_chooser () != nullptr; }));
  GtkFileChooserDialog *chooser = visible_file_chooser ();
  EXPECT_EQ (gtk_file_chooser_get_action (GTK_FILE_CHOOSER (chooser)),
             GTK_FILE_CHOOSER_ACTION_OPEN);
  /* The chooser shows the folder once it has read it. */
  spin_until ([&] { return !current_folder (chooser).empty (); });
  EXPECT_EQ (current_folder (chooser), dir_->root ()) << "not the open catalogue's folder";

  choose_in_chooser (other_path_);
  if (HasFatalFailure ())
    return;
  ASSERT_TRUE (spin_until ([&] {
    GvCatalogue *catalogue = gv_window_get_catalogue (window_);
    return catalogue != nullptr && catalogue != before;
  })) << "the chosen catalogue was not opened: " << (gv_window_get_message (window_) ?: "");
  GvCatalogue *catalogue = gv_window_get_catalogue (window_);
  EXPECT_EQ (std::string (gv_catalogue_get_path (catalogue)), other_path_);
  EXPECT_EQ (gv_catalogue_get_n_rows (catalogue), kOtherGalaxies);
  EXPECT_EQ (gv_catalogue_get_image_width (catalogue), 32);
  EXPECT_EQ (gv_window_get_message (window_), nullptr) << gv_window_get_message (window_);
  EXPECT_NE (std::string (gtk_window_get_title (GTK_WINDOW (window_))).find ("other.fits"),
             std::string::npos)
      << gtk_window_get_title (GTK_WINDOW (window_));
  /* Its first galaxy is shown. */
  ASSERT_TRUE (spin_until ([&] {
    GvGalaxy *galaxy = gv_window_get_selected_galaxy (window_);
    return galaxy != nullptr && gv_galaxy_get_catalogue (galaxy) == catalogue;
  }));
  EXPECT_EQ (gv_galaxy_get_id (gv_window_get_selected_galaxy (window_)),
             gv_catalogue_get_ids (catalogue)[0]);
}

/* Cancelling the chooser opens nothing; the next Ctrl+O shows a chooser again. */
TEST_F (Viewer, CancellingTheFileChooserKeepsTheCatalogue)
{
  GvCatalogue *before = gv_window_get_catalogue (window_);
  g_action_group_activate_action (G_ACTION_GROUP (app_), "open", nullptr);
  ASSERT_TRUE (spin_until ([] { return visible_file_chooser () != nullptr; }));
  GtkFileChooserDialog *chooser = visible_file_chooser ();
  ASSERT_TRUE (spin_until ([&] { return !current_folder (chooser).empty (); }));
  GFile *file = g_file_new_for_path (other_path_.c_str ());
  EXPECT_TRUE (gtk_file_chooser_set_file (GTK_FILE_CHOOSER (chooser), file, nullptr));
  g_object_unref (file);
  ASSERT_TRUE (spin_until ([&] { return chosen_path (chooser) == other_path_; }));
  gtk_dialog_response (GTK_DIALOG (chooser), GTK_RESPONSE_CANCEL);
  EXPECT_TRUE (spin_until ([] { return visible_file_chooser () == nullptr; }));
  spin_for (0.5); /* time enough for an open to finish, had one started */
  EXPECT_EQ (gv_window_get_catalogue (window_), before);
  EXPECT_EQ (std::string (gv_catalogue_get_path (before)), path_);

  g_action_group_activate_action (G_ACTION_GROUP (app_), "open", nullptr);
  choose_in_chooser (other_path_);
  if (HasFatalFailure ())
    return;
  EXPECT_TRUE (spin_until ([&] { return gv_window_get_catalogue (window_) != before; }));
  EXPECT_EQ (gv_catalogue_get_n_rows (gv_window_get_catalogue (window_)), kOtherGalaxies);
}

/* The URIs of the window's File → Open Recent submenu, in menu order (found from the
 * header bar's menu button). */
std::vector<std::string>
recent_menu_uris (GtkWidget *root)
{
  std::vector<std::string> uris;
  std::function<void (GMenuModel *, bool)> walk = [&] (GMenuModel *model, bool in_recent) {
    for (int i = 0; i < g_menu_model_get_n_items (model); i++) {
      char *label = nullptr, *uri = nullptr;
      g_menu_model_get_item_attribute (model, i, G_MENU_ATTRIBUTE_LABEL, "s", &label);
      if (in_recent && g_menu_model_get_item_attribute (model, i, G_MENU_ATTRIBUTE_TARGET, "s",
                                                        &uri))
        uris.push_back (uri);
      bool recent = in_recent || (label && strcmp (label, "Open _Recent") == 0);
      GMenuModel *link = g_menu_model_get_item_link (model, i, G_MENU_LINK_SUBMENU);
      if (link == nullptr)
        link = g_menu_model_get_item_link (model, i, G_MENU_LINK_SECTION);
      if (link != nullptr) {
        walk (link, recent);
        g_object_unref (link);
      }
      g_free (label);
      g_free (uri);
    }
  };
  std::function<void (GtkWidget *)> find = [&] (GtkWidget *widget) {
    if (GTK_IS_MENU_BUTTON (widget) && gtk_menu_button_get_menu_model (GTK_MENU_BUTTON (widget)))
      walk (gtk_menu_button_get_menu_model (GTK_MENU_BUTTON (widget)), false);
    for (GtkWidget *child = gtk_widget_get_first_child (widget); child;
         child = gtk_widget_get_next_sibling (child))
      find (child);
  };
  find (root);
  if (GtkWidget *titlebar = gtk_window_get_titlebar (GTK_WINDOW (root)))
    find (titlebar);
  return uris;
}

/* Opened catalogues are listed newest first under File → Open Recent, and its items open
 * them. */
TEST_F (Viewer, RecentCataloguesAreListedAndReopen)
{
  g_autofree char *first_uri = g_filename_to_uri (path_.c_str (), nullptr, nullptr);
  g_autofree char *other_uri = g_filename_to_uri (other_path_.c_str (), nullptr, nullptr);
  GFile *other = g_file_new_for_path (other_path_.c_str ());
  gv_window_open (window_, other);
  g_object_unref (other);
  ASSERT_TRUE (spin_until ([&] {
    GvCatalogue *c = gv_window_get_catalogue (window_);
    return c && std::string (gv_catalogue_get_path (c)) == other_path_;
  }));
  /* GtkRecentManager writes its list and reports the change from the main loop. */
  std::vector<std::string> uris;
  EXPECT_TRUE (spin_until ([&] {
    uris = recent_menu_uris (GTK_WIDGET (window_));
    return uris.size () >= 2 && uris[0] == other_uri;
  })) << "recent menu: " << ::testing::PrintToString (uris);
  ASSERT_GE (uris.size (), 2u);
  EXPECT_EQ (uris[0], other_uri);
  EXPECT_NE (std::find (uris.begin (), uris.end (), std::string (first_uri)), uris.end ());

  g_action_group_activate_action (G_ACTION_GROUP (window_), "open-recent",
                                  g_variant_new_string (first_uri));
  ASSERT_TRUE (spin_until ([&] {
    GvCatalogue *c = gv_window_get_catalogue (window_);
    return c && std::string (gv_catalogue_get_path (c)) == path_;
  })) << "Open Recent did not open " << first_uri;
  EXPECT_EQ (gv_catalogue_get_n_rows (gv_window_get_catalogue (window_)), kGalaxies);
}

/* A catalogue dragged from a file manager arrives as a GdkFileList (the first file is opened);
 * one given as a GFile is opened too. */
TEST_F (Viewer, DroppingACatalogueOpensIt)
{
  GtkDropTarget *target = GTK_DROP_TARGET (
      find_controller (GTK_WIDGET (window_), GTK_TYPE_DROP_TARGET));
  ASSERT_NE (target, nullptr);
  gsize n_types = 0;
  const GType *types = gtk_drop_target_get_gtypes (target, &n_types);
  ASSERT_NE (types, nullptr);
  EXPECT_NE (std::find (types, types + n_types, GDK_TYPE_FILE_LIST), types + n_types);
  EXPECT_NE (gtk_drop_target_get_actions (target) & GDK_ACTION_COPY, 0);

  GvCatalogue *before = gv_window_get_catalogue (window_);
  GFile *other = g_file_new_for_path (other_path_.c_str ());
  GFile *first = g_file_new_for_path (path_.c_str ());
  GFile *files[] = { other, first };
  GValue value = G_VALUE_INIT;
  g_value_init (&value, GDK_TYPE_FILE_LIST);
  g_value_take_boxed (&value, gdk_file_list_new_from_array (files, G_N_ELEMENTS (files)));
  EXPECT_TRUE (drop_on_window (window_, &value));
  g_value_unset (&value);

  ASSERT_TRUE (spin_until ([&] { return gv_window_get_catalogue (window_) != before; }))
      << "the dropped catalogue was not opened: " << (gv_window_get_message (window_) ?: "");
  GvCatalogue *dropped = gv_window_get_catalogue (window_);
  EXPECT_EQ (std::string (gv_catalogue_get_path (dropped)), other_path_);
  EXPECT_EQ (gv_catalogue_get_n_rows (dropped), kOtherGalaxies);
  EXPECT_EQ (gv_window_get_message (window_), nullptr) << gv_window_get_message (window_);
  EXPECT_NE (std::string (gtk_window_get_title (GTK_WINDOW (window_))).find ("other.fits"),
             std::string::npos);

  /* A single GFile: back to the first catalogue. */
  g_value_init (&value, G_TYPE_FILE);
  g_value_set_object (&value, first);
  EXPECT_TRUE (drop_on_window (window_, &value));
  g_value_unset (&value);
  ASSERT_TRUE (spin_until ([&] { return gv_window_get_catalogue (window_) != dropped; }));
  EXPECT_EQ (std::string (gv_catalogue_get_path (gv_window_get_catalogue (window_))), path_);
  EXPECT_EQ (gv_catalogue_get_n_rows (gv_window_get_catalogue (window_)), kGalaxies);
  g_object_unref (other);
  g_object_unref (first);
}

/* A dropped file that is no catalogue: an error naming it in the message bar, and the
 * catalogue and galaxy shown stay. */
TEST_F (Viewer, DroppingAFileThatIsNoCatalogueShowsAnError)
{
  std::string notes = dir_->path ("notes.txt");
  ASSERT_TRUE (g_file_set_contents (notes.c_str (), "Observing notes, not a FITS file.\n", -1,
                                    nullptr));
  GvCatalogue *before = gv_window_get_catalogue (window_);
  GvGalaxy *selected = gv_window_get_selected_galaxy (window_);
  ASSERT_EQ (gv_window_get_message (window_), nullptr);

  GFile *file = g_file_new_for_path (notes.c_str ());
  GValue value = G_VALUE_INIT;
  g_value_init (&value, GDK_TYPE_FILE_LIST);
  g_value_take_boxed (&value, gdk_file_list_new_from_array (&file, 1));
  drop_on_window (window_, &value);
  g_value_unset (&value);
  g_object_unref (file);

  ASSERT_TRUE (spin_until ([this] { return gv_window_get_message (window_) != nullptr; }))
      << "no message after dropping a text file";
  std::string message = gv_window_get_message (window_);
  EXPECT_NE (message.find (notes), std::string::npos) << message;
  /* With the reason the catalogue reader gives. */
  GError *error = nullptr;
  GvCatalogue *none = gv_catalogue_open (notes.c_str (), &error);
  EXPECT_EQ (none, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_NE (message.find (error->message), std::string::npos)
      << message << "\nlacks the reader's reason: " << error->message;
  g_clear_error (&error);
  g_clear_object (&none);
  /* Shown in the window's message bar, as an error. */
  GtkInfoBar *bar = GTK_INFO_BAR (find_descendant (GTK_WIDGET (window_), GTK_TYPE_INFO_BAR));
  ASSERT_NE (bar, nullptr);
  EXPECT_TRUE (gtk_widget_get_visible (GTK_WIDGET (bar)));
  EXPECT_TRUE (gtk_info_bar_get_revealed (bar));
  EXPECT_EQ (gtk_info_bar_get_message_type (bar), GTK_MESSAGE_ERROR);
  GtkWidget *label = find_descendant (GTK_WIDGET (bar), GTK_TYPE_LABEL);
  ASSERT_NE (label, nullptr);
  EXPECT_EQ (std::string (gtk_label_get_text (GTK_LABEL (label))), message);
  EXPECT_EQ (gv_window_get_catalogue (window_), before);
  EXPECT_EQ (gv_window_get_selected_galaxy (window_), selected);
  EXPECT_EQ (gv_galaxy_grid_get_n_total (gv_window_get_grid (window_)), (guint) kGalaxies);
  EXPECT_NE (std::string (gtk_window_get_title (GTK_WINDOW (window_))).find ("sim.fits"),
             std::string::npos);
}

/* Export Image…: the selected galaxy's image as displayed, one PNG pixel per image pixel. */
TEST_F (Viewer, ExportImageWritesThePngOfTheSelectedGalaxy)
{
  gint64 id = select_row_by_id (7);
  GAction *action = g_action_map_lookup_action (G_ACTION_MAP (window_), "export-image");
  ASSERT_NE (action, nullptr);
  ASSERT_TRUE (g_action_get_enabled (action));
  std::string png = dir_->path ("exported-image.png");
  g_remove (png.c_str ());

  g_action_activate (action, nullptr);
  std::string suggested;
  choose_in_chooser (png, &suggested);
  if (HasFatalFailure ())
    return;
  EXPECT_EQ (suggested, "galaxy-" + std::to_string (id) + ".png");
  ASSERT_TRUE (g_file_test (png.c_str (), G_FILE_TEST_IS_REGULAR))
      << (gv_window_get_message (window_) ?: "no message");
  ASSERT_NE (gv_window_get_message (window_), nullptr);
  EXPECT_NE (std::string (gv_window_get_message (window_)).find (png), std::string::npos)
      << gv_window_get_message (window_);

  GError *error = nullptr;
  GdkTexture *texture = gdk_texture_new_from_filename (png.c_str (), &error);
  ASSERT_NE (texture, nullptr) << error->message;
  GvCatalogue *catalogue = gv_window_get_catalogue (window_);
  int width = gdk_texture_get_width (texture), height = gdk_texture_get_height (texture);
  EXPECT_EQ (width, gv_catalogue_get_image_width (catalogue));
  EXPECT_EQ (height, gv_catalogue_get_image_height (catalogue));
  ASSERT_EQ (width, 64);
  ASSERT_EQ (height, 64);
  std::vector<guchar> pixels ((size_t) width * height * 4);
  gdk_texture_download (texture, pixels.data (), (gsize) width * 4);

  /* The rendering shown in the image view, pixel for pixel. */
  GdkTexture *shown = gv_image_view_get_texture (
      gv_detail_view_get_image_view (gv_window_get_detail_view (window_)));
  ASSERT_NE (shown, nullptr);
  ASSERT_EQ (gdk_texture_get_width (shown), width);
  std::vector<guchar> shown_pixels (pixels.size ());
  gdk_texture_download (shown, shown_pixels.data (), (gsize) width * 4);
  EXPECT_TRUE (shown_pixels == pixels) << "the PNG is not the image shown";
  g_object_unref (shown);

  /* Not blank: the galaxy, in the middle of the cutout, is brighter than the sky at its edge. */
  double centre = 0, edge = 0, low = 255, high = 0;
  int n_centre = 0, n_edge = 0;
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      {
        double l = luminance (pixels, (size_t) y * width + x);
        low = std::min (low, l);
        high = std::max (high, l);
        if (std::abs (x - width / 2) < 4 && std::abs (y - height / 2) < 4)
          centre += l, n_centre++;
        else if (x < 4 || y < 4 || x >= width - 4 || y >= height - 4)
          edge += l, n_edge++;
      }
  EXPECT_GT (high - low, 100.0) << "the exported image is flat";
  EXPECT_GT (centre / n_centre, edge / n_edge + 30.0)
      << "centre " << centre / n_centre << ", edge " << edge / n_edge;
  g_object_unref (texture);
}

/* Export Spectrum…: a comment line with the galaxy's ID, a header, then one line per pixel of
 * the spectrum with its wavelength, flux, ivar and smoothed flux. */
TEST_F (Viewer, ExportSpectrumWritesOneLinePerPixel)
{
  gint64 id = select_row_by_id (7);
  GvGalaxy *galaxy = gv_window_get_selected_galaxy (window_);
  int n = 0;
  const float *flux = gv_galaxy_get_spectrum (galaxy, &n);
  const float *ivar = gv_galaxy_get_spectrum_ivar (galaxy);
  ASSERT_NE (flux, nullptr);
  GvCatalogue *catalogue = gv_window_get_catalogue (window_);
  ASSERT_EQ (n, gv_catalogue_get_n_wave (catalogue));
  const double *wavelength = gv_catalogue_get_wavelength (catalogue);
  std::string csv = dir_->path ("exported-spectrum.csv");
  g_remove (csv.c_str ());

  g_action_group_activate_action (G_ACTION_GROUP (window_), "export-spectrum", nullptr);
  std::string suggested;
  choose_in_chooser (csv, &suggested);
  if (HasFatalFailure ())
    return;
  EXPECT_EQ (suggested, "galaxy-" + std::to_string (id) + "-spectrum.csv");
  ASSERT_TRUE (g_file_test (csv.c_str (), G_FILE_TEST_IS_REGULAR))
      << (gv_window_get_message (window_) ?: "no message");

  std::ifstream in (csv);
  std::string line;
  ASSERT_TRUE (std::getline (in, line));
  EXPECT_EQ (line.rfind ("# ID " + std::to_string (id) + " ", 0), 0u) << line;
  ASSERT_TRUE (std::getline (in, line));
  EXPECT_EQ (line, "wavelength,flux,ivar,smoothed_flux");
  int rows = 0, good = 0;
  while (std::getline (in, line))
    {
      std::vector<std::string> fields = split (line, ',');
      ASSERT_EQ (fields.size (), 4u) << "line " << rows + 3 << ": " << line;
      ASSERT_LT (rows, n) << "more lines than pixels";
      int i = rows++;
      EXPECT_NEAR (parse_number (fields[0]), wavelength[i], 1e-6 * wavelength[i]) << line;
      EXPECT_EQ ((float) parse_number (fields[2]), ivar[i]) << line;
      if (ivar[i] > 0)
        {
          good++;
          for (int f = 0; f < 4; f++)
            EXPECT_TRUE (std::isfinite (parse_number (fields[f])))
                << "line " << i + 3 << " field " << f << ": " << line;
          EXPECT_EQ ((float) parse_number (fields[1]), flux[i]) << line;
        }
    }
  EXPECT_EQ (rows, n);
  EXPECT_GT (good, n / 2) << "too few good pixels for the test to mean anything";
}

/* Export Selection…: the rows the grid shows (here those the filter keeps), in its order, as a
 * FITS catalogue that the core library opens. */
TEST_F (Viewer, ExportSelectionWritesTheShownRowsAsACatalogue)
{
  GvCatalogue *catalogue = gv_window_get_catalogue (window_);
  const double *z = gv_catalogue_get_column (catalogue, "Z");
  ASSERT_NE (z, nullptr);
  std::vector<gint64> expected_ids;
  for (int i = 0; i < kGalaxies; i++)
    if (z[i] < 0.2)
      expected_ids.push_back (gv_catalogue_get_ids (catalogue)[i]);
  ASSERT_GT (expected_ids.size (), 1u);
  ASSERT_LT (expected_ids.size (), (size_t) kGalaxies);
  GvGalaxyGrid *grid = gv_window_get_grid (window_);
  ASSERT_TRUE (gv_galaxy_grid_set_filter_text (grid, "Z < 0.2", nullptr));
  ASSERT_TRUE (spin_until ([&] { return gv_galaxy_grid_get_n_shown (grid) == expected_ids.size (); }));
  gsize n_shown = 0;
  gint64 *shown = gv_galaxy_grid_dup_shown_rows (grid, &n_shown);
  std::vector<gint64> shown_ids;
  for (gsize i = 0; i < n_shown; i++)
    shown_ids.push_back (gv_catalogue_get_ids (catalogue)[shown[i]]);
  g_free (shown);

  std::string fits = dir_->path ("exported-selection.fits");
  g_remove (fits.c_str ());
  g_action_group_activate_action (G_ACTION_GROUP (window_), "export-selection", nullptr);
  std::string suggested;
  choose_in_chooser (fits, &suggested);
  if (HasFatalFailure ())
    return;
  EXPECT_EQ (suggested, "sim-selection.fits");
  /* Written on a worker thread, reported when done. */
  ASSERT_TRUE (spin_until ([this] { return gv_window_get_message (window_) != nullptr; }, 60));
  std::string message = gv_window_get_message (window_);
  EXPECT_NE (message.find (fits), std::string::npos) << message;
  EXPECT_NE (message.find (std::to_string (expected_ids.size ())), std::string::npos) << message;

  GError *error = nullptr;
  AclipCatalogue *exported = aclip_catalogue_open (fits.c_str (), &error);
  ASSERT_NE (exported, nullptr) << error->message;
  gint64 n_rows = aclip_catalogue_n_rows (exported);
  ASSERT_EQ (n_rows, (gint64) expected_ids.size ());
  std::vector<gint64> ids (n_rows);
  EXPECT_TRUE (aclip_catalogue_read_ids (exported, 0, n_rows, ids.data (), &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  EXPECT_EQ (ids, shown_ids) << "not the grid's rows in its order";
  std::vector<gint64> sorted = ids;
  std::sort (sorted.begin (), sorted.end ());
  std::sort (expected_ids.begin (), expected_ids.end ());
  EXPECT_EQ (sorted, expected_ids) << "not the galaxies with Z < 0.2";
  EXPECT_TRUE (aclip_catalogue_has_images (exported));
  EXPECT_EQ (aclip_catalogue_image_width (exported), 64);
  EXPECT_EQ (aclip_catalogue_n_wave (exported), gv_catalogue_get_n_wave (catalogue));
  aclip_catalogue_free (exported);
}

/* Closing the window while an export's chooser is open takes the chooser with it: the
 * chooser's answer would otherwise reach a window that is gone. */
TEST_F (Viewer, ClosingTheWindowClosesItsExportChooser)
{
  g_action_group_activate_action (G_ACTION_GROUP (window_), "export-image", nullptr);
  ASSERT_TRUE (spin_until ([] { return visible_file_chooser () != nullptr; }));
  GtkFileChooserDialog *chooser = visible_file_chooser ();
  g_object_ref (chooser);
  g_signal_handlers_disconnect_by_data (window_, this);
  gtk_window_destroy (GTK_WINDOW (window_));
  g_object_unref (window_);
  window_ = nullptr;
  EXPECT_FALSE (gtk_widget_get_visible (GTK_WIDGET (chooser)));
  EXPECT_EQ (visible_file_chooser (), nullptr);
  g_object_unref (chooser);
}

TEST_F (Viewer, NoGtk3InTheProcess)
{
  std::ifstream maps ("/proc/self/maps");
  ASSERT_TRUE (maps.good ());
  std::string line;
  int n_lines = 0, n_gtk4 = 0;
  while (std::getline (maps, line))
    {
      n_lines++;
      EXPECT_EQ (line.find ("libgtk-3"), std::string::npos) << line;
      EXPECT_EQ (line.find ("libpeas-gtk"), std::string::npos) << line;
      n_gtk4 += line.find ("libgtk-4") != std::string::npos;
    }
  EXPECT_GT (n_lines, 0);
  EXPECT_GT (n_gtk4, 0) << "GTK 4 should be mapped: is /proc/self/maps read correctly?";
}

TEST_F (Viewer, ScreenshotOfTheWindowIsNotBlank)
{
  select_row_by_id (5);
  /* Let the thumbnails render and a few frames be drawn. */
  spin_for (3.0);

  GtkWidget *widget = GTK_WIDGET (window_);
  int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  ASSERT_GT (width, 200);
  ASSERT_GT (height, 200);

  /* The window's last frame as a render node. It is empty while a redraw is pending (a
   * thumbnail arriving, say): then wait for the next frame. */
  GdkPaintable *paintable = gtk_widget_paintable_new (widget);
  GskRenderNode *node = nullptr;
  spin_until (
      [&] {
        GtkSnapshot *snapshot = gtk_snapshot_new ();
        gdk_paintable_snapshot (paintable, snapshot, width, height);
        node = gtk_snapshot_free_to_node (snapshot);
        return node != nullptr;
      },
      10);
  ASSERT_NE (node, nullptr) << "the window was never drawn";
  GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (widget));
  graphene_rect_t bounds = GRAPHENE_RECT_INIT (0, 0, (float) width, (float) height);
  GdkTexture *texture = gsk_renderer_render_texture (renderer, node, &bounds);
  gsk_render_node_unref (node);
  g_object_unref (paintable);
  ASSERT_NE (texture, nullptr);

  std::string folder = GV_BUILD_ROOT "/tests/screenshots";
  g_mkdir_with_parents (folder.c_str (), 0755);
  std::string path = folder + "/galaxy-viewer-window.png";
  EXPECT_TRUE (gdk_texture_save_to_png (texture, path.c_str ()));
  std::cout << "Screenshot of the window: " << path << std::endl;
  RecordProperty ("screenshot", path);

  /* Not blank: the luminance varies across the window (a flat window has variance ~0; the
   * thumbnails, image and spectrum give thousands). */
  int tw = gdk_texture_get_width (texture), th = gdk_texture_get_height (texture);
  std::vector<guchar> pixels ((size_t) tw * th * 4);
  gdk_texture_download (texture, pixels.data (), (gsize) tw * 4);
  double sum = 0, sum2 = 0;
  size_t n = (size_t) tw * th, n_dark = 0;
  for (size_t i = 0; i < n; i++)
    {
      /* Cairo's ARGB32 in memory order on little-endian: B, G, R, A. */
      double y = 0.0722 * pixels[4 * i] + 0.7152 * pixels[4 * i + 1] + 0.2126 * pixels[4 * i + 2];
      sum += y;
      sum2 += y * y;
      n_dark += y < 40;
    }
  double mean = sum / n, variance = sum2 / n - mean * mean;
  std::cout << "Luminance mean " << mean << ", variance " << variance << ", dark pixels "
            << 100.0 * n_dark / n << "%" << std::endl;
  EXPECT_GT (variance, 200.0) << "the screenshot looks blank";
  /* The galaxy thumbnails and the image are mostly dark sky: some part of the window is. */
  EXPECT_GT (n_dark, n / 100) << "no thumbnails or image visible";
  g_object_unref (texture);
}

} // namespace
