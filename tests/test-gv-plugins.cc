/* test-gv-plugins.cc — the plugin engine and the window-addin interface, without a display:
 * the search paths find the example plugins of the build tree (through
 * GALAXY_VIEWER_PLUGIN_PATH), their .plugin keys are read, syncing with a list of enabled
 * plugins loads and unloads them, and what they provide implements GvWindowAddin with the
 * vfuncs the example fills in. Calling the addin needs a GvWindow, hence GTK and a display:
 * that part is in test-gv-window.cc (under xvfb-run). */
#include "test-support.h"

#include <libpeas/peas.h>

#include <fstream>
#include <string>
#include <vector>

#include "gv-application.h"
#include "gv-config.h"
#include "gv-window-addin.h"

namespace {

const char *const kPluginDir = GV_BUILD_ROOT "/tests/plugins";

class PluginEngine : public ::testing::Test {
protected:
  void SetUp () override
  {
    g_setenv ("GALAXY_VIEWER_PLUGIN_PATH", kPluginDir, TRUE);
    engine_ = peas_engine_new ();
    gv_application_add_plugin_search_paths (engine_);
  }

  void TearDown () override
  {
    if (engine_ != nullptr)
      peas_engine_set_loaded_plugins (engine_, nullptr);
    g_clear_object (&engine_);
  }

  void sync (std::vector<const char *> enabled)
  {
    enabled.push_back (nullptr);
    gv_application_sync_plugins (engine_, enabled.data ());
  }

  std::vector<std::string> extension_modules (PeasExtensionSet *set)
  {
    std::vector<std::string> modules;
    peas_extension_set_foreach (
        set,
        [] (PeasExtensionSet *, PeasPluginInfo *info, PeasExtension *, gpointer data) {
          static_cast<std::vector<std::string> *> (data)->push_back (
              peas_plugin_info_get_module_name (info));
        },
        &modules);
    return modules;
  }

  PeasEngine *engine_ = nullptr;
};

TEST_F (PluginEngine, FindsTheExamplePluginsWithTheirKeys)
{
  PeasPluginInfo *info = peas_engine_get_plugin_info (engine_, "example");
  ASSERT_NE (info, nullptr) << "example.plugin not found under " << kPluginDir;
  EXPECT_STREQ (peas_plugin_info_get_name (info), "Example");
  EXPECT_NE (std::string (peas_plugin_info_get_description (info)).find ("side panel"),
             std::string::npos);
  EXPECT_FALSE (peas_plugin_info_is_builtin (info));
  EXPECT_FALSE (peas_plugin_info_is_hidden (info));
  EXPECT_FALSE (peas_plugin_info_is_loaded (info));
  EXPECT_STREQ (peas_plugin_info_get_module_dir (info), kPluginDir);

  PeasPluginInfo *leaky = peas_engine_get_plugin_info (engine_, "example-leaky");
  ASSERT_NE (leaky, nullptr);
  EXPECT_TRUE (peas_plugin_info_is_hidden (leaky));
}

TEST_F (PluginEngine, SyncLoadsAndUnloadsAsListed)
{
  PeasPluginInfo *example = peas_engine_get_plugin_info (engine_, "example");
  PeasPluginInfo *leaky = peas_engine_get_plugin_info (engine_, "example-leaky");
  ASSERT_NE (example, nullptr);
  ASSERT_NE (leaky, nullptr);

  sync ({ "example", "no-such-plugin" }); /* unknown names are ignored */
  EXPECT_TRUE (peas_plugin_info_is_loaded (example));
  EXPECT_FALSE (peas_plugin_info_is_loaded (leaky));

  sync ({ "example-leaky" });
  EXPECT_FALSE (peas_plugin_info_is_loaded (example));
  EXPECT_TRUE (peas_plugin_info_is_loaded (leaky));

  sync ({});
  EXPECT_FALSE (peas_plugin_info_is_loaded (example));
  EXPECT_FALSE (peas_plugin_info_is_loaded (leaky));
}

TEST_F (PluginEngine, ExampleProvidesAWindowAddin)
{
  PeasPluginInfo *info = peas_engine_get_plugin_info (engine_, "example");
  ASSERT_NE (info, nullptr);
  sync ({ "example" });
  ASSERT_TRUE (peas_plugin_info_is_loaded (info));
  EXPECT_TRUE (peas_engine_provides_extension (engine_, info, GV_TYPE_WINDOW_ADDIN));

  PeasExtension *extension = peas_engine_create_extension (engine_, info, GV_TYPE_WINDOW_ADDIN,
                                                           nullptr);
  ASSERT_NE (extension, nullptr);
  ASSERT_TRUE (GV_IS_WINDOW_ADDIN (extension));
  GvWindowAddinInterface *iface = GV_WINDOW_ADDIN_GET_IFACE (extension);
  EXPECT_NE (iface->load, nullptr);
  EXPECT_NE (iface->unload, nullptr);
  EXPECT_NE (iface->selection_changed, nullptr);
  EXPECT_EQ (iface->catalogue_changed, nullptr); /* optional, and the example has none */
  g_object_unref (extension);
}

TEST_F (PluginEngine, ExtensionSetFollowsLoading)
{
  /* As the window does it: the set, then a foreach over the plugins already loaded, then the
   * signals for the ones loaded or unloaded later. */
  sync ({ "example" });
  PeasExtensionSet *set = peas_extension_set_new (engine_, GV_TYPE_WINDOW_ADDIN, nullptr);
  EXPECT_EQ (extension_modules (set), std::vector<std::string> ({ "example" }));

  int added = 0, removed = 0;
  g_signal_connect (set, "extension-added",
                    G_CALLBACK (+[] (PeasExtensionSet *, PeasPluginInfo *, PeasExtension *ext,
                                     int *count) {
                      EXPECT_TRUE (GV_IS_WINDOW_ADDIN (ext));
                      (*count)++;
                    }),
                    &added);
  g_signal_connect (set, "extension-removed",
                    G_CALLBACK (+[] (PeasExtensionSet *, PeasPluginInfo *, PeasExtension *,
                                     int *count) { (*count)++; }),
                    &removed);

  sync ({ "example", "example-leaky" });
  EXPECT_EQ (added, 1);
  EXPECT_EQ (extension_modules (set).size (), 2u);

  sync ({});
  EXPECT_EQ (removed, 2);
  EXPECT_TRUE (extension_modules (set).empty ());
  g_object_unref (set);
}

TEST (DemoCatalogue, EnvironmentVariableWins)
{
  TempDir dir;
  std::string path = dir.path ("demo.fits");
  std::ofstream (path) << "not really FITS, but a regular file";

  g_setenv ("GALAXY_VIEWER_DEMO", path.c_str (), TRUE);
  char *found = gv_application_find_demo_catalogue ();
  EXPECT_STREQ (found, path.c_str ());
  g_free (found);

  /* Pointing at nothing means no demo (not a silent fallback to another file). */
  std::string missing = dir.path ("missing.fits");
  g_setenv ("GALAXY_VIEWER_DEMO", missing.c_str (), TRUE);
  EXPECT_EQ (gv_application_find_demo_catalogue (), nullptr);
  g_unsetenv ("GALAXY_VIEWER_DEMO");
}

TEST (Paths, TestsRunUninstalled)
{
  /* The test executables live in the build tree, like an uninstalled viewer. */
  EXPECT_TRUE (gv_application_is_uninstalled ());
}

} // namespace
