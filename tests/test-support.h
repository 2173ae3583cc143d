/* test-support.h — helpers shared by the GoogleTest suites. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <gtest/gtest.h>
#include <string>

/* Path of a file under tests/data (ACLIP_TEST_DATA). */
std::string test_data_path (const std::string &relative);

/* A fresh temporary folder, removed with its contents when the object dies. */
class TempDir
{
public:
  TempDir ();
  ~TempDir ();
  std::string path (const std::string &name) const;
  const std::string &root () const { return root_; }

private:
  std::string root_;
};

/* Writes `bytes` bytes of `source` to `destination` (to make truncated files). */
void copy_truncated (const std::string &source, const std::string &destination, gsize bytes);
/* Number of entries in a folder. */
int count_entries (const std::string &folder);

/* Runs the astroclip program ($ASTROCLIP) with arguments; returns its exit status and fills
 * standard output and error. */
int run_astroclip (const std::vector<std::string> &arguments, std::string *out,
                   std::string *err);

/* Runs the astroclip program with arguments that include "--progress json", sends it SIGTERM
 * once it has reported its first step event, and waits for it: fills the lines of its standard
 * output and returns its exit status (−1 when it could not be run or never reported a step;
 * 128 + signal when a signal ended it). */
int run_astroclip_and_stop (const std::vector<std::string> &arguments,
                            std::vector<std::string> *lines);

/* Asserts that `error` is set and its message contains every one of `fragments`. */
#define EXPECT_ERROR_MENTIONS(error, ...)                                                     \
  do {                                                                                       \
    ASSERT_NE ((error), nullptr) << "expected an error";                                     \
    for (const char *fragment_ : { __VA_ARGS__ })                                            \
      EXPECT_NE (std::string ((error)->message).find (fragment_), std::string::npos)         \
          << "error message \"" << (error)->message << "\" lacks \"" << fragment_ << "\"";   \
  } while (0)

/* g_autoptr-style cleanup for GError in C++ tests. */
struct ErrorHolder
{
  GError *error = nullptr;
  ~ErrorHolder () { g_clear_error (&error); }
  GError **out () { g_clear_error (&error); return &error; }
  GError *operator->() const { return error; }
  operator GError *() const { return error; }
};

/* A reference-tensor fixture written by tests/reference/fixture_io.py: named float64 arrays
 * with shapes. Loading fails the current test (ADD_FAILURE) when the file is missing or
 * malformed. */
#include <map>
#include <vector>

struct FixtureTensor
{
  std::vector<int64_t> shape;
  std::vector<double> values;
  std::vector<float> as_float () const { return std::vector<float> (values.begin (), values.end ()); }
  int64_t size () const { return (int64_t) values.size (); }
};

class Fixture
{
public:
  /* `relative` is under tests/data/reference, e.g. "layernorm.bin". */
  explicit Fixture (const std::string &relative);
  bool ok () const { return ok_; }
  bool has (const std::string &name) const { return tensors_.count (name) != 0; }
  /* The tensor, or an empty one (and a test failure) when absent. */
  const FixtureTensor &operator[] (const std::string &name) const;
  double scalar (const std::string &name) const;

private:
  bool ok_ = false;
  std::string path_;
  std::map<std::string, FixtureTensor> tensors_;
};

/* Largest |a − b| / (atol + rtol·|b|) over two arrays; ≤ 1 means within tolerance. Reports
 * the worst index through `worst` when not NULL. */
double tolerance_ratio (const float *a, const double *b, size_t n, double atol, double rtol,
                        size_t *worst = nullptr);
#define EXPECT_CLOSE_TO_REFERENCE(actual, reference, n, atol, rtol, what)                     \
  do {                                                                                       \
    size_t worst_ = 0;                                                                       \
    double ratio_ = tolerance_ratio ((actual), (reference), (n), (atol), (rtol), &worst_);  \
    EXPECT_LE (ratio_, 1.0) << (what) << ": worst element " << worst_ << " is "              \
                            << (actual)[worst_] << ", reference " << (reference)[worst_];    \
  } while (0)
