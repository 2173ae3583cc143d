/* test-file-chooser.h — driving a GtkFileChooserNative in widget tests, as a user would.
 *
 * With no portal (none runs under Xvfb) a GtkFileChooserNative shows GTK's own
 * GtkFileChooserDialog, a toplevel like any window; the tests find it there and answer it, so
 * that the application's own response handlers run.
 */
#pragma once

#include <gtest/gtest.h>
#include <gtk/gtk.h>

#include <string>

namespace file_chooser_test {

/* Runs the main loop until `done` holds or `seconds` pass; returns `done`'s last value. */
template <typename Done>
bool
spin_until (Done done, double seconds = 20)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  while (!done ()) {
    if (g_get_monotonic_time () > deadline)
      return false;
    g_main_context_iteration (nullptr, FALSE);
    g_usleep (1000);
  }
  return true;
}

/* The path of `file` ("" for NULL or a file without one); takes the reference. */
inline std::string
take_path (GFile *file)
{
  char *path = file != nullptr ? g_file_get_path (file) : nullptr;
  std::string result = path != nullptr ? path : "";
  g_free (path);
  g_clear_object (&file);
  return result;
}

} // namespace file_chooser_test

/* The file chooser shown now, or nullptr. Every native chooser holds its dialog from its
 * creation, hidden until shown: only a visible one is the chooser on screen. */
inline GtkFileChooserDialog *
visible_file_chooser ()
{
  GListModel *toplevels = gtk_window_get_toplevels ();
  GtkFileChooserDialog *found = nullptr;
  for (guint i = 0; i < g_list_model_get_n_items (toplevels) && found == nullptr; i++) {
    GtkWidget *window = GTK_WIDGET (g_list_model_get_item (toplevels, i));
    if (GTK_IS_FILE_CHOOSER_DIALOG (window) && gtk_widget_get_visible (window))
      found = GTK_FILE_CHOOSER_DIALOG (window);
    g_object_unref (window);
  }
  return found;
}

/* The file `chooser` would give if accepted now, as a path ("" for none). */
inline std::string
chosen_path (GtkFileChooserDialog *chooser)
{
  return file_chooser_test::take_path (gtk_file_chooser_get_file (GTK_FILE_CHOOSER (chooser)));
}

/* The folder `chooser` shows, as a path ("" until it has loaded one). */
inline std::string
current_folder (GtkFileChooserDialog *chooser)
{
  return file_chooser_test::take_path (
      gtk_file_chooser_get_current_folder (GTK_FILE_CHOOSER (chooser)));
}

/* Picks `path` in `chooser` as a user does and accepts it; fails the current test when the
 * chooser never shows a folder, never gives `path` or stays on screen. GTK 4.8: a file set
 * before the chooser has loaded its starting folder is lost, and to save, set_file changes the
 * folder but not the name, so the folder is chosen and the name typed. */
inline void
accept_file_chooser (GtkFileChooserDialog *chooser, const std::string &path)
{
  using file_chooser_test::spin_until;
  ASSERT_TRUE (spin_until ([&] { return !current_folder (chooser).empty (); }))
      << "the chooser never showed a folder";
  GtkFileChooser *file_chooser = GTK_FILE_CHOOSER (chooser);
  GFile *file = g_file_new_for_path (path.c_str ());
  GError *error = nullptr;
  if (gtk_file_chooser_get_action (file_chooser) == GTK_FILE_CHOOSER_ACTION_SAVE) {
    GFile *folder = g_file_get_parent (file);
    EXPECT_TRUE (gtk_file_chooser_set_current_folder (file_chooser, folder, &error))
        << (error ? error->message : "");
    g_object_unref (folder);
    char *name = g_file_get_basename (file);
    gtk_file_chooser_set_current_name (file_chooser, name);
    g_free (name);
  } else {
    EXPECT_TRUE (gtk_file_chooser_set_file (file_chooser, file, &error))
        << (error ? error->message : "");
  }
  g_clear_error (&error);
  g_object_unref (file);
  /* The chooser loads the folder, then selects the file in it. */
  ASSERT_TRUE (spin_until ([&] { return chosen_path (chooser) == path; }))
      << "the chooser gives \"" << chosen_path (chooser) << "\", not " << path;

  gtk_dialog_response (GTK_DIALOG (chooser), GTK_RESPONSE_ACCEPT);
  EXPECT_TRUE (spin_until ([] { return visible_file_chooser () == nullptr; }))
      << "the chooser stayed on screen";
}
