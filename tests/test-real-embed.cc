/* test-real-embed.cc — the default model on real spectra: `astroclip import` of the real DESI,
 * BOSS and SDSS spectra of tests/data, `astroclip embed` with the shipped default model, and
 * `astroclip search` of each real galaxy among a small simulated catalogue like the bundled
 * demo.
 *
 * The model was trained on simulations only; what it makes of real spectra is measured by hand
 * (the redshifts of the neighbours against the catalogue's). This suite checks that the path
 * works end to end on real files: every real spectrum gets a finite, L2-normalised embedding
 * (no NaN), and the search reports, for every real galaxy, a nearest simulated neighbour with a
 * finite redshift. The DESI galaxy with a Legacy Surveys cutout (a PNG) is also imported with
 * its image, and searched image→image and image→spectrum.
 *
 * The model is $ACLIP_DATA_DIR/models/astroclip-default.ckpt; ACLIP_TEST_MODEL overrides it
 * (another aligned checkpoint, for development).
 */
#include "test-support.h"

#include "aclip-catalogue.h"
#include "aclip-embeddings.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace
{

/* The real spectra of tests/data: two DESI coadds (one target each), five BOSS spec files
 * (two galaxies at z = 0.214, a star, two quasars) and an SDSS DR12 spec file (NGC 4636). */
const char *const kDesiCoadds[] = { "desi/coadd-4-80613-thru20210324.fits",
                                    "desi/coadd-special-dark-27247.fits" };
const char *const kSdssSpectra[] = {
  "boss/spec-10000-57346-0002.fits", "boss/spec-4055-55359-0001.fits",
  "boss/spec-4055-55359-0006.fits",  "boss/spec-4055-55359-0010.fits",
  "boss/spec-4055-55359-0012.fits",  "sdss/NGC4636_SDSS_DR12.fits"
};
const int kRealSpectra = 8;
/* The DESI target whose Legacy Surveys cutout is in tests/data (a 0.044″/pixel panel cropped
 * from a fastspecfit QA figure; its overlays stay in the image). */
const char *const kCutout = "desi/cutout_39633345008634465.png";
const gint64 kCutoutId = G_GINT64_CONSTANT (39633345008634465);
const int kSimulated = 300;

std::string
model_path ()
{
  const char *override_path = g_getenv ("ACLIP_TEST_MODEL");
  if (override_path != nullptr && *override_path != '\0')
    return override_path;
  const char *data = g_getenv ("ACLIP_DATA_DIR");
  g_autofree char *path = g_build_filename (data != nullptr ? data : "data", "models",
                                            "astroclip-default.ckpt", nullptr);
  return path;
}

void
run_ok (const std::vector<std::string> &arguments, std::string *out = nullptr)
{
  std::string o, e;
  int status = run_astroclip (arguments, &o, &e);
  ASSERT_EQ (status, 0) << arguments[0] << ": " << e << o;
  if (out)
    *out = o;
}

std::vector<float>
row_or_nan (const AclipEmbeddings *store, AclipModality modality, gint64 row, int dim)
{
  const float *v = row >= 0 ? aclip_embeddings_row (store, modality, row) : nullptr;
  return v ? std::vector<float> (v, v + dim) : std::vector<float> (dim, NAN);
}

/* Checks that every row of `store` has a finite, unit embedding of `modality`. */
void
expect_all_present (const AclipEmbeddings *store, AclipModality modality)
{
  const int dim = aclip_embeddings_dim (store);
  for (gint64 r = 0; r < aclip_embeddings_n_rows (store); r++) {
    const float *v = aclip_embeddings_row (store, modality, r);
    ASSERT_NE (v, nullptr) << "galaxy " << aclip_embeddings_ids (store)[r] << " has no "
                           << aclip_modality_name (modality) << " embedding";
    double norm2 = 0;
    for (int k = 0; k < dim; k++) {
      ASSERT_TRUE (std::isfinite (v[k])) << "galaxy " << aclip_embeddings_ids (store)[r];
      norm2 += (double) v[k] * v[k];
    }
    EXPECT_NEAR (std::sqrt (norm2), 1.0, 1e-4) << "galaxy " << aclip_embeddings_ids (store)[r];
  }
}

/* One neighbour line of `astroclip search --format csv --columns Z`. */
struct Neighbour
{
  gint64 query, id;
  int rank;
  double similarity, z; /* z NaN when the field is empty (a neighbour not in the catalogue) */
};

std::vector<Neighbour>
parse_csv (const std::string &text)
{
  std::vector<Neighbour> rows;
  std::istringstream lines (text);
  std::string line;
  std::getline (lines, line);
  EXPECT_EQ (line, "query_id,rank,id,similarity,Z");
  while (std::getline (lines, line)) {
    std::vector<std::string> fields;
    std::stringstream cells (line);
    std::string cell;
    while (std::getline (cells, cell, ','))
      fields.push_back (cell);
    if (fields.size () == 4)
      fields.push_back (""); /* an empty last field */
    if (fields.size () != 5) {
      ADD_FAILURE () << "bad CSV line: " << line;
      continue;
    }
    Neighbour n;
    n.query = g_ascii_strtoll (fields[0].c_str (), nullptr, 10);
    n.rank = atoi (fields[1].c_str ());
    n.id = g_ascii_strtoll (fields[2].c_str (), nullptr, 10);
    n.similarity = g_ascii_strtod (fields[3].c_str (), nullptr);
    n.z = fields[4].empty () ? NAN : g_ascii_strtod (fields[4].c_str (), nullptr);
    rows.push_back (n);
  }
  return rows;
}

/* For each query, its best-ranked neighbour with a redshift (the simulated galaxies are the
 * only ones in the catalogue given to the search). */
std::map<gint64, Neighbour>
nearest_with_redshift (const std::vector<Neighbour> &rows)
{
  std::map<gint64, Neighbour> nearest;
  for (const Neighbour &n : rows)
    if (!std::isnan (n.z) && (nearest.count (n.query) == 0 || n.rank < nearest[n.query].rank))
      nearest[n.query] = n;
  return nearest;
}

} // namespace

