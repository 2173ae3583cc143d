/* The catalogue file: round trips, random access, streaming writes, and validation of every
 * wrong shape, type or missing part with an error naming the file and the problem. */
#include "test-support.h"

extern "C" {
#include "aclip-catalogue.h"
#include "aclip-error.h"
#include "aclip-fits.h"
}

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

namespace {

constexpr int kHeight = 6, kWidth = 5, kWave = 40;

/* A deterministic galaxy: every value depends on the row so mix-ups show. */
struct TestGalaxy
{
  std::vector<float> image, spectrum, ivar;
  AclipGalaxy galaxy{};
  explicit TestGalaxy (gint64 row, int height = kHeight, int width = kWidth, int n_wave = kWave)
      : image (3 * height * width), spectrum (n_wave), ivar (n_wave)
  {
    for (size_t i = 0; i < image.size (); i++)
      image[i] = 0.01f * (float) (i % 97) - 0.2f + 0.5f * (float) row;
    for (int i = 0; i < n_wave; i++) {
      spectrum[i] = std::sin (0.3f * (float) i) + (float) row;
      ivar[i] = 1.0f + 0.1f * (float) i;
    }
    galaxy.id = 1000 + row * 7;
    galaxy.ra = 150.0 + 0.001 * (double) row;
    galaxy.dec = 2.0 - 0.002 * (double) row;
    galaxy.z = 0.05f * (float) row;
    galaxy.logmstar = row == 2 ? NAN : 9.0f + 0.1f * (float) row;
    galaxy.flux[0] = 1.0f + (float) row;
    galaxy.flux[1] = 2.0f + (float) row;
    galaxy.flux[2] = 3.0f + (float) row;
    galaxy.image = height > 0 ? image.data () : nullptr;
    galaxy.spectrum = n_wave > 0 ? spectrum.data () : nullptr;
    galaxy.spectrum_ivar = n_wave > 0 ? ivar.data () : nullptr;
  }
};

std::vector<double>
test_wavelength (int n_wave = kWave)
{
  std::vector<double> wavelength (n_wave);
  for (int i = 0; i < n_wave; i++)
    wavelength[i] = 4000.0 + 2.5 * i;
  return wavelength;
}

const AclipExtraColumn kExtras[] = {
  { "SSFR", ACLIP_COLUMN_FLOAT, "dex(1/yr)", "specific star formation rate" },
  { "TYPE", ACLIP_COLUMN_INT32, nullptr, "0 quiescent, 1 star-forming" },
};

bool
write_catalogue (const std::string &path, int n_rows, int height, int width, int n_wave,
                 double quantum, GError **error)
{
  std::vector<double> wavelength = test_wavelength (n_wave);
  AclipCatalogueLayout layout{};
  layout.image_height = height;
  layout.image_width = width;
  layout.pixscale = 0.262;
  layout.image_quantum = quantum;
  layout.n_wave = n_wave;
  layout.wavelength = n_wave ? wavelength.data () : nullptr;
  layout.n_extra = 2;
  layout.extra = kExtras;
  layout.history = "made by test-catalogue\nsecond line";
  AclipCatalogueWriter *writer = aclip_catalogue_writer_new (path.c_str (), &layout, error);
  if (!writer)
    return false;
  for (int row = 0; row < n_rows; row++) {
    TestGalaxy test (row, height, width, n_wave);
    double extras[2] = { -10.0 + row, (double) (row % 2) };
    if (!aclip_catalogue_writer_append (writer, &test.galaxy, extras, error)) {
      aclip_catalogue_writer_free (writer);
      return false;
    }
  }
  bool finished = aclip_catalogue_writer_finish (writer, error);
  aclip_catalogue_writer_free (writer);
  return finished;
}

} // namespace

