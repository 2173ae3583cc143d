/* test-gv-galaxy-list.cc — the sorted, filtered list model (ui/gv-galaxy-list.h), no display.
 *
 * The catalogue is written by the test with core's writer so that its values are known:
 * redshifts with ties and missing values, a magnitude column. Orders and selections are
 * compared with std::stable_sort and plain loops over the same values. */
#include "test-support.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "aclip-catalogue.h"
#include "gv-galaxy-list.h"

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN ();

struct Written
{
  std::vector<gint64> ids;
  std::vector<double> z, logmstar, mag_r;
};

/* n rows; Z has ties (rounded to 0.05) and every 7th is missing; MAG_R is an extra column. */
Written
write_catalogue (const std::string &path, int n)
{
  Written w;
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, 2, 2);
  layout.n_wave = 0;
  AclipExtraColumn extra = { "MAG_R", ACLIP_COLUMN_DOUBLE, "mag", "r magnitude" };
  layout.n_extra = 1;
  layout.extra = &extra;
  ErrorHolder error;
  AclipCatalogueWriter *writer = aclip_catalogue_writer_new (path.c_str (), &layout, error.out ());
  EXPECT_NE (writer, nullptr) << error->message;
  float image[12] = { 0 };
  GRand *rand = g_rand_new_with_seed (11);
  for (int i = 0; i < n; i++)
    {
      AclipGalaxy g{};
      g.id = 1000 + 3 * (gint64) ((i * 37) % n); /* IDs not in row order */
      g.ra = 150 + i * 0.001;
      g.dec = 2;
      g.z = (i % 7 == 3) ? NAN : (float) (std::round (g_rand_double_range (rand, 0, 0.5) * 20) / 20);
      g.logmstar = (float) g_rand_double_range (rand, 8, 12);
      for (int b = 0; b < 3; b++)
        g.flux[b] = (float) g_rand_double_range (rand, 0.1, 10);
      g.image = image;
      double mag = (i % 11 == 5) ? kNaN : g_rand_double_range (rand, 15, 21);
      EXPECT_TRUE (aclip_catalogue_writer_append (writer, &g, &mag, error.out ()));
      w.ids.push_back (g.id);
      w.z.push_back (g.z);
      w.logmstar.push_back (g.logmstar);
      w.mag_r.push_back (mag);
    }
  g_rand_free (rand);
  EXPECT_TRUE (aclip_catalogue_writer_finish (writer, error.out ()));
  aclip_catalogue_writer_free (writer);
  return w;
}

/* The expected order: finite values sorted (ties in file order), NaN rows last in file order. */
std::vector<gint64>
expected_order (const std::vector<double> &values, bool descending)
{
  std::vector<gint64> rows (values.size ());
  std::iota (rows.begin (), rows.end (), 0);
  std::stable_sort (rows.begin (), rows.end (), [&] (gint64 a, gint64 b) {
    bool na = std::isnan (values[a]), nb = std::isnan (values[b]);
    if (na || nb)
      return !na && nb;
    return descending ? values[a] > values[b] : values[a] < values[b];
  });
  return rows;
}

std::vector<gint64>
shown_rows (GvGalaxyList *list)
{
  guint n = 0;
  const gint64 *rows = gv_galaxy_list_get_rows (list, &n);
  return std::vector<gint64> (rows, rows + n);
}

struct ChangeLog
{
  int n_items_changed = 0;
  guint position = 0, removed = 0, added = 0;
  int n_notify = 0;
};

class ListTest : public ::testing::Test
{
protected:
  void
  SetUp () override
  {
    path_ = dir_.path ("list.fits");
    w_ = write_catalogue (path_, kRows);
    ErrorHolder error;
    catalogue_ = gv_catalogue_open (path_.c_str (), error.out ());
    ASSERT_NE (catalogue_, nullptr) << error->message;
    list_ = gv_galaxy_list_new (catalogue_);
    g_signal_connect (list_, "items-changed",
                      G_CALLBACK (+[] (GListModel *, guint position, guint removed, guint added,
                                       ChangeLog *log) {
                        log->n_items_changed++;
                        log->position = position;
                        log->removed = removed;
                        log->added = added;
                      }),
                      &log_);
    g_signal_connect (list_, "notify::n-shown",
                      G_CALLBACK (+[] (GObject *, GParamSpec *, ChangeLog *log) { log->n_notify++; }),
                      &log_);
  }

  void
  TearDown () override
  {
    g_clear_object (&list_);
    g_clear_object (&catalogue_);
  }

  static constexpr int kRows = 230;
  TempDir dir_;
  std::string path_;
  Written w_;
  GvCatalogue *catalogue_ = nullptr;
  GvGalaxyList *list_ = nullptr;
  ChangeLog log_;
};

} // namespace

