/* test-gv-catalogue.cc — the viewer's catalogue model (ui/gv-catalogue.h, ui/gv-galaxy.h).
 *
 * A small catalogue is simulated once per suite; every value the model gives (IDs, columns,
 * lookups by ID, images, spectra) is compared with what the core reader reads from the same
 * file independently, including from several threads reading at once; exports are read back,
 * int64 columns beyond 2^53 to the last digit. No display needed. */
#include "test-support.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "aclip-catalogue.h"
#include "aclip-fits.h"
#include "gv-catalogue.h"

namespace {

constexpr int kRows = 40;
constexpr int kImageSize = 24;

class CatalogueTest : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite ()
  {
    dir_ = new TempDir ();
    path_ = new std::string (dir_->path ("sim.fits"));
    std::string out, err;
    ASSERT_EQ (run_astroclip ({ "simulate", "--n", std::to_string (kRows), "--image-size",
                                std::to_string (kImageSize), "--seed", "3", "--threads", "1",
                                "--quiet", "--out", *path_ },
                              &out, &err),
               0)
        << err;
  }

  static void
  TearDownTestSuite ()
  {
    delete path_;
    delete dir_;
    path_ = nullptr;
    dir_ = nullptr;
  }

  void
  SetUp () override
  {
    ErrorHolder error;
    catalogue_ = gv_catalogue_open (path_->c_str (), error.out ());
    ASSERT_NE (catalogue_, nullptr) << error->message;
    core_ = aclip_catalogue_open (path_->c_str (), error.out ());
    ASSERT_NE (core_, nullptr) << error->message;
  }

  void
  TearDown () override
  {
    g_clear_object (&catalogue_);
    g_clear_pointer (&core_, aclip_catalogue_free);
  }

  static TempDir *dir_;
  static std::string *path_;
  GvCatalogue *catalogue_ = nullptr;
  AclipCatalogue *core_ = nullptr;
};

TempDir *CatalogueTest::dir_ = nullptr;
std::string *CatalogueTest::path_ = nullptr;

bool
same_double (double a, double b)
{
  return (std::isnan (a) && std::isnan (b)) || a == b;
}

/* One galaxy read by the core reader, with its arrays. */
struct CoreGalaxy
{
  AclipGalaxy galaxy{};
  std::vector<float> image, spectrum, ivar;
};

CoreGalaxy
read_core (AclipCatalogue *core, gint64 row)
{
  CoreGalaxy g;
  g.image.resize (3 * aclip_catalogue_image_height (core) * aclip_catalogue_image_width (core));
  g.spectrum.resize (aclip_catalogue_n_wave (core));
  g.ivar.resize (aclip_catalogue_n_wave (core));
  g.galaxy.image = g.image.data ();
  g.galaxy.spectrum = g.spectrum.data ();
  g.galaxy.spectrum_ivar = g.ivar.data ();
  ErrorHolder error;
  EXPECT_TRUE (aclip_catalogue_read_galaxy (core, row, &g.galaxy, error.out ()))
      << error->message;
  return g;
}

/* Reads an int64 column of the GALAXIES table whole; empty on failure (which it reports). */
std::vector<gint64>
read_int64_column (const std::string &path, const char *name, AclipFitsType *type = nullptr)
{
  ErrorHolder error;
  g_autoptr (AclipFits) fits = aclip_fits_open (path.c_str (), FALSE, error.out ());
  gint64 n_rows = 0;
  AclipFitsColumn column;
  if (fits == nullptr || !aclip_fits_move_to_name (fits, "GALAXIES", nullptr, error.out ())
      || !aclip_fits_table_n_rows (fits, &n_rows, error.out ())
      || !aclip_fits_column (fits, name, &column, error.out ()))
    {
      ADD_FAILURE () << path << ": " << error->message;
      return {};
    }
  if (type != nullptr)
    *type = column.type;
  std::vector<gint64> values (n_rows);
  if (!aclip_fits_read_column_int64 (fits, column.number, 0, 0, n_rows, values.data (),
                                     error.out ()))
    {
      ADD_FAILURE () << path << ": " << error->message;
      return {};
    }
  return values;
}

} // namespace

