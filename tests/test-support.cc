#include "test-support.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <csignal>
#include <sys/wait.h>
#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

std::string
test_data_path (const std::string &relative)
{
  const char *root = g_getenv ("ACLIP_TEST_DATA");
  EXPECT_NE (root, nullptr) << "ACLIP_TEST_DATA is not set (run the tests through meson test)";
  return std::string (root ? root : ".") + "/" + relative;
}

TempDir::TempDir ()
{
  GError *error = nullptr;
  char *made = g_dir_make_tmp ("aclip-test-XXXXXX", &error);
  EXPECT_NE (made, nullptr) << (error ? error->message : "");
  root_ = made ? made : "/tmp";
  g_free (made);
  g_clear_error (&error);
}

static void
remove_tree (const std::string &path)
{
  if (g_file_test (path.c_str (), G_FILE_TEST_IS_DIR)) {
    GDir *dir = g_dir_open (path.c_str (), 0, nullptr);
    if (dir) {
      const char *name;
      while ((name = g_dir_read_name (dir)))
        remove_tree (path + "/" + name);
      g_dir_close (dir);
    }
    g_rmdir (path.c_str ());
  } else {
    g_unlink (path.c_str ());
  }
}

TempDir::~TempDir ()
{
  if (root_ != "/tmp")
    remove_tree (root_);
}

std::string
TempDir::path (const std::string &name) const
{
  return root_ + "/" + name;
}

void
copy_truncated (const std::string &source, const std::string &destination, gsize bytes)
{
  gchar *contents = nullptr;
  gsize length = 0;
  ASSERT_TRUE (g_file_get_contents (source.c_str (), &contents, &length, nullptr)) << source;
  ASSERT_LE (bytes, length);
  ASSERT_TRUE (g_file_set_contents (destination.c_str (), contents, (gssize) bytes, nullptr));
  g_free (contents);
}

int
count_entries (const std::string &folder)
{
  GDir *dir = g_dir_open (folder.c_str (), 0, nullptr);
  if (!dir)
    return -1;
  int n = 0;
  while (g_dir_read_name (dir))
    n++;
  g_dir_close (dir);
  return n;
}

int
run_astroclip (const std::vector<std::string> &arguments, std::string *out, std::string *err)
{
  const char *program = g_getenv ("ASTROCLIP");
  EXPECT_NE (program, nullptr) << "ASTROCLIP is not set";
  std::vector<char *> argv;
  argv.push_back (const_cast<char *> (program ? program : "astroclip"));
  for (const auto &argument : arguments)
    argv.push_back (const_cast<char *> (argument.c_str ()));
  argv.push_back (nullptr);

  char *standard_output = nullptr, *standard_error = nullptr;
  int wait_status = 0;
  GError *error = nullptr;
  gboolean spawned = g_spawn_sync (nullptr, argv.data (), nullptr, G_SPAWN_DEFAULT, nullptr,
                                   nullptr, &standard_output, &standard_error, &wait_status,
                                   &error);
  EXPECT_TRUE (spawned) << (error ? error->message : "");
  g_clear_error (&error);
  if (out)
    *out = standard_output ? standard_output : "";
  if (err)
    *err = standard_error ? standard_error : "";
  g_free (standard_output);
  g_free (standard_error);
  if (!spawned)
    return -1;
  if (WIFEXITED (wait_status))
    return WEXITSTATUS (wait_status);
  return 128 + (WIFSIGNALED (wait_status) ? WTERMSIG (wait_status) : 0);
}