TEST (Catalogue, RoundTripKeepsEveryValue)
{
  TempDir dir;
  std::string path = dir.path ("round.fits");
  ErrorHolder error;
  ASSERT_TRUE (write_catalogue (path, 5, kHeight, kWidth, kWave, 0.0, error.out ()))
      << error->message;

  AclipCatalogue *catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  EXPECT_EQ (aclip_catalogue_n_rows (catalogue), 5);
  EXPECT_TRUE (aclip_catalogue_has_images (catalogue));
  EXPECT_TRUE (aclip_catalogue_has_spectra (catalogue));
  EXPECT_EQ (aclip_catalogue_image_height (catalogue), kHeight);
  EXPECT_EQ (aclip_catalogue_image_width (catalogue), kWidth);
  EXPECT_EQ (aclip_catalogue_n_wave (catalogue), kWave);
  EXPECT_DOUBLE_EQ (aclip_catalogue_pixscale (catalogue), 0.262);
  std::vector<double> wavelength = test_wavelength ();
  for (int i = 0; i < kWave; i++)
    EXPECT_EQ (aclip_catalogue_wavelength (catalogue)[i], wavelength[i]);

  /* Rows read out of order: random access, not a stream. */
  for (gint64 row : { 3, 0, 4, 2 }) {
    TestGalaxy expected (row);
    std::vector<float> image (3 * kHeight * kWidth), spectrum (kWave), ivar (kWave);
    AclipGalaxy read{};
    read.image = image.data ();
    read.spectrum = spectrum.data ();
    read.spectrum_ivar = ivar.data ();
    ASSERT_TRUE (aclip_catalogue_read_galaxy (catalogue, row, &read, error.out ()))
        << error->message;
    EXPECT_EQ (read.id, expected.galaxy.id);
    EXPECT_EQ (read.ra, expected.galaxy.ra);
    EXPECT_EQ (read.dec, expected.galaxy.dec);
    EXPECT_EQ (read.z, expected.galaxy.z);
    if (row == 2)
      EXPECT_TRUE (std::isnan (read.logmstar));
    else
      EXPECT_EQ (read.logmstar, expected.galaxy.logmstar);
    for (int b = 0; b < 3; b++)
      EXPECT_EQ (read.flux[b], expected.galaxy.flux[b]);
    EXPECT_EQ (image, expected.image);
    EXPECT_EQ (spectrum, expected.spectrum);
    EXPECT_EQ (ivar, expected.ivar);
  }

  /* Scalars only: NULL array pointers read nothing. */
  AclipGalaxy scalars_only{};
  ASSERT_TRUE (aclip_catalogue_read_galaxy (catalogue, 1, &scalars_only, error.out ()));
  EXPECT_EQ (scalars_only.id, 1007);

  EXPECT_FALSE (aclip_catalogue_read_galaxy (catalogue, 5, &scalars_only, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "round.fits", "row 5");
  aclip_catalogue_free (catalogue);
}

TEST (Catalogue, NumericColumnsAndUnits)
{
  TempDir dir;
  std::string path = dir.path ("columns.fits");
  ErrorHolder error;
  ASSERT_TRUE (write_catalogue (path, 4, kHeight, kWidth, kWave, 0.0, error.out ()));
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr);

  std::vector<std::string> names;
  for (const char *const *name = aclip_catalogue_numeric_columns (catalogue); *name; name++)
    names.push_back (*name);
  std::vector<std::string> expected = { "ID", "RA", "DEC", "Z", "LOGMSTAR", "FLUX_G",
                                        "FLUX_R", "FLUX_Z", "SSFR", "TYPE" };
  EXPECT_EQ (names, expected);
  EXPECT_STREQ (aclip_catalogue_column_unit (catalogue, "RA"), "deg");
  EXPECT_STREQ (aclip_catalogue_column_unit (catalogue, "SSFR"), "dex(1/yr)");
  EXPECT_STREQ (aclip_catalogue_column_unit (catalogue, "TYPE"), "");

  double ssfr[3], type[4], z[4];
  ASSERT_TRUE (aclip_catalogue_read_column (catalogue, "SSFR", 1, 3, ssfr, error.out ()));
  EXPECT_EQ (ssfr[0], -9.0);
  EXPECT_EQ (ssfr[2], -7.0);
  ASSERT_TRUE (aclip_catalogue_read_column (catalogue, "type", 0, 4, type, error.out ()));
  EXPECT_EQ (type[1], 1.0);
  EXPECT_EQ (type[2], 0.0);
  ASSERT_TRUE (aclip_catalogue_read_column (catalogue, "Z", 0, 4, z, error.out ()));
  EXPECT_FLOAT_EQ (z[3], 0.15f);
  gint64 ids[4];
  ASSERT_TRUE (aclip_catalogue_read_ids (catalogue, 0, 4, ids, error.out ()));
  EXPECT_EQ (ids[3], 1021);

  EXPECT_FALSE (aclip_catalogue_read_column (catalogue, "NOPE", 0, 1, z, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "columns.fits", "NOPE");
  EXPECT_FALSE (aclip_catalogue_read_column (catalogue, "Z", 2, 3, z, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "columns.fits", "do not exist");
}

TEST (Catalogue, SixteenBitImagesRoundWithinHalfAStepAndCountClipping)
{
  TempDir dir;
  std::string path = dir.path ("quantised.fits");
  const double quantum = 0.001; /* ±32.767 nanomaggies representable */
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, 4, 4);
  layout.n_wave = 0;
  layout.image_quantum = quantum;
  ErrorHolder error;
  AclipCatalogueWriter *writer = aclip_catalogue_writer_new (path.c_str (), &layout, error.out ());
  ASSERT_NE (writer, nullptr) << error->message;
  std::vector<float> image (48);
  for (int i = 0; i < 48; i++)
    image[i] = 0.0123457f * (float) (i - 20);
  image[5] = 100.0f;  /* clipped to +32.767 */
  image[6] = -50.0f;  /* clipped to -32.767 */
  image[7] = NAN;     /* stored as 0 */
  AclipGalaxy galaxy{};
  galaxy.id = 1;
  galaxy.image = image.data ();
  ASSERT_TRUE (aclip_catalogue_writer_append (writer, &galaxy, nullptr, error.out ()));
  EXPECT_EQ (aclip_catalogue_writer_n_clipped (writer), 3);
  ASSERT_TRUE (aclip_catalogue_writer_finish (writer, error.out ())) << error->message;
  aclip_catalogue_writer_free (writer);

  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  EXPECT_FALSE (aclip_catalogue_has_spectra (catalogue));
  EXPECT_EQ (aclip_catalogue_wavelength (catalogue), nullptr);
  std::vector<float> read (48);
  AclipGalaxy out{};
  out.image = read.data ();
  ASSERT_TRUE (aclip_catalogue_read_galaxy (catalogue, 0, &out, error.out ()));
  for (int i = 0; i < 48; i++) {
    if (i >= 5 && i <= 7)
      continue;
    EXPECT_NEAR (read[i], image[i], quantum / 2 + 1e-6) << "pixel " << i;
  }
  EXPECT_NEAR (read[5], 32.767, 1e-4);
  EXPECT_NEAR (read[6], -32.767, 1e-4);
  EXPECT_EQ (read[7], 0.0f);
}

TEST (Catalogue, SpectraOnlyCatalogueAndBadSpectrumPixels)
{
  TempDir dir;
  std::string path = dir.path ("spectra.fits");
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, 0, 0);
  ErrorHolder error;
  g_autoptr (AclipCatalogueWriter) writer =
      aclip_catalogue_writer_new (path.c_str (), &layout, error.out ());
  ASSERT_NE (writer, nullptr) << error->message;
  std::vector<float> flux (ACLIP_DESI_N_WAVE, 2.0f), ivar (ACLIP_DESI_N_WAVE, 4.0f);
  flux[10] = NAN;
  ivar[11] = INFINITY;
  ivar[12] = -1.0f;
  AclipGalaxy galaxy{};
  galaxy.spectrum = flux.data ();
  galaxy.spectrum_ivar = ivar.data ();
  ASSERT_TRUE (aclip_catalogue_writer_append (writer, &galaxy, nullptr, error.out ()));
  ASSERT_TRUE (aclip_catalogue_writer_finish (writer, error.out ()));

  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  EXPECT_FALSE (aclip_catalogue_has_images (catalogue));
  ASSERT_EQ (aclip_catalogue_n_wave (catalogue), ACLIP_DESI_N_WAVE);
  EXPECT_DOUBLE_EQ (aclip_catalogue_wavelength (catalogue)[0], 3600.0);
  EXPECT_NEAR (aclip_catalogue_wavelength (catalogue)[ACLIP_DESI_N_WAVE - 1], 9824.0, 1e-9);
  std::vector<float> read_flux (ACLIP_DESI_N_WAVE), read_ivar (ACLIP_DESI_N_WAVE);
  AclipGalaxy out{};
  out.spectrum = read_flux.data ();
  out.spectrum_ivar = read_ivar.data ();
  ASSERT_TRUE (aclip_catalogue_read_galaxy (catalogue, 0, &out, error.out ()));
  EXPECT_EQ (read_flux[10], 0.0f);
  EXPECT_EQ (read_ivar[10], 0.0f);
  EXPECT_EQ (read_ivar[11], 0.0f);
  EXPECT_EQ (read_ivar[12], 0.0f);
  EXPECT_EQ (read_flux[13], 2.0f);
  EXPECT_EQ (read_ivar[13], 4.0f);
}

