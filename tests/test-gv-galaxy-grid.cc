/* test-gv-galaxy-grid.cc — the grid widget (ui/gv-galaxy-grid.h), under a display (Xvfb).
 *
 * A simulated catalogue is shown in a window: the count label, thumbnails arriving in the
 * visible cells, filtering through the API and through the entry (with a malformed filter
 * showing an error and changing nothing), sorting, selection by ID and its signal, and
 * activation. Every expectation is computed from the catalogue's own columns. */
#include "test-support.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "gv-galaxy-grid.h"
#include "gv-galaxy-list.h"

namespace {

constexpr int kRows = 600;

class GridTest : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite ()
  {
    gtk_init ();
    dir_ = new TempDir ();
    path_ = new std::string (dir_->path ("grid.fits"));
    std::string out, err;
    ASSERT_EQ (run_astroclip ({ "simulate", "--n", std::to_string (kRows), "--image-size", "32",
                                "--seed", "9", "--no-spectra", "--quiet", "--out", *path_ },
                              &out, &err),
               0)
        << err;
  }

  static void
  TearDownTestSuite ()
  {
    delete path_;
    delete dir_;
  }

  void
  SetUp () override
  {
    ErrorHolder error;
    catalogue_ = gv_catalogue_open (path_->c_str (), error.out ());
    ASSERT_NE (catalogue_, nullptr) << error->message;
    window_ = gtk_window_new ();
    gtk_window_set_default_size (GTK_WINDOW (window_), 800, 600);
    grid_ = GV_GALAXY_GRID (gv_galaxy_grid_new ());
    gtk_window_set_child (GTK_WINDOW (window_), GTK_WIDGET (grid_));
    g_signal_connect (grid_, "selection-changed",
                      G_CALLBACK (+[] (GvGalaxyGrid *, gint64 row, std::vector<gint64> *log) {
                        log->push_back (row);
                      }),
                      &selections_);
    g_signal_connect (grid_, "galaxy-activated",
                      G_CALLBACK (+[] (GvGalaxyGrid *, gint64 row, std::vector<gint64> *log) {
                        log->push_back (row);
                      }),
                      &activations_);
    gtk_window_present (GTK_WINDOW (window_));
    gv_galaxy_grid_set_catalogue (grid_, catalogue_);
    iterate (200);
  }

  void
  TearDown () override
  {
    if (window_ != nullptr)
      gtk_window_destroy (GTK_WINDOW (window_));
    iterate (50);
    g_clear_object (&catalogue_);
  }

  static void
  iterate (int milliseconds)
  {
    gint64 end = g_get_monotonic_time () + milliseconds * 1000;
    while (g_get_monotonic_time () < end)
      if (!g_main_context_iteration (nullptr, FALSE))
        g_usleep (1000);
  }

  static bool
  wait_until (const std::function<bool ()> &done, int seconds = 20)
  {
    gint64 end = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
    while (!done () && g_get_monotonic_time () < end)
      if (!g_main_context_iteration (nullptr, FALSE))
        g_usleep (1000);
    return done ();
  }

  /* The rows the grid view shows, in order, read through its model. */
  std::vector<gint64>
  view_rows ()
  {
    GListModel *model
        = G_LIST_MODEL (gtk_grid_view_get_model (GTK_GRID_VIEW (gv_galaxy_grid_get_grid_view (grid_))));
    std::vector<gint64> rows;
    for (guint i = 0; i < g_list_model_get_n_items (model); i++)
      {
        GvGalaxyItem *item = (GvGalaxyItem *) g_list_model_get_item (model, i);
        rows.push_back (gv_galaxy_item_get_row (item));
        g_object_unref (item);
      }
    return rows;
  }

  std::string
  count_text (guint shown, guint total)
  {
    return std::to_string (shown) + " / " + std::to_string (total) + " galaxies";
  }

  static TempDir *dir_;
  static std::string *path_;
  GvCatalogue *catalogue_ = nullptr;
  GtkWidget *window_ = nullptr;
  GvGalaxyGrid *grid_ = nullptr;
  std::vector<gint64> selections_, activations_;
};

