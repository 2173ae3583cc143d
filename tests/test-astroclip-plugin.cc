/* test-astroclip-plugin.cc — the AstroCLIP plugin in the viewer, on a real display (under
 * xvfb-run): a small simulated catalogue with a tiny model and its embeddings (made here by
 * $ASTROCLIP); the plugin loads with its five panels; selecting galaxies fills the Similar panel
 * in every mode with k neighbours in descending order of similarity whose IDs are those of
 * `astroclip search`; a thumbnail click and a map click select galaxies; the Properties panel
 * shows numbers; a tiny training run started from the panel reports progress, is cancelled
 * and resumed to the end; unloading and reloading the plugin leaves the viewer working; and a
 * screenshot of the window with the plugin's panels is saved and checked not blank. */
#include "test-astroclip-support.h"
#include "test-file-chooser.h"

#include <gtk/gtk.h>
#include <libpeas/peas.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <random>
#include <functional>
#include <iostream>
#include <unistd.h>

#include "../plugin/astroclip/gv-astroclip-engine.h"
#include "aclip-fits.h"
#include "../plugin/astroclip/gv-astroclip-map.h"
#include "../plugin/astroclip/gv-astroclip-panels.h"
#include "../plugin/astroclip/gv-astroclip-trainer.h" /* the status enum only */
#include "gv-application.h"
#include "gv-config.h"
#include "gv-window.h"

namespace {

const int kGalaxies = 120;

/* test-file-chooser.h's main-loop wait, with this suite's 30-second default. */
bool
spin_until (const std::function<bool ()> &done, double seconds = 30)
{
  return file_chooser_test::spin_until (done, seconds);
}

void
spin_for (double seconds)
{
  spin_until ([] { return false; }, seconds);
}

template <typename T>
T *
panel_data (GvWindow *window, const char *panel, const char *key)
{
  GtkWidget *widget = gv_window_get_panel (window, panel);
  return widget ? static_cast<T *> (g_object_get_data (G_OBJECT (widget), key)) : nullptr;
}

class Plugin : public ::testing::Test {
protected:
  static void SetUpTestSuite ()
  {
    dir_ = new TempDir ();
    pipeline_ = new AstroclipPipeline ();
    /* Software rendering without GL: Mesa's EGL, which GTK would otherwise set up on an X
     * display, keeps allocations LeakSanitizer reports from an unloaded driver (no stack to
     * suppress them by) — and the tests need no GL. */
    g_setenv ("GDK_DEBUG", "gl-disable", TRUE);
    /* As g_application_run would: GtkRecentManager records the program with the files the
     * file chooser saves, and GLib's bookmark file crashes reading back an entry without. */
    g_set_prgname ("test-astroclip-plugin");
    /* GIO (2.74) loses the MIME tables it read before its MIME folders were first asked for,
     * which the file chooser's icons do (104 bytes LeakSanitizer reports from libgio; see
     * test-gv-window.cc): ask first. */
    g_content_type_get_mime_dirs ();
    g_setenv ("GSK_RENDERER", "cairo", TRUE);
    g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
    g_setenv ("GSETTINGS_SCHEMA_DIR", GV_BUILD_ROOT "/data", TRUE);
    g_setenv ("GALAXY_VIEWER_PLUGIN_PATH", GV_BUILD_ROOT "/plugin", TRUE);
    g_setenv ("XDG_DATA_HOME", dir_->path ("data").c_str (), TRUE);
    g_setenv ("XDG_CACHE_HOME", dir_->path ("cache").c_str (), TRUE);
    ok_ = astroclip_make_pipeline (*dir_, kGalaxies, pipeline_);
    if (!ok_)
      return;
    /* The tiny model is the "default" one here. */
    g_setenv ("GALAXY_VIEWER_MODEL", pipeline_->model.c_str (), TRUE);

    GSettings *settings = g_settings_new (GV_APPLICATION_ID);
    const char *enabled[] = { "astroclip", nullptr };
    g_settings_set_strv (settings, "enabled-plugins", enabled);
    g_object_unref (settings);

    app_ = gv_application_new ();
    GError *error = nullptr;
    ASSERT_TRUE (g_application_register (G_APPLICATION (app_), nullptr, &error))
        << (error ? error->message : "");
    g_application_hold (G_APPLICATION (app_));
  }

  static void TearDownTestSuite ()
  {
    if (app_ != nullptr) {
      g_application_release (G_APPLICATION (app_));
      g_clear_object (&app_);
    }
    delete pipeline_;
    delete dir_;
  }

  void SetUp () override
  {
    ASSERT_TRUE (ok_) << "the tiny pipeline failed";
    ASSERT_NE (app_, nullptr);
    PeasPluginInfo *info =
        peas_engine_get_plugin_info (gv_application_get_engine (app_), "astroclip");
    ASSERT_NE (info, nullptr) << "astroclip.plugin not found under " GV_BUILD_ROOT "/plugin";
    ASSERT_TRUE (peas_plugin_info_is_loaded (info)) << "the astroclip plugin is not loaded";

    window_ = gv_window_new (app_);
    g_object_ref (window_);
    gtk_window_set_default_size (GTK_WINDOW (window_), 1500, 950);
    gtk_window_present (GTK_WINDOW (window_));
    GFile *file = g_file_new_for_path (pipeline_->catalogue.c_str ());
    gv_window_open (window_, file);
    g_object_unref (file);
    ASSERT_TRUE (spin_until ([this] { return gv_window_get_catalogue (window_) != nullptr; }));
    ASSERT_TRUE (spin_until ([this] { return gv_window_get_selected_galaxy (window_) != nullptr; }));
    ASSERT_NE (gv_window_get_panel (window_, GV_ASTROCLIP_PANEL_SIMILAR), nullptr);
  }

  void TearDown () override
  {
    if (window_ != nullptr) {
      gtk_window_destroy (GTK_WINDOW (window_));
      g_object_unref (window_);
      window_ = nullptr;
    }
    spin_for (0.2);
  }

  GvAstroclipNeighbours *neighbours ()
  {
    return panel_data<GvAstroclipNeighbours> (window_, GV_ASTROCLIP_PANEL_SIMILAR,
                                              "astroclip-neighbours");
  }