int
run_astroclip_and_stop (const std::vector<std::string> &arguments, std::vector<std::string> *lines)
{
  const char *program = g_getenv ("ASTROCLIP");
  EXPECT_NE (program, nullptr) << "ASTROCLIP is not set";
  if (program == nullptr)
    return -1;
  std::vector<const char *> argv = { program };
  for (const auto &argument : arguments)
    argv.push_back (argument.c_str ());
  argv.push_back (nullptr);
  GError *error = nullptr;
  GSubprocess *process = g_subprocess_newv (
      argv.data (),
      (GSubprocessFlags) (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE),
      &error);
  EXPECT_NE (process, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  if (process == nullptr)
    return -1;
  GDataInputStream *stream = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  bool signalled = false;
  while (true) {
    gsize length = 0;
    char *line = g_data_input_stream_read_line_utf8 (stream, &length, nullptr, nullptr);
    if (line == nullptr)
      break;
    lines->emplace_back (line);
    g_free (line);
    if (!signalled && lines->back ().find ("{\"event\":\"step\"") == 0) {
      g_subprocess_send_signal (process, SIGTERM);
      signalled = true;
    }
  }
  g_object_unref (stream);
  int status = -1;
  if (g_subprocess_wait (process, nullptr, nullptr) && signalled) {
    if (g_subprocess_get_if_exited (process))
      status = g_subprocess_get_exit_status (process);
    else if (g_subprocess_get_if_signaled (process))
      status = 128 + g_subprocess_get_term_sig (process);
  }
  g_object_unref (process);
  return status;
}

Fixture::Fixture (const std::string &relative) : path_ (test_data_path ("reference/" + relative))
{
  gchar *contents = nullptr;
  gsize length = 0;
  if (!g_file_get_contents (path_.c_str (), &contents, &length, nullptr)) {
    ADD_FAILURE () << "cannot read fixture " << path_;
    return;
  }
  const guint8 *cursor = (const guint8 *) contents, *end = cursor + length;
  auto take = [&] (void *out, size_t size) {
    if ((size_t) (end - cursor) < size)
      return false;
    memcpy (out, cursor, size);
    cursor += size;
    return true;
  };
  char magic[8];
  guint32 n_tensors = 0;
  bool good = take (magic, 8) && memcmp (magic, "ACLIPFX1", 8) == 0 && take (&n_tensors, 4);
  for (guint32 t = 0; good && t < n_tensors; t++) {
    guint32 name_length = 0, n_dims = 0;
    good = take (&name_length, 4) && name_length < 256 && (size_t) (end - cursor) >= name_length;
    if (!good)
      break;
    std::string name ((const char *) cursor, name_length);
    cursor += name_length;
    FixtureTensor tensor;
    good = take (&n_dims, 4) && n_dims <= 8;
    int64_t count = 1;
    for (guint32 d = 0; good && d < n_dims; d++) {
      int64_t size = 0;
      good = take (&size, 8) && size >= 0;
      tensor.shape.push_back (size);
      count *= size;
    }
    if (!good || (size_t) (end - cursor) < (size_t) count * 8) {
      good = false;
      break;
    }
    tensor.values.resize (count);
    take (tensor.values.data (), (size_t) count * 8);
    tensors_[name] = std::move (tensor);
  }
  g_free (contents);
  if (!good || cursor != end)
    ADD_FAILURE () << "fixture " << path_ << " is malformed";
  else
    ok_ = true;
}

const FixtureTensor &
Fixture::operator[] (const std::string &name) const
{
  static const FixtureTensor empty;
  auto found = tensors_.find (name);
  if (found == tensors_.end ()) {
    ADD_FAILURE () << "fixture " << path_ << " has no tensor " << name;
    return empty;
  }
  return found->second;
}

double
Fixture::scalar (const std::string &name) const
{
  const FixtureTensor &tensor = (*this)[name];
  return tensor.values.empty () ? NAN : tensor.values[0];
}

double
tolerance_ratio (const float *a, const double *b, size_t n, double atol, double rtol,
                 size_t *worst)
{
  double worst_ratio = 0.0;
  size_t worst_index = 0;
  for (size_t i = 0; i < n; i++) {
    double ratio = std::fabs ((double) a[i] - b[i]) / (atol + rtol * std::fabs (b[i]));
    if (!(ratio <= worst_ratio)) { /* also catches NaN */
      worst_ratio = std::isnan (ratio) ? INFINITY : ratio;
      worst_index = i;
    }
  }
  if (worst)
    *worst = worst_index;
  return worst_ratio;
}