TempDir *GridTest::dir_ = nullptr;
std::string *GridTest::path_ = nullptr;

/* Pictures in the widget tree below `widget` that show a paintable. */
int
count_painted_pictures (GtkWidget *widget)
{
  int n = GTK_IS_PICTURE (widget) && gtk_picture_get_paintable (GTK_PICTURE (widget)) != nullptr;
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child != nullptr;
       child = gtk_widget_get_next_sibling (child))
    n += count_painted_pictures (child);
  return n;
}

} // namespace

TEST_F (GridTest, CountLabelAndThumbnails)
{
  EXPECT_EQ (gv_galaxy_grid_get_n_total (grid_), (guint) kRows);
  EXPECT_EQ (gv_galaxy_grid_get_n_shown (grid_), (guint) kRows);
  EXPECT_EQ (gv_galaxy_grid_get_count_text (grid_), count_text (kRows, kRows));
  EXPECT_EQ (gv_galaxy_grid_get_catalogue (grid_), catalogue_);
  EXPECT_EQ (gv_galaxy_grid_get_selected_row (grid_), -1);

  /* The visible cells get their thumbnails, rendered off the main thread. */
  GtkWidget *view = gv_galaxy_grid_get_grid_view (grid_);
  ASSERT_TRUE (wait_until ([&] { return count_painted_pictures (view) >= 12; }))
      << count_painted_pictures (view) << " thumbnails shown";
  GvThumbnails *thumbnails = gv_galaxy_grid_get_thumbnails (grid_);
  ASSERT_NE (thumbnails, nullptr);
  EXPECT_GE (gv_thumbnails_get_n_cached (thumbnails), 12u);
  /* Not every row of the catalogue: only what the grid showed (and a little around it). */
  EXPECT_LT (gv_thumbnails_get_n_rendered (thumbnails), (guint64) kRows);
  GdkTexture *first = gv_thumbnails_lookup (thumbnails, 0);
  ASSERT_NE (first, nullptr);
  EXPECT_EQ (gdk_texture_get_width (first), gv_galaxy_grid_get_thumbnail_size (grid_));
  g_object_unref (first);
}

TEST_F (GridTest, FilterThroughTheApi)
{
  const double *z = gv_catalogue_get_column (catalogue_, "Z");
  guint expected = 0;
  for (int r = 0; r < kRows; r++)
    expected += z[r] < 0.2;
  ASSERT_GT (expected, 0u);
  ASSERT_LT (expected, (guint) kRows);

  ErrorHolder error;
  ASSERT_TRUE (gv_galaxy_grid_set_filter_text (grid_, "Z < 0.2", error.out ())) << error->message;
  EXPECT_EQ (gv_galaxy_grid_get_n_shown (grid_), expected);
  EXPECT_EQ (gv_galaxy_grid_get_count_text (grid_), count_text (expected, kRows));
  std::vector<gint64> rows = view_rows ();
  ASSERT_EQ (rows.size (), expected);
  for (gint64 r : rows)
    EXPECT_LT (z[r], 0.2) << "row " << r;
  EXPECT_STREQ (gtk_editable_get_text (GTK_EDITABLE (gv_galaxy_grid_get_filter_entry (grid_))),
                "Z < 0.2");

  /* dup_shown_rows gives the same rows. */
  gsize n = 0;
  gint64 *shown = gv_galaxy_grid_dup_shown_rows (grid_, &n);
  EXPECT_EQ (std::vector<gint64> (shown, shown + n), rows);
  g_free (shown);

  /* A malformed filter is an error and keeps the current one. */
  EXPECT_FALSE (gv_galaxy_grid_set_filter_text (grid_, "Z < < 1", error.out ()));
  EXPECT_ERROR_MENTIONS (error, "position 5");
  EXPECT_EQ (gv_galaxy_grid_get_n_shown (grid_), expected);

  ASSERT_TRUE (gv_galaxy_grid_set_filter_text (grid_, "", error.out ()));
  EXPECT_EQ (gv_galaxy_grid_get_n_shown (grid_), (guint) kRows);
}