  /* Selects the galaxy and waits for the Similar panel to show its neighbours in `mode`. */
  GvAstroclipNeighbours *select_and_wait (gint64 id, AclipSearchMode mode, int k)
  {
    auto *dropdown = panel_data<GtkDropDown> (window_, GV_ASTROCLIP_PANEL_SIMILAR, "astroclip-mode");
    auto *spin = panel_data<GtkSpinButton> (window_, GV_ASTROCLIP_PANEL_SIMILAR, "astroclip-k");
    EXPECT_NE (dropdown, nullptr);
    EXPECT_NE (spin, nullptr);
    if (!dropdown || !spin)
      return nullptr;
    gtk_drop_down_set_selected (dropdown, mode);
    gtk_spin_button_set_value (spin, k);
    GvGalaxy *selected = gv_window_get_selected_galaxy (window_);
    if (selected == nullptr || gv_galaxy_get_id (selected) != id) {
      EXPECT_TRUE (gv_window_select_id (window_, id));
    }
    bool done = spin_until ([&] {
      GvAstroclipNeighbours *n = neighbours ();
      return n && n->query_id == id && n->mode == mode && n->n == k;
    });
    GtkLabel *status = panel_data<GtkLabel> (window_, GV_ASTROCLIP_PANEL_SIMILAR, "astroclip-status");
    EXPECT_TRUE (done) << "no neighbours for galaxy " << id << " in mode "
                       << aclip_search_mode_name (mode) << ": "
                       << (status ? gtk_label_get_text (status) : "");
    return done ? neighbours () : nullptr;
  }

  /* Brings a panel to the front and lets the stack's transition end. */
  void show_panel (const char *id)
  {
    gv_window_present_panel (window_, id);
    spin_for (0.5);
    EXPECT_TRUE (spin_until ([&] {
      return !gtk_stack_get_transition_running (gv_window_get_panel_stack (window_));
    }));
    spin_for (0.5);
  }

  /* Renders the window into <build>/tests/screenshots/NAME; the path, or "" on failure. */
  std::string save_screenshot (const char *name)
  {
    GtkWidget *widget = GTK_WIDGET (window_);
    int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
    if (width < 200 || height < 200)
      return "";
    GdkPaintable *paintable = gtk_widget_paintable_new (widget);
    GtkSnapshot *snapshot = gtk_snapshot_new ();
    gdk_paintable_snapshot (paintable, snapshot, width, height);
    GskRenderNode *node = gtk_snapshot_free_to_node (snapshot);
    g_object_unref (paintable);
    if (node == nullptr)
      return "";
    GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (widget));
    graphene_rect_t bounds = GRAPHENE_RECT_INIT (0, 0, (float) width, (float) height);
    GdkTexture *texture = gsk_renderer_render_texture (renderer, node, &bounds);
    gsk_render_node_unref (node);
    std::string folder = GV_BUILD_ROOT "/tests/screenshots";
    g_mkdir_with_parents (folder.c_str (), 0755);
    std::string path = folder + "/" + name;
    bool saved = texture && gdk_texture_save_to_png (texture, path.c_str ());
    g_clear_object (&texture);
    return saved ? path : "";
  }

  static TempDir *dir_;
  static AstroclipPipeline *pipeline_;
  static GvApplication *app_;
  static bool ok_;
  GvWindow *window_ = nullptr;
};

TempDir *Plugin::dir_ = nullptr;
AstroclipPipeline *Plugin::pipeline_ = nullptr;
GvApplication *Plugin::app_ = nullptr;
bool Plugin::ok_ = false;

TEST_F (Plugin, LoadsItsPanels)
{
  for (const char *id : { GV_ASTROCLIP_PANEL_SIMILAR, GV_ASTROCLIP_PANEL_PROPERTIES,
                          GV_ASTROCLIP_PANEL_MAP, GV_ASTROCLIP_PANEL_TRAINING,
                          GV_ASTROCLIP_PANEL_MODEL })
    EXPECT_NE (gv_window_get_panel (window_, id), nullptr) << id;
  /* The model panel names the model and shows its configuration. */
  auto *path = panel_data<GtkLabel> (window_, GV_ASTROCLIP_PANEL_MODEL, "astroclip-model-path");
  auto *config = panel_data<GtkLabel> (window_, GV_ASTROCLIP_PANEL_MODEL, "astroclip-model-config");
  ASSERT_TRUE (spin_until ([&] {
    return std::string (gtk_label_get_text (path)) == pipeline_->model;
  })) << gtk_label_get_text (path);
  EXPECT_NE (std::string (gtk_label_get_text (config)).find ("Image encoder"), std::string::npos);
}

TEST_F (Plugin, SimilarPanelAgreesWithAstroclipSearchInEveryMode)
{
  const gint64 *ids = gv_catalogue_get_ids (gv_window_get_catalogue (window_));
  const int k = 9;
  for (gint64 row : { (gint64) 2, (gint64) 77 }) {
    for (int m = 0; m < ACLIP_N_SEARCH_MODES; m++) {
      AclipSearchMode mode = (AclipSearchMode) m;
      GvAstroclipNeighbours *n = select_and_wait (ids[row], mode, k);
      ASSERT_NE (n, nullptr);
      std::vector<SearchHit> expected =
          astroclip_search_row (*pipeline_, row, aclip_search_mode_name (mode), k);
      ASSERT_EQ ((int) expected.size (), k);
      for (int i = 0; i < k; i++) {
        EXPECT_EQ (n->ids[i], expected[i].id) << aclip_search_mode_name (mode) << " rank " << i;
        EXPECT_NEAR (n->similarity[i], expected[i].similarity, 1e-6);
        if (i > 0) {
          EXPECT_GE (n->similarity[i - 1], n->similarity[i]);
        }
      }
      /* One thumbnail button per neighbour. */
      auto *flow = panel_data<GtkWidget> (window_, GV_ASTROCLIP_PANEL_SIMILAR, "astroclip-flow");
      int children = 0;
      for (GtkWidget *c = gtk_widget_get_first_child (flow); c; c = gtk_widget_get_next_sibling (c))
        children++;
      EXPECT_EQ (children, k);
      int latency = GPOINTER_TO_INT (panel_data<void> (window_, GV_ASTROCLIP_PANEL_SIMILAR,
                                                        "astroclip-latency-us"));
      std::printf ("[measured] row %" G_GINT64_FORMAT ", %s: neighbours shown %.1f ms after the "
                   "request\n",
                   row, aclip_search_mode_name (mode), latency / 1000.0);
    }
  }
}

