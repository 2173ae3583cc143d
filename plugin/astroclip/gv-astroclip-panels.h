/* gv-astroclip-panels.h — what the AstroCLIP plugin's panels expose for tests and for other
 * code that inspects a window (the plugin has no public API of its own).
 *
 * Panel ids (gv_window_get_panel): */
#pragma once

#define GV_ASTROCLIP_PANEL_SIMILAR    "astroclip-similar"
#define GV_ASTROCLIP_PANEL_PROPERTIES "astroclip-properties"
#define GV_ASTROCLIP_PANEL_MAP        "astroclip-map"
#define GV_ASTROCLIP_PANEL_TRAINING   "astroclip-training"
#define GV_ASTROCLIP_PANEL_MODEL      "astroclip-model"

/* Data attached to the panel widgets (g_object_get_data), owned by the plugin:
 *
 * Similar panel:
 *   "astroclip-neighbours"  GvAstroclipNeighbours *  the list shown (NULL: none)
 *   "astroclip-latency-us"  GINT_TO_POINTER          click → list shown, microseconds
 *   "astroclip-embedded"    GINT_TO_POINTER          1 when the query was embedded on the fly
 *   "astroclip-queue-us", "astroclip-worker-us"  GINT_TO_POINTER  of that latency: waiting
 *                           for a worker thread, and the work (embedding, search)
 *   "astroclip-status"      GtkLabel *               the panel's message line
 *   "astroclip-k"           GtkSpinButton *
 *   "astroclip-mode"        GtkDropDown *            position = AclipSearchMode
 *   "astroclip-flow"        GtkFlowBox *             the thumbnails: a GtkButton per neighbour
 *   "astroclip-embed"       GtkButton *              Embed the catalogue (shown without
 *                                                     embeddings)
 * Properties panel:
 *   "astroclip-estimates"   GvAstroclipEstimate *    [3][2]: rows image→image,
 *                                                     spectrum→spectrum, both; columns Z,
 *                                                     LOGMSTAR (NaN when not estimated)
 *   "astroclip-status"      GtkLabel *
 * Map panel:
 *   "astroclip-map-view"    GtkWidget *              gv-astroclip-map.h
 *   "astroclip-status"      GtkLabel *
 * Training panel:
 *   "astroclip-trainer"     GvAstroclipTrainer *
 *   "astroclip-run-status"  GINT_TO_POINTER          GvAstroclipTrainerStatus of the run
 *   "astroclip-pid"         GINT_TO_POINTER          the last run's process id
 *   "astroclip-stage"       GtkDropDown *            0 pretrain spectra, 1 pretrain images,
 *                                                     2 align, 3 embed
 *   "astroclip-catalogue"   GtkEntry *, "astroclip-out" GtkEntry *
 *   "astroclip-epochs", "astroclip-batch-size"  GtkSpinButton *
 *   "astroclip-extra"       GtkEntry *               extra options, shell syntax
 *   "astroclip-start", "astroclip-cancel", "astroclip-resume", "astroclip-use-model"
 *                           GtkButton *
 *   "astroclip-progress"    GtkProgressBar *
 *   "astroclip-n-losses"    GINT_TO_POINTER          points on the loss curve
 *   "astroclip-last-step"   GINT_TO_POINTER          the last step the trainer reported
 *   "astroclip-status"      GtkLabel *
 * Model panel:
 *   "astroclip-model-path"  GtkLabel *, "astroclip-model-config" GtkLabel *
 *   "astroclip-status"      GtkLabel *
 */