TEST_F (GridTest, FilterTypedInTheEntry)
{
  const double *z = gv_catalogue_get_column (catalogue_, "Z");
  const double *mass = gv_catalogue_get_column (catalogue_, "LOGMSTAR");
  guint expected = 0;
  for (int r = 0; r < kRows; r++)
    expected += 0.1 <= z[r] && z[r] < 0.3 && mass[r] > 10;
  ASSERT_GT (expected, 0u);

  gv_galaxy_grid_focus_filter (grid_);
  GtkWidget *entry = gv_galaxy_grid_get_filter_entry (grid_);
  GtkWidget *focus = gtk_root_get_focus (GTK_ROOT (window_));
  ASSERT_NE (focus, nullptr);
  EXPECT_TRUE (focus == entry || gtk_widget_is_ancestor (focus, entry));

  gtk_editable_set_text (GTK_EDITABLE (entry), "0.1 <= z < 0.3 and logmstar > 10");
  /* Applied after a typing pause. */
  ASSERT_TRUE (wait_until ([&] { return gv_galaxy_grid_get_n_shown (grid_) == expected; }, 5));
  EXPECT_EQ (gv_galaxy_grid_get_count_text (grid_), count_text (expected, kRows));
  for (gint64 r : view_rows ())
    EXPECT_TRUE (0.1 <= z[r] && z[r] < 0.3 && mass[r] > 10) << "row " << r;
  EXPECT_FALSE (gtk_widget_has_css_class (entry, "error"));

  /* A malformed filter, applied with Enter: the entry shows the error, the grid is unchanged. */
  gtk_editable_set_text (GTK_EDITABLE (entry), "z < 0.1 and");
  g_signal_emit_by_name (entry, "activate");
  EXPECT_TRUE (gtk_widget_has_css_class (entry, "error"));
  const char *tooltip = gtk_widget_get_tooltip_text (entry);
  ASSERT_NE (tooltip, nullptr);
  EXPECT_NE (std::string (tooltip).find ("position 12"), std::string::npos) << tooltip;
  EXPECT_EQ (gv_galaxy_grid_get_n_shown (grid_), expected);
}

TEST_F (GridTest, SortDescendingByRedshift)
{
  ASSERT_TRUE (gv_galaxy_grid_set_sort (grid_, "z", TRUE));
  const double *z = gv_catalogue_get_column (catalogue_, "Z");
  std::vector<gint64> rows = view_rows ();
  ASSERT_EQ (rows.size (), (size_t) kRows);
  for (size_t i = 1; i < rows.size (); i++)
    EXPECT_GE (z[rows[i - 1]], z[rows[i]]) << i;
  EXPECT_EQ (z[rows[0]], *std::max_element (z, z + kRows));
  EXPECT_FALSE (gv_galaxy_grid_set_sort (grid_, "NO_SUCH", FALSE));
  ASSERT_TRUE (gv_galaxy_grid_set_sort (grid_, nullptr, FALSE));
  EXPECT_EQ (view_rows ()[0], 0);
}