TEST_F (Plugin, ClickingANeighbourSelectsIt)
{
  const gint64 *ids = gv_catalogue_get_ids (gv_window_get_catalogue (window_));
  GvAstroclipNeighbours *n = select_and_wait (ids[10], ACLIP_SEARCH_IMAGE_IMAGE, 6);
  ASSERT_NE (n, nullptr);
  gint64 target = n->ids[2];
  auto *flow = panel_data<GtkWidget> (window_, GV_ASTROCLIP_PANEL_SIMILAR, "astroclip-flow");
  GtkWidget *child = gtk_widget_get_first_child (flow);
  for (int i = 0; i < 2 && child; i++)
    child = gtk_widget_get_next_sibling (child);
  ASSERT_NE (child, nullptr);
  GtkWidget *button = gtk_flow_box_child_get_child (GTK_FLOW_BOX_CHILD (child));
  ASSERT_TRUE (GTK_IS_BUTTON (button));
  g_signal_emit_by_name (button, "clicked");
  ASSERT_TRUE (spin_until ([&] {
    GvGalaxy *g = gv_window_get_selected_galaxy (window_);
    return g && gv_galaxy_get_id (g) == target;
  }));
  /* And the panel follows the new selection. */
  ASSERT_TRUE (spin_until ([&] { return neighbours () && neighbours ()->query_id == target; }));
}

TEST_F (Plugin, NeighbourListExportsAsCsvAndFits)
{
  const gint64 *ids = gv_catalogue_get_ids (gv_window_get_catalogue (window_));
  GvAstroclipNeighbours *n = select_and_wait (ids[7], ACLIP_SEARCH_SPECTRUM_IMAGE, 5);
  ASSERT_NE (n, nullptr);
  std::vector<gint64> expected (n->ids, n->ids + n->n);
  TempDir out;
  for (const char *kind : { "csv", "fits" }) {
    std::string action = std::string ("astroclip-export-") + kind;
    ASSERT_TRUE (g_action_group_has_action (G_ACTION_GROUP (window_), action.c_str ()));
    g_action_group_activate_action (G_ACTION_GROUP (window_), action.c_str (), nullptr);
    GtkFileChooserDialog *chooser = nullptr;
    ASSERT_TRUE (spin_until ([&] { return (chooser = visible_file_chooser ()) != nullptr; }, 10))
        << "no file chooser for " << action;
    std::string path = out.path (std::string ("neighbours.") + kind);
    accept_file_chooser (chooser, path);
    if (HasFatalFailure ())
      return;
    ASSERT_TRUE (spin_until ([&] {
      const char *message = gv_window_get_message (window_);
      return message && strstr (message, path.c_str ()) != nullptr;
    })) << (gv_window_get_message (window_) ? gv_window_get_message (window_) : "no message");
    if (strcmp (kind, "csv") == 0) {
      g_autofree char *text = nullptr;
      ASSERT_TRUE (g_file_get_contents (path.c_str (), &text, nullptr, nullptr));
      g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
      ASSERT_GE (g_strv_length (lines), (guint) expected.size () + 1);
      EXPECT_TRUE (g_str_has_prefix (lines[0], "query_id,rank,id,similarity")) << lines[0];
      for (size_t i = 0; i < expected.size (); i++) {
        g_auto (GStrv) fields = g_strsplit (lines[i + 1], ",", 4);
        ASSERT_GE (g_strv_length (fields), 3u);
        EXPECT_EQ (g_ascii_strtoll (fields[0], nullptr, 10), ids[7]);
        EXPECT_EQ (g_ascii_strtoll (fields[1], nullptr, 10), (gint64) i + 1);
        EXPECT_EQ (g_ascii_strtoll (fields[2], nullptr, 10), expected[i]);
      }
    } else {
      ErrorHolder error;
      AclipFits *f = aclip_fits_open (path.c_str (), FALSE, error.out ());
      ASSERT_NE (f, nullptr) << error->message;
      ASSERT_TRUE (aclip_fits_move_to_name (f, "NEIGHBOURS", nullptr, error.out ()))
          << error->message;
      gint64 n_rows = 0;
      AclipFitsColumn id_column;
      std::vector<gint64> got (expected.size ());
      EXPECT_TRUE (aclip_fits_table_n_rows (f, &n_rows, error.out ()));
      EXPECT_EQ (n_rows, (gint64) expected.size ());
      EXPECT_TRUE (aclip_fits_column (f, "ID", &id_column, error.out ()) && n_rows == (gint64) got.size ()
                   && aclip_fits_read_column_int64 (f, id_column.number, 0, 0, n_rows, got.data (),
                                                    error.out ()))
          << (error.error ? error->message : "");
      EXPECT_EQ (got, expected);
      aclip_fits_close (f);
    }
  }
}

/* Opens `path` in the fixture's window and waits for it. */
#define OPEN_AND_WAIT(path)                                                                   \
  do {                                                                                       \
    GFile *file_ = g_file_new_for_path ((path).c_str ());                                    \
    gv_window_open (window_, file_);                                                         \
    g_object_unref (file_);                                                                  \
    ASSERT_TRUE (spin_until ([&] {                                                           \
      GvCatalogue *c_ = gv_window_get_catalogue (window_);                                   \
      return c_ && std::string (gv_catalogue_get_path (c_)) == (path);                       \
    }));                                                                                     \
  } while (0)