TEST_F (CatalogueTest, Properties)
{
  EXPECT_STREQ (gv_catalogue_get_path (catalogue_), path_->c_str ());
  EXPECT_EQ (gv_catalogue_get_n_rows (catalogue_), kRows);
  EXPECT_TRUE (gv_catalogue_has_images (catalogue_));
  EXPECT_TRUE (gv_catalogue_has_spectra (catalogue_));
  EXPECT_EQ (gv_catalogue_get_image_width (catalogue_), kImageSize);
  EXPECT_EQ (gv_catalogue_get_image_height (catalogue_), kImageSize);
  EXPECT_DOUBLE_EQ (gv_catalogue_get_pixscale (catalogue_), aclip_catalogue_pixscale (core_));
  ASSERT_EQ (gv_catalogue_get_n_wave (catalogue_), aclip_catalogue_n_wave (core_));
  ASSERT_GT (gv_catalogue_get_n_wave (catalogue_), 0);
  const double *wave = gv_catalogue_get_wavelength (catalogue_);
  ASSERT_NE (wave, nullptr);
  for (int i = 0; i < gv_catalogue_get_n_wave (catalogue_); i++)
    ASSERT_EQ (wave[i], aclip_catalogue_wavelength (core_)[i]) << i;
}

TEST_F (CatalogueTest, IdsAndColumnsMatchTheCoreReader)
{
  std::vector<gint64> ids (kRows);
  ErrorHolder error;
  ASSERT_TRUE (aclip_catalogue_read_ids (core_, 0, kRows, ids.data (), error.out ()));
  const gint64 *model_ids = gv_catalogue_get_ids (catalogue_);
  for (int r = 0; r < kRows; r++)
    EXPECT_EQ (model_ids[r], ids[r]) << r;

  const char *const *core_columns = aclip_catalogue_numeric_columns (core_);
  const char *const *columns = gv_catalogue_get_columns (catalogue_);
  ASSERT_NE (columns, nullptr);
  int n = 0;
  for (; core_columns[n] != nullptr; n++)
    {
      ASSERT_NE (columns[n], nullptr) << "missing column " << core_columns[n];
      EXPECT_STREQ (columns[n], core_columns[n]);
      std::vector<double> expected (kRows);
      ASSERT_TRUE (aclip_catalogue_read_column (core_, core_columns[n], 0, kRows,
                                                expected.data (), error.out ()));
      const double *values = gv_catalogue_get_column (catalogue_, columns[n]);
      ASSERT_NE (values, nullptr) << columns[n];
      for (int r = 0; r < kRows; r++)
        EXPECT_TRUE (same_double (values[r], expected[r]))
            << columns[n] << " row " << r << ": " << values[r] << " vs " << expected[r];
      EXPECT_STREQ (gv_catalogue_get_column_unit (catalogue_, columns[n]),
                    aclip_catalogue_column_unit (core_, columns[n]));
    }
  EXPECT_EQ (columns[n], nullptr);
  EXPECT_GE (n, 8); /* ID, RA, DEC, Z, LOGMSTAR, FLUX_G/R/Z at least */

  /* Names are case-insensitive; an unknown column is NULL. */
  EXPECT_EQ (gv_catalogue_get_column (catalogue_, "z"), gv_catalogue_get_column (catalogue_, "Z"));
  EXPECT_NE (gv_catalogue_get_column (catalogue_, "LogMStar"), nullptr);
  EXPECT_EQ (gv_catalogue_get_column (catalogue_, "NO_SUCH_COLUMN"), nullptr);
  EXPECT_EQ (gv_catalogue_get_column_unit (catalogue_, "NO_SUCH_COLUMN"), nullptr);
}

TEST_F (CatalogueTest, FindId)
{
  const gint64 *ids = gv_catalogue_get_ids (catalogue_);
  gint64 largest = ids[0];
  for (int r = 0; r < kRows; r++)
    {
      gint64 row = gv_catalogue_find_id (catalogue_, ids[r]);
      ASSERT_GE (row, 0) << "ID " << ids[r];
      EXPECT_EQ (ids[row], ids[r]);
      EXPECT_LE (row, r); /* the first row with that ID */
      largest = std::max (largest, ids[r]);
    }
  EXPECT_EQ (gv_catalogue_find_id (catalogue_, largest + 1), -1);
  EXPECT_EQ (gv_catalogue_find_id (catalogue_, G_MININT64), -1);
}