TEST (Catalogue, UnfinishedWriterLeavesNoFile)
{
  TempDir dir;
  std::string path = dir.path ("never.fits");
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, 4, 4);
  ErrorHolder error;
  AclipCatalogueWriter *writer = aclip_catalogue_writer_new (path.c_str (), &layout, error.out ());
  ASSERT_NE (writer, nullptr);
  TestGalaxy test (0, 4, 4, ACLIP_DESI_N_WAVE);
  ASSERT_TRUE (aclip_catalogue_writer_append (writer, &test.galaxy, nullptr, error.out ()));
  EXPECT_EQ (count_entries (dir.root ()), 1) << "the temporary file exists while writing";
  EXPECT_FALSE (g_file_test (path.c_str (), G_FILE_TEST_EXISTS));

  /* A galaxy without the spectrum the layout promises is refused. */
  AclipGalaxy incomplete = test.galaxy;
  incomplete.spectrum = nullptr;
  EXPECT_FALSE (aclip_catalogue_writer_append (writer, &incomplete, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "never.fits");
  aclip_catalogue_writer_free (writer);
  EXPECT_EQ (count_entries (dir.root ()), 0);
}

TEST (Catalogue, ExistingFileIsReplacedOnlyWhenFinished)
{
  TempDir dir;
  std::string path = dir.path ("keep.fits");
  ErrorHolder error;
  ASSERT_TRUE (write_catalogue (path, 3, kHeight, kWidth, kWave, 0.0, error.out ()));
  /* A second write that fails midway leaves the first file as it was. */
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, 2, 2);
  AclipCatalogueWriter *writer = aclip_catalogue_writer_new (path.c_str (), &layout, error.out ());
  ASSERT_NE (writer, nullptr);
  aclip_catalogue_writer_free (writer);
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  EXPECT_EQ (aclip_catalogue_n_rows (catalogue), 3);
  EXPECT_EQ (count_entries (dir.root ()), 1);
}

static long
peak_resident_kib ()
{
  std::ifstream status ("/proc/self/status");
  std::string line;
  while (std::getline (status, line))
    if (line.rfind ("VmHWM:", 0) == 0)
      return std::stol (line.substr (6));
  return -1;
}

TEST (Catalogue, StreamingWriteDoesNotHoldTheFileInMemory)
{
  /* 30,000 rows of 3×32×32 float images and 7781-pixel spectra: a 440 MB file. The writer's
   * peak memory must stay far below the file size (we allow 64 MB for CFITSIO's buffers and
   * the sanitizer's bookkeeping). */
  TempDir dir;
  std::string path = dir.path ("stream.fits");
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, 32, 32);
  ErrorHolder error;
  long before = peak_resident_kib ();
  ASSERT_GT (before, 0);
  AclipCatalogueWriter *writer = aclip_catalogue_writer_new (path.c_str (), &layout, error.out ());
  ASSERT_NE (writer, nullptr);
  TestGalaxy test (1, 32, 32, ACLIP_DESI_N_WAVE);
  const int n_rows = 30000;
  for (int row = 0; row < n_rows; row++) {
    test.galaxy.id = row;
    ASSERT_TRUE (aclip_catalogue_writer_append (writer, &test.galaxy, nullptr, error.out ()))
        << error->message;
  }
  ASSERT_TRUE (aclip_catalogue_writer_finish (writer, error.out ())) << error->message;
  aclip_catalogue_writer_free (writer);
  long grown_mib = (peak_resident_kib () - before) / 1024;
  GStatBuf info;
  ASSERT_EQ (g_stat (path.c_str (), &info), 0);
  EXPECT_GT (info.st_size, 400L * 1024 * 1024);
  EXPECT_LT (grown_mib, 64) << "peak memory grew by " << grown_mib << " MiB";

  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr);
  EXPECT_EQ (aclip_catalogue_n_rows (catalogue), n_rows);
  AclipGalaxy last{};
  ASSERT_TRUE (aclip_catalogue_read_galaxy (catalogue, n_rows - 1, &last, error.out ()));
  EXPECT_EQ (last.id, n_rows - 1);
}

/* Validation: hand-made files, each wrong in one way ------------------------------------- */

namespace {

struct Mutation
{
  const char *bands = "grz";
  gint64 version = 1;
  bool write_version = true;
  double pixscale = 0.262;
  bool write_wavelength = true;
  int wavelength_length = kWave;
  bool wavelength_decreasing = false;
  bool wavelength_nan = false;
  const char *table_name = "GALAXIES";
  const char *z_format = "1E";
  const char *ra_format = "1D";
  bool drop_dec = false;
  int image_bands = 3;
  const char *image_format = nullptr; /* default: 3·H·W E */
  bool image_tdim = true;
  int spectrum_length = kWave;
  bool drop_ivar = false;
  bool drop_image_and_spectrum = false;
};

std::string
write_mutated (const TempDir &dir, const std::string &name, const Mutation &m)
{
  std::string path = dir.path (name);
  GError *error = nullptr;
  AclipFits *fits = aclip_fits_create (path.c_str (), &error);
  EXPECT_NE (fits, nullptr);
  bool ok = aclip_fits_write_empty_primary (fits, &error) &&
            (!m.write_version ||
             aclip_fits_write_key_int64 (fits, "ACLIPCAT", m.version, nullptr, &error)) &&
            aclip_fits_write_key_string (fits, "BANDS", m.bands, nullptr, &error) &&
            aclip_fits_write_key_double (fits, "PIXSCALE", m.pixscale, nullptr, &error);
  if (ok && m.write_wavelength) {
    std::vector<double> wavelength = test_wavelength (m.wavelength_length);
    if (m.wavelength_decreasing)
      std::swap (wavelength[3], wavelength[4]);
    if (m.wavelength_nan)
      wavelength[7] = NAN;
    gint64 length = m.wavelength_length;
    ok = aclip_fits_append_image_double (fits, "WAVELENGTH", 1, &length, wavelength.data (),
                                         &error);
  }
  std::vector<AclipFitsColumnSpec> specs;
  specs.push_back ({ "ID", "1K", nullptr, 0, {}, 1, 0 });
  specs.push_back ({ "RA", m.ra_format, "deg", 0, {}, 1, 0 });
  if (!m.drop_dec)
    specs.push_back ({ "DEC", "1D", "deg", 0, {}, 1, 0 });
  specs.push_back ({ "Z", m.z_format, nullptr, 0, {}, 1, 0 });
  for (const char *name : { "LOGMSTAR", "FLUX_G", "FLUX_R", "FLUX_Z" })
    specs.push_back ({ name, "1E", nullptr, 0, {}, 1, 0 });
  std::string image_format =
      m.image_format ? m.image_format : std::to_string (m.image_bands * kHeight * kWidth) + "E";
  std::string spectrum_format = std::to_string (m.spectrum_length) + "E";
  if (!m.drop_image_and_spectrum) {
    AclipFitsColumnSpec image = { "IMAGE", image_format.c_str (), nullptr, 0, {}, 1, 0 };
    if (m.image_tdim) {
      image.n_dims = 3;
      image.dims[0] = kWidth;
      image.dims[1] = kHeight;
      image.dims[2] = m.image_bands;
    }
    specs.push_back (image);
    specs.push_back ({ "SPECTRUM", spectrum_format.c_str (), nullptr, 0, {}, 1, 0 });
    if (!m.drop_ivar)
      specs.push_back ({ "SPECTRUM_IVAR", spectrum_format.c_str (), nullptr, 0, {}, 1, 0 });
  }
  ok = ok && aclip_fits_append_table (fits, m.table_name, (int) specs.size (), specs.data (),
                                      &error);
  gint64 id = 1;
  ok = ok && aclip_fits_write_column_int64 (fits, 1, 0, 0, 1, &id, &error);
  EXPECT_TRUE (ok) << (error ? error->message : "");
  g_clear_error (&error);
  aclip_fits_close (fits);
  return path;
}

void
expect_open_fails (const std::string &path, std::initializer_list<const char *> fragments)
{
  GError *error = nullptr;
  AclipCatalogue *catalogue = aclip_catalogue_open (path.c_str (), &error);
  EXPECT_EQ (catalogue, nullptr) << path << " was accepted";
  aclip_catalogue_free (catalogue);
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->domain, ACLIP_ERROR);
  std::string message = error->message;
  EXPECT_NE (message.find (path), std::string::npos) << message;
  for (const char *fragment : fragments)
    EXPECT_NE (message.find (fragment), std::string::npos)
        << "\"" << message << "\" lacks \"" << fragment << "\"";
  g_clear_error (&error);
}

} // namespace