TEST_F (Plugin, GalaxyMissingFromTheEmbeddingsIsEmbeddedOnTheFly)
{
  /* The catalogue under another name, beside embeddings that lack row 5's galaxy. */
  TempDir dir;
  std::string path = dir.path ("partial.fits");
  ASSERT_EQ (symlink (pipeline_->catalogue.c_str (), path.c_str ()), 0);
  ErrorHolder error;
  g_autoptr (AclipEmbeddings) full =
      aclip_embeddings_open (pipeline_->embeddings.c_str (), error.out ());
  ASSERT_NE (full, nullptr);
  gint64 n = aclip_embeddings_n_rows (full);
  int d = aclip_embeddings_dim (full);
  const gint64 missing = 5;
  {
    g_autoptr (AclipEmbeddings) partial = aclip_embeddings_new (n - 1, d, TRUE, TRUE, error.out ());
    for (gint64 r = 0, w = 0; r < n; r++) {
      if (r == missing)
        continue;
      ASSERT_TRUE (aclip_embeddings_set_row (
          partial, w++, aclip_embeddings_ids (full)[r],
          aclip_embeddings_row (full, ACLIP_MODALITY_IMAGE, r),
          aclip_embeddings_row (full, ACLIP_MODALITY_SPECTRUM, r), error.out ()));
    }
    aclip_embeddings_set_provenance (partial, aclip_embeddings_model (full), "partial.fits");
    ASSERT_TRUE (aclip_embeddings_save (partial, dir.path ("partial.embeddings.fits").c_str (),
                                        error.out ()));
  }
  OPEN_AND_WAIT (path);
  gint64 id = aclip_embeddings_ids (full)[missing];
  GvAstroclipNeighbours *nb = select_and_wait (id, ACLIP_SEARCH_BOTH, 8);
  ASSERT_NE (nb, nullptr);
  EXPECT_EQ (GPOINTER_TO_INT (panel_data<void> (window_, GV_ASTROCLIP_PANEL_SIMILAR,
                                                 "astroclip-embedded")),
             1);
  gint64 row = gv_catalogue_find_id (gv_window_get_catalogue (window_), id);
  std::vector<SearchHit> expected = astroclip_search_row (*pipeline_, row, "both", 8);
  ASSERT_EQ ((int) expected.size (), 8);
  for (int i = 0; i < 8; i++) {
    EXPECT_EQ (nb->ids[i], expected[i].id) << "rank " << i;
    EXPECT_NEAR (nb->similarity[i], expected[i].similarity, 1e-4);
  }
}

TEST_F (Plugin, CatalogueWithoutEmbeddingsIsEmbeddedFromThePanel)
{
  TempDir dir;
  std::string path = dir.path ("bare.fits");
  ASSERT_EQ (symlink (pipeline_->catalogue.c_str (), path.c_str ()), 0);
  OPEN_AND_WAIT (path);
  auto *button = panel_data<GtkWidget> (window_, GV_ASTROCLIP_PANEL_SIMILAR, "astroclip-embed");
  auto *status = panel_data<GtkLabel> (window_, GV_ASTROCLIP_PANEL_SIMILAR, "astroclip-status");
  ASSERT_NE (button, nullptr);
  ASSERT_TRUE (spin_until ([&] { return gtk_widget_get_visible (button); }))
      << "no offer to embed: " << gtk_label_get_text (status);
  EXPECT_NE (std::string (gtk_label_get_text (status)).find ("no embeddings"), std::string::npos)
      << gtk_label_get_text (status);
  g_signal_emit_by_name (button, "clicked");
  /* The embedding runs in the Training panel; then the neighbours come. */
  const gint64 *ids = gv_catalogue_get_ids (gv_window_get_catalogue (window_));
  ASSERT_TRUE (spin_until ([&] {
    GvGalaxy *g = gv_window_get_selected_galaxy (window_);
    GvAstroclipNeighbours *n = neighbours ();
    return g && gv_galaxy_get_catalogue (g) == gv_window_get_catalogue (window_) && n &&
           n->query_id == gv_galaxy_get_id (g) && n->n > 0;
  }, 300)) << gtk_label_get_text (status);
  EXPECT_TRUE (g_file_test (dir.path ("bare.embeddings.fits").c_str (), G_FILE_TEST_IS_REGULAR));
  EXPECT_FALSE (gtk_widget_get_visible (button));
  ASSERT_NE (select_and_wait (ids[3], ACLIP_SEARCH_SPECTRUM_IMAGE, 7), nullptr);
}

TEST_F (Plugin, PropertiesPanelShowsNumbers)
{
  GvCatalogue *catalogue = gv_window_get_catalogue (window_);
  const gint64 *ids = gv_catalogue_get_ids (catalogue);
  ASSERT_NE (select_and_wait (ids[20], ACLIP_SEARCH_BOTH, 12), nullptr);
  auto *estimates = panel_data<GvAstroclipEstimate> (window_, GV_ASTROCLIP_PANEL_PROPERTIES,
                                                     "astroclip-estimates");
  ASSERT_NE (estimates, nullptr);
  ASSERT_TRUE (spin_until ([&] {
    for (int i = 0; i < 6; i++)
      if (!std::isfinite (estimates[i].value))
        return false;
    return true;
  })) << "the estimates did not come";
  const double *z = gv_catalogue_get_column (catalogue, "Z");
  double zmin = INFINITY, zmax = -INFINITY;
  for (gint64 r = 0; r < gv_catalogue_get_n_rows (catalogue); r++)
    zmin = std::min (zmin, z[r]), zmax = std::max (zmax, z[r]);
  for (int m = 0; m < 3; m++) {
    GvAstroclipEstimate e = estimates[m * 2]; /* Z */
    EXPECT_EQ (e.n_used, GV_ASTROCLIP_ESTIMATE_K);
    EXPECT_GE (e.value, zmin);
    EXPECT_LE (e.value, zmax);
    EXPECT_GE (e.spread, 0.0);
    EXPECT_TRUE (std::isfinite (estimates[m * 2 + 1].value)); /* log M* */
  }
}

TEST_F (Plugin, MapShowsEveryGalaxyAndAClickSelects)
{
  auto *view = panel_data<GtkWidget> (window_, GV_ASTROCLIP_PANEL_MAP, "astroclip-map-view");
  ASSERT_NE (view, nullptr);
  gv_window_present_panel (window_, GV_ASTROCLIP_PANEL_MAP);
  ASSERT_TRUE (spin_until ([&] { return gv_astroclip_map_view_get_n_points (view) == kGalaxies; }));
  ASSERT_TRUE (spin_until ([&] { return gtk_widget_get_width (view) > 0; }));
  double x, y;
  ASSERT_TRUE (gv_astroclip_map_view_point_of_row (view, 42, &x, &y));
  gv_astroclip_map_view_click (view, x, y);
  /* The point clicked is row 42's (or another drawn on the very same spot). */
  ASSERT_TRUE (spin_until ([&] {
    GvGalaxy *g = gv_window_get_selected_galaxy (window_);
    double gx, gy;
    return g && gv_galaxy_get_row (g) != 0 &&
           gv_astroclip_map_view_point_of_row (view, gv_galaxy_get_row (g), &gx, &gy) &&
           std::hypot (gx - x, gy - y) < 0.5;
  }));
}

