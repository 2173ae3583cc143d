/* The training machinery every astroclip training command shares (trainer/astroclip-train.h):
 * the split rule, the batch loader, progress reports (JSON lines checked by a strict parser),
 * the common options and the stop watch. */
#include "test-support.h"

extern "C" {
#include "aclip-catalogue.h"
#include "aclip-error.h"
#include "aclip-split.h"
#include "astroclip-train.h"
}

#include <algorithm>
#include <clocale>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <map>
#include <set>
#include <unistd.h>
#include <vector>

namespace {

/* A strict JSON parser (RFC 8259): enough to prove each progress line is one valid object ---- */

struct Json
{
  enum Kind
  {
    kNull,
    kBool,
    kNumber,
    kString,
    kArray,
    kObject
  } kind = kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;

  bool has (const std::string &key) const
  {
    return kind == kObject && object.count (key);
  }
  const Json &operator[] (const std::string &key) const
  {
    static const Json missing;
    auto found = object.find (key);
    return found == object.end () ? missing : found->second;
  }
};

class JsonParser {
public:
  explicit JsonParser (const std::string &text) : s_ (text)
  {
  }

  /* The whole text must be one value, with nothing but white space around it. */
  bool parse (Json &out)
  {
    out = Json ();
    skip_space ();
    if (!value (out, 0))
      return false;
    skip_space ();
    return i_ == s_.size () || fail ("trailing characters");
  }
  const std::string &error () const
  {
    return error_;
  }

private:
  const std::string &s_;
  size_t i_ = 0;
  std::string error_;