TEST_F (CatalogueTest, ReadGalaxyMatchesTheCoreReader)
{
  for (gint64 row : { (gint64) 0, (gint64) 17, (gint64) kRows - 1 })
    {
      CoreGalaxy expected = read_core (core_, row);
      ErrorHolder error;
      GvGalaxy *galaxy = gv_catalogue_read_galaxy (catalogue_, row, TRUE, TRUE, error.out ());
      ASSERT_NE (galaxy, nullptr) << error->message;
      EXPECT_EQ (gv_galaxy_get_catalogue (galaxy), catalogue_);
      EXPECT_EQ (gv_galaxy_get_row (galaxy), row);
      EXPECT_EQ (gv_galaxy_get_id (galaxy), expected.galaxy.id);
      EXPECT_EQ (gv_galaxy_get_ra (galaxy), expected.galaxy.ra);
      EXPECT_EQ (gv_galaxy_get_dec (galaxy), expected.galaxy.dec);
      EXPECT_TRUE (same_double (gv_galaxy_get_z (galaxy), expected.galaxy.z));
      EXPECT_TRUE (same_double (gv_galaxy_get_logmstar (galaxy), expected.galaxy.logmstar));
      EXPECT_TRUE (same_double (gv_galaxy_get_column (galaxy, "flux_r"),
                                gv_catalogue_get_column (catalogue_, "FLUX_R")[row]));
      EXPECT_TRUE (std::isnan (gv_galaxy_get_column (galaxy, "NO_SUCH_COLUMN")));

      int height = 0, width = 0, n_wave = 0;
      const float *image = gv_galaxy_get_image (galaxy, &height, &width);
      ASSERT_NE (image, nullptr);
      ASSERT_EQ (height, kImageSize);
      ASSERT_EQ (width, kImageSize);
      EXPECT_EQ (std::memcmp (image, expected.image.data (),
                              expected.image.size () * sizeof (float)),
                 0);
      const float *spectrum = gv_galaxy_get_spectrum (galaxy, &n_wave);
      ASSERT_NE (spectrum, nullptr);
      ASSERT_EQ ((size_t) n_wave, expected.spectrum.size ());
      EXPECT_EQ (std::memcmp (spectrum, expected.spectrum.data (), n_wave * sizeof (float)), 0);
      EXPECT_EQ (std::memcmp (gv_galaxy_get_spectrum_ivar (galaxy), expected.ivar.data (),
                              n_wave * sizeof (float)),
                 0);
      EXPECT_EQ (gv_galaxy_get_wavelength (galaxy), gv_catalogue_get_wavelength (catalogue_));
      g_object_unref (galaxy);
    }
}

TEST_F (CatalogueTest, ReadGalaxyWithoutArrays)
{
  ErrorHolder error;
  GvGalaxy *galaxy = gv_catalogue_read_galaxy (catalogue_, 5, FALSE, FALSE, error.out ());
  ASSERT_NE (galaxy, nullptr) << error->message;
  int height = -1, width = -1, n_wave = -1;
  EXPECT_EQ (gv_galaxy_get_image (galaxy, &height, &width), nullptr);
  EXPECT_EQ (height, 0);
  EXPECT_EQ (width, 0);
  EXPECT_EQ (gv_galaxy_get_spectrum (galaxy, &n_wave), nullptr);
  EXPECT_EQ (n_wave, 0);
  EXPECT_EQ (gv_galaxy_get_spectrum_ivar (galaxy), nullptr);
  EXPECT_EQ (gv_galaxy_get_id (galaxy), gv_catalogue_get_ids (catalogue_)[5]);
  g_object_unref (galaxy);
}

