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