TEST_F (ListTest, FileOrderAndItems)
{
  GListModel *model = G_LIST_MODEL (list_);
  EXPECT_EQ (g_list_model_get_item_type (model), GV_TYPE_GALAXY_ITEM);
  ASSERT_EQ (g_list_model_get_n_items (model), (guint) kRows);
  EXPECT_EQ (gv_galaxy_list_get_n_total (list_), (guint) kRows);
  EXPECT_EQ (gv_galaxy_list_get_n_shown (list_), (guint) kRows);
  for (guint i : { 0u, 3u, 100u, (guint) kRows - 1 })
    {
      GvGalaxyItem *item = (GvGalaxyItem *) g_list_model_get_item (model, i);
      ASSERT_NE (item, nullptr);
      EXPECT_EQ (gv_galaxy_item_get_row (item), (gint64) i);
      EXPECT_EQ (gv_galaxy_item_get_id (item), w_.ids[i]);
      if (std::isnan (w_.z[i]))
        EXPECT_TRUE (std::isnan (gv_galaxy_item_get_z (item)));
      else
        EXPECT_DOUBLE_EQ (gv_galaxy_item_get_z (item), w_.z[i]);
      gint64 id = 0;
      g_object_get (item, "id", &id, NULL);
      EXPECT_EQ (id, w_.ids[i]);
      g_object_unref (item);
    }
  EXPECT_EQ (g_list_model_get_item (model, kRows), nullptr);
  EXPECT_EQ (gv_galaxy_list_get_row (list_, kRows), -1);
  EXPECT_EQ (gv_galaxy_list_find_row (list_, 17), 17);
  EXPECT_EQ (gv_galaxy_list_find_row (list_, kRows), -1);
  EXPECT_EQ (gv_galaxy_list_get_sort_column (list_), nullptr);
}

TEST_F (ListTest, SortAscendingAndDescendingWithMissingValuesLast)
{
  ASSERT_TRUE (gv_galaxy_list_set_sort (list_, "z", FALSE));
  EXPECT_EQ (shown_rows (list_), expected_order (w_.z, false));
  EXPECT_EQ (log_.n_items_changed, 1);
  EXPECT_EQ (log_.removed, (guint) kRows);
  EXPECT_EQ (log_.added, (guint) kRows);
  EXPECT_EQ (log_.n_notify, 0); /* the count did not change */
  /* The missing redshifts (every 7th from row 3) are the last rows, in file order. */
  std::vector<gint64> rows = shown_rows (list_);
  EXPECT_EQ (rows.back (), 227);
  EXPECT_EQ (rows[kRows - 33], 3);

  ASSERT_TRUE (gv_galaxy_list_set_sort (list_, "Z", TRUE));
  EXPECT_EQ (shown_rows (list_), expected_order (w_.z, true));
  EXPECT_TRUE (gv_galaxy_list_get_sort_descending (list_));
  EXPECT_STREQ (gv_galaxy_list_get_sort_column (list_), "Z");

  ASSERT_TRUE (gv_galaxy_list_set_sort (list_, "MAG_R", FALSE));
  EXPECT_EQ (shown_rows (list_), expected_order (w_.mag_r, false));
  ASSERT_TRUE (gv_galaxy_list_set_sort (list_, "ID", TRUE));
  std::vector<double> ids (w_.ids.begin (), w_.ids.end ());
  EXPECT_EQ (shown_rows (list_), expected_order (ids, true));

  /* Item at a position is the sorted row. */
  GvGalaxyItem *item = (GvGalaxyItem *) g_list_model_get_item (G_LIST_MODEL (list_), 0);
  EXPECT_EQ (gv_galaxy_item_get_row (item), shown_rows (list_)[0]);
  g_object_unref (item);
  /* find_row inverts get_row. */
  for (guint i = 0; i < (guint) kRows; i++)
    ASSERT_EQ (gv_galaxy_list_find_row (list_, gv_galaxy_list_get_row (list_, i)), (gint64) i);

  EXPECT_FALSE (gv_galaxy_list_set_sort (list_, "NO_SUCH", FALSE));
  EXPECT_STREQ (gv_galaxy_list_get_sort_column (list_), "ID"); /* unchanged */
  ASSERT_TRUE (gv_galaxy_list_set_sort (list_, nullptr, TRUE));
  std::vector<gint64> file_order (kRows);
  std::iota (file_order.begin (), file_order.end (), 0);
  EXPECT_EQ (shown_rows (list_), file_order);
}