TEST (CatalogueValidation, UnmutatedFileIsAccepted)
{
  /* The fixture itself must be valid, or every rejection below proves nothing. */
  TempDir dir;
  std::string path = write_mutated (dir, "good.fits", Mutation{});
  ErrorHolder error;
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  EXPECT_EQ (aclip_catalogue_n_rows (catalogue), 1);
}

TEST (CatalogueValidation, EachDefectIsNamed)
{
  TempDir dir;
  Mutation m;

  m = Mutation{}; m.write_version = false;
  expect_open_fails (write_mutated (dir, "noversion.fits", m), { "ACLIPCAT" });
  m = Mutation{}; m.version = 7;
  expect_open_fails (write_mutated (dir, "version.fits", m), { "version 7" });
  m = Mutation{}; m.bands = "ugr";
  expect_open_fails (write_mutated (dir, "bands.fits", m), { "BANDS", "ugr" });
  m = Mutation{}; m.pixscale = -1.0;
  expect_open_fails (write_mutated (dir, "pixscale.fits", m), { "PIXSCALE" });
  m = Mutation{}; m.table_name = "OBJECTS";
  expect_open_fails (write_mutated (dir, "table.fits", m), { "GALAXIES" });
  m = Mutation{}; m.z_format = "1D";
  expect_open_fails (write_mutated (dir, "ztype.fits", m), { "column Z", "float64", "float32" });
  m = Mutation{}; m.ra_format = "2D";
  expect_open_fails (write_mutated (dir, "rashape.fits", m), { "column RA", "2 values" });
  m = Mutation{}; m.drop_dec = true;
  expect_open_fails (write_mutated (dir, "nodec.fits", m), { "DEC", "missing" });
  m = Mutation{}; m.image_bands = 4;
  expect_open_fails (write_mutated (dir, "fourbands.fits", m), { "IMAGE", "TDIM" });
  m = Mutation{}; m.image_tdim = false;
  expect_open_fails (write_mutated (dir, "notdim.fits", m), { "IMAGE", "TDIM" });
  m = Mutation{}; m.image_format = "90D";
  expect_open_fails (write_mutated (dir, "imagetype.fits", m), { "IMAGE", "float64" });
  m = Mutation{}; m.spectrum_length = kWave + 1;
  expect_open_fails (write_mutated (dir, "speclen.fits", m), { "SPECTRUM", "41", "40" });
  m = Mutation{}; m.drop_ivar = true;
  expect_open_fails (write_mutated (dir, "noivar.fits", m), { "SPECTRUM_IVAR", "missing" });
  m = Mutation{}; m.write_wavelength = false;
  expect_open_fails (write_mutated (dir, "nowave.fits", m), { "WAVELENGTH" });
  m = Mutation{}; m.wavelength_decreasing = true;
  expect_open_fails (write_mutated (dir, "wavedec.fits", m), { "WAVELENGTH", "increasing" });
  m = Mutation{}; m.wavelength_nan = true;
  expect_open_fails (write_mutated (dir, "wavenan.fits", m), { "WAVELENGTH", "nan" });
  m = Mutation{}; m.drop_image_and_spectrum = true;
  expect_open_fails (write_mutated (dir, "nodata.fits", m), { "neither" });
}

TEST (CatalogueValidation, DamagedFiles)
{
  TempDir dir;
  std::string good = dir.path ("good.fits");
  ErrorHolder error;
  ASSERT_TRUE (write_catalogue (good, 20, kHeight, kWidth, kWave, 0.0, error.out ()));

  expect_open_fails (dir.path ("absent.fits"), { "no such file" });

  std::string empty = dir.path ("empty.fits");
  g_file_set_contents (empty.c_str (), "", 0, nullptr);
  expect_open_fails (empty, { "empty" });

  std::string text = dir.path ("text.fits");
  g_file_set_contents (text.c_str (), "id,ra,dec\n1,2,3\n", -1, nullptr);
  expect_open_fails (text, { "FITS" });

  /* Cut inside the primary header, and inside the table's data. */
  std::string header_cut = dir.path ("header-cut.fits");
  copy_truncated (good, header_cut, 1000);
  expect_open_fails (header_cut, {});

  std::string data_cut = dir.path ("data-cut.fits");
  GStatBuf info;
  ASSERT_EQ (g_stat (good.c_str (), &info), 0);
  copy_truncated (good, data_cut, (gsize) info.st_size - 6000);
  /* The headers are intact, so opening may succeed; reading the lost rows must fail. */
  AclipCatalogue *catalogue = aclip_catalogue_open (data_cut.c_str (), error.out ());
  if (catalogue) {
    std::vector<float> spectrum (kWave);
    AclipGalaxy galaxy{};
    galaxy.spectrum = spectrum.data ();
    EXPECT_FALSE (aclip_catalogue_read_galaxy (catalogue, 19, &galaxy, error.out ()));
    EXPECT_ERROR_MENTIONS (error.error, "data-cut.fits");
    aclip_catalogue_free (catalogue);
  } else {
    EXPECT_ERROR_MENTIONS (error.error, "data-cut.fits");
  }
}