TEST (RealEmbed, RealSpectraAmongSimulatedGalaxies)
{
  const std::string model = model_path ();
  ASSERT_TRUE (g_file_test (model.c_str (), G_FILE_TEST_IS_REGULAR))
      << "no model at " << model << " (the default model ships in data/models/; "
      << "ACLIP_TEST_MODEL names another)";
  TempDir dir;

  /* The real spectra alone (a spectra-only catalogue), and the DESI galaxy with its cutout. */
  std::vector<std::string> import = { "import", "--out", dir.path ("real.fits"), "--quiet" };
  for (const char *file : kDesiCoadds)
    import.insert (import.end (), { "--desi", test_data_path (file) });
  for (const char *file : kSdssSpectra)
    import.insert (import.end (), { "--sdss", test_data_path (file) });
  run_ok (import);
  run_ok ({ "import", "--out", dir.path ("paired.fits"), "--quiet", "--image-size", "96",
            "--pixscale-in", "0.044", "--desi", test_data_path (kDesiCoadds[0]), "--cutout",
            test_data_path (kCutout) });

  /* A small catalogue like the bundled demo (96-pixel cutouts stored in 16 bits). */
  run_ok ({ "simulate", "--n", std::to_string (kSimulated), "--seed", "1", "--image-size", "96",
            "--image-quantum", "0.002", "--quiet", "--out", dir.path ("sim.fits") });

  for (const char *name : { "real", "paired", "sim" })
    run_ok ({ "embed", "--catalogue", dir.path (std::string (name) + ".fits"), "--model", model,
              "--out", dir.path (std::string (name) + "-emb.fits"), "--threads", "2", "--progress",
              "none" });

  ErrorHolder error;
  g_autoptr (AclipEmbeddings) real =
      aclip_embeddings_open (dir.path ("real-emb.fits").c_str (), error.out ());
  ASSERT_NE (real, nullptr) << error->message;
  g_autoptr (AclipEmbeddings) paired =
      aclip_embeddings_open (dir.path ("paired-emb.fits").c_str (), error.out ());
  ASSERT_NE (paired, nullptr) << error->message;
  g_autoptr (AclipEmbeddings) sim =
      aclip_embeddings_open (dir.path ("sim-emb.fits").c_str (), error.out ());
  ASSERT_NE (sim, nullptr) << error->message;

  /* Every real spectrum has good pixels, so every one has an embedding: finite, unit. */
  ASSERT_EQ (aclip_embeddings_n_rows (real), kRealSpectra);
  EXPECT_FALSE (aclip_embeddings_has_modality (real, ACLIP_MODALITY_IMAGE));
  expect_all_present (real, ACLIP_MODALITY_SPECTRUM);
  ASSERT_EQ (aclip_embeddings_n_rows (paired), 1);
  EXPECT_EQ (aclip_embeddings_ids (paired)[0], kCutoutId);
  expect_all_present (paired, ACLIP_MODALITY_IMAGE);
  expect_all_present (paired, ACLIP_MODALITY_SPECTRUM);
  ASSERT_EQ (aclip_embeddings_n_rows (sim), kSimulated);
  expect_all_present (sim, ACLIP_MODALITY_IMAGE);
  expect_all_present (sim, ACLIP_MODALITY_SPECTRUM);
  /* The DESI spectrum embeds the same in both catalogues, to float32 rounding: the batches
   * differ (8 spectra and 1), and with them the blocking of the matrix products. */
  {
    const int dim = aclip_embeddings_dim (real);
    std::vector<float> a =
        row_or_nan (real, ACLIP_MODALITY_SPECTRUM, aclip_embeddings_find (real, kCutoutId), dim);
    std::vector<float> b = row_or_nan (paired, ACLIP_MODALITY_SPECTRUM, 0, dim);
    for (int k = 0; k < dim; k++)
      EXPECT_NEAR (a[k], b[k], 1e-5) << "element " << k;
  }

  /* One file to search: the simulated galaxies, then the real ones (the DESI galaxy with its
   * image embedding from the paired catalogue; the others without images). */
  const int dim = aclip_embeddings_dim (sim);
  ASSERT_EQ (aclip_embeddings_dim (real), dim);
  std::vector<gint64> ids;
  std::vector<float> images, spectra;
  for (gint64 r = 0; r < kSimulated; r++) {
    ids.push_back (aclip_embeddings_ids (sim)[r]);
    std::vector<float> image = row_or_nan (sim, ACLIP_MODALITY_IMAGE, r, dim);
    std::vector<float> spectrum = row_or_nan (sim, ACLIP_MODALITY_SPECTRUM, r, dim);
    images.insert (images.end (), image.begin (), image.end ());
    spectra.insert (spectra.end (), spectrum.begin (), spectrum.end ());
  }
  std::string query_ids;
  for (gint64 r = 0; r < kRealSpectra; r++) {
    gint64 id = aclip_embeddings_ids (real)[r];
    ASSERT_LT (aclip_embeddings_find (sim, id), 0) << "ID " << id << " is in both";
    ids.push_back (id);
    std::vector<float> image =
        row_or_nan (paired, ACLIP_MODALITY_IMAGE, aclip_embeddings_find (paired, id), dim);
    std::vector<float> spectrum = row_or_nan (real, ACLIP_MODALITY_SPECTRUM, r, dim);
    images.insert (images.end (), image.begin (), image.end ());
    spectra.insert (spectra.end (), spectrum.begin (), spectrum.end ());
    query_ids += std::to_string (id) + "\n";
  }
  {
    AclipEmbeddingsLayout layout = { dim, TRUE, TRUE, aclip_embeddings_model (sim), "sim.fits" };
    g_autoptr (AclipEmbeddingsWriter) writer =
        aclip_embeddings_writer_new (dir.path ("all-emb.fits").c_str (), &layout, error.out ());
    ASSERT_NE (writer, nullptr) << error->message;
    ASSERT_TRUE (aclip_embeddings_writer_append (writer, (gint64) ids.size (), ids.data (),
                                                 images.data (), spectra.data (), error.out ()))
        << error->message;
    ASSERT_TRUE (aclip_embeddings_writer_finish (writer, error.out ())) << error->message;
  }
  ASSERT_TRUE (
      g_file_set_contents (dir.path ("real-ids.txt").c_str (), query_ids.c_str (), -1, nullptr));

  /* Spectrum → spectrum for every real galaxy. Its k neighbours may include the other real
   * galaxies (not in the simulated catalogue: no redshift printed); k leaves room for all of
   * them and still some simulated ones. */
  const std::string k = std::to_string (kRealSpectra + 4);
  std::string csv;
  run_ok ({ "search", "--embeddings", dir.path ("all-emb.fits"), "--catalogue",
            dir.path ("sim.fits"), "--ids-file", dir.path ("real-ids.txt"), "--mode",
            "spectrum-spectrum", "--k", k, "--columns", "Z", "--format", "csv" },
          &csv);
  std::vector<Neighbour> rows = parse_csv (csv);
  EXPECT_EQ (rows.size (), (size_t) kRealSpectra * (kRealSpectra + 4)) << csv;
  std::map<gint64, Neighbour> nearest = nearest_with_redshift (rows);

  /* What the model makes of real spectra, for the record (measured by hand, not asserted):
   * each real galaxy's own redshift (redrock's or the SDSS pipeline's) against its nearest
   * simulated neighbour's, printed in the test's log. `embed` writes the catalogue's rows in
   * order, so row r of the embeddings is row r of real.fits. */
  g_autoptr (AclipCatalogue) real_catalogue =
      aclip_catalogue_open (dir.path ("real.fits").c_str (), error.out ());
  ASSERT_NE (real_catalogue, nullptr) << error->message;
  std::vector<double> real_z (kRealSpectra);
  ASSERT_TRUE (aclip_catalogue_read_column (real_catalogue, "Z", 0, kRealSpectra, real_z.data (),
                                            error.out ()))
      << error->message;

  for (gint64 r = 0; r < kRealSpectra; r++) {
    gint64 id = aclip_embeddings_ids (real)[r];
    ASSERT_EQ (nearest.count (id), 1u) << "no simulated neighbour reported for " << id << "\n"
                                       << csv;
    const Neighbour &n = nearest[id];
    printf ("real spectrum %" G_GINT64_FORMAT ": z %.4f; nearest simulated spectrum "
            "%" G_GINT64_FORMAT " (rank %d, cosine %.3f): z %.4f\n",
            id, real_z[r], n.id, n.rank, n.similarity, n.z);
    EXPECT_GE (aclip_embeddings_find (sim, n.id), 0) << n.id;
    EXPECT_TRUE (std::isfinite (n.z) && n.z >= 0) << "galaxy " << id << ": z " << n.z;
    EXPECT_TRUE (std::isfinite (n.similarity) && std::fabs (n.similarity) <= 1.0 + 1e-6)
        << "galaxy " << id << ": similarity " << n.similarity;
  }

  /* The real image: among simulated images, and cross-modal among simulated spectra. The
   * other real galaxies have no image, so only the spectra of image→spectrum can be real. */
  for (const char *mode : { "image-image", "image-spectrum" }) {
    run_ok ({ "search", "--embeddings", dir.path ("all-emb.fits"), "--catalogue",
              dir.path ("sim.fits"), "--id", std::to_string (kCutoutId), "--mode", mode, "--k", k,
              "--columns", "Z", "--format", "csv" },
            &csv);
    std::map<gint64, Neighbour> found = nearest_with_redshift (parse_csv (csv));
    ASSERT_EQ (found.count (kCutoutId), 1u) << mode << "\n" << csv;
    EXPECT_TRUE (std::isfinite (found[kCutoutId].z)) << mode << "\n" << csv;
  }
}