TEST_F (CatalogueTest, RowOutOfRangeIsAnError)
{
  ErrorHolder error;
  EXPECT_EQ (gv_catalogue_read_galaxy (catalogue_, kRows, TRUE, TRUE, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error, "40", "sim.fits");
  EXPECT_EQ (gv_catalogue_read_galaxy (catalogue_, -1, TRUE, TRUE, error.out ()), nullptr);
  EXPECT_NE (error.error, nullptr);
}

TEST_F (CatalogueTest, ConcurrentReadsFromSeveralThreads)
{
  /* Every row's expected image and spectrum, read serially by the core reader. */
  std::vector<CoreGalaxy> expected;
  for (int r = 0; r < kRows; r++)
    expected.push_back (read_core (core_, r));

  /* Six threads read every row three times each, each thread in its own order, all at once;
   * any handle shared between two threads would mix rows up. */
  constexpr int kThreads = 6;
  std::atomic<int> mismatches{ 0 }, failures{ 0 };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++)
    threads.emplace_back ([&, t] () {
      for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < kRows; i++)
          {
            gint64 row = (i * (2 * t + 1) + pass * 7) % kRows; /* odd strides: permutations */
            GError *error = nullptr;
            GvGalaxy *galaxy = gv_catalogue_read_galaxy (catalogue_, row, TRUE, TRUE, &error);
            if (galaxy == nullptr)
              {
                failures++;
                g_clear_error (&error);
                continue;
              }
            const CoreGalaxy &e = expected[row];
            const float *image = gv_galaxy_get_image (galaxy, nullptr, nullptr);
            const float *spectrum = gv_galaxy_get_spectrum (galaxy, nullptr);
            if (gv_galaxy_get_id (galaxy) != e.galaxy.id
                || std::memcmp (image, e.image.data (), e.image.size () * sizeof (float)) != 0
                || std::memcmp (spectrum, e.spectrum.data (),
                                e.spectrum.size () * sizeof (float))
                       != 0)
              mismatches++;
            g_object_unref (galaxy);
          }
    });
  for (auto &thread : threads)
    thread.join ();
  EXPECT_EQ (failures.load (), 0);
  EXPECT_EQ (mismatches.load (), 0);
}

TEST_F (CatalogueTest, OpenAsync)
{
  struct Result
  {
    GvCatalogue *catalogue = nullptr;
    GError *error = nullptr;
    bool done = false;
  } result;
  gv_catalogue_open_async (
      path_->c_str (), nullptr,
      [] (GObject *, GAsyncResult *res, gpointer data) {
        auto *r = static_cast<Result *> (data);
        r->catalogue = gv_catalogue_open_finish (res, &r->error);
        r->done = true;
      },
      &result);
  while (!result.done)
    g_main_context_iteration (nullptr, TRUE);
  ASSERT_NE (result.catalogue, nullptr) << result.error->message;
  EXPECT_EQ (gv_catalogue_get_n_rows (result.catalogue), kRows);
  g_object_unref (result.catalogue);
}