TEST (Catalogue, ReadableByAstropyWithoutOurCode)
{
  const char *python = "/usr/bin/python3";
  if (!g_file_test (python, G_FILE_TEST_IS_EXECUTABLE))
    GTEST_SKIP () << "no /usr/bin/python3";
  {
    const char *argv[] = { python, "-c", "import astropy", nullptr };
    int status = 1;
    if (!g_spawn_sync (nullptr, (char **) argv, nullptr, G_SPAWN_STDERR_TO_DEV_NULL, nullptr,
                       nullptr, nullptr, nullptr, &status, nullptr) ||
        status != 0)
      GTEST_SKIP () << "python3-astropy is not installed";
  }
  TempDir dir;
  std::string path = dir.path ("astropy.fits");
  ErrorHolder error;
  ASSERT_TRUE (write_catalogue (path, 3, kHeight, kWidth, kWave, 0.0, error.out ()));
  const char *script =
      "import sys\n"
      "from astropy.io import fits\n"
      "with fits.open(sys.argv[1]) as f:\n"
      "    h = f[0].header\n"
      "    t = f['GALAXIES'].data\n"
      "    w = f['WAVELENGTH'].data\n"
      "    print(h['ACLIPCAT'], h['BANDS'], h['PIXSCALE'])\n"
      "    print(len(t), t['IMAGE'].shape, t['SPECTRUM'].shape, w.shape)\n"
      "    print(t['ID'][2], round(float(t['IMAGE'][1][2, 3, 4]), 4), float(w[1]))\n";
  const char *argv[] = { python, "-c", script, path.c_str (), nullptr };
  char *out = nullptr;
  int status = 1;
  ASSERT_TRUE (g_spawn_sync (nullptr, (char **) argv, nullptr, G_SPAWN_DEFAULT, nullptr, nullptr,
                             &out, nullptr, &status, nullptr));
  std::string output = out ? out : "";
  g_free (out);
  EXPECT_EQ (status, 0);
  /* Row 1, band z (2), y 3, x 4: index (2·6 + 3)·5 + 4 = 79 → 0.01·79 − 0.2 + 0.5 = 1.09. */
  EXPECT_EQ (output, "1 grz 0.262\n3 (3, 3, 6, 5) (3, 40) (40,)\n1014 1.09 4002.5\n");
}

/* Every scalar column of many rows in one pass ---------------------------------------------- */