TEST_F (Plugin, TrainingFromThePanelCanBeCancelledAndResumed)
{
  GtkWidget *panel = gv_window_get_panel (window_, GV_ASTROCLIP_PANEL_TRAINING);
  ASSERT_NE (panel, nullptr);
  gv_window_present_panel (window_, GV_ASTROCLIP_PANEL_TRAINING);
  auto data = [&] (const char *key) { return g_object_get_data (G_OBJECT (panel), key); };
  gtk_drop_down_set_selected (GTK_DROP_DOWN (data ("astroclip-stage")), 0); /* pretrain spectra */
  std::string out = dir_->path ("panel-spectra.ckpt");
  gtk_editable_set_text (GTK_EDITABLE (data ("astroclip-catalogue")), pipeline_->catalogue.c_str ());
  gtk_editable_set_text (GTK_EDITABLE (data ("astroclip-out")), out.c_str ());
  /* Long enough (tens of thousands of tiny steps) never to end before Cancel; the run is
   * cancelled twice and never runs to its end. */
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (data ("astroclip-epochs")), 1000);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (data ("astroclip-batch-size")), 4);
  gtk_editable_set_text (GTK_EDITABLE (data ("astroclip-extra")),
                         "--width 16 --layers 1 --heads 2 --mlp-hidden 32 --window 160 "
                         "--stride 160 --validate-every 0 --max-validation 4 --threads 1 "
                         "--save-every 0");
  /* The trainer object lives in the plugin's module: the test reads the panel's state. */
  auto running = [&] { return gtk_widget_get_sensitive (GTK_WIDGET (data ("astroclip-cancel"))); };
  auto run_status = [&] { return GPOINTER_TO_INT (data ("astroclip-run-status")); };
  auto last_step = [&] { return GPOINTER_TO_INT (data ("astroclip-last-step")); };
  auto n_losses = [&] { return GPOINTER_TO_INT (data ("astroclip-n-losses")); };
  auto *progress = GTK_PROGRESS_BAR (data ("astroclip-progress"));
  auto *status = GTK_LABEL (data ("astroclip-status"));
  g_signal_emit_by_name (data ("astroclip-start"), "clicked");
  ASSERT_TRUE (running ()) << gtk_label_get_text (status);
  EXPECT_EQ (run_status (), GV_ASTROCLIP_TRAINER_RUNNING);
  ASSERT_TRUE (spin_until ([&] { return n_losses () >= 2 || !running (); }, 120))
      << "no progress reported";
  ASSERT_TRUE (running ()) << "the run ended before it could be cancelled: "
                           << gtk_label_get_text (status);
  double fraction = gtk_progress_bar_get_fraction (progress);
  EXPECT_GT (fraction, 0.0);
  EXPECT_LT (fraction, 1.0);
  EXPECT_FALSE (gtk_widget_get_sensitive (GTK_WIDGET (data ("astroclip-resume"))));
  EXPECT_FALSE (gtk_widget_get_sensitive (GTK_WIDGET (data ("astroclip-start"))));

  g_signal_emit_by_name (data ("astroclip-cancel"), "clicked");
  ASSERT_TRUE (spin_until ([&] { return !running (); }, 120));
  EXPECT_EQ (run_status (), GV_ASTROCLIP_TRAINER_STOPPED) << gtk_label_get_text (status);
  EXPECT_TRUE (g_file_test (out.c_str (), G_FILE_TEST_IS_REGULAR));
  EXPECT_TRUE (gtk_widget_get_sensitive (GTK_WIDGET (data ("astroclip-resume"))));
  std::cout << "After Cancel: " << gtk_label_get_text (status) << std::endl;
  int stopped_step = last_step ();
  int curve = n_losses ();
  ASSERT_GT (stopped_step, 0);

  /* Resume goes on from the checkpoint: the steps continue, the curve grows. */
  g_signal_emit_by_name (data ("astroclip-resume"), "clicked");
  ASSERT_TRUE (running ()) << gtk_label_get_text (status);
  ASSERT_TRUE (spin_until ([&] { return last_step () != stopped_step || !running (); }, 120));
  ASSERT_TRUE (running ()) << gtk_label_get_text (status);
  EXPECT_GT (last_step (), stopped_step) << "the resumed run started over";
  EXPECT_GT (n_losses (), curve);
  EXPECT_GT (gtk_progress_bar_get_fraction (progress), 0.0);
  g_signal_emit_by_name (data ("astroclip-cancel"), "clicked");
  ASSERT_TRUE (spin_until ([&] { return !running (); }, 120));
  EXPECT_EQ (run_status (), GV_ASTROCLIP_TRAINER_STOPPED) << gtk_label_get_text (status);
  std::cout << "After Resume and Cancel: " << gtk_label_get_text (status) << std::endl;
}

