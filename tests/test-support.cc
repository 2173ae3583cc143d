#include "test-support.h"

#include <glib/gstdio.h>
#include <sys/wait.h>
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