TEST (Catalogue, OpenMissingFileIsAnError)
{
  TempDir dir;
  ErrorHolder error;
  std::string path = dir.path ("absent.fits");
  EXPECT_EQ (gv_catalogue_open (path.c_str (), error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error, "absent.fits");

  gv_catalogue_open_async (
      path.c_str (), nullptr,
      [] (GObject *, GAsyncResult *res, gpointer data) {
        GError **out = static_cast<GError **> (data);
        GvCatalogue *c = gv_catalogue_open_finish (res, out);
        EXPECT_EQ (c, nullptr);
      },
      error.out ());
  while (error.error == nullptr)
    g_main_context_iteration (nullptr, TRUE);
  EXPECT_ERROR_MENTIONS (error, "absent.fits");
}

TEST_F (CatalogueTest, ExportRowsCopiesEverything)
{
  const std::vector<gint64> rows = { 5, 2, 2, kRows - 1 }; /* any order, repeats allowed */
  std::string out = dir_->path ("export.fits");
  ErrorHolder error;
  ASSERT_TRUE (gv_catalogue_export_rows (catalogue_, rows.data (), rows.size (), out.c_str (),
                                         error.out ()))
      << error->message;

  GvCatalogue *exported = gv_catalogue_open (out.c_str (), error.out ());
  ASSERT_NE (exported, nullptr) << error->message;
  ASSERT_EQ (gv_catalogue_get_n_rows (exported), (gint64) rows.size ());
  EXPECT_EQ (gv_catalogue_get_image_width (exported), kImageSize);
  EXPECT_DOUBLE_EQ (gv_catalogue_get_pixscale (exported), gv_catalogue_get_pixscale (catalogue_));
  ASSERT_EQ (gv_catalogue_get_n_wave (exported), gv_catalogue_get_n_wave (catalogue_));
  for (int i = 0; i < gv_catalogue_get_n_wave (exported); i++)
    ASSERT_EQ (gv_catalogue_get_wavelength (exported)[i], gv_catalogue_get_wavelength (catalogue_)[i]);

  /* Every numeric column of the source, with the same values. */
  const char *const *columns = gv_catalogue_get_columns (catalogue_);
  for (int c = 0; columns[c] != nullptr; c++)
    {
      const double *source = gv_catalogue_get_column (catalogue_, columns[c]);
      const double *copy = gv_catalogue_get_column (exported, columns[c]);
      ASSERT_NE (copy, nullptr) << columns[c];
      for (size_t i = 0; i < rows.size (); i++)
        EXPECT_TRUE (same_double (copy[i], source[rows[i]])) << columns[c] << " " << i;
    }
  for (size_t i = 0; i < rows.size (); i++)
    {
      EXPECT_EQ (gv_catalogue_get_ids (exported)[i], gv_catalogue_get_ids (catalogue_)[rows[i]]);
      GvGalaxy *a = gv_catalogue_read_galaxy (catalogue_, rows[i], TRUE, TRUE, error.out ());
      GvGalaxy *b = gv_catalogue_read_galaxy (exported, (gint64) i, TRUE, TRUE, error.out ());
      ASSERT_NE (a, nullptr);
      ASSERT_NE (b, nullptr);
      int n_wave = 0;
      EXPECT_EQ (std::memcmp (gv_galaxy_get_image (a, nullptr, nullptr),
                              gv_galaxy_get_image (b, nullptr, nullptr),
                              3 * kImageSize * kImageSize * sizeof (float)),
                 0)
          << i;
      const float *sa = gv_galaxy_get_spectrum (a, &n_wave);
      EXPECT_EQ (std::memcmp (sa, gv_galaxy_get_spectrum (b, nullptr), n_wave * sizeof (float)), 0);
      EXPECT_EQ (std::memcmp (gv_galaxy_get_spectrum_ivar (a), gv_galaxy_get_spectrum_ivar (b),
                              n_wave * sizeof (float)),
                 0);
      g_object_unref (a);
      g_object_unref (b);
    }
  g_object_unref (exported);
}

TEST_F (CatalogueTest, ExportOfABadRowFailsWithoutAFile)
{
  const gint64 rows[] = { 1, kRows };
  std::string out = dir_->path ("bad-export.fits");
  ErrorHolder error;
  EXPECT_FALSE (gv_catalogue_export_rows (catalogue_, rows, 2, out.c_str (), error.out ()));
  EXPECT_ERROR_MENTIONS (error, "40");
  EXPECT_FALSE (g_file_test (out.c_str (), G_FILE_TEST_EXISTS));
}

/* An int64 column beyond the required ones (a DESI TARGETID, say) is exported with its exact
 * values and type: through a double, 2^53 + 1 comes back as 2^53. */
TEST (CatalogueExportInt64, KeepsExactValuesBeyond2To53)
{
  const gint64 targetid[] = { (G_GINT64_CONSTANT (1) << 53) + 1, G_GINT64_CONSTANT (39627745486930069),
                              G_MAXINT64 - 2, G_MININT64 + 3 };
  const int n = G_N_ELEMENTS (targetid);
  for (gint64 value : targetid)
    ASSERT_NE ((long double) (double) value, (long double) value) /* exact in 64-bit mantissas */
        << value << " passes through a double unchanged: the test would prove nothing";

  /* A source catalogue with an int64 extra and a float64 one. The writer takes extras as
   * doubles, so the int64 values are then written into the file directly. */
  TempDir dir;
  std::string source = dir.path ("targets.fits");
  const AclipExtraColumn extras[] = {
    { "TARGETID", ACLIP_COLUMN_INT64, nullptr, "DESI target ID" },
    { "WEIGHT", ACLIP_COLUMN_DOUBLE, nullptr, nullptr },
  };
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, 4, 4);
  layout.n_wave = 0;
  layout.n_extra = 2;
  layout.extra = extras;
  ErrorHolder error;
  {
    g_autoptr (AclipCatalogueWriter) writer
        = aclip_catalogue_writer_new (source.c_str (), &layout, error.out ());
    ASSERT_NE (writer, nullptr) << error->message;
    std::vector<float> image (3 * 4 * 4, 0.5f);
    for (int i = 0; i < n; i++)
      {
        AclipGalaxy galaxy{};
        galaxy.id = 100 + i;
        galaxy.ra = 150.0 + i;
        galaxy.dec = 2.0;
        galaxy.z = 0.1f * (float) i;
        galaxy.logmstar = NAN;
        galaxy.flux[0] = galaxy.flux[1] = galaxy.flux[2] = NAN;
        galaxy.image = image.data ();
        double values[2] = { 0.0, 0.25 * i };
        ASSERT_TRUE (aclip_catalogue_writer_append (writer, &galaxy, values, error.out ()))
            << error->message;
      }
    ASSERT_TRUE (aclip_catalogue_writer_finish (writer, error.out ())) << error->message;
  }
  {
    g_autoptr (AclipFits) fits = aclip_fits_open (source.c_str (), TRUE, error.out ());
    ASSERT_NE (fits, nullptr) << error->message;
    AclipFitsColumn column;
    ASSERT_TRUE (aclip_fits_move_to_name (fits, "GALAXIES", nullptr, error.out ())
                 && aclip_fits_column (fits, "TARGETID", &column, error.out ())
                 && aclip_fits_write_column_int64 (fits, column.number, 0, 0, n, targetid,
                                                   error.out ())
                 && aclip_fits_flush (fits, error.out ()))
        << error->message;
  }
  ASSERT_EQ (read_int64_column (source, "TARGETID"), std::vector<gint64> (targetid, targetid + n));

  GvCatalogue *catalogue = gv_catalogue_open (source.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  const gint64 rows[] = { 3, 0, 2, 0 };
  std::string out = dir.path ("exported.fits");
  ASSERT_TRUE (gv_catalogue_export_rows (catalogue, rows, G_N_ELEMENTS (rows), out.c_str (),
                                         error.out ()))
      << error->message;

  AclipFitsType type = ACLIP_FITS_TYPE_OTHER;
  std::vector<gint64> exported = read_int64_column (out, "TARGETID", &type);
  EXPECT_EQ (type, ACLIP_FITS_TYPE_INT64);
  ASSERT_EQ (exported.size (), G_N_ELEMENTS (rows));
  for (size_t i = 0; i < exported.size (); i++)
    EXPECT_EQ (exported[i], targetid[rows[i]]) << "row " << i;
  EXPECT_EQ (read_int64_column (out, "ID"), (std::vector<gint64>{ 103, 100, 102, 100 }));

  /* The other columns as before; the exported file reads like any catalogue. */
  GvCatalogue *copy = gv_catalogue_open (out.c_str (), error.out ());
  ASSERT_NE (copy, nullptr) << error->message;
  const double *weight = gv_catalogue_get_column (copy, "WEIGHT");
  ASSERT_NE (weight, nullptr);
  for (size_t i = 0; i < G_N_ELEMENTS (rows); i++)
    EXPECT_EQ (weight[i], 0.25 * rows[i]) << "row " << i;
  g_object_unref (copy);

  /* Nothing left beside the files: no temporary file. */
  EXPECT_EQ (count_entries (dir.root ()), 2);

  /* A folder that does not exist: an error, and no file anywhere. */
  std::string nowhere = dir.path ("absent/exported.fits");
  EXPECT_FALSE (gv_catalogue_export_rows (catalogue, rows, G_N_ELEMENTS (rows), nowhere.c_str (),
                                          error.out ()));
  EXPECT_ERROR_MENTIONS (error, "absent");
  EXPECT_EQ (count_entries (dir.root ()), 2);
  g_object_unref (catalogue);
}