TEST_F (Plugin, AlignFromThePanelStartsFromTheChosenEncoders)
{
  GtkWidget *panel = gv_window_get_panel (window_, GV_ASTROCLIP_PANEL_TRAINING);
  ASSERT_NE (panel, nullptr);
  gv_window_present_panel (window_, GV_ASTROCLIP_PANEL_TRAINING);
  auto data = [&] (const char *key) { return g_object_get_data (G_OBJECT (panel), key); };
  auto *spectrum_model = GTK_WIDGET (data ("astroclip-spectrum-model"));
  auto *image_model = GTK_WIDGET (data ("astroclip-image-model"));
  auto *status = GTK_LABEL (data ("astroclip-status"));
  auto running = [&] { return gtk_widget_get_sensitive (GTK_WIDGET (data ("astroclip-cancel"))); };
  /* The encoder rows are shown for Align only. */
  gtk_drop_down_set_selected (GTK_DROP_DOWN (data ("astroclip-stage")), 0);
  EXPECT_FALSE (gtk_widget_get_visible (gtk_widget_get_parent (spectrum_model)));
  gtk_drop_down_set_selected (GTK_DROP_DOWN (data ("astroclip-stage")), 2);
  EXPECT_TRUE (gtk_widget_get_visible (gtk_widget_get_parent (spectrum_model)));
  EXPECT_TRUE (gtk_widget_get_visible (gtk_widget_get_parent (image_model)));

  std::string out = dir_->path ("panel-aligned.ckpt");
  gtk_editable_set_text (GTK_EDITABLE (data ("astroclip-catalogue")), pipeline_->catalogue.c_str ());
  gtk_editable_set_text (GTK_EDITABLE (data ("astroclip-out")), out.c_str ());
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (data ("astroclip-batch-size")), 8);
  gtk_editable_set_text (GTK_EDITABLE (data ("astroclip-extra")),
                         "--steps 3 --validate-every 0 --max-validation 8 --threads 1");

  /* A missing encoder is named in the panel and nothing starts. */
  std::string missing = dir_->path ("no-such-spectra.ckpt");
  gtk_editable_set_text (GTK_EDITABLE (spectrum_model), missing.c_str ());
  gtk_editable_set_text (GTK_EDITABLE (image_model), pipeline_->images.c_str ());
  g_signal_emit_by_name (data ("astroclip-start"), "clicked");
  EXPECT_FALSE (running ());
  EXPECT_NE (std::string (gtk_label_get_text (status)).find (missing), std::string::npos)
      << gtk_label_get_text (status);

  /* With the suite's pretrained encoders, Align runs to its end and offers the model. */
  gtk_editable_set_text (GTK_EDITABLE (spectrum_model), pipeline_->spectra.c_str ());
  g_signal_emit_by_name (data ("astroclip-start"), "clicked");
  ASSERT_TRUE (running ()) << gtk_label_get_text (status);
  std::string command = gtk_label_get_text (status);
  /* The command line as shown (each argument quoted for a shell). */
  g_autofree char *spectra = g_shell_quote (pipeline_->spectra.c_str ());
  g_autofree char *images = g_shell_quote (pipeline_->images.c_str ());
  EXPECT_NE (command.find (std::string ("'--spectrum-model' ") + spectra), std::string::npos)
      << command;
  EXPECT_NE (command.find (std::string ("'--image-model' ") + images), std::string::npos)
      << command;
  ASSERT_TRUE (spin_until ([&] { return !running (); }, 300)) << "align did not end";
  EXPECT_EQ (GPOINTER_TO_INT (data ("astroclip-run-status")), GV_ASTROCLIP_TRAINER_FINISHED)
      << gtk_label_get_text (status);
  EXPECT_TRUE (g_file_test (out.c_str (), G_FILE_TEST_IS_REGULAR));
  EXPECT_TRUE (gtk_widget_get_visible (GTK_WIDGET (data ("astroclip-use-model"))));
}

TEST_F (Plugin, UnloadingStopsTheTrainer)
{
  GtkWidget *panel = gv_window_get_panel (window_, GV_ASTROCLIP_PANEL_TRAINING);
  ASSERT_NE (panel, nullptr);
  auto data = [&] (const char *key) { return g_object_get_data (G_OBJECT (panel), key); };
  gtk_drop_down_set_selected (GTK_DROP_DOWN (data ("astroclip-stage")), 0);
  std::string out = dir_->path ("unload-spectra.ckpt");
  gtk_editable_set_text (GTK_EDITABLE (data ("astroclip-catalogue")), pipeline_->catalogue.c_str ());
  gtk_editable_set_text (GTK_EDITABLE (data ("astroclip-out")), out.c_str ());
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (data ("astroclip-epochs")), 200);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (data ("astroclip-batch-size")), 4);
  gtk_editable_set_text (GTK_EDITABLE (data ("astroclip-extra")),
                         "--width 16 --layers 1 --heads 2 --mlp-hidden 32 --window 160 "
                         "--stride 160 --validate-every 0 --max-validation 4 --threads 1");
  g_signal_emit_by_name (data ("astroclip-start"), "clicked");
  int pid = GPOINTER_TO_INT (data ("astroclip-pid"));
  ASSERT_GT (pid, 0);
  ASSERT_TRUE (spin_until ([&] { return GPOINTER_TO_INT (data ("astroclip-n-losses")) >= 1; }, 120));
  std::string proc = "/proc/" + std::to_string (pid);
  EXPECT_TRUE (g_file_test (proc.c_str (), G_FILE_TEST_EXISTS));

  ErrorHolder error;
  ASSERT_TRUE (gv_application_set_plugin_enabled (app_, "astroclip", FALSE, error.out ()));
  EXPECT_EQ (gv_window_get_panel (window_, GV_ASTROCLIP_PANEL_TRAINING), nullptr);
  /* SIGTERM: the trainer saves and exits; the child watch reaps it. */
  EXPECT_TRUE (spin_until ([&] { return !g_file_test (proc.c_str (), G_FILE_TEST_EXISTS); }, 60))
      << "the trainer (pid " << pid << ") still runs after the plugin was unloaded";
  EXPECT_TRUE (g_file_test (out.c_str (), G_FILE_TEST_IS_REGULAR));
  ASSERT_TRUE (gv_application_set_plugin_enabled (app_, "astroclip", TRUE, error.out ()));
}

TEST_F (Plugin, UnloadAndReloadLeaveTheViewerWorking)
{
  const gint64 *ids = gv_catalogue_get_ids (gv_window_get_catalogue (window_));
  ASSERT_NE (select_and_wait (ids[4], ACLIP_SEARCH_BOTH, 5), nullptr);
  /* Unload with a look-up in flight. */
  gv_window_select_id (window_, ids[5]);
  ErrorHolder error;
  ASSERT_TRUE (gv_application_set_plugin_enabled (app_, "astroclip", FALSE, error.out ()))
      << error->message;
  EXPECT_EQ (gv_window_get_panel (window_, GV_ASTROCLIP_PANEL_SIMILAR), nullptr);
  EXPECT_EQ (gv_window_get_panel (window_, GV_ASTROCLIP_PANEL_TRAINING), nullptr);
  spin_for (0.5);
  EXPECT_TRUE (gv_window_select_id (window_, ids[6]));
  ASSERT_TRUE (spin_until ([&] {
    GvGalaxy *g = gv_window_get_selected_galaxy (window_);
    return g && gv_galaxy_get_id (g) == ids[6];
  }));
  ASSERT_TRUE (gv_application_set_plugin_enabled (app_, "astroclip", TRUE, error.out ()))
      << error->message;
  ASSERT_NE (gv_window_get_panel (window_, GV_ASTROCLIP_PANEL_SIMILAR), nullptr);
  ASSERT_NE (select_and_wait (ids[6], ACLIP_SEARCH_BOTH, 5), nullptr);
}