namespace {

/* Bit patterns, so that −0 and +0 differ and NaN equals NaN. */
bool
same_double (double a, double b)
{
  if (std::isnan (a) || std::isnan (b))
    return std::isnan (a) && std::isnan (b);
  return std::memcmp (&a, &b, sizeof a) == 0;
}

/* Which outputs a read asks for. */
enum class Ask
{
  kAll,          /* every column and the IDs */
  kColumnsOnly,  /* no IDs */
  kIdsOnly,      /* columns NULL */
  kEveryOther,   /* odd-numbered columns skipped, IDs read */
  kExtrasOnly,   /* only columns after the 8 required ones */
};

/* aclip_catalogue_read_scalars against the column-by-column reads for rows [first, first + n),
 * asking for the outputs `ask` names; unrequested outputs must stay untouched. */
void
expect_scalars_match (AclipCatalogue *catalogue, gint64 first, gint64 n, Ask ask)
{
  SCOPED_TRACE (::testing::Message () << "rows " << first << "+" << n << " ask "
                                      << static_cast<int> (ask));
  ErrorHolder error;
  const char *const *names = aclip_catalogue_numeric_columns (catalogue);
  size_t n_columns = g_strv_length ((char **) names);
  std::vector<std::vector<double>> expected (n_columns, std::vector<double> (n));
  std::vector<gint64> expected_ids (n);
  ASSERT_TRUE (aclip_catalogue_read_ids (catalogue, first, n, expected_ids.data (), error.out ()))
      << error->message;
  for (size_t c = 0; c < n_columns; c++)
    ASSERT_TRUE (aclip_catalogue_read_column (catalogue, names[c], first, n,
                                              expected[c].data (), error.out ()))
        << error->message;

  const double kUntouched = -12345.678;
  std::vector<std::vector<double>> got (n_columns, std::vector<double> (n, kUntouched));
  std::vector<gint64> ids (n, -7);
  std::vector<double *> pointers (n_columns, nullptr);
  for (size_t c = 0; c < n_columns; c++) {
    bool wanted = ask == Ask::kAll || ask == Ask::kColumnsOnly ||
                  (ask == Ask::kEveryOther && c % 2 == 0) || (ask == Ask::kExtrasOnly && c >= 8);
    pointers[c] = wanted ? got[c].data () : nullptr;
  }
  bool want_ids = ask != Ask::kColumnsOnly && ask != Ask::kExtrasOnly;
  ASSERT_TRUE (aclip_catalogue_read_scalars (catalogue, first, n,
                                             want_ids ? ids.data () : nullptr,
                                             ask == Ask::kIdsOnly ? nullptr : pointers.data (),
                                             error.out ()))
      << error->message;

  for (gint64 r = 0; r < n; r++)
    EXPECT_EQ (ids[r], want_ids ? expected_ids[r] : -7) << "row " << first + r;
  for (size_t c = 0; c < n_columns; c++)
    for (gint64 r = 0; r < n; r++) {
      double want = pointers[c] && ask != Ask::kIdsOnly ? expected[c][r] : kUntouched;
      EXPECT_TRUE (same_double (got[c][r], want))
          << names[c] << " row " << first + r << ": " << got[c][r] << " instead of " << want;
    }
}

/* Every range shape the reader handles differently: all rows, from the start, to the end, one
 * row (first, middle, last), and every ask. */
void
expect_all_reads_match (AclipCatalogue *catalogue)
{
  gint64 n = aclip_catalogue_n_rows (catalogue);
  for (Ask ask : { Ask::kAll, Ask::kColumnsOnly, Ask::kIdsOnly, Ask::kEveryOther,
                   Ask::kExtrasOnly }) {
    expect_scalars_match (catalogue, 0, n, ask);
    expect_scalars_match (catalogue, n - 1, 1, ask);
    expect_scalars_match (catalogue, 0, 1, ask);
    if (n > 3) {
      expect_scalars_match (catalogue, 1, n - 2, ask);
      expect_scalars_match (catalogue, n / 2, 1, ask);
    }
  }
}

/* Extras of every type the writer stores, with the values CFITSIO converts specially: NaN,
 * ±Inf, −0 and subnormals (CFITSIO reads them as 0), and int64 IDs beyond 2^53. */
const AclipExtraColumn kEveryType[] = {
  { "F32", ACLIP_COLUMN_FLOAT, "mag", nullptr },
  { "F64", ACLIP_COLUMN_DOUBLE, nullptr, nullptr },
  { "I32", ACLIP_COLUMN_INT32, nullptr, nullptr },
  { "I64", ACLIP_COLUMN_INT64, nullptr, nullptr },
};

void
write_every_type (const std::string &path, int n_rows, int height, int width, int n_wave,
                  double quantum)
{
  std::vector<double> wavelength = test_wavelength (n_wave);
  AclipCatalogueLayout layout{};
  layout.image_height = height;
  layout.image_width = width;
  layout.pixscale = 0.262;
  layout.image_quantum = quantum;
  layout.n_wave = n_wave;
  layout.wavelength = n_wave ? wavelength.data () : nullptr;
  layout.n_extra = 4;
  layout.extra = kEveryType;
  ErrorHolder error;
  g_autoptr (AclipCatalogueWriter) writer =
      aclip_catalogue_writer_new (path.c_str (), &layout, error.out ());
  ASSERT_NE (writer, nullptr) << error->message;
  const double special[] = { NAN, INFINITY, -INFINITY, -0.0, 0.0, 1e-310, 1e-40, -1e-45 };
  const int n_special = G_N_ELEMENTS (special);
  for (int row = 0; row < n_rows; row++) {
    TestGalaxy test (row, height, width, n_wave);
    /* IDs that a double cannot hold: 2^62 + odd numbers. */
    test.galaxy.id = (G_GINT64_CONSTANT (1) << 62) + 2 * row + 1;
    if (row % 5 == 1)
      test.galaxy.id = -test.galaxy.id;
    double value = special[row % n_special];
    test.galaxy.ra = row % 3 == 0 ? value : 10.0 + row;
    test.galaxy.dec = row % 4 == 0 ? value : -5.0 - row;
    test.galaxy.z = row % 2 == 0 ? (float) value : 0.01f * (float) row;
    test.galaxy.flux[1] = (float) special[(row + 3) % n_special];
    double extras[4] = {
      row % 2 == 0 ? value : 1.5 * row,
      row % 2 == 1 ? value : -2.25 * row,
      row % 3 == 0 ? (double) G_MININT32 + row : (double) G_MAXINT32 - row,
      /* Exactly representable as doubles, beyond 2^53. */
      row % 2 == 0 ? std::ldexp (1.0, 60) + std::ldexp ((double) row, 8) : -1.0 * row,
    };
    ASSERT_TRUE (aclip_catalogue_writer_append (writer, &test.galaxy, extras, error.out ()))
        << error->message;
  }
  ASSERT_TRUE (aclip_catalogue_writer_finish (writer, error.out ())) << error->message;
}

} // namespace

TEST (CatalogueScalars, MatchColumnReadsForEveryTypeAndLayout)
{
  struct Layout
  {
    const char *name;
    int height, width, n_wave;
    double quantum;
  } layouts[] = {
    { "both.fits", kHeight, kWidth, kWave, 0.0 },
    { "images16.fits", 16, 16, 0, 0.001 }, /* rows wider than CFITSIO's 2880-byte buffers */
    { "spectra.fits", 0, 0, 900, 0.0 },
  };
  TempDir dir;
  for (const Layout &layout : layouts) {
    SCOPED_TRACE (layout.name);
    std::string path = dir.path (layout.name);
    write_every_type (path, 23, layout.height, layout.width, layout.n_wave, layout.quantum);
    ErrorHolder error;
    g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path.c_str (), error.out ());
    ASSERT_NE (catalogue, nullptr) << error->message;
    expect_all_reads_match (catalogue);

    /* The values themselves, not only agreement with the column reads: IDs exact beyond 2^53,
     * CFITSIO's conversions (Inf and NaN read as NaN, −0 and subnormals as +0). */
    std::vector<gint64> ids (23);
    std::vector<double> ra (23), z (23), i64 (23), f64 (23);
    std::vector<double *> columns (g_strv_length ((char **) aclip_catalogue_numeric_columns (
                                       catalogue)),
                                   nullptr);
    ASSERT_EQ (columns.size (), 12u);
    columns[1] = ra.data ();
    columns[3] = z.data ();
    columns[9] = f64.data ();
    columns[11] = i64.data ();
    ASSERT_TRUE (aclip_catalogue_read_scalars (catalogue, 0, 23, ids.data (), columns.data (),
                                               error.out ()))
        << error->message;
    EXPECT_EQ (ids[0], (G_GINT64_CONSTANT (1) << 62) + 1);
    EXPECT_EQ (ids[1], -((G_GINT64_CONSTANT (1) << 62) + 3));
    EXPECT_EQ (ids[22], (G_GINT64_CONSTANT (1) << 62) + 45);
    EXPECT_TRUE (std::isnan (ra[0]));    /* NaN */
    EXPECT_TRUE (std::isnan (ra[9]));    /* +Inf (9 % 8 = 1) */
    EXPECT_TRUE (same_double (ra[3], 0.0)); /* −0 → +0 */
    EXPECT_EQ (ra[4], 14.0);
    EXPECT_TRUE (same_double (z[6], 0.0));  /* float subnormal 1e-40 → 0 */
    EXPECT_TRUE (same_double (f64[5], 0.0)); /* double subnormal 1e-310 → 0 */
    EXPECT_EQ (i64[4], std::ldexp (1.0, 60) + 1024.0);
    EXPECT_EQ (i64[3], -3.0);
  }
}