TEST_F (ListTest, FilterKeepsTheSortOrder)
{
  ASSERT_TRUE (gv_galaxy_list_set_sort (list_, "LOGMSTAR", TRUE));
  log_ = ChangeLog ();
  ErrorHolder error;
  ASSERT_TRUE (gv_galaxy_list_set_filter_text (list_, "Z < 0.2 and 16 < mag_r < 20", error.out ()))
      << error->message;
  std::vector<gint64> expected;
  for (gint64 r : expected_order (w_.logmstar, true))
    if (w_.z[r] < 0.2 && 16 < w_.mag_r[r] && w_.mag_r[r] < 20)
      expected.push_back (r);
  ASSERT_GT (expected.size (), 20u);
  ASSERT_LT (expected.size (), (size_t) kRows / 2);
  EXPECT_EQ (shown_rows (list_), expected);
  EXPECT_EQ (gv_galaxy_list_get_n_shown (list_), expected.size ());
  EXPECT_EQ (g_list_model_get_n_items (G_LIST_MODEL (list_)), expected.size ());
  EXPECT_EQ (gv_galaxy_list_get_n_total (list_), (guint) kRows);
  EXPECT_EQ (log_.n_items_changed, 1);
  EXPECT_EQ (log_.removed, (guint) kRows);
  EXPECT_EQ (log_.added, expected.size ());
  EXPECT_EQ (log_.n_notify, 1);
  ASSERT_NE (gv_galaxy_list_get_filter (list_), nullptr);

  /* Hidden rows have no position; shown rows do. */
  for (gint64 r = 0; r < kRows; r++)
    {
      auto it = std::find (expected.begin (), expected.end (), r);
      EXPECT_EQ (gv_galaxy_list_find_row (list_, r),
                 it == expected.end () ? -1 : (gint64) (it - expected.begin ()));
    }

  /* Re-sorting keeps the filter. */
  ASSERT_TRUE (gv_galaxy_list_set_sort (list_, "Z", FALSE));
  std::vector<gint64> resorted;
  for (gint64 r : expected_order (w_.z, false))
    if (w_.z[r] < 0.2 && 16 < w_.mag_r[r] && w_.mag_r[r] < 20)
      resorted.push_back (r);
  EXPECT_EQ (shown_rows (list_), resorted);

  /* A malformed filter is an error and leaves the filter as it was. */
  EXPECT_FALSE (gv_galaxy_list_set_filter_text (list_, "Z <", error.out ()));
  EXPECT_TRUE (g_error_matches (error, GV_FILTER_ERROR, GV_FILTER_ERROR_SYNTAX));
  EXPECT_EQ (shown_rows (list_), resorted);
  EXPECT_FALSE (gv_galaxy_list_set_filter_text (list_, "REDSHIFT < 1", error.out ()));
  EXPECT_TRUE (g_error_matches (error, GV_FILTER_ERROR, GV_FILTER_ERROR_UNKNOWN_COLUMN));

  /* Blank text removes the filter. */
  ASSERT_TRUE (gv_galaxy_list_set_filter_text (list_, "  ", error.out ()));
  EXPECT_EQ (gv_galaxy_list_get_filter (list_), nullptr);
  EXPECT_EQ (shown_rows (list_), expected_order (w_.z, false));
}

TEST_F (ListTest, FilterMatchingNothing)
{
  ErrorHolder error;
  ASSERT_TRUE (gv_galaxy_list_set_filter_text (list_, "Z > 10", error.out ()));
  EXPECT_EQ (gv_galaxy_list_get_n_shown (list_), 0u);
  EXPECT_EQ (g_list_model_get_item (G_LIST_MODEL (list_), 0), nullptr);
  EXPECT_EQ (gv_galaxy_list_get_row (list_, 0), -1);
}

TEST_F (ListTest, ReplacingTheCatalogueResetsSortAndFilter)
{
  ErrorHolder error;
  ASSERT_TRUE (gv_galaxy_list_set_sort (list_, "Z", FALSE));
  ASSERT_TRUE (gv_galaxy_list_set_filter_text (list_, "Z < 0.1", error.out ()));
  gv_galaxy_list_set_catalogue (list_, nullptr);
  EXPECT_EQ (gv_galaxy_list_get_n_shown (list_), 0u);
  EXPECT_EQ (gv_galaxy_list_get_n_total (list_), 0u);
  EXPECT_EQ (gv_galaxy_list_get_filter (list_), nullptr);
  EXPECT_EQ (gv_galaxy_list_get_sort_column (list_), nullptr);
  gv_galaxy_list_set_catalogue (list_, catalogue_);
  EXPECT_EQ (gv_galaxy_list_get_n_shown (list_), (guint) kRows);
  EXPECT_EQ (gv_galaxy_list_get_row (list_, 5), 5);
}