TEST_F (Plugin, ScreenshotWithThePanelsIsNotBlank)
{
  const gint64 *ids = gv_catalogue_get_ids (gv_window_get_catalogue (window_));
  ASSERT_NE (select_and_wait (ids[30], ACLIP_SEARCH_BOTH, 12), nullptr);
  gv_window_present_panel (window_, GV_ASTROCLIP_PANEL_SIMILAR);
  spin_for (3.0); /* thumbnails, overlays, frames */
  EXPECT_TRUE (spin_until ([&] {
    return !gtk_stack_get_transition_running (gv_window_get_panel_stack (window_));
  }));

  std::string path = save_screenshot ("astroclip-similar.png");
  ASSERT_FALSE (path.empty ());
  std::cout << "Screenshot of the window with the AstroCLIP panels: " << path << std::endl;
  RecordProperty ("screenshot", path);
  GdkTexture *texture = gdk_texture_new_from_filename (path.c_str (), nullptr);
  ASSERT_NE (texture, nullptr);
  int tw = gdk_texture_get_width (texture), th = gdk_texture_get_height (texture);
  std::vector<guchar> pixels ((size_t) tw * th * 4);
  gdk_texture_download (texture, pixels.data (), (gsize) tw * 4);
  double sum = 0, sum2 = 0;
  size_t n = (size_t) tw * th, n_dark = 0, n_coloured = 0;
  for (size_t i = 0; i < n; i++) {
    guchar b = pixels[4 * i], g = pixels[4 * i + 1], r = pixels[4 * i + 2];
    double y = 0.0722 * b + 0.7152 * g + 0.2126 * r;
    sum += y;
    sum2 += y * y;
    n_dark += y < 40;
    n_coloured += std::max ({ r, g, b }) - std::min ({ r, g, b }) > 80;
  }
  double mean = sum / n, variance = sum2 / n - mean * mean;
  std::cout << "Luminance mean " << mean << ", variance " << variance << ", dark "
            << 100.0 * n_dark / n << "%, saturated " << 100.0 * n_coloured / n << "%" << std::endl;
  EXPECT_GT (variance, 200.0) << "the screenshot looks blank";
  EXPECT_GT (n_dark, n / 100) << "no thumbnails visible";
  /* The neighbours' coloured frames. */
  EXPECT_GT (n_coloured, (size_t) 500) << "no coloured thumbnail frames visible";
  g_object_unref (texture);

  /* The map panel too, for the note. */
  show_panel (GV_ASTROCLIP_PANEL_MAP);
  std::string map_path = save_screenshot ("astroclip-map.png");
  EXPECT_FALSE (map_path.empty ());
  std::cout << "Screenshot with the Map panel: " << map_path << std::endl;
}

/* The demo (or any catalogue with embeddings beside it) with a real model, for the note's
 * screenshots: GV_ASTROCLIP_DEMO=<catalogue> and GV_ASTROCLIP_DEMO_MODEL=<checkpoint>. */
TEST_F (Plugin, DemoScreenshots)
{
  const char *demo = g_getenv ("GV_ASTROCLIP_DEMO");
  const char *model = g_getenv ("GV_ASTROCLIP_DEMO_MODEL");
  if (demo == nullptr || model == nullptr)
    GTEST_SKIP () << "set GV_ASTROCLIP_DEMO and GV_ASTROCLIP_DEMO_MODEL";
  /* A new window loads the model named here. */
  g_setenv ("GALAXY_VIEWER_MODEL", model, TRUE);
  gtk_window_destroy (GTK_WINDOW (window_));
  g_object_unref (window_);
  window_ = gv_window_new (app_);
  g_object_ref (window_);
  gtk_window_set_default_size (GTK_WINDOW (window_), 1500, 950);
  gtk_window_present (GTK_WINDOW (window_));
  GFile *file = g_file_new_for_path (demo);
  gv_window_open (window_, file);
  g_object_unref (file);
  ASSERT_TRUE (spin_until ([this] { return gv_window_get_catalogue (window_) != nullptr; }, 60));
  const gint64 *ids = gv_catalogue_get_ids (gv_window_get_catalogue (window_));
  GvAstroclipNeighbours *n = select_and_wait (ids[7], ACLIP_SEARCH_BOTH, 12);
  g_setenv ("GALAXY_VIEWER_MODEL", pipeline_->model.c_str (), TRUE);
  ASSERT_NE (n, nullptr);
  int latency = GPOINTER_TO_INT (panel_data<void> (window_, GV_ASTROCLIP_PANEL_SIMILAR,
                                                    "astroclip-latency-us"));
  std::printf ("[measured] demo: neighbours shown %.1f ms after the selection\n", latency / 1e3);
  show_panel (GV_ASTROCLIP_PANEL_SIMILAR);
  spin_for (3.0);
  std::cout << "Demo, Similar: " << save_screenshot ("astroclip-demo-similar.png") << std::endl;
  auto *estimates = panel_data<GvAstroclipEstimate> (window_, GV_ASTROCLIP_PANEL_PROPERTIES,
                                                     "astroclip-estimates");
  spin_until ([&] { return std::isfinite (estimates[2].value); });
  show_panel (GV_ASTROCLIP_PANEL_PROPERTIES);
  std::cout << "Demo, Properties: " << save_screenshot ("astroclip-demo-properties.png")
            << std::endl;
  show_panel (GV_ASTROCLIP_PANEL_MAP);
  spin_for (2.0);
  std::cout << "Demo, Map: " << save_screenshot ("astroclip-demo-map.png") << std::endl;
  show_panel (GV_ASTROCLIP_PANEL_MODEL);
  std::cout << "Demo, Model: " << save_screenshot ("astroclip-demo-model.png") << std::endl;
}

/* The viewer's own path on a 100,000-galaxy catalogue with stored embeddings (beside it, by
 * the plugin's naming rule): from gv_window_select_id to the Similar panel showing the
 * neighbours (the window reads the galaxy off the main thread first), from the addin's
 * selection-changed to the list shown, and of that the plugin's own share (waiting for a worker,
 * then the query and search on it) — the rest is the main loop busy elsewhere, which the first
 * measurement (the viewer without the plugin) shows. GV_ASTROCLIP_BENCH=1; GV_ASTROCLIP_BENCH_N
 * rows. */