TEST (CatalogueScalars, ScaledAndNullIntegerColumnsMatchColumnReads)
{
  /* Files from other writers: bytes, int16 and int32 with TSCAL/TZERO and TNULL, unsigned
   * int16, signed bytes, a scaled float, an int64 with TZERO (left to CFITSIO), a TNULL out of
   * an int16's range (ignored by CFITSIO) — each must read as the column reads give it. */
  TempDir dir;
  std::string path = dir.path ("scaled.fits");
  const int n_rows = 9;
  ErrorHolder error;
  {
    g_autoptr (AclipFits) fits = aclip_fits_create (path.c_str (), error.out ());
    ASSERT_NE (fits, nullptr) << error->message;
    std::vector<double> wavelength = test_wavelength ();
    gint64 n_wave = kWave;
    ASSERT_TRUE (aclip_fits_write_empty_primary (fits, error.out ()) &&
                 aclip_fits_write_key_int64 (fits, "ACLIPCAT", 1, nullptr, error.out ()) &&
                 aclip_fits_write_key_string (fits, "BANDS", "grz", nullptr, error.out ()) &&
                 aclip_fits_write_key_double (fits, "PIXSCALE", 0.262, nullptr, error.out ()) &&
                 aclip_fits_append_image_double (fits, "WAVELENGTH", 1, &n_wave,
                                                 wavelength.data (), error.out ()))
        << error->message;
    std::string spectrum_format = std::to_string (kWave) + "E";
    std::vector<AclipFitsColumnSpec> specs = {
      { "ID", "1K", nullptr, 0, {}, 1, 0 },
      { "RA", "1D", "deg", 0, {}, 1, 0 },
      { "DEC", "1D", "deg", 0, {}, 1, 0 },
      { "Z", "1E", nullptr, 0, {}, 1, 0 },
      { "LOGMSTAR", "1E", nullptr, 0, {}, 1, 0 },
      { "FLUX_G", "1E", nullptr, 0, {}, 1, 0 },
      { "FLUX_R", "1E", nullptr, 0, {}, 1, 0 },
      { "FLUX_Z", "1E", nullptr, 0, {}, 1, 0 },
      { "B_NULL", "1B", nullptr, 0, {}, 0.5, 10.0 },       /* 9: TNULL 255 */
      { "I_NULL", "1I", nullptr, 0, {}, 0.25, -3.0 },      /* 10: TNULL −32768 */
      { "J_NULL", "1J", nullptr, 0, {}, 1, 0 },            /* 11: TNULL 7 */
      { "USHORT", "1I", nullptr, 0, {}, 1, 32768 },        /* 12 */
      { "SBYTE", "1B", nullptr, 0, {}, 1, -128 },          /* 13 */
      { "E_SCALED", "1E", nullptr, 0, {}, 1.5, -2.0 },     /* 14 */
      { "K_ZERO", "1K", nullptr, 0, {}, 1, 1000 },         /* 15 */
      { "I_BADNULL", "1I", nullptr, 0, {}, 1, 0 },         /* 16: TNULL 40000 */
      { "SPECTRUM", spectrum_format.c_str (), nullptr, 0, {}, 1, 0 },
      { "SPECTRUM_IVAR", spectrum_format.c_str (), nullptr, 0, {}, 1, 0 },
      { "K_NULL", "1K", nullptr, 0, {}, 1, 0 },            /* 19: TNULL −1 */
    };
    ASSERT_TRUE (aclip_fits_append_table (fits, "GALAXIES", (int) specs.size (), specs.data (),
                                          error.out ()))
        << error->message;
    ASSERT_TRUE (aclip_fits_write_key_int64 (fits, "TNULL9", 255, nullptr, error.out ()) &&
                 aclip_fits_write_key_int64 (fits, "TNULL10", -32768, nullptr, error.out ()) &&
                 aclip_fits_write_key_int64 (fits, "TNULL11", 7, nullptr, error.out ()) &&
                 aclip_fits_write_key_int64 (fits, "TNULL16", 40000, nullptr, error.out ()) &&
                 aclip_fits_write_key_int64 (fits, "TNULL19", -1, nullptr, error.out ()))
        << error->message;
    std::vector<float> spectrum (kWave, 1.0f);
    for (gint64 row = 0; row < n_rows; row++) {
      gint64 id = G_GINT64_CONSTANT (39633345008634465) + row;
      double position = 100.0 + row;
      float z = 0.1f * (float) row;
      /* Physical values: every stored value lands on an exact step; row 2 holds each TNULL. */
      double b = row == 2 ? 255 * 0.5 + 10.0 : 10.0 + 0.5 * row;
      double i = row == 2 ? -32768 * 0.25 - 3.0 : -3.0 + 0.25 * (row * 1000 - 4000);
      gint32 j = row == 2 ? 7 : (gint32) (row * 100000 - 1);
      double ushort = 32768.0 + 8000 * row - 32000;
      double sbyte = -128.0 + 30 * row;
      float e = row == 4 ? NAN : (float) (-2.0 + 1.5 * row);
      gint64 k = (G_GINT64_CONSTANT (1) << 40) + row;
      gint32 badnull = row == 3 ? 40000 - 65536 : (gint32) row; /* stays in int16 */
      gint64 k_null = row == 2 ? -1 : G_GINT64_CONSTANT (9007199254740993) + row;
      ASSERT_TRUE (aclip_fits_write_column_int64 (fits, 1, row, 0, 1, &id, error.out ()) &&
                   aclip_fits_write_column_double (fits, 2, row, 0, 1, &position, error.out ()) &&
                   aclip_fits_write_column_double (fits, 3, row, 0, 1, &position, error.out ()));
      for (int c = 4; c <= 8; c++)
        ASSERT_TRUE (aclip_fits_write_column_float (fits, c, row, 0, 1, &z, error.out ()));
      ASSERT_TRUE (aclip_fits_write_column_double (fits, 9, row, 0, 1, &b, error.out ()) &&
                   aclip_fits_write_column_double (fits, 10, row, 0, 1, &i, error.out ()) &&
                   aclip_fits_write_column_int32 (fits, 11, row, 0, 1, &j, error.out ()) &&
                   aclip_fits_write_column_double (fits, 12, row, 0, 1, &ushort, error.out ()) &&
                   aclip_fits_write_column_double (fits, 13, row, 0, 1, &sbyte, error.out ()) &&
                   aclip_fits_write_column_float (fits, 14, row, 0, 1, &e, error.out ()) &&
                   aclip_fits_write_column_int64 (fits, 15, row, 0, 1, &k, error.out ()) &&
                   aclip_fits_write_column_int32 (fits, 16, row, 0, 1, &badnull, error.out ()) &&
                   aclip_fits_write_column_float (fits, 17, row, 0, kWave, spectrum.data (),
                                                  error.out ()) &&
                   aclip_fits_write_column_float (fits, 18, row, 0, kWave, spectrum.data (),
                                                  error.out ()) &&
                   aclip_fits_write_column_int64 (fits, 19, row, 0, 1, &k_null, error.out ()))
          << "row " << row << ": " << error->message;
    }
  }
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  ASSERT_EQ (g_strv_length ((char **) aclip_catalogue_numeric_columns (catalogue)), 17u);
  expect_all_reads_match (catalogue);

  /* The null and scaled values themselves. */
  std::vector<double> values[17];
  std::vector<double *> pointers;
  for (auto &column : values) {
    column.resize (n_rows);
    pointers.push_back (column.data ());
  }
  ASSERT_TRUE (aclip_catalogue_read_scalars (catalogue, 0, n_rows, nullptr, pointers.data (),
                                             error.out ()));
  for (int c : { 8, 9, 10, 16 })
    EXPECT_TRUE (std::isnan (values[c][2])) << "column " << c + 1;
  EXPECT_EQ (values[8][3], 11.5);
  EXPECT_EQ (values[9][3], -3.0 + 0.25 * -1000);
  EXPECT_EQ (values[10][3], 299999.0);
  EXPECT_EQ (values[11][0], 768.0);
  EXPECT_EQ (values[12][1], -98.0);
  EXPECT_TRUE (std::isnan (values[13][4]));
  EXPECT_EQ (values[13][3], 2.5);
  EXPECT_EQ (values[15][3], 40000.0 - 65536.0); /* TNULL 40000 cannot match an int16 */
  EXPECT_EQ (values[16][1], 9007199254740994.0);
}

