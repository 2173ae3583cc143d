/* test-gv-window.cc — the application and its window on a real display (under xvfb-run): a
 * small simulated catalogue opened off the main thread, the first galaxy shown, the example
 * plugin's panel following the selection made by ID, the detail view showing the galaxy's
 * image and spectrum, a filter, the Plugins list, preferences, unloading (and the window's
 * clean-up of what a leaky plugin leaves), the addins unloaded in the window's dispose, no GTK 3
 * in the process, and a screenshot of the whole window saved under the build tree and checked
 * not blank. */
#include "test-support.h"

#include <gtk/gtk.h>
#include <libpeas/peas.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "gv-application.h"
#include "gv-config.h"
#include "gv-plugins-dialog.h"
#include "gv-preferences-dialog.h"
#include "gv-window.h"

namespace {

const int kGalaxies = 60;

/* Runs the main loop until `done` holds or `seconds` pass; returns `done`'s last value. */
bool
spin_until (const std::function<bool ()> &done, double seconds = 20)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  while (!done ())
    {
      if (g_get_monotonic_time () > deadline)
        return false;
      g_main_context_iteration (nullptr, FALSE);
      g_usleep (1000);
    }
  return true;
}

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

class Viewer : public ::testing::Test {
protected:
  static void SetUpTestSuite ()
  {
    /* A critical from GTK or from us is a bug: make it fail the test (it aborts). */
    g_log_set_always_fatal ((GLogLevelFlags) (G_LOG_LEVEL_CRITICAL | G_LOG_FATAL_MASK));
    dir_ = new TempDir ();
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

  static TempDir *dir_;
  static std::string path_;
  static GvApplication *app_;
  GvWindow *window_ = nullptr;
  std::vector<gint64> selection_ids_;
};

TempDir *Viewer::dir_ = nullptr;
std::string Viewer::path_;
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