TEST_F (GridTest, SelectionByIdSurvivesSortingAndFollowsTheFilter)
{
  const gint64 *ids = gv_catalogue_get_ids (catalogue_);
  const double *z = gv_catalogue_get_column (catalogue_, "Z");
  /* A galaxy with z ≥ 0.2, near the end of the file (so the grid has to scroll). */
  gint64 row = kRows - 1;
  while (row > 0 && !(z[row] >= 0.2))
    row--;
  ASSERT_TRUE (z[row] >= 0.2);

  ASSERT_TRUE (gv_galaxy_grid_select_id (grid_, ids[row]));
  EXPECT_EQ (gv_galaxy_grid_get_selected_row (grid_), row);
  ASSERT_EQ (selections_, (std::vector<gint64>{ row }));
  gint64 property = -2;
  g_object_get (grid_, "selected-row", &property, NULL);
  EXPECT_EQ (property, row);
  iterate (100);

  /* Sorting moves the galaxy but keeps it selected, without a new signal. */
  ASSERT_TRUE (gv_galaxy_grid_set_sort (grid_, "LOGMSTAR", FALSE));
  EXPECT_EQ (gv_galaxy_grid_get_selected_row (grid_), row);
  EXPECT_EQ (selections_.size (), 1u);
  GtkSelectionModel *model = gtk_grid_view_get_model (GTK_GRID_VIEW (gv_galaxy_grid_get_grid_view (grid_)));
  guint position = gtk_single_selection_get_selected (GTK_SINGLE_SELECTION (model));
  GvGalaxyItem *item = (GvGalaxyItem *) g_list_model_get_item (G_LIST_MODEL (model), position);
  ASSERT_NE (item, nullptr);
  EXPECT_EQ (gv_galaxy_item_get_row (item), row);
  g_object_unref (item);

  /* A filter that hides it clears the selection. */
  ErrorHolder error;
  ASSERT_TRUE (gv_galaxy_grid_set_filter_text (grid_, "Z < 0.2", error.out ()));
  EXPECT_EQ (gv_galaxy_grid_get_selected_row (grid_), -1);
  EXPECT_EQ (selections_, (std::vector<gint64>{ row, -1 }));
  /* …and it cannot be selected while hidden. */
  EXPECT_FALSE (gv_galaxy_grid_select_id (grid_, ids[row]));
  EXPECT_FALSE (gv_galaxy_grid_select_id (grid_, G_MAXINT64));
  EXPECT_EQ (gv_galaxy_grid_get_selected_row (grid_), -1);
}

TEST_F (GridTest, KeyboardSelectionAndActivation)
{
  GtkWidget *view = gv_galaxy_grid_get_grid_view (grid_);
  /* What an arrow key does: GtkListBase's select-item action on the neighbouring cell. */
  gtk_widget_activate_action (view, "list.select-item", "(ubb)", 3u, FALSE, FALSE);
  EXPECT_EQ (gv_galaxy_grid_get_selected_row (grid_), 3);
  EXPECT_EQ (selections_, (std::vector<gint64>{ 3 }));
  /* Enter on a cell: the view's "activate". */
  g_signal_emit_by_name (view, "activate", 3u);
  EXPECT_EQ (activations_, (std::vector<gint64>{ 3 }));
}

TEST_F (GridTest, ReplacingTheCatalogue)
{
  ASSERT_TRUE (gv_galaxy_grid_select_row (grid_, 4));
  ErrorHolder error;
  ASSERT_TRUE (gv_galaxy_grid_set_filter_text (grid_, "Z < 0.3", error.out ()));
  gv_galaxy_grid_set_catalogue (grid_, nullptr);
  EXPECT_EQ (gv_galaxy_grid_get_selected_row (grid_), -1);
  EXPECT_EQ (selections_.back (), -1);
  EXPECT_EQ (gv_galaxy_grid_get_n_shown (grid_), 0u);
  EXPECT_EQ (gv_galaxy_grid_get_count_text (grid_), std::string (""));
  gv_galaxy_grid_set_catalogue (grid_, catalogue_);
  EXPECT_EQ (gv_galaxy_grid_get_n_shown (grid_), (guint) kRows); /* the filter was reset */
  EXPECT_STREQ (gtk_editable_get_text (GTK_EDITABLE (gv_galaxy_grid_get_filter_entry (grid_))), "");
}

TEST_F (GridTest, ThumbnailSizeChange)
{
  gv_galaxy_grid_set_thumbnail_size (grid_, 64);
  EXPECT_EQ (gv_galaxy_grid_get_thumbnail_size (grid_), 64);
  GvThumbnails *thumbnails = gv_galaxy_grid_get_thumbnails (grid_);
  ASSERT_TRUE (wait_until ([&] {
    GdkTexture *t = gv_thumbnails_lookup (thumbnails, 0);
    bool ok = t != nullptr && gdk_texture_get_width (t) == 64;
    g_clear_object (&t);
    return ok;
  }));
}