TEST (CatalogueScalars, RealImportedCataloguesMatchColumnReads)
{
  /* `astroclip import` of the real DESI and BOSS test files: TARGETIDs beyond 2^53, the int64
   * ZWARN and int32 extras; and the DESI galaxy with its real Legacy Surveys PNG (images too). */
  TempDir dir;
  std::string spectra = dir.path ("spectra.fits"), paired = dir.path ("paired.fits"), out, err;
  ASSERT_EQ (run_astroclip ({ "import", "--out", spectra, "--quiet", "--desi",
                              test_data_path ("desi/coadd-4-80613-thru20210324.fits"), "--desi",
                              test_data_path ("desi/coadd-special-dark-27247.fits"), "--sdss",
                              test_data_path ("boss/spec-4055-55359-0006.fits"), "--sdss",
                              test_data_path ("boss/spec-4055-55359-0010.fits") },
                            &out, &err),
             0)
      << err;
  ASSERT_EQ (run_astroclip ({ "import", "--out", paired, "--quiet", "--image-size", "64",
                              "--pixscale-in", "0.044", "--desi",
                              test_data_path ("desi/coadd-4-80613-thru20210324.fits"),
                              "--cutout", test_data_path ("desi/cutout_39633345008634465.png") },
                            &out, &err),
             0)
      << err;
  for (const std::string &path : { spectra, paired }) {
    SCOPED_TRACE (path);
    ErrorHolder error;
    g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path.c_str (), error.out ());
    ASSERT_NE (catalogue, nullptr) << error->message;
    ASSERT_TRUE (aclip_catalogue_has_column (catalogue, "ZWARN"));
    expect_all_reads_match (catalogue);
    gint64 id = 0;
    ASSERT_TRUE (aclip_catalogue_read_scalars (catalogue, 0, 1, &id, nullptr, error.out ()));
    EXPECT_EQ (id, G_GINT64_CONSTANT (39633345008634465));
  }
}

TEST (CatalogueScalars, BadRangesAreErrors)
{
  TempDir dir;
  std::string path = dir.path ("range.fits");
  write_every_type (path, 6, kHeight, kWidth, kWave, 0.0);
  ErrorHolder error;
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  gint64 ids[8];
  std::vector<double> values (8 * 12);
  std::vector<double *> columns (12);
  for (int c = 0; c < 12; c++)
    columns[c] = values.data () + 8 * c;
  struct
  {
    gint64 first, n;
  } bad[] = { { -1, 2 }, { 0, 7 }, { 5, 2 }, { 6, 1 }, { 2, -1 }, { 7, 0 },
              { 1, G_MAXINT64 }, { G_MAXINT64, 1 }, { G_MININT64, 3 } };
  for (auto range : bad) {
    EXPECT_FALSE (aclip_catalogue_read_scalars (catalogue, range.first, range.n, ids,
                                                columns.data (), error.out ()))
        << range.first << "+" << range.n;
    ASSERT_NE (error.error, nullptr);
    EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG));
    EXPECT_ERROR_MENTIONS (error.error, "range.fits", "do not exist");
  }
  /* The edges themselves are fine, and an empty range reads nothing. */
  EXPECT_TRUE (aclip_catalogue_read_scalars (catalogue, 0, 6, ids, columns.data (), error.out ()));
  EXPECT_TRUE (aclip_catalogue_read_scalars (catalogue, 6, 0, ids, columns.data (), error.out ()));
}

TEST (CatalogueScalars, TruncatedDataIsAnError)
{
  /* 40 rows of 3·16·16·4 + 2·40·4 + 44 + 24 = 3460 bytes: 138,400 bytes of data, padded by
   * 2720 to whole 2880-byte blocks. Cutting 2800 bytes loses the last 80 bytes of the last row
   * (its extras) while opening still succeeds: a file short by less than a block passes the
   * check on open, and the loss shows when the rows are read. */
  TempDir dir;
  std::string good = dir.path ("good.fits"), cut = dir.path ("cut.fits");
  write_every_type (good, 40, 16, 16, kWave, 0.0);
  GStatBuf info;
  ASSERT_EQ (g_stat (good.c_str (), &info), 0);
  copy_truncated (good, cut, (gsize) info.st_size - 2800);
  ErrorHolder error;
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (cut.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  std::vector<gint64> ids (40);
  std::vector<double> values (40 * 12);
  std::vector<double *> columns (12);
  for (int c = 0; c < 12; c++)
    columns[c] = values.data () + 40 * c;
  EXPECT_TRUE (aclip_catalogue_read_scalars (catalogue, 0, 30, ids.data (), columns.data (),
                                             error.out ()))
      << error->message;
  EXPECT_FALSE (aclip_catalogue_read_scalars (catalogue, 0, 40, ids.data (), columns.data (),
                                              error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "cut.fits");
  /* As the column read of the lost column. */
  EXPECT_FALSE (aclip_catalogue_read_column (catalogue, "I64", 0, 40, values.data (),
                                             error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "cut.fits");
}
