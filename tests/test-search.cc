/* The embeddings file (round trip, streaming writer, every validation error naming the file)
 * and the exact nearest-neighbour search: every kernel, mode, thread count and batch against a
 * brute-force double-precision reference, and `astroclip search` end to end. */
#include "test-support.h"

extern "C" {
#include "aclip-catalogue.h"
#include "aclip-embeddings.h"
#include "aclip-error.h"
#include "aclip-fits.h"
#include "aclip-parallel.h"
#include "aclip-search.h"
}

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <vector>

namespace {

/* Store helpers ---------------------------------------------------------------------------- */

std::vector<float>
random_vector (std::mt19937_64 &rng, int dim, double scale = 1.0)
{
  std::normal_distribution<double> normal;
  std::vector<float> v (dim);
  for (auto &x : v)
    x = (float) (scale * normal (rng));
  return v;
}

struct StoreSpec
{
  gint64 n_rows = 100;
  int dim = 8;
  bool has_image = true, has_spectrum = true;
  int missing_every = 0;   /* every so many rows lacks one modality (alternating) */
  int duplicate_every = 0; /* every so many rows copies an earlier row: exact ties */
  int near_every = 0;      /* every so many rows is an earlier row nudged below bf16 resolution */
  guint64 seed = 1;
};

/* A store of random rows with IDs 5000 + 3·row; duplicate and near-duplicate rows make ties
 * and near ties, some rows miss a modality. */
AclipEmbeddings *
make_store (const StoreSpec &spec)
{
  GError *error = nullptr;
  AclipEmbeddings *store = aclip_embeddings_new (spec.n_rows, spec.dim, spec.has_image,
                                                 spec.has_spectrum, &error);
  EXPECT_NE (store, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  if (!store)
    return nullptr;
  std::mt19937_64 rng (spec.seed);
  std::vector<std::vector<float>> images, spectra;
  for (gint64 row = 0; row < spec.n_rows; row++) {
    std::vector<float> image = random_vector (rng, spec.dim);
    std::vector<float> spectrum = random_vector (rng, spec.dim);
    if (spec.duplicate_every && row > 0 && row % spec.duplicate_every == 0) {
      image = images[row / 3];
      spectrum = spectra[row / 3];
    } else if (spec.near_every && row > 0 && row % spec.near_every == 0) {
      image = images[row - 1];
      spectrum = spectra[row - 1];
      image[row % spec.dim] *= 1.0f + 2e-4f; /* a change bfloat16 cannot see */
      spectrum[(row + 1) % spec.dim] *= 1.0f - 3e-4f;
    }
    images.push_back (image);
    spectra.push_back (spectrum);
    bool no_image = spec.missing_every && row % spec.missing_every == 1;
    bool no_spectrum = spec.missing_every && row % spec.missing_every == 2;
    EXPECT_TRUE (aclip_embeddings_set_row (
        store, row, 5000 + 3 * row, spec.has_image && !no_image ? image.data () : nullptr,
        spec.has_spectrum && !no_spectrum ? spectrum.data () : nullptr, &error))
        << (error ? error->message : "");
    g_clear_error (&error);
  }
  return store;
}

struct StoreDeleter
{
  void operator() (AclipEmbeddings *store) const { aclip_embeddings_free (store); }
};
using StorePtr = std::unique_ptr<AclipEmbeddings, StoreDeleter>;

struct IndexDeleter
{
  void operator() (AclipSearchIndex *index) const { aclip_search_index_free (index); }
};
using IndexPtr = std::unique_ptr<AclipSearchIndex, IndexDeleter>;

struct PoolDeleter
{
  void operator() (AclipThreadPool *pool) const { aclip_thread_pool_free (pool); }
};
using PoolPtr = std::unique_ptr<AclipThreadPool, PoolDeleter>;

/* Reference search ---------------------------------------------------------------------------- */

struct Parts
{
  std::vector<AclipModality> query, scanned;
  std::vector<double> weight;
};

Parts
parts_of (AclipSearchMode mode)
{
  const AclipModality I = ACLIP_MODALITY_IMAGE, S = ACLIP_MODALITY_SPECTRUM;
  switch (mode) {
    case ACLIP_SEARCH_IMAGE_IMAGE:
      return { { I }, { I }, { 1.0 } };
    case ACLIP_SEARCH_SPECTRUM_SPECTRUM:
      return { { S }, { S }, { 1.0 } };
    case ACLIP_SEARCH_IMAGE_SPECTRUM:
      return { { I }, { S }, { 1.0 } };
    case ACLIP_SEARCH_SPECTRUM_IMAGE:
      return { { S }, { I }, { 1.0 } };
    default:
      return { { I, S }, { I, S }, { 0.5, 0.5 } };
  }
}

struct RefHit
{
  gint64 row;
  float score;  /* the double score rounded to float: what the search reports */
  double exact; /* in double */
};

/* The query vector normalised as documented: in double, rounded to float. */
std::vector<float>
normalised (const float *v, int dim)
{
  double sum = 0.0;
  for (int i = 0; i < dim; i++)
    sum += (double) v[i] * (double) v[i];
  double scale = 1.0 / std::sqrt (sum);
  std::vector<float> out (dim);
  for (int i = 0; i < dim; i++)
    out[i] = (float) ((double) v[i] * scale);
  return out;
}

/* Every eligible row scored in double precision, ranked by (score desc, row asc), first k. */
std::vector<RefHit>
reference_search (const AclipEmbeddings *store, AclipSearchMode mode,
                  const AclipSearchQuery &query, int k)
{
  Parts parts = parts_of (mode);
  int dim = aclip_embeddings_dim (store);
  std::vector<std::vector<float>> q;
  for (AclipModality m : parts.query)
    q.push_back (normalised (m == ACLIP_MODALITY_IMAGE ? query.image : query.spectrum, dim));
  std::set<gint64> excluded (query.exclude_ids, query.exclude_ids + query.n_exclude);
  std::vector<RefHit> hits;
  for (gint64 row = 0; row < aclip_embeddings_n_rows (store); row++) {
    if (excluded.count (aclip_embeddings_ids (store)[row]))
      continue;
    double total = 0.0;
    bool eligible = true;
    for (size_t p = 0; p < parts.scanned.size (); p++) {
      const float *x = aclip_embeddings_row (store, parts.scanned[p], row);
      if (!x) {
        eligible = false;
        break;
      }
      double sum = 0.0;
      for (int i = 0; i < dim; i++)
        sum += (double) q[p][i] * (double) x[i];
      total += parts.weight[p] * sum;
    }
    if (eligible)
      hits.push_back ({ row, (float) total, total });
  }
  std::sort (hits.begin (), hits.end (), [] (const RefHit &a, const RefHit &b) {
    return a.score != b.score ? a.score > b.score : a.row < b.row;
  });
  if ((int) hits.size () > k)
    hits.resize (k);
  return hits;
}

/* Runs one search, asserting success. */
std::vector<AclipNeighbour>
run_search (const AclipSearchIndex *index, AclipThreadPool *pool, AclipSearchKernel kernel,
            AclipSearchMode mode, const std::vector<AclipSearchQuery> &queries, int k,
            std::vector<int> *n_found = nullptr)
{
  std::vector<AclipNeighbour> out (queries.size () * k);
  std::vector<int> found (queries.size (), -7);
  ErrorHolder error;
  EXPECT_TRUE (aclip_search (index, pool, kernel, mode, (gint64) queries.size (), queries.data (),
                             k, out.data (), found.data (), error.out ()))
      << (error ? error->message : "");
  if (n_found)
    *n_found = found;
  return out;
}

/* The search's answer for one query equals the reference: rows, IDs, similarities (the same
 * float), and the similarity within float rounding of the double-precision score. */
void
expect_matches_reference (const AclipEmbeddings *store, const AclipNeighbour *got, int n_found,
                          const std::vector<RefHit> &expected, int k, const std::string &what)
{
  ASSERT_EQ (n_found, (int) expected.size ()) << what;
  for (int i = 0; i < k; i++) {
    if (i < (int) expected.size ()) {
      EXPECT_EQ (got[i].row, expected[i].row) << what << ", rank " << i;
      EXPECT_EQ (got[i].id, aclip_embeddings_ids (store)[expected[i].row]) << what;
      EXPECT_EQ (got[i].similarity, expected[i].score) << what << ", rank " << i;
      EXPECT_NEAR (got[i].similarity, expected[i].exact, 1e-6) << what;
    } else {
      EXPECT_EQ (got[i].row, -1) << what << ", rank " << i;
      EXPECT_EQ (got[i].id, -1) << what;
      EXPECT_TRUE (std::isnan (got[i].similarity)) << what;
    }
  }
}

std::vector<AclipSearchKernel>
supported_kernels ()
{
  std::vector<AclipSearchKernel> kernels;
  for (int k = 0; k < ACLIP_N_SEARCH_KERNELS; k++)
    if (aclip_search_kernel_supported ((AclipSearchKernel) k))
      kernels.push_back ((AclipSearchKernel) k);
  return kernels;
}

const AclipSearchMode kModes[] = {
  ACLIP_SEARCH_IMAGE_IMAGE, ACLIP_SEARCH_SPECTRUM_SPECTRUM, ACLIP_SEARCH_IMAGE_SPECTRUM,
  ACLIP_SEARCH_SPECTRUM_IMAGE, ACLIP_SEARCH_BOTH,
};

/* Queries from rows whose needed embeddings exist. */
std::vector<AclipSearchQuery>
row_queries (const AclipEmbeddings *store, AclipSearchMode mode, int count, bool exclude_self,
             gint64 first_row = 0, gint64 step = 7)
{
  std::vector<AclipSearchQuery> queries;
  gint64 n_rows = aclip_embeddings_n_rows (store);
  for (gint64 row = first_row; (int) queries.size () < count; row = (row + step) % n_rows) {
    AclipSearchQuery query;
    aclip_search_query_for_row (&query, store, row, exclude_self);
    bool usable = true;
    for (int m = 0; m < ACLIP_N_MODALITIES; m++)
      if (aclip_search_mode_uses_query (mode, (AclipModality) m) &&
          (m == ACLIP_MODALITY_IMAGE ? query.image : query.spectrum) == nullptr)
        usable = false;
    if (usable)
      queries.push_back (query);
  }
  return queries;
}

/* Raw files for the validation tests --------------------------------------------------------- */

struct RawFile
{
  bool has_table = true;    /* an EMBEDDINGS HDU at all */
  bool table_is_image = false;
  bool write_version = true;
  gint64 version = 1;
  bool write_dim = true;
  gint64 dim_key = 4;
  int dim = 4; /* values per row actually stored */
  bool id_column = true;
  const char *id_format = "1K";
  const char *embedding_type = "E";
  bool image_column = true, spectrum_column = true;
  std::vector<gint64> ids = { 11, 12, 13 };
  std::vector<float> values; /* [n, dim] for both columns; default: unit rows */
};

bool
write_raw (const std::string &path, RawFile raw, GError **error)
{
  AclipFits *fits = aclip_fits_create (path.c_str (), error);
  if (!fits)
    return false;
  bool ok = aclip_fits_write_empty_primary (fits, error);
  gint64 n = (gint64) raw.ids.size ();
  if (raw.values.empty ())
    for (gint64 r = 0; r < n; r++)
      for (int i = 0; i < raw.dim; i++)
        raw.values.push_back (i == r % raw.dim ? 1.0f : 0.0f);
  if (ok && raw.table_is_image) {
    gint64 dims[1] = { 4 };
    float pixels[4] = { 1, 2, 3, 4 };
    ok = aclip_fits_append_image_float (fits, "EMBEDDINGS", 1, dims, pixels, error);
  } else if (ok && raw.has_table) {
    std::string format = std::to_string (raw.dim) + raw.embedding_type;
    std::vector<AclipFitsColumnSpec> specs;
    if (raw.id_column)
      specs.push_back ({ "ID", raw.id_format, nullptr, 0, { 0 }, 1.0, 0.0 });
    if (raw.image_column)
      specs.push_back ({ "IMAGE_EMB", format.c_str (), nullptr, 0, { 0 }, 1.0, 0.0 });
    if (raw.spectrum_column)
      specs.push_back ({ "SPECTRUM_EMB", format.c_str (), nullptr, 0, { 0 }, 1.0, 0.0 });
    ok = aclip_fits_append_table (fits, "EMBEDDINGS", (int) specs.size (), specs.data (), error);
    if (ok && raw.write_version)
      ok = aclip_fits_write_key_int64 (fits, "EMBVERS", raw.version, "", error);
    if (ok && raw.write_dim)
      ok = aclip_fits_write_key_int64 (fits, "EMB_DIM", raw.dim_key, "", error);
    if (ok)
      ok = aclip_fits_write_key_string (fits, "MODEL", "abc", "", error);
    int column = 1;
    if (ok && raw.id_column)
      ok = aclip_fits_write_column_int64 (fits, column++, 0, 0, n, raw.ids.data (), error);
    for (bool present : { raw.image_column, raw.spectrum_column })
      if (ok && present)
        ok = aclip_fits_write_column_float (fits, column++, 0, 0, n * raw.dim, raw.values.data (),
                                            error);
  }
  if (ok)
    ok = aclip_fits_commit (fits, error);
  aclip_fits_close (fits);
  return ok;
}

/* Opening `raw` fails with the file named and every fragment in the message. */
void
expect_open_fails (const TempDir &dir, const RawFile &raw,
                   std::initializer_list<const char *> fragments)
{
  static int counter = 0;
  std::string path = dir.path ("bad-" + std::to_string (counter++) + ".fits");
  ErrorHolder error;
  ASSERT_TRUE (write_raw (path, raw, error.out ())) << error->message;
  AclipEmbeddings *store = aclip_embeddings_open (path.c_str (), error.out ());
  EXPECT_EQ (store, nullptr);
  aclip_embeddings_free (store);
  ASSERT_NE (error.error, nullptr);
  EXPECT_NE (std::string (error->message).find (path), std::string::npos)
      << "\"" << error->message << "\" does not name the file";
  for (const char *fragment : fragments)
    EXPECT_NE (std::string (error->message).find (fragment), std::string::npos)
        << "error message \"" << error->message << "\" lacks \"" << fragment << "\"";
}

} // namespace

/* The file ------------------------------------------------------------------------------------ */

TEST (Embeddings, RoundTripKeepsEveryBit)
{
  TempDir dir;
  StoreSpec spec;
  spec.n_rows = 9000; /* more than one I/O chunk */
  spec.dim = 12;
  spec.missing_every = 5;
  StorePtr store (make_store (spec));
  ASSERT_TRUE (store);
  std::string long_name (120, 'c');
  aclip_embeddings_set_provenance (store.get (), "ACLIP-H64:0123456789abcdef",
                                   (long_name + ".fits").c_str ());
  std::string path = dir.path ("emb.fits");
  ErrorHolder error;
  ASSERT_TRUE (aclip_embeddings_save (store.get (), path.c_str (), error.out ()))
      << error->message;
  EXPECT_EQ (count_entries (dir.root ()), 1) << "no temporary file left behind";

  StorePtr read (aclip_embeddings_open (path.c_str (), error.out ()));
  ASSERT_TRUE (read) << error->message;
  EXPECT_STREQ (aclip_embeddings_path (read.get ()), path.c_str ());
  EXPECT_EQ (aclip_embeddings_n_rows (read.get ()), spec.n_rows);
  EXPECT_EQ (aclip_embeddings_dim (read.get ()), spec.dim);
  EXPECT_STREQ (aclip_embeddings_model (read.get ()), "ACLIP-H64:0123456789abcdef");
  EXPECT_EQ (std::string (aclip_embeddings_catalogue (read.get ())), long_name + ".fits");
  for (int m = 0; m < ACLIP_N_MODALITIES; m++) {
    AclipModality modality = (AclipModality) m;
    ASSERT_TRUE (aclip_embeddings_has_modality (read.get (), modality));
    EXPECT_EQ (aclip_embeddings_n_present (read.get (), modality),
               aclip_embeddings_n_present (store.get (), modality));
    EXPECT_EQ (aclip_embeddings_n_present (read.get (), modality), spec.n_rows - spec.n_rows / 5);
    for (gint64 row = 0; row < spec.n_rows; row++) {
      const float *a = aclip_embeddings_row (store.get (), modality, row);
      const float *b = aclip_embeddings_row (read.get (), modality, row);
      ASSERT_EQ (a == nullptr, b == nullptr) << "row " << row;
      if (a) {
        ASSERT_EQ (0, memcmp (a, b, spec.dim * sizeof (float))) << "row " << row;
      }
    }
  }
  EXPECT_EQ (aclip_embeddings_row (read.get (), ACLIP_MODALITY_IMAGE, 1), nullptr);
  EXPECT_EQ (aclip_embeddings_row (read.get (), ACLIP_MODALITY_SPECTRUM, 2), nullptr);
  for (gint64 row : { 0, 1, 4567, 8999 }) {
    EXPECT_EQ (aclip_embeddings_ids (read.get ())[row], 5000 + 3 * row);
    EXPECT_EQ (aclip_embeddings_find (read.get (), 5000 + 3 * row), row);
  }
  EXPECT_EQ (aclip_embeddings_find (read.get (), 5001), -1);
  EXPECT_EQ (aclip_embeddings_find (read.get (), -3), -1);
}

TEST (Embeddings, StoreNormalisesAndChecksRows)
{
  ErrorHolder error;
  StorePtr store (aclip_embeddings_new (3, 4, TRUE, FALSE, error.out ()));
  ASSERT_TRUE (store) << error->message;
  EXPECT_FALSE (aclip_embeddings_has_modality (store.get (), ACLIP_MODALITY_SPECTRUM));
  EXPECT_EQ (aclip_embeddings_vectors (store.get (), ACLIP_MODALITY_SPECTRUM), nullptr);
  /* a fresh store: IDs 0…n−1, every embedding missing */
  EXPECT_EQ (aclip_embeddings_find (store.get (), 2), 2);
  EXPECT_EQ (aclip_embeddings_row (store.get (), ACLIP_MODALITY_IMAGE, 0), nullptr);

  float v[4] = { 3, 0, 4, 0 };
  ASSERT_TRUE (aclip_embeddings_set_row (store.get (), 0, 77, v, nullptr, error.out ()));
  const float *row = aclip_embeddings_row (store.get (), ACLIP_MODALITY_IMAGE, 0);
  ASSERT_NE (row, nullptr);
  EXPECT_FLOAT_EQ (row[0], 0.6f);
  EXPECT_FLOAT_EQ (row[2], 0.8f);
  EXPECT_EQ (aclip_embeddings_find (store.get (), 77), 0) << "the ID index follows set_row";
  EXPECT_EQ (aclip_embeddings_find (store.get (), 0), -1);

  float zero[4] = { 0, 0, 0, 0 };
  EXPECT_FALSE (aclip_embeddings_set_row (store.get (), 1, 5, zero, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "row 1", "ID 5", "image", "norm");
  float mixed[4] = { 1, NAN, 0, 0 };
  EXPECT_FALSE (aclip_embeddings_set_row (store.get (), 1, 5, mixed, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "mixes NaN");
  float infinite[4] = { 1, INFINITY, 0, 0 };
  EXPECT_FALSE (aclip_embeddings_set_row (store.get (), 1, 5, infinite, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "infinite");
  EXPECT_FALSE (aclip_embeddings_set_row (store.get (), 1, 5, nullptr, v, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "no spectrum embeddings");
  EXPECT_EQ (aclip_embeddings_ids (store.get ())[1], 1) << "a failed set_row changes nothing";

  EXPECT_EQ (aclip_embeddings_new (3, 0, TRUE, TRUE, error.out ()), nullptr);
  EXPECT_EQ (error->code, ACLIP_ERROR_INVALID_ARG);
  EXPECT_EQ (aclip_embeddings_new (3, 4, FALSE, FALSE, error.out ()), nullptr);
}

TEST (Embeddings, StreamingWriterChecksAndNormalises)
{
  TempDir dir;
  std::string path = dir.path ("stream.fits");
  AclipEmbeddingsLayout layout = { 3, TRUE, TRUE, "hash", "cat.fits" };
  ErrorHolder error;
  AclipEmbeddingsWriter *writer =
      aclip_embeddings_writer_new (path.c_str (), &layout, error.out ());
  ASSERT_NE (writer, nullptr) << error->message;
  gint64 ids[2] = { 40, 41 };
  float image[6] = { 2, 0, 0, NAN, NAN, NAN }; /* row 1 has no image */
  float spectrum[6] = { 0, 0, 5, 1, 1, 1 };
  ASSERT_TRUE (aclip_embeddings_writer_append (writer, 2, ids, image, spectrum, error.out ()))
      << error->message;
  /* Nothing of a failing call is written. */
  gint64 bad_ids[2] = { 42, 43 };
  float bad_image[6] = { 1, 0, 0, 1, NAN, 0 };
  EXPECT_FALSE (aclip_embeddings_writer_append (writer, 2, bad_ids, bad_image, spectrum,
                                                error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, path.c_str (), "row 3", "ID 43", "mixes NaN");
  EXPECT_FALSE (aclip_embeddings_writer_append (writer, 2, bad_ids, nullptr, spectrum,
                                                error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "image embeddings are missing");
  EXPECT_EQ (aclip_embeddings_writer_n_rows (writer), 2);
  EXPECT_FALSE (g_file_test (path.c_str (), G_FILE_TEST_EXISTS)) << "not before finish";
  ASSERT_TRUE (aclip_embeddings_writer_finish (writer, error.out ())) << error->message;
  aclip_embeddings_writer_free (writer);

  StorePtr read (aclip_embeddings_open (path.c_str (), error.out ()));
  ASSERT_TRUE (read) << error->message;
  ASSERT_EQ (aclip_embeddings_n_rows (read.get ()), 2);
  EXPECT_STREQ (aclip_embeddings_model (read.get ()), "hash");
  EXPECT_STREQ (aclip_embeddings_catalogue (read.get ()), "cat.fits");
  EXPECT_EQ (aclip_embeddings_row (read.get (), ACLIP_MODALITY_IMAGE, 0)[0], 1.0f);
  EXPECT_EQ (aclip_embeddings_row (read.get (), ACLIP_MODALITY_IMAGE, 1), nullptr);
  EXPECT_EQ (aclip_embeddings_row (read.get (), ACLIP_MODALITY_SPECTRUM, 0)[2], 1.0f);
  EXPECT_FLOAT_EQ (aclip_embeddings_row (read.get (), ACLIP_MODALITY_SPECTRUM, 1)[1],
                   (float) (1.0 / std::sqrt (3.0)));
  EXPECT_EQ (aclip_embeddings_find (read.get (), 41), 1);
}

TEST (Embeddings, WriterRefusesDuplicateIdsAndLeavesNothing)
{
  TempDir dir;
  std::string path = dir.path ("dup.fits");
  AclipEmbeddingsLayout layout = { 2, TRUE, FALSE, nullptr, nullptr };
  ErrorHolder error;
  AclipEmbeddingsWriter *writer =
      aclip_embeddings_writer_new (path.c_str (), &layout, error.out ());
  ASSERT_NE (writer, nullptr) << error->message;
  gint64 ids[3] = { 7, 8, 7 };
  float image[6] = { 1, 0, 0, 1, 1, 1 };
  ASSERT_TRUE (aclip_embeddings_writer_append (writer, 3, ids, image, nullptr, error.out ()));
  EXPECT_FALSE (aclip_embeddings_writer_finish (writer, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, path.c_str (), "ID 7", "twice");
  aclip_embeddings_writer_free (writer);
  EXPECT_EQ (count_entries (dir.root ()), 0) << "no file, no temporary file";

  /* an unfinished writer deletes its temporary file */
  writer = aclip_embeddings_writer_new (path.c_str (), &layout, error.out ());
  ASSERT_NE (writer, nullptr);
  EXPECT_EQ (count_entries (dir.root ()), 1);
  aclip_embeddings_writer_free (writer);
  EXPECT_EQ (count_entries (dir.root ()), 0);
}

TEST (Embeddings, ValidationNamesTheFileAndTheProblem)
{
  TempDir dir;
  ErrorHolder error;
  {
    /* the raw writer makes a valid file by default */
    std::string path = dir.path ("good.fits");
    ASSERT_TRUE (write_raw (path, RawFile (), error.out ())) << error->message;
    StorePtr store (aclip_embeddings_open (path.c_str (), error.out ()));
    ASSERT_TRUE (store) << error->message;
    EXPECT_EQ (aclip_embeddings_n_rows (store.get ()), 3);
    EXPECT_STREQ (aclip_embeddings_catalogue (store.get ()), "") << "CATALOG is optional";
  }
  std::string missing = dir.path ("missing.fits");
  EXPECT_EQ (aclip_embeddings_open (missing.c_str (), error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, missing.c_str (), "no such file");

  RawFile raw;
  raw.has_table = false;
  expect_open_fails (dir, raw, { "no EMBEDDINGS HDU" });
  raw = RawFile ();
  raw.table_is_image = true;
  expect_open_fails (dir, raw, { "EMBEDDINGS is not a binary table" });
  raw = RawFile ();
  raw.write_version = false;
  expect_open_fails (dir, raw, { "EMBVERS" });
  raw = RawFile ();
  raw.version = 2;
  expect_open_fails (dir, raw, { "version 2", "not supported" });
  raw = RawFile ();
  raw.write_dim = false;
  expect_open_fails (dir, raw, { "EMB_DIM", "missing" });
  raw = RawFile ();
  raw.dim_key = 0;
  expect_open_fails (dir, raw, { "EMB_DIM is 0" });
  raw = RawFile ();
  raw.dim_key = 128;
  expect_open_fails (dir, raw, { "IMAGE_EMB has 4 values per row but EMB_DIM is 128" });
  raw = RawFile ();
  raw.embedding_type = "D";
  expect_open_fails (dir, raw, { "IMAGE_EMB must be float32" });
  raw = RawFile ();
  raw.id_column = false;
  expect_open_fails (dir, raw, { "column ID is missing" });
  raw = RawFile ();
  raw.id_format = "1J";
  expect_open_fails (dir, raw, { "column ID must hold one int64" });
  raw = RawFile ();
  raw.image_column = raw.spectrum_column = false;
  expect_open_fails (dir, raw, { "neither column IMAGE_EMB nor column SPECTRUM_EMB" });
  raw = RawFile ();
  raw.values = { 1, 0, 0, 0, 0.5f, 0.5f, 0.5f, 0.6f, 0, 0, 1, 0 };
  expect_open_fails (dir, raw, { "row 1 (ID 12)", "norm 1.05", "L2-normalised" });
  raw = RawFile ();
  raw.values = { 1, 0, 0, 0, 0, 1, 0, 0, 0, NAN, 1, 0 };
  expect_open_fails (dir, raw, { "row 2 (ID 13)", "mixes NaN" });
  raw = RawFile ();
  raw.values = { 1, 0, 0, 0, 0, INFINITY, 0, 0, 0, 0, 1, 0 };
  /* CFITSIO reads IEEE infinities as undefined values, i.e. NaN */
  expect_open_fails (dir, raw, { "row 1 (ID 12)", "mixes NaN" });
  raw = RawFile ();
  raw.ids = { 11, 12, 11 };
  expect_open_fails (dir, raw, { "ID 11 appears twice", "rows 0 and 2" });

  /* a missing embedding (a row of NaN) is fine */
  raw = RawFile ();
  raw.values = { 1, 0, 0, 0, NAN, NAN, NAN, NAN, 0, 0, 1, 0 };
  std::string path = dir.path ("nan-row.fits");
  ASSERT_TRUE (write_raw (path, raw, error.out ()));
  StorePtr store (aclip_embeddings_open (path.c_str (), error.out ()));
  ASSERT_TRUE (store) << error->message;
  EXPECT_EQ (aclip_embeddings_row (store.get (), ACLIP_MODALITY_IMAGE, 1), nullptr);
  EXPECT_EQ (aclip_embeddings_n_present (store.get (), ACLIP_MODALITY_SPECTRUM), 2);
}

TEST (Embeddings, TruncatedFileIsAnError)
{
  TempDir dir;
  StoreSpec spec;
  spec.n_rows = 2000;
  spec.dim = 16;
  StorePtr store (make_store (spec));
  std::string path = dir.path ("whole.fits"), cut = dir.path ("cut.fits");
  ErrorHolder error;
  ASSERT_TRUE (aclip_embeddings_save (store.get (), path.c_str (), error.out ()));
  GStatBuf info;
  ASSERT_EQ (g_stat (path.c_str (), &info), 0);
  copy_truncated (path, cut, (gsize) info.st_size / 2);
  EXPECT_EQ (aclip_embeddings_open (cut.c_str (), error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, cut.c_str (), "truncated");
}

/* The search ---------------------------------------------------------------------------------- */

TEST (Search, ModeNames)
{
  for (AclipSearchMode mode : kModes) {
    AclipSearchMode parsed;
    ASSERT_TRUE (aclip_search_mode_from_name (aclip_search_mode_name (mode), &parsed));
    EXPECT_EQ (parsed, mode);
  }
  AclipSearchMode parsed;
  EXPECT_FALSE (aclip_search_mode_from_name ("image", &parsed));
  EXPECT_TRUE (aclip_search_mode_uses_query (ACLIP_SEARCH_IMAGE_SPECTRUM, ACLIP_MODALITY_IMAGE));
  EXPECT_FALSE (aclip_search_mode_uses_query (ACLIP_SEARCH_IMAGE_SPECTRUM,
                                              ACLIP_MODALITY_SPECTRUM));
  EXPECT_TRUE (aclip_search_mode_scans (ACLIP_SEARCH_IMAGE_SPECTRUM, ACLIP_MODALITY_SPECTRUM));
  EXPECT_FALSE (aclip_search_mode_scans (ACLIP_SEARCH_IMAGE_SPECTRUM, ACLIP_MODALITY_IMAGE));
}

/* Every kernel and mode against the reference, with ties, near ties beyond bfloat16's
 * resolution, missing rows, an odd dimension, N not a multiple of any block. */
TEST (Search, EveryKernelAndModeMatchesTheReference)
{
  for (int dim : { 13, 64 }) {
    StoreSpec spec;
    spec.n_rows = 1037;
    spec.dim = dim;
    spec.missing_every = 11;
    spec.duplicate_every = 9;
    spec.near_every = 5;
    spec.seed = (guint64) dim;
    StorePtr store (make_store (spec));
    ErrorHolder error;
    PoolPtr pool (aclip_thread_pool_new (2));
    IndexPtr index (aclip_search_index_new (store.get (), pool.get (), error.out ()));
    ASSERT_TRUE (index) << error->message;
    std::mt19937_64 rng (99);
    for (AclipSearchKernel kernel : supported_kernels ())
      for (AclipSearchMode mode : kModes) {
        int k = 1 + (int) (rng () % 40);
        std::vector<AclipSearchQuery> queries =
            row_queries (store.get (), mode, 6, true, (gint64) (rng () % 1037));
        std::vector<int> found;
        std::vector<AclipNeighbour> got =
            run_search (index.get (), pool.get (), kernel, mode, queries, k, &found);
        for (size_t q = 0; q < queries.size (); q++) {
          std::string what = std::string ("kernel ") + aclip_search_kernel_name (kernel) +
                             ", mode " + aclip_search_mode_name (mode) + ", dim " +
                             std::to_string (dim) + ", k " + std::to_string (k) + ", query " +
                             std::to_string (q);
          expect_matches_reference (store.get (), got.data () + q * k, found[q],
                                    reference_search (store.get (), mode, queries[q], k), k, what);
          for (int i = 0; i < found[q]; i++)
            EXPECT_NE (got[q * k + i].id, queries[q].exclude_ids[0]) << "the query excluded";
        }
      }
  }
}

/* Clustered rows: hundreds of neighbours within bfloat16's error of one another, so the
 * order is decided by the exact re-ranking alone. */
TEST (Search, DenseClusterIsOrderedExactly)
{
  int dim = 32;
  gint64 n_rows = 3000;
  ErrorHolder error;
  StorePtr store (aclip_embeddings_new (n_rows, dim, TRUE, FALSE, error.out ()));
  std::mt19937_64 rng (5);
  std::vector<float> centre = random_vector (rng, dim);
  for (gint64 row = 0; row < n_rows; row++) {
    std::vector<float> v = centre;
    std::vector<float> noise = random_vector (rng, dim, row % 3 == 0 ? 1e-3 : 1e-1);
    for (int i = 0; i < dim; i++)
      v[i] += noise[i];
    ASSERT_TRUE (aclip_embeddings_set_row (store.get (), row, row, v.data (), nullptr,
                                           error.out ()));
  }
  IndexPtr index (aclip_search_index_new (store.get (), nullptr, error.out ()));
  AclipSearchQuery query = { centre.data (), nullptr, nullptr, 0 };
  for (AclipSearchKernel kernel : supported_kernels ())
    for (int k : { 1, 50, 900 }) {
      std::vector<int> found;
      std::vector<AclipNeighbour> got = run_search (index.get (), nullptr, kernel,
                                                    ACLIP_SEARCH_IMAGE_IMAGE, { query }, k, &found);
      expect_matches_reference (store.get (), got.data (), found[0],
                                reference_search (store.get (), ACLIP_SEARCH_IMAGE_IMAGE, query, k),
                                k, std::string ("kernel ") + aclip_search_kernel_name (kernel));
    }
}

TEST (Search, AllEqualRowsBreakTiesByRow)
{
  int dim = 6;
  gint64 n_rows = 200;
  ErrorHolder error;
  StorePtr store (aclip_embeddings_new (n_rows, dim, TRUE, TRUE, error.out ()));
  float v[6] = { 1, 2, 3, 4, 5, 6 };
  for (gint64 row = 0; row < n_rows; row++)
    ASSERT_TRUE (aclip_embeddings_set_row (store.get (), row, 1000 - row, v, v, error.out ()));
  PoolPtr pool (aclip_thread_pool_new (2));
  IndexPtr index (aclip_search_index_new (store.get (), pool.get (), error.out ()));
  for (AclipSearchKernel kernel : supported_kernels ()) {
    AclipSearchQuery query;
    aclip_search_query_for_row (&query, store.get (), 3, TRUE);
    std::vector<AclipNeighbour> got =
        run_search (index.get (), pool.get (), kernel, ACLIP_SEARCH_BOTH, { query }, 10);
    std::vector<gint64> rows;
    for (const auto &n : got)
      rows.push_back (n.row);
    EXPECT_EQ (rows, (std::vector<gint64>{ 0, 1, 2, 4, 5, 6, 7, 8, 9, 10 }))
        << aclip_search_kernel_name (kernel);
    for (const auto &n : got)
      EXPECT_EQ (n.similarity, got[0].similarity);
  }
}

TEST (Search, KLargerThanTheStoreAndExclusions)
{
  StoreSpec spec;
  spec.n_rows = 45;
  spec.dim = 10;
  spec.missing_every = 4; /* rows 1, 5, … lack images; 2, 6, … spectra */
  StorePtr store (make_store (spec));
  ErrorHolder error;
  IndexPtr index (aclip_search_index_new (store.get (), nullptr, error.out ()));
  for (AclipSearchKernel kernel : supported_kernels ())
    for (AclipSearchMode mode : kModes) {
      std::vector<AclipSearchQuery> queries = row_queries (store.get (), mode, 1, false, 3);
      /* exclude the galaxy, two others, and an ID the store does not have */
      std::vector<gint64> excluded = { aclip_embeddings_ids (store.get ())[3], 5000 + 3 * 10,
                                       5000 + 3 * 44, 17 };
      queries[0].exclude_ids = excluded.data ();
      queries[0].n_exclude = (int) excluded.size ();
      int k = 60;
      std::vector<int> found;
      std::vector<AclipNeighbour> got = run_search (index.get (), nullptr, kernel, mode, queries,
                                                    k, &found);
      std::vector<RefHit> expected = reference_search (store.get (), mode, queries[0], k);
      EXPECT_LT ((int) expected.size (), 45 - 2);
      expect_matches_reference (store.get (), got.data (), found[0], expected, k,
                                std::string (aclip_search_kernel_name (kernel)) + " " +
                                    aclip_search_mode_name (mode));
      for (int i = 0; i < found[0]; i++)
        for (gint64 id : excluded)
          EXPECT_NE (got[i].id, id);
    }
}

/* A batch gives what its queries give one by one; two threads what one gives; more queries
 * than one block (256) included. */
TEST (Search, BatchesAndThreadsGiveIdenticalResults)
{
  StoreSpec spec;
  spec.n_rows = 2051;
  spec.dim = 24;
  spec.missing_every = 13;
  spec.duplicate_every = 17;
  StorePtr store (make_store (spec));
  ErrorHolder error;
  PoolPtr one (aclip_thread_pool_new (1)), two (aclip_thread_pool_new (2));
  IndexPtr index (aclip_search_index_new (store.get (), two.get (), error.out ()));
  int k = 9;
  for (AclipSearchMode mode : { ACLIP_SEARCH_IMAGE_SPECTRUM, ACLIP_SEARCH_BOTH }) {
    std::vector<AclipSearchQuery> queries = row_queries (store.get (), mode, 300, true, 0, 5);
    std::vector<AclipNeighbour> reference;
    for (AclipSearchKernel kernel : supported_kernels ()) {
      std::string what = std::string (aclip_search_kernel_name (kernel)) + " " +
                         aclip_search_mode_name (mode);
      std::vector<AclipNeighbour> batch_two =
          run_search (index.get (), two.get (), kernel, mode, queries, k);
      std::vector<AclipNeighbour> batch_one =
          run_search (index.get (), one.get (), kernel, mode, queries, k);
      std::vector<AclipNeighbour> serial =
          run_search (index.get (), nullptr, kernel, mode, queries, k);
      if (reference.empty ())
        reference = batch_two;
      for (size_t i = 0; i < batch_two.size (); i++) {
        ASSERT_EQ (batch_two[i].row, batch_one[i].row) << what << " at " << i;
        ASSERT_EQ (batch_two[i].similarity, batch_one[i].similarity) << what;
        ASSERT_EQ (batch_two[i].row, serial[i].row) << what;
        ASSERT_EQ (batch_two[i].row, reference[i].row) << what << " against another kernel";
        ASSERT_EQ (batch_two[i].similarity, reference[i].similarity) << what;
      }
      for (size_t q = 0; q < queries.size (); q += 37) {
        std::vector<AclipNeighbour> single =
            run_search (index.get (), two.get (), kernel, mode, { queries[q] }, k);
        for (int i = 0; i < k; i++) {
          ASSERT_EQ (single[i].row, batch_two[q * k + i].row) << what << " query " << q;
          ASSERT_EQ (single[i].similarity, batch_two[q * k + i].similarity) << what;
        }
      }
    }
  }
}

/* A galaxy embedded on the fly: unnormalised vectors not in the store. */
TEST (Search, QueriesNotInTheStore)
{
  StoreSpec spec;
  spec.n_rows = 777;
  spec.dim = 128;
  StorePtr store (make_store (spec));
  ErrorHolder error;
  PoolPtr pool (aclip_thread_pool_new (2));
  IndexPtr index (aclip_search_index_new (store.get (), pool.get (), error.out ()));
  std::mt19937_64 rng (3);
  std::vector<float> image = random_vector (rng, 128, 3.7);
  std::vector<float> spectrum = random_vector (rng, 128, 0.01);
  AclipSearchQuery query = { image.data (), spectrum.data (), nullptr, 0 };
  for (AclipSearchKernel kernel : supported_kernels ())
    for (AclipSearchMode mode : kModes) {
      std::vector<int> found;
      std::vector<AclipNeighbour> got =
          run_search (index.get (), pool.get (), kernel, mode, { query }, 12, &found);
      expect_matches_reference (store.get (), got.data (), found[0],
                                reference_search (store.get (), mode, query, 12), 12,
                                std::string (aclip_search_kernel_name (kernel)) + " " +
                                    aclip_search_mode_name (mode));
    }
}

TEST (Search, LargerStoreWithTheDefaultDimension)
{
  StoreSpec spec;
  spec.n_rows = 20011;
  spec.dim = ACLIP_EMBEDDING_DIM_DEFAULT;
  spec.has_spectrum = false;
  StorePtr store (make_store (spec));
  ErrorHolder error;
  PoolPtr pool (aclip_thread_pool_new (2));
  IndexPtr index (aclip_search_index_new (store.get (), pool.get (), error.out ()));
  EXPECT_EQ (aclip_search_index_size (index.get ()), (gsize) 1251 * 16 * 64 * 4);
  std::vector<AclipSearchQuery> queries =
      row_queries (store.get (), ACLIP_SEARCH_IMAGE_IMAGE, 20, true, 11, 997);
  for (AclipSearchKernel kernel : supported_kernels ()) {
    std::vector<int> found;
    std::vector<AclipNeighbour> got = run_search (index.get (), pool.get (), kernel,
                                                  ACLIP_SEARCH_IMAGE_IMAGE, queries, 12, &found);
    for (size_t q = 0; q < queries.size (); q++)
      expect_matches_reference (
          store.get (), got.data () + q * 12, found[q],
          reference_search (store.get (), ACLIP_SEARCH_IMAGE_IMAGE, queries[q], 12), 12,
          std::string (aclip_search_kernel_name (kernel)) + " query " + std::to_string (q));
  }
}

TEST (Search, BadRequestsAreErrors)
{
  StoreSpec spec;
  spec.n_rows = 50;
  spec.dim = 4;
  spec.has_spectrum = false;
  StorePtr store (make_store (spec));
  ErrorHolder error;
  IndexPtr index (aclip_search_index_new (store.get (), nullptr, error.out ()));
  std::vector<AclipNeighbour> out (10);
  float image[4] = { 1, 0, 0, 0 }, zero[4] = { 0, 0, 0, 0 }, nan[4] = { 1, NAN, 0, 0 };
  AclipSearchQuery query = { image, nullptr, nullptr, 0 };
  EXPECT_FALSE (aclip_search (index.get (), nullptr, ACLIP_SEARCH_KERNEL_AUTO,
                              ACLIP_SEARCH_IMAGE_IMAGE, 1, &query, 0, out.data (), nullptr,
                              error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "at least 1");
  EXPECT_FALSE (aclip_search (index.get (), nullptr, ACLIP_SEARCH_KERNEL_AUTO,
                              ACLIP_SEARCH_IMAGE_SPECTRUM, 1, &query, 5, out.data (), nullptr,
                              error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "image-spectrum", "spectrum embeddings");
  EXPECT_FALSE (aclip_search (index.get (), nullptr, ACLIP_SEARCH_KERNEL_AUTO,
                              ACLIP_SEARCH_SPECTRUM_IMAGE, 1, &query, 5, out.data (), nullptr,
                              error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "query 0 has no spectrum embedding");
  AclipSearchQuery zero_query = { zero, nullptr, nullptr, 0 };
  AclipSearchQuery nan_query = { nan, nullptr, nullptr, 0 };
  for (const AclipSearchQuery *bad : { &zero_query, &nan_query }) {
    AclipSearchQuery two[2] = { query, *bad };
    EXPECT_FALSE (aclip_search (index.get (), nullptr, ACLIP_SEARCH_KERNEL_AUTO,
                                ACLIP_SEARCH_IMAGE_IMAGE, 2, two, 5, out.data (), nullptr,
                                error.out ()));
    EXPECT_ERROR_MENTIONS (error.error, "query 1", "not finite or is zero");
  }
  /* an empty store answers with nothing */
  StorePtr empty (aclip_embeddings_new (0, 4, TRUE, FALSE, error.out ()));
  IndexPtr empty_index (aclip_search_index_new (empty.get (), nullptr, error.out ()));
  int found = -1;
  ASSERT_TRUE (aclip_search (empty_index.get (), nullptr, ACLIP_SEARCH_KERNEL_AUTO,
                             ACLIP_SEARCH_IMAGE_IMAGE, 1, &query, 3, out.data (), &found,
                             error.out ()));
  EXPECT_EQ (found, 0);
  EXPECT_EQ (out[0].row, -1);
}

/* astroclip search ---------------------------------------------------------------------------- */

namespace {

constexpr int kGalaxies = 40, kDim = 16;

gint64
galaxy_id (int row)
{
  return 1000 + 7 * row;
}

/* A small catalogue and its embeddings (galaxy 5 has no spectrum embedding; galaxy 39 is in
 * the embeddings but not in the catalogue). */
void
write_search_files (const TempDir &dir, std::string *catalogue_path, std::string *embeddings_path,
                    StorePtr *store)
{
  *catalogue_path = dir.path ("cat.fits");
  *embeddings_path = dir.path ("emb.fits");
  ErrorHolder error;
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, 4, 4);
  layout.n_wave = 0;
  AclipCatalogueWriter *writer = aclip_catalogue_writer_new (catalogue_path->c_str (), &layout,
                                                             error.out ());
  ASSERT_NE (writer, nullptr) << error->message;
  std::vector<float> image (3 * 4 * 4, 0.5f);
  for (int row = 0; row < kGalaxies - 1; row++) {
    AclipGalaxy galaxy{};
    galaxy.id = galaxy_id (row);
    galaxy.ra = 150.0 + row;
    galaxy.dec = 2.0;
    galaxy.z = 0.01f * (float) row;
    galaxy.logmstar = row == 3 ? NAN : 9.0f + 0.05f * (float) row;
    for (float &flux : galaxy.flux)
      flux = 1.0f;
    galaxy.image = image.data ();
    ASSERT_TRUE (aclip_catalogue_writer_append (writer, &galaxy, nullptr, error.out ()))
        << error->message;
  }
  ASSERT_TRUE (aclip_catalogue_writer_finish (writer, error.out ())) << error->message;
  aclip_catalogue_writer_free (writer);

  store->reset (aclip_embeddings_new (kGalaxies, kDim, TRUE, TRUE, error.out ()));
  std::mt19937_64 rng (8);
  for (int row = 0; row < kGalaxies; row++) {
    std::vector<float> a = random_vector (rng, kDim), b = random_vector (rng, kDim);
    ASSERT_TRUE (aclip_embeddings_set_row (store->get (), row, galaxy_id (row), a.data (),
                                           row == 5 ? nullptr : b.data (), error.out ()));
  }
  aclip_embeddings_set_provenance (store->get (), "0123abcd", "cat.fits");
  ASSERT_TRUE (aclip_embeddings_save (store->get (), embeddings_path->c_str (), error.out ()))
      << error->message;
}

std::vector<std::vector<std::string>>
parse_csv (const std::string &text)
{
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines (text);
  std::string line;
  while (std::getline (lines, line)) {
    std::vector<std::string> fields;
    std::istringstream cells (line);
    std::string cell;
    while (std::getline (cells, cell, ','))
      fields.push_back (cell);
    if (!line.empty () && line.back () == ',')
      fields.push_back ("");
    rows.push_back (fields);
  }
  return rows;
}

} // namespace

TEST (SearchCommand, CsvMatchesTheLibraryAndTheCatalogue)
{
  TempDir dir;
  std::string catalogue, embeddings;
  StorePtr store;
  write_search_files (dir, &catalogue, &embeddings, &store);
  ASSERT_TRUE (store);
  for (AclipSearchMode mode : kModes) {
    std::string out, err;
    int status = run_astroclip ({ "search", "--embeddings", embeddings, "--catalogue", catalogue,
                                  "--id", std::to_string (galaxy_id (2)), "--k", "6", "--mode",
                                  aclip_search_mode_name (mode), "--format", "csv", "--columns",
                                  "Z,LOGMSTAR,RA" },
                                &out, &err);
    ASSERT_EQ (status, 0) << err;
    auto rows = parse_csv (out);
    ASSERT_EQ (rows.size (), 7u) << out;
    EXPECT_EQ (rows[0], (std::vector<std::string>{ "query_id", "rank", "id", "similarity", "Z",
                                                    "LOGMSTAR", "RA" }));
    AclipSearchQuery query;
    aclip_search_query_for_row (&query, store.get (), 2, TRUE);
    std::vector<RefHit> expected = reference_search (store.get (), mode, query, 6);
    ASSERT_EQ (expected.size (), 6u);
    for (int i = 0; i < 6; i++) {
      const auto &row = rows[i + 1];
      ASSERT_EQ (row.size (), 7u) << out;
      gint64 id = galaxy_id ((int) expected[i].row);
      EXPECT_EQ (row[0], std::to_string (galaxy_id (2)));
      EXPECT_EQ (row[1], std::to_string (i + 1));
      EXPECT_EQ (row[2], std::to_string (id)) << aclip_search_mode_name (mode) << " rank " << i;
      EXPECT_EQ (std::stof (row[3]), expected[i].score) << "similarity printed in full";
      int catalogue_row = (int) expected[i].row;
      if (catalogue_row == kGalaxies - 1) { /* not in the catalogue */
        EXPECT_EQ (row[4], "");
        EXPECT_NE (err.find ("not in the catalogue"), std::string::npos) << err;
        continue;
      }
      EXPECT_FLOAT_EQ (std::stof (row[4]), 0.01f * (float) catalogue_row);
      if (catalogue_row == 3)
        EXPECT_EQ (row[5], "") << "NaN is an empty CSV field";
      else
        EXPECT_FLOAT_EQ (std::stof (row[5]), 9.0f + 0.05f * (float) catalogue_row);
      EXPECT_DOUBLE_EQ (std::stod (row[6]), 150.0 + catalogue_row);
    }
  }
}

TEST (SearchCommand, TextJsonRowAndIdsFile)
{
  TempDir dir;
  std::string catalogue, embeddings;
  StorePtr store;
  write_search_files (dir, &catalogue, &embeddings, &store);
  std::string out, err;
  /* text, by catalogue row; the query itself is not among its neighbours */
  ASSERT_EQ (run_astroclip ({ "search", "-e", embeddings, "-c", catalogue, "--row", "4", "-k",
                              "3" },
                            &out, &err),
             0)
      << err;
  EXPECT_NE (out.find ("# galaxy 1028, image-image: 3 neighbours"), std::string::npos) << out;
  EXPECT_NE (out.find ("similarity"), std::string::npos);
  EXPECT_NE (out.find ("LOGMSTAR"), std::string::npos);
  EXPECT_EQ (out.find (" 1028 "), std::string::npos) << out;
  ASSERT_EQ (run_astroclip ({ "search", "-e", embeddings, "-c", catalogue, "--row", "4", "-k",
                              "3", "--include-self" },
                            &out, &err),
             0);
  char self_line[64];
  snprintf (self_line, sizeof self_line, "%5d %20d %11.6f", 1, 1028, 1.0);
  EXPECT_NE (out.find (self_line), std::string::npos) << out;

  /* JSON, two queries from a file, no catalogue */
  std::string ids_path = dir.path ("ids.txt");
  ASSERT_TRUE (g_file_set_contents (ids_path.c_str (), "# queries\n1007\n\n1014\n", -1, nullptr));
  ASSERT_EQ (run_astroclip ({ "search", "-e", embeddings, "--ids-file", ids_path, "-k", "2",
                              "--format", "json", "--mode", "both" },
                            &out, &err),
             0)
      << err;
  auto lines = parse_csv (out); /* one JSON object per line */
  ASSERT_EQ (lines.size (), 2u) << out;
  EXPECT_EQ (out.find ("{\"query_id\": 1007, \"mode\": \"both\", \"neighbours\": [{\"rank\": 1, "
                       "\"id\": "),
             0u)
      << out;
  EXPECT_NE (out.find ("\n{\"query_id\": 1014"), std::string::npos) << out;
  EXPECT_NE (out.find ("{\"rank\": 2, \"id\": "), std::string::npos) << out;
  EXPECT_EQ (out.find ("Z"), std::string::npos) << "no catalogue, no columns";

  /* k beyond the store: every other galaxy, once */
  ASSERT_EQ (run_astroclip ({ "search", "-e", embeddings, "--id", "1007", "-k", "1000000000",
                              "--format", "csv" },
                            &out, &err),
             0)
      << err;
  EXPECT_EQ (parse_csv (out).size (), (size_t) kGalaxies) << "a header and 39 neighbours";
}

TEST (SearchCommand, ErrorsNameTheProblem)
{
  TempDir dir;
  std::string catalogue, embeddings;
  StorePtr store;
  write_search_files (dir, &catalogue, &embeddings, &store);
  std::string out, err;
  EXPECT_EQ (run_astroclip ({ "search", "-e", embeddings, "--id", "999" }, &out, &err), 1);
  EXPECT_NE (err.find ("galaxy 999 is not in " + embeddings), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "search", "-e", embeddings, "--id", "1035", "--mode",
                              "spectrum-image" },
                            &out, &err),
             1);
  EXPECT_NE (err.find ("galaxy 1035 has no spectrum embedding"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "search", "-e", embeddings, "--id", "1007", "--mode", "sideways" },
                            &out, &err),
             2);
  EXPECT_NE (err.find ("--mode"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "search", "-e", embeddings, "--row", "1" }, &out, &err), 2);
  EXPECT_NE (err.find ("--row needs --catalogue"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "search", "-e", embeddings, "--id", "1", "--row", "1" }, &out, &err),
             2);
  EXPECT_EQ (run_astroclip ({ "search", "-e", embeddings, "-c", catalogue, "--id", "1007",
                              "--columns", "Z,REDNESS" },
                            &out, &err),
             1);
  EXPECT_NE (err.find ("no numeric column REDNESS"), std::string::npos) << err;
  std::string missing = dir.path ("none.fits");
  EXPECT_EQ (run_astroclip ({ "search", "-e", missing, "--id", "1007" }, &out, &err), 1);
  EXPECT_NE (err.find (missing), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "search", "-e", embeddings, "--id", "1007", "--k", "0" }, &out,
                            &err),
             2);
}