TEST_F (Plugin, BenchViewerClickToNeighbours)
{
  if (g_getenv ("GV_ASTROCLIP_BENCH") == nullptr)
    GTEST_SKIP () << "set GV_ASTROCLIP_BENCH=1 to run the benchmark";
  const char *n_text = g_getenv ("GV_ASTROCLIP_BENCH_N");
  gint64 n = n_text ? g_ascii_strtoll (n_text, nullptr, 10) : 100000;
  TempDir dir;
  std::string path = dir.path ("big.fits");
  ASSERT_TRUE (astroclip_write_id_catalogue (path, n));
  {
    g_autoptr (AclipEmbeddings) store = astroclip_random_store (n, 128, 9);
    aclip_embeddings_set_provenance (store, "", "big.fits");
    ErrorHolder error;
    ASSERT_TRUE (aclip_embeddings_save (store, dir.path ("big.embeddings.fits").c_str (),
                                        error.out ()));
  }
  GFile *file = g_file_new_for_path (path.c_str ());
  gv_window_open (window_, file);
  g_object_unref (file);
  ASSERT_TRUE (spin_until ([&] {
    GvCatalogue *c = gv_window_get_catalogue (window_);
    return c && gv_catalogue_get_n_rows (c) == n;
  }, 120));
  /* The embeddings read and indexed: the first galaxy's neighbours shown. */
  ASSERT_TRUE (spin_until ([&] {
    return neighbours () && neighbours ()->query_id == kBenchIdOffset + 1;
  }, 120)) << "the embeddings were not found or read";
  std::vector<double> total, panel, queue, worker, selected, longest;
  {
    /* The viewer alone, for comparison: the plugin unloaded, the longest main-loop iteration
     * in the second after a selection. */
    ErrorHolder error;
    ASSERT_TRUE (gv_application_set_plugin_enabled (app_, "astroclip", FALSE, error.out ()));
    std::vector<double> alone;
    std::mt19937 rng0 (6);
    for (int click = 0; click < 8; click++) {
      gint64 id = kBenchIdOffset + 1 + (gint64) (rng0 () % n);
      ASSERT_TRUE (gv_window_select_id (window_, id));
      gint64 worst = 0, t = g_get_monotonic_time ();
      while (g_get_monotonic_time () - t < G_USEC_PER_SEC) {
        gint64 a = g_get_monotonic_time ();
        g_main_context_iteration (nullptr, FALSE);
        worst = MAX (worst, g_get_monotonic_time () - a);
        g_usleep (1000);
      }
      alone.push_back (worst / 1e3);
    }
    std::sort (alone.begin (), alone.end ());
    std::printf ("[measured] viewer without the plugin: longest main-loop iteration in the "
                 "second after a selection, median %.1f ms\n", alone[alone.size () / 2]);
    ASSERT_TRUE (gv_application_set_plugin_enabled (app_, "astroclip", TRUE, error.out ()));
    ASSERT_TRUE (spin_until ([&] { return neighbours () != nullptr; }, 120));
  }
  std::mt19937 rng (5);
  for (int click = 0; click < 30; click++) {
    gint64 id = kBenchIdOffset + 1 + (gint64) (rng () % n);
    gint64 start = g_get_monotonic_time ();
    ASSERT_TRUE (gv_window_select_id (window_, id));
    ASSERT_TRUE (spin_until ([&] {
      GvGalaxy *g = gv_window_get_selected_galaxy (window_);
      return g && gv_galaxy_get_id (g) == id;
    }));
    selected.push_back ((g_get_monotonic_time () - start) / 1e3);
    {
      gint64 worst = 0, t = g_get_monotonic_time ();
      while (!(neighbours () && neighbours ()->query_id == id)) {
        gint64 a = g_get_monotonic_time ();
        g_main_context_iteration (nullptr, FALSE);
        worst = MAX (worst, g_get_monotonic_time () - a);
        g_usleep (1000);
        ASSERT_LT (g_get_monotonic_time () - t, 30 * G_USEC_PER_SEC);
      }
      longest.push_back (worst / 1e3);
    }
    total.push_back ((g_get_monotonic_time () - start) / 1e3);
    panel.push_back (GPOINTER_TO_INT (panel_data<void> (window_, GV_ASTROCLIP_PANEL_SIMILAR,
                                                         "astroclip-latency-us")) / 1e3);
    queue.push_back (GPOINTER_TO_INT (panel_data<void> (window_, GV_ASTROCLIP_PANEL_SIMILAR,
                                                         "astroclip-queue-us")) / 1e3);
    worker.push_back (GPOINTER_TO_INT (panel_data<void> (window_, GV_ASTROCLIP_PANEL_SIMILAR,
                                                          "astroclip-worker-us")) / 1e3);
  }
  std::sort (longest.begin (), longest.end ());
  std::printf ("[measured] longest main-loop iteration between the selection and the "
               "neighbours: median %.1f ms\n", longest[longest.size () / 2]);
  std::sort (selected.begin (), selected.end ());
  std::printf ("[measured] viewer alone: select → the window's selection read, median %.1f ms\n",
               selected[selected.size () / 2]);
  std::sort (queue.begin (), queue.end ());
  std::sort (worker.begin (), worker.end ());
  std::printf ("[measured] of which: waiting for a worker thread median %.1f ms, on the worker "
               "(query + search) median %.1f ms (90th percentile %.1f)\n",
               queue[queue.size () / 2], worker[worker.size () / 2],
               worker[worker.size () * 9 / 10]);
  std::sort (total.begin (), total.end ());
  std::sort (panel.begin (), panel.end ());
  std::printf ("[measured] viewer, %" G_GINT64_FORMAT " stored embeddings: select → neighbours "
               "shown median %.1f ms (90th percentile %.1f); selection-changed → shown median "
               "%.1f ms (90th percentile %.1f) (goal < 50 ms)\n",
               n, total[total.size () / 2], total[total.size () * 9 / 10],
               panel[panel.size () / 2], panel[panel.size () * 9 / 10]);
  /* The plugin's own share (a worker taken, the query and the search); the rest of the time is
   * the main loop busy with the window's own work, measured above without the plugin. */
  EXPECT_LT (queue[queue.size () / 2] + worker[worker.size () / 2], 50.0);
}

} // namespace