  bool fail (const std::string &why)
  {
    if (error_.empty ())
      error_ = why + " at offset " + std::to_string (i_);
    return false;
  }
  void skip_space ()
  {
    while (i_ < s_.size () && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      i_++;
  }
  bool literal (const char *word)
  {
    size_t n = strlen (word);
    if (s_.compare (i_, n, word) != 0)
      return fail (std::string ("expected ") + word);
    i_ += n;
    return true;
  }
  bool value (Json &out, int depth)
  {
    if (depth > 32)
      return fail ("too deep");
    if (i_ >= s_.size ())
      return fail ("unexpected end");
    char c = s_[i_];
    if (c == '{')
      return object (out, depth);
    if (c == '[')
      return array (out, depth);
    if (c == '"') {
      out.kind = Json::kString;
      return string (out.string);
    }
    if (c == 't' || c == 'f') {
      out.kind = Json::kBool;
      out.boolean = c == 't';
      return literal (c == 't' ? "true" : "false");
    }
    if (c == 'n') {
      out.kind = Json::kNull;
      return literal ("null");
    }
    if (c == '-' || (c >= '0' && c <= '9'))
      return number (out);
    return fail ("unexpected character");
  }
  bool object (Json &out, int depth)
  {
    out.kind = Json::kObject;
    i_++;
    skip_space ();
    if (i_ < s_.size () && s_[i_] == '}') {
      i_++;
      return true;
    }
    for (;;) {
      skip_space ();
      std::string key;
      if (i_ >= s_.size () || s_[i_] != '"' || !string (key))
        return fail ("expected a key");
      if (out.object.count (key))
        return fail ("duplicate key " + key);
      skip_space ();
      if (i_ >= s_.size () || s_[i_++] != ':')
        return fail ("expected ':'");
      skip_space ();
      if (!value (out.object[key], depth + 1))
        return false;
      skip_space ();
      if (i_ >= s_.size ())
        return fail ("unterminated object");
      char c = s_[i_++];
      if (c == '}')
        return true;
      if (c != ',')
        return fail ("expected ',' or '}'");
    }
  }
  bool array (Json &out, int depth)
  {
    out.kind = Json::kArray;
    i_++;
    skip_space ();
    if (i_ < s_.size () && s_[i_] == ']') {
      i_++;
      return true;
    }
    for (;;) {
      skip_space ();
      out.array.emplace_back ();
      if (!value (out.array.back (), depth + 1))
        return false;
      skip_space ();
      if (i_ >= s_.size ())
        return fail ("unterminated array");
      char c = s_[i_++];
      if (c == ']')
        return true;
      if (c != ',')
        return fail ("expected ',' or ']'");
    }
  }
  static int hex_digit (char c)
  {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  }
  bool hex4 (guint32 *unit)
  {
    *unit = 0;
    for (int k = 0; k < 4; k++) {
      int digit = i_ < s_.size () ? hex_digit (s_[i_]) : -1;
      if (digit < 0)
        return fail ("bad \\u escape");
      *unit = *unit * 16 + (guint32) digit;
      i_++;
    }
    return true;
  }
  bool string (std::string &out)
  {
    i_++; /* the opening quote */
    out.clear ();
    for (;;) {
      if (i_ >= s_.size ())
        return fail ("unterminated string");
      unsigned char c = (unsigned char) s_[i_++];
      if (c == '"')
        break;
      if (c < 0x20)
        return fail ("raw control character in a string");
      if (c != '\\') {
        out.push_back ((char) c);
        continue;
      }
      if (i_ >= s_.size ())
        return fail ("unterminated escape");
      char e = s_[i_++];
      switch (e) {
        case '"':
          out.push_back ('"');
          break;
        case '\\':
          out.push_back ('\\');
          break;
        case '/':
          out.push_back ('/');
          break;
        case 'b':
          out.push_back ('\b');
          break;
        case 'f':
          out.push_back ('\f');
          break;
        case 'n':
          out.push_back ('\n');
          break;
        case 'r':
          out.push_back ('\r');
          break;
        case 't':
          out.push_back ('\t');
          break;
        case 'u': {
          guint32 unit;
          if (!hex4 (&unit))
            return false;
          if (unit >= 0xDC00 && unit <= 0xDFFF)
            return fail ("lone low surrogate");
          if (unit >= 0xD800 && unit <= 0xDBFF) {
            guint32 low;
            if (s_.compare (i_, 2, "\\u") != 0)
              return fail ("lone high surrogate");
            i_ += 2;
            if (!hex4 (&low) || low < 0xDC00 || low > 0xDFFF)
              return fail ("bad surrogate pair");
            unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
          }
          char utf8[8];
          int n = g_unichar_to_utf8 (unit, utf8);
          out.append (utf8, n);
          break;
        }
        default:
          return fail ("unknown escape");
      }
    }
    if (!g_utf8_validate (out.data (), (gssize) out.size (), nullptr))
      return fail ("invalid UTF-8 in a string");
    return true;
  }
  bool digits ()
  {
    size_t start = i_;
    while (i_ < s_.size () && s_[i_] >= '0' && s_[i_] <= '9')
      i_++;
    return i_ > start;
  }
  bool number (Json &out)
  {
    size_t start = i_;
    if (s_[i_] == '-')
      i_++;
    if (i_ < s_.size () && s_[i_] == '0')
      i_++;
    else if (!digits ())
      return fail ("bad number");
    if (i_ < s_.size () && s_[i_] == '.') {
      i_++;
      if (!digits ())
        return fail ("no digits after the decimal point");
    }
    if (i_ < s_.size () && (s_[i_] == 'e' || s_[i_] == 'E')) {
      i_++;
      if (i_ < s_.size () && (s_[i_] == '+' || s_[i_] == '-'))
        i_++;
      if (!digits ())
        return fail ("no digits in the exponent");
    }
    out.kind = Json::kNumber;
    out.number = g_ascii_strtod (s_.substr (start, i_ - start).c_str (), nullptr);
    return true;
  }
};

bool
parse_json (const std::string &text, Json &out, std::string *error)
{
  JsonParser parser (text);
  bool ok = parser.parse (out);
  *error = parser.error ();
  return ok;
}

std::vector<std::string>
split_lines (const std::string &text)
{
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = text.find ('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back (text.substr (start, end - start));
  if (start < text.size ())
    lines.push_back (text.substr (start)); /* an unterminated last line: a test failure */
  return lines;
}

/* Everything written to a temporary stream. */
std::string
read_stream (FILE *stream)
{
  fflush (stream);
  std::string text;
  rewind (stream);
  char buffer[4096];
  size_t n;
  while ((n = fread (buffer, 1, sizeof buffer, stream)) > 0)
    text.append (buffer, n);
  return text;
}

/* The parser itself, so a lenient parser cannot make the progress tests pass. */
TEST (JsonParserSelfTest, AcceptsValidRejectsInvalid)
{
  Json value;
  std::string error;
  for (const char *good : { "{}", "{\"a\":[1,-2.5e-3,true,false,null,\"x\\u00c5\\n\"]}",
                            " {\"a\" : {\"b\":0}} ", "{\"s\":\"\\ud83d\\ude00\"}" })
    EXPECT_TRUE (parse_json (good, value, &error)) << good << ": " << error;
  for (const char *bad :
       { "", "{", "{\"a\":1,}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":nan}", "{\"a\":NaN}",
         "{\"a\":\"x\ny\"}", "{\"a\":1} x", "{'a':1}", "{\"a\":\"\\x\"}", "{\"a\":1,\"a\":2}",
         "{\"a\":2,5}", "{\"a\":\"\xff\"}", "{\"a\":\"\\udc00\"}", "{\"a\":-}" })
    EXPECT_FALSE (parse_json (bad, value, &error)) << "accepted: " << bad;
  ASSERT_TRUE (parse_json ("{\"k\":\"a\\\"b\\\\c\\u0001\"}", value, &error));
  EXPECT_EQ (value["k"].string, std::string ("a\"b\\c\x01"));
}

/* Test catalogues ---------------------------------------------------------------------------- */

constexpr int kHeight = 4, kWidth = 5, kWave = 12;

const AclipExtraColumn kExtras[] = {
  { "SSFR", ACLIP_COLUMN_FLOAT, "dex(1/yr)", "specific star formation rate" },
  { "TYPE", ACLIP_COLUMN_INT32, nullptr, "row mod 3" },
  { "MASS_D", ACLIP_COLUMN_DOUBLE, nullptr, "row times 1.5" },
};

/* Pixel values that tell which row they came from. */
float
image_value (gint64 row, int i)
{
  return (float) row + 0.001f * (float) i;
}

float
flux_value (gint64 row, int i)
{
  return 2.0f * (float) row + 0.01f * (float) i;
}

gint64
default_id (gint64 row)
{
  return 1000 + 7 * row;
}

/* Writes a catalogue of n_rows galaxies; height 0 for no images, n_wave 0 for no spectra. */
bool
write_catalogue (const std::string &path, int n_rows, int height, int width, int n_wave,
                 gint64 (*id_of_row) (gint64), GError **error)
{
  std::vector<double> wavelength (n_wave);
  for (int i = 0; i < n_wave; i++)
    wavelength[i] = 4000.0 + 10.0 * i;
  AclipCatalogueLayout layout{};
  layout.image_height = height;
  layout.image_width = width;
  layout.pixscale = 0.262;
  layout.n_wave = n_wave;
  layout.wavelength = n_wave ? wavelength.data () : nullptr;
  layout.n_extra = 3;
  layout.extra = kExtras;
  AclipCatalogueWriter *writer = aclip_catalogue_writer_new (path.c_str (), &layout, error);
  if (!writer)
    return false;
  std::vector<float> image (3 * height * width), spectrum (n_wave), ivar (n_wave);
  for (gint64 row = 0; row < n_rows; row++) {
    for (size_t i = 0; i < image.size (); i++)
      image[i] = image_value (row, (int) i);
    for (int i = 0; i < n_wave; i++) {
      spectrum[i] = flux_value (row, i);
      ivar[i] = 1.0f + (float) row;
    }
    AclipGalaxy galaxy{};
    galaxy.id = id_of_row (row);
    galaxy.ra = 10.0 + 0.01 * (double) row;
    galaxy.dec = -5.0;
    galaxy.z = 0.001f * (float) row;
    galaxy.logmstar = 9.0f + 0.001f * (float) row;
    galaxy.flux[0] = (float) row;
    galaxy.flux[1] = (float) row + 1;
    galaxy.flux[2] = (float) row + 2;
    galaxy.image = height ? image.data () : nullptr;
    galaxy.spectrum = n_wave ? spectrum.data () : nullptr;
    galaxy.spectrum_ivar = n_wave ? ivar.data () : nullptr;
    double extras[3] = { -10.0 + 0.01 * (double) row, (double) (row % 3), 1.5 * (double) row };
    if (!aclip_catalogue_writer_append (writer, &galaxy, extras, error)) {
      aclip_catalogue_writer_free (writer);
      return false;
    }
  }
  bool finished = aclip_catalogue_writer_finish (writer, error);
  aclip_catalogue_writer_free (writer);
  return finished;
}

/* The rows of a split, found independently of the loader. */
std::vector<gint64>
split_rows (int n_rows, AclipSplit split, gint64 (*id_of_row) (gint64) = default_id)
{
  std::vector<gint64> rows;
  for (gint64 row = 0; row < n_rows; row++)
    if (aclip_split_of_id (id_of_row (row)) == split)
      rows.push_back (row);
  return rows;
}

AstroclipLoaderRequest
train_request (int batch_size, guint64 seed)
{
  AstroclipLoaderRequest request{};
  request.split = ACLIP_SPLIT_TRAIN;
  request.batch_size = batch_size;
  request.want_images = TRUE;
  request.want_spectra = TRUE;
  request.shuffle = TRUE;
  request.drop_last = FALSE;
  request.seed = seed;
  return request;
}

struct BatchCopy
{
  int epoch;
  gint64 index;
  std::vector<gint64> rows;
};

BatchCopy
copy_batch (const AstroclipBatch *batch)
{
  return { batch->epoch, batch->index_in_epoch,
           std::vector<gint64> (batch->rows, batch->rows + batch->n) };
}

/* Every array of a batch agrees with the row it claims to be. */
void
expect_batch_consistent (const AstroclipBatch *batch, bool images, bool spectra)
{
  for (int i = 0; i < batch->n; i++) {
    gint64 row = batch->rows[i];
    ASSERT_EQ (batch->ids[i], default_id (row));
    EXPECT_FLOAT_EQ (batch->z[i], 0.001f * (float) row);
    EXPECT_FLOAT_EQ (batch->logmstar[i], 9.0f + 0.001f * (float) row);
    for (int b = 0; b < 3; b++)
      EXPECT_EQ (batch->flux_grz[3 * i + b], (float) row + b);
    if (images) {
      const float *image = batch->images + (size_t) i * 3 * kHeight * kWidth;
      for (int k = 0; k < 3 * kHeight * kWidth; k++)
        ASSERT_EQ (image[k], image_value (row, k)) << "row " << row << " pixel " << k;
    }
    if (spectra)
      for (int k = 0; k < kWave; k++) {
        ASSERT_EQ (batch->flux[(size_t) i * kWave + k], flux_value (row, k));
        ASSERT_EQ (batch->ivar[(size_t) i * kWave + k], 1.0f + (float) row);
      }
  }
}

class LoaderTest : public ::testing::Test {
protected:
  static constexpr int kRows = 600;
  TempDir dir_;
  std::string path_;
  std::vector<gint64> train_rows_;

  void SetUp () override
  {
    path_ = dir_.path ("catalogue.fits");
    ErrorHolder error;
    ASSERT_TRUE (write_catalogue (path_, kRows, kHeight, kWidth, kWave, default_id, error.out ()))
        << error->message;
    train_rows_ = split_rows (kRows, ACLIP_SPLIT_TRAIN);
    /* The proportions make the batch arithmetic below non-trivial. */
    ASSERT_GT (train_rows_.size (), 400u);
    ASSERT_NE (train_rows_.size () % 32, 0u);
  }

  AstroclipLoader *open (const AstroclipLoaderRequest &request)
  {
    ErrorHolder error;
    AstroclipLoader *loader = astroclip_loader_new (path_.c_str (), &request, error.out ());
    EXPECT_NE (loader, nullptr) << (error.error ? error->message : "");
    return loader;
  }

  /* The next `n` batches, checked for consistency on the way. */
  std::vector<BatchCopy> take (AstroclipLoader *loader, int n, bool images = true,
                               bool spectra = true)
  {
    std::vector<BatchCopy> batches;
    for (int k = 0; k < n; k++) {
      ErrorHolder error;
      const AstroclipBatch *batch = astroclip_loader_next (loader, error.out ());
      EXPECT_NE (batch, nullptr) << (error.error ? error->message : "");
      if (!batch)
        break;
      expect_batch_consistent (batch, images, spectra);
      batches.push_back (copy_batch (batch));
    }
    return batches;
  }
};

} // namespace

/* The split rule ------------------------------------------------------------------------------ */

TEST (Split, ProportionsWithinBinomialBounds)
{
  /* Consecutive IDs and scattered 64-bit ones (DESI TARGETIDs are large). */
  for (guint64 stride : { G_GUINT64_CONSTANT (1), G_GUINT64_CONSTANT (0x9E3779B97F4A7C15) }) {
    const int n = 100000;
    int counts[3] = { 0, 0, 0 };
    for (int i = 0; i < n; i++)
      counts[aclip_split_of_id ((gint64) (G_GUINT64_CONSTANT (39627835576140000) + stride * i))]++;
    const double expected[3] = { 0.8, 0.1, 0.1 };
    for (int s = 0; s < 3; s++) {
      double mean = n * expected[s];
      double sd = std::sqrt (n * expected[s] * (1 - expected[s]));
      EXPECT_LT (std::fabs (counts[s] - mean), 5 * sd)
          << aclip_split_name ((AclipSplit) s) << ": " << counts[s] << " of " << n;
    }
  }
}

TEST (Split, KnownValuesAndStability)
{
  /* From an independent implementation of splitmix64's finaliser (Python). */
  const struct
  {
    gint64 id;
    AclipSplit split;
  } known[] = {
    { 0, ACLIP_SPLIT_TRAIN },
    { 6, ACLIP_SPLIT_TEST },
    { 7, ACLIP_SPLIT_VALIDATION },
    { 13, ACLIP_SPLIT_TEST },
    { 34, ACLIP_SPLIT_VALIDATION },
    { 42, ACLIP_SPLIT_TRAIN },
    { -1, ACLIP_SPLIT_TRAIN },
    { G_GINT64_CONSTANT (39627835576140000), ACLIP_SPLIT_TEST },
    { G_GINT64_CONSTANT (39633345021826000), ACLIP_SPLIT_TRAIN },
  };
  for (const auto &k : known)
    EXPECT_EQ (aclip_split_of_id (k.id), k.split) << "ID " << k.id;
  /* Stable: the same answer every time, whatever was asked in between. */
  std::vector<AclipSplit> first;
  for (gint64 id = -500; id < 500; id++)
    first.push_back (aclip_split_of_id (id));
  for (gint64 id = 499; id >= -500; id--)
    EXPECT_EQ (aclip_split_of_id (id), first[id + 500]);
}

TEST (Split, Names)
{
  for (AclipSplit split : { ACLIP_SPLIT_TRAIN, ACLIP_SPLIT_VALIDATION, ACLIP_SPLIT_TEST }) {
    AclipSplit parsed = (AclipSplit) -1;
    ASSERT_TRUE (aclip_split_from_name (aclip_split_name (split), &parsed));
    EXPECT_EQ (parsed, split);
  }
  AclipSplit parsed;
  EXPECT_FALSE (aclip_split_from_name ("training", &parsed));
  EXPECT_FALSE (aclip_split_from_name (nullptr, &parsed));
  EXPECT_STREQ (aclip_split_name (ACLIP_SPLIT_VALIDATION), "validation");
}

/* The loader --------------------------------------------------------------------------------- */

TEST_F (LoaderTest, EveryGalaxyOncePerEpochInANewOrder)
{
  AstroclipLoaderRequest request = train_request (32, 7);
  AstroclipLoader *loader = open (request);
  ASSERT_NE (loader, nullptr);
  gint64 n = (gint64) train_rows_.size ();
  EXPECT_EQ (astroclip_loader_n_galaxies (loader), n);
  gint64 per_epoch = astroclip_loader_batches_per_epoch (loader);
  EXPECT_EQ (per_epoch, (n + 31) / 32);
  EXPECT_EQ (astroclip_loader_image_height (loader), kHeight);
  EXPECT_EQ (astroclip_loader_image_width (loader), kWidth);
  EXPECT_EQ (astroclip_loader_n_wave (loader), kWave);

  std::vector<std::vector<gint64>> orders;
  for (int epoch = 0; epoch < 3; epoch++) {
    std::vector<BatchCopy> batches = take (loader, (int) per_epoch);
    ASSERT_EQ ((gint64) batches.size (), per_epoch);
    std::vector<gint64> order;
    for (gint64 b = 0; b < per_epoch; b++) {
      EXPECT_EQ (batches[b].epoch, epoch);
      EXPECT_EQ (batches[b].index, b);
      EXPECT_EQ ((gint64) batches[b].rows.size (),
                 b + 1 < per_epoch ? 32 : n - 32 * (per_epoch - 1));
      order.insert (order.end (), batches[b].rows.begin (), batches[b].rows.end ());
    }
    std::vector<gint64> sorted = order;
    std::sort (sorted.begin (), sorted.end ());
    EXPECT_EQ (sorted, train_rows_) << "epoch " << epoch << " is not the split, once each";
    EXPECT_NE (order, train_rows_) << "epoch " << epoch << " was not shuffled";
    orders.push_back (order);
  }
  EXPECT_NE (orders[0], orders[1]);
  EXPECT_NE (orders[1], orders[2]);
  astroclip_loader_free (loader);

  /* The same seed gives the same orders; another seed others. */
  loader = open (request);
  ASSERT_NE (loader, nullptr);
  for (int epoch = 0; epoch < 2; epoch++) {
    std::vector<gint64> order;
    for (const BatchCopy &batch : take (loader, (int) per_epoch))
      order.insert (order.end (), batch.rows.begin (), batch.rows.end ());
    EXPECT_EQ (order, orders[epoch]) << "epoch " << epoch;
  }
  astroclip_loader_free (loader);
  request.seed = 8;
  loader = open (request);
  ASSERT_NE (loader, nullptr);
  std::vector<gint64> order;
  for (const BatchCopy &batch : take (loader, (int) per_epoch))
    order.insert (order.end (), batch.rows.begin (), batch.rows.end ());
  EXPECT_NE (order, orders[0]);
  astroclip_loader_free (loader);
}

TEST_F (LoaderTest, WithoutShuffleFileOrder)
{
  AstroclipLoaderRequest request = train_request (50, 1);
  request.shuffle = FALSE;
  request.want_images = FALSE;
  AstroclipLoader *loader = open (request);
  ASSERT_NE (loader, nullptr);
  gint64 per_epoch = astroclip_loader_batches_per_epoch (loader);
  for (int epoch = 0; epoch < 2; epoch++) {
    std::vector<gint64> order;
    for (const BatchCopy &batch : take (loader, (int) per_epoch, false, true))
      order.insert (order.end (), batch.rows.begin (), batch.rows.end ());
    EXPECT_EQ (order, train_rows_);
  }
  astroclip_loader_free (loader);
}

TEST_F (LoaderTest, UnrequestedArraysAreNull)
{
  AstroclipLoaderRequest request = train_request (16, 1);
  request.want_images = FALSE;
  request.want_spectra = FALSE;
  AstroclipLoader *loader = open (request);
  ASSERT_NE (loader, nullptr);
  ErrorHolder error;
  const AstroclipBatch *batch = astroclip_loader_next (loader, error.out ());
  ASSERT_NE (batch, nullptr);
  EXPECT_EQ (batch->images, nullptr);
  EXPECT_EQ (batch->flux, nullptr);
  EXPECT_EQ (batch->ivar, nullptr);
  EXPECT_EQ (batch->labels, nullptr);
  expect_batch_consistent (batch, false, false);
  astroclip_loader_free (loader);
}

TEST_F (LoaderTest, SeekReproducesTheBatchesOfARunThrough)
{
  AstroclipLoaderRequest request = train_request (32, 11);
  AstroclipLoader *loader = open (request);
  ASSERT_NE (loader, nullptr);
  gint64 per_epoch = astroclip_loader_batches_per_epoch (loader);
  std::vector<BatchCopy> through = take (loader, (int) (3 * per_epoch));
  ASSERT_EQ ((gint64) through.size (), 3 * per_epoch);
  astroclip_loader_free (loader);

  auto expect_from = [&] (AstroclipLoader *l, gint64 position, int n) {
    std::vector<BatchCopy> got = take (l, n);
    ASSERT_EQ ((int) got.size (), n);
    for (int k = 0; k < n; k++) {
      const BatchCopy &want = through[position + k];
      EXPECT_EQ (got[k].epoch, want.epoch) << "position " << position + k;
      EXPECT_EQ (got[k].index, want.index) << "position " << position + k;
      EXPECT_EQ (got[k].rows, want.rows) << "position " << position + k;
    }
  };

  /* A fresh loader sought to (epoch 1, batch 3), as a resumed run does. */
  loader = open (request);
  ASSERT_NE (loader, nullptr);
  astroclip_loader_seek (loader, 1, 3);
  expect_from (loader, per_epoch + 3, (int) per_epoch);
  astroclip_loader_free (loader);

  /* A batch index past the epoch carries into the next: seek (0, steps done). */
  loader = open (request);
  ASSERT_NE (loader, nullptr);
  astroclip_loader_seek (loader, 0, per_epoch + 5);
  expect_from (loader, per_epoch + 5, 4);

  /* Seeking a loader in use: backwards, forwards, to where it is, and repeatedly while the
   * reading thread is busy. */
  astroclip_loader_seek (loader, 0, 0);
  expect_from (loader, 0, 3);
  astroclip_loader_seek (loader, 2, per_epoch - 1);
  expect_from (loader, 3 * per_epoch - 1, 1);
  astroclip_loader_seek (loader, 0, 2);
  expect_from (loader, 2, 2);
  for (int k = 0; k < 40; k++) {
    gint64 position = (k * 37) % (3 * per_epoch - 2);
    astroclip_loader_seek (loader, (int) (position / per_epoch), position % per_epoch);
    expect_from (loader, position, 1 + k % 2);
  }
  astroclip_loader_free (loader);
}

TEST_F (LoaderTest, DropLast)
{
  gint64 n = (gint64) train_rows_.size ();
  AstroclipLoaderRequest request = train_request (32, 3);
  request.drop_last = TRUE;
  AstroclipLoader *loader = open (request);
  ASSERT_NE (loader, nullptr);
  gint64 per_epoch = astroclip_loader_batches_per_epoch (loader);
  EXPECT_EQ (per_epoch, n / 32);
  for (int epoch = 0; epoch < 2; epoch++) {
    std::set<gint64> seen;
    for (const BatchCopy &batch : take (loader, (int) per_epoch)) {
      EXPECT_EQ (batch.rows.size (), 32u);
      EXPECT_EQ (batch.epoch, epoch);
      seen.insert (batch.rows.begin (), batch.rows.end ());
    }
    EXPECT_EQ ((gint64) seen.size (), per_epoch * 32) << "a galaxy came twice in an epoch";
  }
  astroclip_loader_free (loader);

  /* Without drop_last the final batch is the remainder. */
  request.drop_last = FALSE;
  loader = open (request);
  ASSERT_NE (loader, nullptr);
  std::vector<BatchCopy> batches = take (loader, (int) astroclip_loader_batches_per_epoch (loader));
  ASSERT_FALSE (batches.empty ());
  EXPECT_EQ ((gint64) batches.back ().rows.size (), n % 32);
  astroclip_loader_free (loader);
}

TEST_F (LoaderTest, MaxGalaxiesTakesTheFirstOfTheSplitInFileOrder)
{
  for (guint64 seed : { 1, 2 }) {
    AstroclipLoaderRequest request = train_request (10, seed);
    request.max_galaxies = 45;
    AstroclipLoader *loader = open (request);
    ASSERT_NE (loader, nullptr);
    EXPECT_EQ (astroclip_loader_n_galaxies (loader), 45);
    EXPECT_EQ (astroclip_loader_batches_per_epoch (loader), 5);
    std::vector<gint64> rows;
    for (const BatchCopy &batch : take (loader, 5))
      rows.insert (rows.end (), batch.rows.begin (), batch.rows.end ());
    std::sort (rows.begin (), rows.end ());
    EXPECT_EQ (rows, std::vector<gint64> (train_rows_.begin (), train_rows_.begin () + 45));
    astroclip_loader_free (loader);
  }
}

TEST_F (LoaderTest, OtherSplitsAndLabels)
{
  ErrorHolder error;
  AclipCatalogue *catalogue = aclip_catalogue_open (path_.c_str (), error.out ());
  ASSERT_NE (catalogue, nullptr) << error->message;
  const char *names[] = { "SSFR", "type", "MASS_D", "Z", nullptr };
  std::map<std::string, std::vector<double>> columns;
  for (int c = 0; names[c]; c++) {
    std::vector<double> values (kRows);
    ASSERT_TRUE (
        aclip_catalogue_read_column (catalogue, names[c], 0, kRows, values.data (), error.out ()))
        << error->message;
    columns[names[c]] = values;
  }
  aclip_catalogue_free (catalogue);

  for (AclipSplit split : { ACLIP_SPLIT_VALIDATION, ACLIP_SPLIT_TEST }) {
    AstroclipLoaderRequest request = train_request (8, 5);
    request.split = split;
    request.label_columns = (char **) names;
    AstroclipLoader *loader = open (request);
    ASSERT_NE (loader, nullptr);
    EXPECT_EQ (astroclip_loader_n_label_columns (loader), 4);
    std::vector<gint64> expected = split_rows (kRows, split);
    ASSERT_EQ (astroclip_loader_n_galaxies (loader), (gint64) expected.size ());
    std::vector<gint64> seen;
    for (gint64 b = 0; b < astroclip_loader_batches_per_epoch (loader); b++) {
      const AstroclipBatch *batch = astroclip_loader_next (loader, error.out ());
      ASSERT_NE (batch, nullptr) << error->message;
      expect_batch_consistent (batch, true, true);
      for (int i = 0; i < batch->n; i++) {
        seen.push_back (batch->rows[i]);
        for (int c = 0; names[c]; c++)
          EXPECT_EQ (batch->labels[i * 4 + c], columns[names[c]][batch->rows[i]])
              << names[c] << " of row " << batch->rows[i];
      }
    }
    std::sort (seen.begin (), seen.end ());
    EXPECT_EQ (seen, expected);
    astroclip_loader_free (loader);
  }
}

TEST_F (LoaderTest, WrongRequestsAreErrorsNamingTheFileAndProblem)
{
  ErrorHolder error;
  AstroclipLoaderRequest request = train_request (8, 1);

  std::string missing = dir_.path ("missing.fits");
  EXPECT_EQ (astroclip_loader_new (missing.c_str (), &request, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, missing.c_str ());

  std::string images_only = dir_.path ("images-only.fits");
  ASSERT_TRUE (write_catalogue (images_only, 50, kHeight, kWidth, 0, default_id, error.out ()));
  EXPECT_EQ (astroclip_loader_new (images_only.c_str (), &request, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, images_only.c_str (), "spectra");

  std::string spectra_only = dir_.path ("spectra-only.fits");
  ASSERT_TRUE (write_catalogue (spectra_only, 50, 0, 0, kWave, default_id, error.out ()));
  EXPECT_EQ (astroclip_loader_new (spectra_only.c_str (), &request, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, spectra_only.c_str (), "images");
  request.want_images = FALSE;
  AstroclipLoader *loader = astroclip_loader_new (spectra_only.c_str (), &request, error.out ());
  EXPECT_NE (loader, nullptr) << "spectra only, asking for spectra only";
  astroclip_loader_free (loader);
  request.want_images = TRUE;

  const char *labels[] = { "Z", "NO_SUCH_COLUMN", nullptr };
  request.label_columns = (char **) labels;
  EXPECT_EQ (astroclip_loader_new (path_.c_str (), &request, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, path_.c_str (), "NO_SUCH_COLUMN");
  request.label_columns = nullptr;

  /* A catalogue whose every galaxy is a training one has an empty test split. */
  std::string all_train = dir_.path ("all-train.fits");
  auto train_id = [] (gint64 row) -> gint64 {
    gint64 id = 0;
    for (gint64 found = -1; found < row; id++)
      if (aclip_split_of_id (id) == ACLIP_SPLIT_TRAIN)
        found++;
    return id - 1;
  };
  ASSERT_TRUE (write_catalogue (all_train, 30, kHeight, kWidth, kWave, +train_id, error.out ()));
  request.split = ACLIP_SPLIT_TEST;
  EXPECT_EQ (astroclip_loader_new (all_train.c_str (), &request, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, all_train.c_str (), "test");
  request.split = ACLIP_SPLIT_TRAIN;

  /* Fewer galaxies than one batch, dropping the last: no batch at all. */
  request.batch_size = 64;
  request.drop_last = TRUE;
  request.max_galaxies = 40;
  EXPECT_EQ (astroclip_loader_new (path_.c_str (), &request, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, path_.c_str (), "64");

  request.drop_last = FALSE;
  request.max_galaxies = 0;
  request.batch_size = 0;
  EXPECT_EQ (astroclip_loader_new (path_.c_str (), &request, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, path_.c_str ());
  request.batch_size = 8;
  request.max_galaxies = -1;
  EXPECT_EQ (astroclip_loader_new (path_.c_str (), &request, error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, path_.c_str ());
}

TEST (Loader, ReadErrorOnTheThreadComesFromNext)
{
  TempDir dir;
  std::string path = dir.path ("shrinking.fits");
  ErrorHolder error;
  /* Rows of ~12 KB: the file is much bigger than CFITSIO's buffers. */
  ASSERT_TRUE (write_catalogue (path, 400, 32, 32, 64, default_id, error.out ())) << error->message;
  AstroclipLoaderRequest request = train_request (4, 1);
  request.shuffle = FALSE;
  AstroclipLoader *loader = astroclip_loader_new (path.c_str (), &request, error.out ());
  ASSERT_NE (loader, nullptr) << error->message;
  /* The file loses its second half under the loader's feet. */
  GStatBuf info;
  ASSERT_EQ (g_stat (path.c_str (), &info), 0);
  ASSERT_EQ (truncate (path.c_str (), info.st_size / 2), 0);

  bool failed = false;
  for (gint64 b = 0; b < astroclip_loader_batches_per_epoch (loader) && !failed; b++)
    if (astroclip_loader_next (loader, error.out ()) == nullptr) {
      failed = true;
      EXPECT_ERROR_MENTIONS (error.error, path.c_str ());
    }
  EXPECT_TRUE (failed) << "reading past the end of the shortened file did not fail";
  /* The loader stays usable: a seek back to the start reads what is still there. */
  astroclip_loader_seek (loader, 0, 0);
  const AstroclipBatch *batch = astroclip_loader_next (loader, error.out ());
  ASSERT_NE (batch, nullptr) << error->message;
  EXPECT_EQ (batch->rows[0], split_rows (400, ACLIP_SPLIT_TRAIN)[0]);
  astroclip_loader_free (loader);
}

/* Throughput on a real catalogue: ACLIP_LOADER_BENCH=FILE (e.g. build/data/demo-catalogue.fits)
 * runs it; otherwise skipped. */
TEST (Loader, Throughput)
{
  const char *path = g_getenv ("ACLIP_LOADER_BENCH");
  if (path == nullptr)
    GTEST_SKIP () << "set ACLIP_LOADER_BENCH=catalogue.fits to measure";
  for (int want : { 3, 1, 2 }) {
    AstroclipLoaderRequest request = train_request (64, 1);
    request.want_images = (want & 1) != 0;
    request.want_spectra = (want & 2) != 0;
    ErrorHolder error;
    AstroclipLoader *loader = astroclip_loader_new (path, &request, error.out ());
    ASSERT_NE (loader, nullptr) << error->message;
    gint64 per_epoch = astroclip_loader_batches_per_epoch (loader);
    gint64 start = g_get_monotonic_time (), rows = 0;
    for (gint64 b = 0; b < 2 * per_epoch; b++) {
      const AstroclipBatch *batch = astroclip_loader_next (loader, error.out ());
      ASSERT_NE (batch, nullptr) << error->message;
      rows += batch->n;
    }
    double seconds = (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
    printf ("loader %s%s: %" G_GINT64_FORMAT " rows in %.2f s, %.0f rows/s\n",
            request.want_images ? "images " : "", request.want_spectra ? "spectra" : "", rows,
            seconds, rows / seconds);
    astroclip_loader_free (loader);
  }
  /* With a consumer busy for 8 ms per batch of 64 (a fast training step), reading overlaps
   * the computing: the time spent waiting in astroclip_loader_next is what is left. */
  AstroclipLoaderRequest request = train_request (64, 1);
  ErrorHolder error;
  AstroclipLoader *loader = astroclip_loader_new (path, &request, error.out ());
  ASSERT_NE (loader, nullptr) << error->message;
  gint64 waited = 0, start = g_get_monotonic_time ();
  const int n_batches = 40;
  for (int b = 0; b < n_batches; b++) {
    gint64 before = g_get_monotonic_time ();
    ASSERT_NE (astroclip_loader_next (loader, error.out ()), nullptr) << error->message;
    waited += g_get_monotonic_time () - before;
    g_usleep (8000);
  }
  printf ("loader with an 8 ms step: waited %.3f s of %.3f s over %d batches\n",
          (double) waited / G_USEC_PER_SEC,
          (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC, n_batches);
  astroclip_loader_free (loader);
}

/* Progress ------------------------------------------------------------------------------------ */

namespace {

std::vector<Json>
parse_lines (const std::string &text)
{
  std::vector<Json> events;
  EXPECT_FALSE (text.empty ());
  EXPECT_EQ (text.back (), '\n') << "the last line is not terminated";
  for (const std::string &line : split_lines (text)) {
    Json value;
    std::string error;
    EXPECT_TRUE (parse_json (line, value, &error)) << error << " in: " << line;
    EXPECT_EQ (value.kind, Json::kObject) << line;
    EXPECT_TRUE (value.has ("event") && value["event"].kind == Json::kString) << line;
    EXPECT_TRUE (value.has ("stage") && value["stage"].kind == Json::kString) << line;
    events.push_back (value);
  }
  return events;
}

bool
is_number_or_null (const Json &value)
{
  return value.kind == Json::kNumber || value.kind == Json::kNull;
}

} // namespace

TEST (Progress, JsonEventsAreValidLinesWithEveryField)
{
  FILE *stream = tmpfile ();
  ASSERT_NE (stream, nullptr);
  const char *stage = "align \"v1\"\\test";
  AstroclipProgress *progress =
      astroclip_progress_new_for_stream (ASTROCLIP_PROGRESS_JSON, stage, 5, stream);
  astroclip_progress_set_interval (progress, 0); /* every step */
  for (int step = 1; step <= 5; step++)
    astroclip_progress_update (progress, step, (step - 1) / 3, step == 2 ? NAN : 2.5 / step,
                               1e-4 * step, 32);
  astroclip_progress_metric (progress, "val_loss", 1.93, 5);
  astroclip_progress_metric (progress, "diverged", INFINITY, 5);
  const char *awkward = "quote \" backslash \\ newline \n tab \t bell \x07 del \x7f Å 😀 bad \xff.";
  astroclip_progress_message (progress, "%s", awkward);
  astroclip_progress_checkpoint (progress, "/tmp/model \"1\".ckpt", 5);
  astroclip_progress_done (progress, "finished", 5, nullptr);
  astroclip_progress_free (progress);
  std::string text = read_stream (stream);
  fclose (stream);

  std::vector<Json> events = parse_lines (text);
  ASSERT_EQ (events.size (), 10u) << text;
  for (const Json &event : events)
    EXPECT_EQ (event["stage"].string, stage);
  for (int k = 0; k < 5; k++) {
    const Json &step = events[k];
    EXPECT_EQ (step["event"].string, "step");
    for (const char *key : { "step", "total_steps", "epoch" })
      EXPECT_EQ (step[key].kind, Json::kNumber) << key;
    for (const char *key : { "loss", "lr", "items_per_second", "seconds_left", "elapsed_seconds" })
      EXPECT_TRUE (step.has (key) && is_number_or_null (step[key])) << key;
    EXPECT_EQ (step["step"].number, k + 1);
    EXPECT_EQ (step["total_steps"].number, 5);
    EXPECT_EQ (step["epoch"].number, k / 3);
    EXPECT_NEAR (step["lr"].number, 1e-4 * (k + 1), 1e-10);
    if (k == 1)
      EXPECT_EQ (step["loss"].kind, Json::kNull) << "NaN must be null";
    else
      EXPECT_NEAR (step["loss"].number, 2.5 / (k + 1), 1e-6);
  }
  EXPECT_EQ (events[4]["seconds_left"].number, 0) << "nothing is left after the last step";
  EXPECT_EQ (events[5]["event"].string, "metric");
  EXPECT_EQ (events[5]["name"].string, "val_loss");
  EXPECT_DOUBLE_EQ (events[5]["value"].number, 1.93);
  EXPECT_EQ (events[5]["step"].number, 5);
  EXPECT_EQ (events[6]["value"].kind, Json::kNull);
  EXPECT_EQ (events[7]["event"].string, "message");
  g_autofree char *valid = g_utf8_make_valid (awkward, -1);
  EXPECT_EQ (events[7]["text"].string, valid) << "the text must survive escaping";
  EXPECT_EQ (events[8]["event"].string, "checkpoint");
  EXPECT_EQ (events[8]["path"].string, "/tmp/model \"1\".ckpt");
  EXPECT_EQ (events[8]["step"].number, 5);
  EXPECT_EQ (events[9]["event"].string, "done");
  EXPECT_EQ (events[9]["status"].string, "finished");
  EXPECT_EQ (events[9]["step"].number, 5);
  EXPECT_EQ (events[9]["message"].kind, Json::kNull);
}

TEST (Progress, JsonNumbersIgnoreTheLocale)
{
  /* A locale with a decimal comma: an installed one, or one compiled here with localedef
   * (glibc reads LOCPATH at each setlocale). */
  const char *previous = setlocale (LC_NUMERIC, nullptr);
  std::string saved = previous ? previous : "C";
  TempDir dir;
  bool comma = false;
  for (const char *name : { "de_DE.UTF-8", "fr_FR.UTF-8", "de_DE.utf8", "fr_FR.utf8" })
    if (setlocale (LC_NUMERIC, name)) {
      comma = true;
      break;
    }
  if (!comma && g_file_test ("/usr/bin/localedef", G_FILE_TEST_IS_EXECUTABLE) &&
      g_file_test ("/usr/share/i18n/locales/de_DE", G_FILE_TEST_EXISTS)) {
    std::string target = dir.path ("de_DE.UTF-8");
    const char *argv[] = { "/usr/bin/localedef", "-i",   "de_DE", "-f", "UTF-8",
                           target.c_str (),      nullptr };
    int status = -1;
    if (g_spawn_sync (nullptr, (char **) argv, nullptr, G_SPAWN_STDOUT_TO_DEV_NULL, nullptr,
                      nullptr, nullptr, nullptr, &status, nullptr) &&
        g_spawn_check_wait_status (status, nullptr)) {
      g_setenv ("LOCPATH", dir.root ().c_str (), TRUE);
      comma = setlocale (LC_NUMERIC, "de_DE.UTF-8") != nullptr;
      g_unsetenv ("LOCPATH");
    }
  }
  if (!comma)
    GTEST_SKIP () << "no locale with a decimal comma, and none could be made";
  char probe[16];
  snprintf (probe, sizeof probe, "%.2f", 0.25);
  EXPECT_STREQ (probe, "0,25") << "the locale has no decimal comma: this test proves nothing";
  FILE *stream = tmpfile ();
  AstroclipProgress *progress =
      astroclip_progress_new_for_stream (ASTROCLIP_PROGRESS_JSON, "x", 10, stream);
  astroclip_progress_update (progress, 1, 0, 0.25, 1.5e-4, 8);
  astroclip_progress_done (progress, "stopped", 1, "bye");
  astroclip_progress_free (progress);
  std::string text = read_stream (stream);
  fclose (stream);
  setlocale (LC_NUMERIC, saved.c_str ());
  std::vector<Json> events = parse_lines (text);
  ASSERT_EQ (events.size (), 2u);
  EXPECT_DOUBLE_EQ (events[0]["loss"].number, 0.25);
}

TEST (Progress, JsonStepsAreThrottledButTheFirstAndLastAlwaysCome)
{
  FILE *stream = tmpfile ();
  AstroclipProgress *progress =
      astroclip_progress_new_for_stream (ASTROCLIP_PROGRESS_JSON, "pretrain-spectra", 200, stream);
  gint64 start = g_get_monotonic_time ();
  for (int step = 1; step <= 200; step++)
    astroclip_progress_update (progress, step, 0, 1.0, 1e-3, 16);
  double seconds = (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
  astroclip_progress_free (progress);
  std::string text = read_stream (stream);
  fclose (stream);
  std::vector<Json> events = parse_lines (text);
  if (seconds < 0.9) { /* surely, unless the machine stalled */
    ASSERT_EQ (events.size (), 2u) << text;
    EXPECT_EQ (events[0]["step"].number, 1);
    EXPECT_EQ (events[1]["step"].number, 200);
  }
}

TEST (Progress, RateAndTimeLeftFollowTheSteps)
{
  FILE *stream = tmpfile ();
  AstroclipProgress *progress =
      astroclip_progress_new_for_stream (ASTROCLIP_PROGRESS_JSON, "pretrain-images", 20, stream);
  astroclip_progress_set_interval (progress, 0);
  /* Steps of at least 20 ms and 10 items: at most 500 items/s, at least 20 ms per step left. */
  for (int step = 1; step <= 10; step++) {
    g_usleep (20000);
    astroclip_progress_update (progress, step, 0, 1.0, 1e-3, 10);
  }
  astroclip_progress_free (progress);
  std::string text = read_stream (stream);
  fclose (stream);
  std::vector<Json> events = parse_lines (text);
  ASSERT_EQ (events.size (), 10u);
  const Json &last = events.back ();
  ASSERT_EQ (last["items_per_second"].kind, Json::kNumber);
  ASSERT_EQ (last["seconds_left"].kind, Json::kNumber);
  EXPECT_GT (last["items_per_second"].number, 0);
  EXPECT_LE (last["items_per_second"].number, 500 * 1.02);
  EXPECT_GE (last["seconds_left"].number, 10 * 0.020 * 0.98);
  EXPECT_GE (last["elapsed_seconds"].number, 0.19);
}

TEST (Progress, BarPlainAndNoneModes)
{
  {
    FILE *stream = tmpfile ();
    AstroclipProgress *progress =
        astroclip_progress_new_for_stream (ASTROCLIP_PROGRESS_BAR, "align", 20, stream);
    for (int step = 1; step <= 20; step++)
      astroclip_progress_update (progress, step, 0, 0.5, 1e-4, 4);
    astroclip_progress_message (progress, "halfway there");
    astroclip_progress_done (progress, "finished", 20, nullptr);
    astroclip_progress_free (progress);
    std::string text = read_stream (stream);
    fclose (stream);
    EXPECT_NE (text.find ('\r'), std::string::npos) << "the bar is redrawn in place";
    EXPECT_NE (text.find ("100%"), std::string::npos) << text;
    EXPECT_NE (text.find ("20/20"), std::string::npos) << text;
    EXPECT_NE (text.find ("align: halfway there\n"), std::string::npos) << text;
    /* Drawn for the first and last steps only: the rest came within 0.1 s. */
    EXPECT_LE (std::count (text.begin (), text.end (), '\r'), 8) << text;
  }
  {
    FILE *stream = tmpfile ();
    /* AUTO on a file (not a terminal) is plain. */
    AstroclipProgress *progress =
        astroclip_progress_new_for_stream (ASTROCLIP_PROGRESS_AUTO, "align", 20, stream);
    for (int step = 1; step <= 20; step++)
      astroclip_progress_update (progress, step, 0, 0.5, 1e-4, 4);
    astroclip_progress_checkpoint (progress, "model.ckpt", 20);
    astroclip_progress_free (progress);
    std::string text = read_stream (stream);
    fclose (stream);
    EXPECT_EQ (text.find ('\r'), std::string::npos) << text;
    EXPECT_EQ (text.find ('\033'), std::string::npos) << text;
    std::vector<std::string> lines = split_lines (text);
    ASSERT_EQ (lines.size (), 3u) << text; /* the first step, the last, the checkpoint */
    EXPECT_NE (lines[1].find ("20/20"), std::string::npos) << text;
    EXPECT_NE (lines[2].find ("model.ckpt"), std::string::npos) << text;
  }
  {
    FILE *stream = tmpfile ();
    AstroclipProgress *progress =
        astroclip_progress_new_for_stream (ASTROCLIP_PROGRESS_NONE, "align", 20, stream);
    for (int step = 1; step <= 20; step++)
      astroclip_progress_update (progress, step, 0, 0.5, 1e-4, 4);
    astroclip_progress_metric (progress, "val_loss", 1.0, 20);
    astroclip_progress_done (progress, "finished", 20, "ok");
    astroclip_progress_free (progress);
    EXPECT_EQ (read_stream (stream), "");
    fclose (stream);
  }
}

/* Options --------------------------------------------------------------------------------- */

namespace {

bool
parse_arguments (AstroclipTrainOptions *options, std::vector<std::string> arguments, GError **error)
{
  arguments.insert (arguments.begin (), "astroclip-test");
  std::vector<char *> argv;
  for (std::string &argument : arguments)
    argv.push_back (&argument[0]);
  argv.push_back (nullptr);
  int argc = (int) arguments.size ();
  char **pointer = argv.data ();
  GOptionContext *context = g_option_context_new (nullptr);
  g_option_context_add_main_entries (context, astroclip_train_option_entries (options), nullptr);
  bool ok = g_option_context_parse (context, &argc, &pointer, error) &&
            astroclip_train_options_finish (options, error);
  g_option_context_free (context);
  return ok;
}

} // namespace

TEST (TrainOptions, DefaultsAndParsing)
{
  AstroclipTrainOptions options;
  astroclip_train_options_init (&options);
  EXPECT_EQ (options.threads, 0);
  EXPECT_EQ (options.progress, ASTROCLIP_PROGRESS_AUTO);
  EXPECT_FALSE (options.resume);
  EXPECT_EQ (options.save_every_seconds, 300.0);
  ErrorHolder error;
  ASSERT_TRUE (parse_arguments (
      &options,
      { "--threads", "2", "--seed", "77", "--progress=json", "--resume", "--save-every", "60" },
      error.out ()))
      << error->message;
  EXPECT_EQ (options.threads, 2);
  EXPECT_EQ (options.seed, 77);
  EXPECT_EQ (options.progress, ASTROCLIP_PROGRESS_JSON);
  EXPECT_TRUE (options.resume);
  EXPECT_EQ (options.save_every_seconds, 60.0);

  AclipThreadPool *pool = astroclip_train_setup_threads (&options);
  EXPECT_EQ (aclip_thread_pool_n_threads (pool), 2);
  aclip_thread_pool_free (pool);
  astroclip_train_options_clear (&options);

  for (const char *mode : { "bar", "plain", "none", "auto" }) {
    astroclip_train_options_init (&options);
    ASSERT_TRUE (parse_arguments (&options, { std::string ("--progress=") + mode }, error.out ()));
    astroclip_train_options_clear (&options);
  }
}

TEST (TrainOptions, BadValuesAreErrors)
{
  ErrorHolder error;
  AstroclipTrainOptions options;
  astroclip_train_options_init (&options);
  EXPECT_FALSE (parse_arguments (&options, { "--progress=fancy" }, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "fancy");
  astroclip_train_options_clear (&options);
  astroclip_train_options_init (&options);
  EXPECT_FALSE (parse_arguments (&options, { "--threads=-2" }, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "--threads");
  astroclip_train_options_clear (&options);
  astroclip_train_options_init (&options);
  EXPECT_FALSE (parse_arguments (&options, { "--save-every=-1" }, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "--save-every");
  astroclip_train_options_clear (&options);
}

TEST (TrainOptions, SaveDue)
{
  AstroclipTrainOptions options;
  astroclip_train_options_init (&options);
  options.save_every_seconds = 0.05;
  gint64 last = g_get_monotonic_time ();
  gint64 started = last;
  EXPECT_FALSE (astroclip_train_save_due (&options, &last));
  g_usleep (60000);
  EXPECT_TRUE (astroclip_train_save_due (&options, &last));
  EXPECT_GT (last, started);
  EXPECT_FALSE (astroclip_train_save_due (&options, &last));
  options.save_every_seconds = 0;
  last = 0;
  EXPECT_FALSE (astroclip_train_save_due (&options, &last)) << "0: only at the end";
  astroclip_train_options_clear (&options);
}

/* The stop watch --------------------------------------------------------------------------- */

namespace {

/* GLib notes a signal on its worker thread: poll for up to 5 s. */
bool
requested_soon (AstroclipStopWatch *watch)
{
  for (int k = 0; k < 500; k++) {
    if (astroclip_stop_watch_requested (watch))
      return true;
    g_usleep (10000);
  }
  return false;
}

} // namespace

TEST (StopWatch, SigtermAndSigintAreNoticed)
{
  for (int signal_number : { SIGTERM, SIGINT }) {
    AstroclipStopWatch *watch = astroclip_stop_watch_new ();
    for (int k = 0; k < 5; k++)
      EXPECT_FALSE (astroclip_stop_watch_requested (watch)) << "no signal was sent yet";
    g_usleep (20000);
    EXPECT_FALSE (astroclip_stop_watch_requested (watch));
    ASSERT_EQ (raise (signal_number), 0);
    EXPECT_TRUE (requested_soon (watch)) << "signal " << signal_number;
    EXPECT_TRUE (astroclip_stop_watch_requested (watch)) << "the request stays";
    astroclip_stop_watch_free (watch);
  }
}

TEST (StopWatch, FreeRemovesItsSources)
{
  AstroclipStopWatch *watch = astroclip_stop_watch_new ();
  EXPECT_FALSE (astroclip_stop_watch_requested (watch));
  astroclip_stop_watch_free (watch);
  /* A new watch starts unrequested, and a stale source would crash on the freed one. */
  watch = astroclip_stop_watch_new ();
  ASSERT_EQ (raise (SIGINT), 0);
  EXPECT_TRUE (requested_soon (watch));
  astroclip_stop_watch_free (watch);
}

/* Once the first signal has been noticed, a second one ends the process as if no handler
 * were installed (for a stop whose checkpoint takes too long). */
TEST (StopWatchDeathTest, ASecondSignalEndsTheProcess)
{
  GTEST_FLAG_SET (death_test_style, "threadsafe");
  EXPECT_EXIT (
      {
        AstroclipStopWatch *watch = astroclip_stop_watch_new ();
        raise (SIGTERM);
        if (!requested_soon (watch))
          _exit (3);
        raise (SIGTERM);
        g_usleep (2 * G_USEC_PER_SEC);
        _exit (0);
      },
      testing::KilledBySignal (SIGTERM), "");
}
