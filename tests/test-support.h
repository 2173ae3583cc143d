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
