/* aclip-model.c — the AstroCLIP model (aclip-model.h). */
#include "aclip-model.h"

#include "aclip-augment.h"
#include "aclip-error.h"
#include "aclip-render.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

struct _AclipModel
{
  AclipModelConfig config;
  AclipModelMode mode;
  int max_batch;
  AclipParams *params;
  AclipSpectrumEncoder *spectrum;
  AclipImageEncoder *image;
  AclipHead *spectrum_head, *image_head;
  AclipHead *spectrum_view_head; /* NULL unless config.spectrum_view_head */
  float *image_d_tokens;   /* [max_batch, T_image, C_image], TRAIN_ALL only */
  float *input;            /* [max_batch, 3, S, S]: RGB inputs of aclip_model_embed_images */
  float *augment_workspace;
  int augment_threads;     /* the pool size the workspace was sized for */
  int image_batch;         /* of the last image forward */
};

void
aclip_model_config_save (const AclipModelConfig *config, GKeyFile *key_file)
{
  aclip_spectrum_encoder_config_save (&config->spectrum, key_file);
  aclip_image_encoder_config_save (&config->image, key_file);
  aclip_head_config_save (&config->head, key_file);
  if (config->spectrum_view_head)
    g_key_file_set_boolean (key_file, ACLIP_HEAD_GROUP, "spectrum_view_head", TRUE);
}

gboolean
aclip_model_config_load (AclipModelConfig *config, GKeyFile *key_file, GError **error)
{
  AclipModelConfig c;
  aclip_spectrum_encoder_config_init_default (&c.spectrum);
  aclip_image_encoder_config_init_default (&c.image);
  aclip_head_config_init_default (&c.head);
  if (!aclip_spectrum_encoder_config_load (&c.spectrum, key_file, error) ||
      !aclip_image_encoder_config_load (&c.image, key_file, error) ||
      !aclip_head_config_load (&c.head, key_file, error) ||
      !aclip_head_config_validate (&c.head, c.spectrum.width, error) ||
      !aclip_head_config_validate (&c.head, aclip_image_encoder_config_channels (&c.image), error))
    return FALSE;
  c.spectrum_view_head = FALSE;
  if (g_key_file_has_key (key_file, ACLIP_HEAD_GROUP, "spectrum_view_head", NULL)) {
    GError *local = NULL;
    c.spectrum_view_head =
        g_key_file_get_boolean (key_file, ACLIP_HEAD_GROUP, "spectrum_view_head", &local);
    if (local != NULL) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] spectrum_view_head: %s",
                   ACLIP_HEAD_GROUP, local->message);
      g_error_free (local);
      return FALSE;
    }
  }
  *config = c;
  return TRUE;
}

gboolean
aclip_model_config_from_checkpoint (AclipModelConfig *config, const AclipCheckpoint *checkpoint,
                                    GError **error)
{
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  if (!g_key_file_load_from_data (key_file, aclip_checkpoint_get_text (checkpoint), (gsize) -1,
                                  G_KEY_FILE_NONE, error) ||
      !aclip_model_config_load (config, key_file, error)) {
    g_prefix_error (error, "%s: ", aclip_checkpoint_get_path (checkpoint));
    return FALSE;
  }
  return TRUE;
}

AclipModel *
aclip_model_new (const AclipModelConfig *config, int max_batch, AclipModelMode mode,
                 GError **error)
{
  g_autoptr (AclipModel) model = g_new0 (AclipModel, 1);
  model->config = *config;
  model->mode = mode;
  model->max_batch = max_batch;
  int c_spec = config->spectrum.width;
  int c_img = aclip_image_encoder_config_channels (&config->image);
  int t_spec = aclip_spectrum_encoder_config_n_tokens (&config->spectrum);
  int t_img = aclip_image_encoder_config_n_tokens (&config->image);

  model->params = aclip_params_new ();
  gint64 one = 1;
  AclipInit scale_init = { ACLIP_INIT_CONSTANT, (float) log (ACLIP_MODEL_DEFAULT_LOGIT_SCALE), 0,
                           0 };
  if (!aclip_spectrum_encoder_register (&config->spectrum, model->params,
                                        ACLIP_MODEL_SPECTRUM_PREFIX, error) ||
      !aclip_image_encoder_register (&config->image, model->params, ACLIP_MODEL_IMAGE_PREFIX,
                                     error) ||
      !aclip_head_register (&config->head, c_spec, model->params,
                            ACLIP_MODEL_SPECTRUM_HEAD_PREFIX, error) ||
      !aclip_head_register (&config->head, c_img, model->params, ACLIP_MODEL_IMAGE_HEAD_PREFIX,
                            error) ||
      (config->spectrum_view_head &&
       !aclip_head_register (&config->head, c_spec, model->params,
                             ACLIP_MODEL_SPECTRUM_VIEW_HEAD_PREFIX, error)) ||
      aclip_params_add (model->params, ACLIP_MODEL_LOGIT_SCALE, 1, &one, scale_init,
                        ACLIP_PARAM_NONE, error) < 0 ||
      !aclip_params_seal (model->params,
                          mode == ACLIP_MODEL_INFERENCE ? ACLIP_PARAMS_INFERENCE
                                                        : ACLIP_PARAMS_TRAINING,
                          error))
    return NULL;

  gboolean train_encoders =
      mode == ACLIP_MODEL_TRAIN_ALL || mode == ACLIP_MODEL_TRAIN_LAST_LAYERS;
  gboolean train_heads = mode != ACLIP_MODEL_INFERENCE;
  model->spectrum = aclip_spectrum_encoder_new (&config->spectrum, model->params,
                                                ACLIP_MODEL_SPECTRUM_PREFIX, max_batch,
                                                train_encoders, error);
  if (model->spectrum == NULL)
    return NULL;
  model->image = aclip_image_encoder_new (&config->image, model->params, ACLIP_MODEL_IMAGE_PREFIX,
                                          max_batch, error);
  if (model->image == NULL)
    return NULL;
  model->spectrum_head =
      aclip_head_new (&config->head, c_spec, t_spec, model->params,
                      ACLIP_MODEL_SPECTRUM_HEAD_PREFIX, max_batch, train_heads, error);
  if (model->spectrum_head == NULL)
    return NULL;
  model->image_head = aclip_head_new (&config->head, c_img, t_img, model->params,
                                      ACLIP_MODEL_IMAGE_HEAD_PREFIX, max_batch, train_heads, error);
  if (model->image_head == NULL)
    return NULL;
  if (config->spectrum_view_head) {
    model->spectrum_view_head =
        aclip_head_new (&config->head, c_spec, t_spec, model->params,
                        ACLIP_MODEL_SPECTRUM_VIEW_HEAD_PREFIX, max_batch, train_heads, error);
    if (model->spectrum_view_head == NULL)
      return NULL;
  }
  int side = aclip_image_encoder_config_input_size (&config->image);
  model->input = g_try_new (float, (gsize) max_batch * 3 * side * side);
  if (train_encoders)
    model->image_d_tokens = g_try_new0 (float, (gsize) max_batch * t_img * c_img);
  if (model->input == NULL || (train_encoders && model->image_d_tokens == NULL)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO,
                 _("not enough memory for batches of %d galaxies"), max_batch);
    return NULL;
  }
  return g_steal_pointer (&model);
}

void
aclip_model_free (AclipModel *model)
{
  if (model == NULL)
    return;
  aclip_head_free (model->spectrum_head);
  aclip_head_free (model->image_head);
  aclip_head_free (model->spectrum_view_head);
  aclip_spectrum_encoder_free (model->spectrum);
  aclip_image_encoder_free (model->image);
  aclip_params_free (model->params);
  g_free (model->image_d_tokens);
  g_free (model->input);
  g_free (model->augment_workspace);
  g_free (model);
}

void
aclip_model_init (AclipModel *model, guint64 seed, AclipThreadPool *pool)
{
  aclip_params_init (model->params, seed, pool);
}

/* Reads one group's configuration from a pretraining checkpoint's text. */
static gboolean
load_text (const AclipCheckpoint *checkpoint, GKeyFile *key_file, GError **error)
{
  if (!g_key_file_load_from_data (key_file, aclip_checkpoint_get_text (checkpoint), (gsize) -1,
                                  G_KEY_FILE_NONE, error)) {
    g_prefix_error (error, "%s: ", aclip_checkpoint_get_path (checkpoint));
    return FALSE;
  }
  return TRUE;
}

AclipModel *
aclip_model_new_from_pretrained (const AclipCheckpoint *spectrum_checkpoint,
                                 const AclipCheckpoint *image_checkpoint,
                                 const AclipHeadConfig *head, gboolean spectrum_view_head,
                                 int max_batch, AclipModelMode mode, guint64 seed,
                                 AclipThreadPool *pool, GError **error)
{
  AclipModelConfig config;
  aclip_spectrum_encoder_config_init_default (&config.spectrum);
  aclip_image_encoder_config_init_default (&config.image);
  config.head = *head;
  config.spectrum_view_head = spectrum_view_head;
  g_autoptr (GKeyFile) spectrum_text = g_key_file_new ();
  g_autoptr (GKeyFile) image_text = g_key_file_new ();
  if (!load_text (spectrum_checkpoint, spectrum_text, error) ||
      !load_text (image_checkpoint, image_text, error))
    return NULL;
  if (!aclip_spectrum_encoder_config_load (&config.spectrum, spectrum_text, error)) {
    g_prefix_error (error, "%s: ", aclip_checkpoint_get_path (spectrum_checkpoint));
    return NULL;
  }
  if (!aclip_image_encoder_config_load (&config.image, image_text, error)) {
    g_prefix_error (error, "%s: ", aclip_checkpoint_get_path (image_checkpoint));
    return NULL;
  }
  g_autoptr (AclipModel) model = aclip_model_new (&config, max_batch, mode, error);
  if (model == NULL)
    return NULL;
  aclip_model_init (model, seed, pool);
  if (!aclip_spectrum_encoder_restore (model->params, ACLIP_MODEL_SPECTRUM_PREFIX,
                                       spectrum_checkpoint, error)) {
    g_prefix_error (error, "%s: ", aclip_checkpoint_get_path (spectrum_checkpoint));
    return NULL;
  }
  if (!aclip_image_encoder_restore (model->params, ACLIP_MODEL_IMAGE_PREFIX, image_checkpoint,
                                    error)) {
    g_prefix_error (error, "%s: ", aclip_checkpoint_get_path (image_checkpoint));
    return NULL;
  }
  return g_steal_pointer (&model);
}

AclipModel *
aclip_model_load (const char *path, int max_batch, GError **error)
{
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (path, error);
  if (checkpoint == NULL)
    return NULL;
  AclipModelConfig config;
  if (!aclip_model_config_from_checkpoint (&config, checkpoint, error))
    return NULL;
  g_autoptr (AclipModel) model = aclip_model_new (&config, max_batch, ACLIP_MODEL_INFERENCE,
                                                  error);
  if (model == NULL)
    return NULL;
  if (!aclip_checkpoint_restore (checkpoint, model->params, FALSE, error)) {
    g_prefix_error (error, "%s: ", path);
    return NULL;
  }
  return g_steal_pointer (&model);
}

const AclipModelConfig *
aclip_model_get_config (const AclipModel *model)
{
  return &model->config;
}

AclipParams *
aclip_model_params (AclipModel *model)
{
  return model->params;
}

int
aclip_model_dim (const AclipModel *model)
{
  return model->config.head.dim;
}

int
aclip_model_max_batch (const AclipModel *model)
{
  return model->max_batch;
}

int
aclip_model_image_input_size (const AclipModel *model)
{
  return aclip_image_encoder_config_input_size (&model->config.image);
}

double
aclip_model_logit_scale (AclipModel *model)
{
  return exp (aclip_params_value_by_name (model->params, ACLIP_MODEL_LOGIT_SCALE)[0]);
}

const float *
aclip_model_forward_spectra (AclipModel *model, AclipThreadPool *pool, const float *flux,
                             const float *ivar, int batch)
{
  aclip_spectrum_encoder_forward (model->spectrum, pool, flux, ivar, NULL, batch);
  return aclip_head_forward (model->spectrum_head, pool,
                             aclip_spectrum_encoder_tokens (model->spectrum),
                             aclip_spectrum_encoder_key_mask (model->spectrum), batch);
}

const float *
aclip_model_forward_images (AclipModel *model, AclipThreadPool *pool, const float *input,
                            int batch)
{
  const float *tokens = aclip_image_encoder_forward (model->image, pool, input, batch, FALSE);
  model->image_batch = batch;
  return aclip_head_forward (model->image_head, pool, tokens, NULL, batch);
}

const float *
aclip_model_forward_spectrum_view_head (AclipModel *model, AclipThreadPool *pool, int batch)
{
  g_return_val_if_fail (model->spectrum_view_head != NULL, NULL);
  return aclip_head_forward (model->spectrum_view_head, pool,
                             aclip_spectrum_encoder_tokens (model->spectrum),
                             aclip_spectrum_encoder_key_mask (model->spectrum), batch);
}

void
aclip_model_backward_spectra_with_views (AclipModel *model, AclipThreadPool *pool,
                                         const float *d_embeddings, const float *d_view_embeddings)
{
  g_return_if_fail (model->mode != ACLIP_MODEL_INFERENCE);
  g_return_if_fail (d_view_embeddings == NULL || model->spectrum_view_head != NULL);
  gboolean train_encoder =
      model->mode == ACLIP_MODEL_TRAIN_ALL || model->mode == ACLIP_MODEL_TRAIN_LAST_LAYERS;
  /* d_tokens was zeroed by the forward; both heads add to it. */
  float *d_tokens = train_encoder ? aclip_spectrum_encoder_d_tokens (model->spectrum) : NULL;
  aclip_head_backward (model->spectrum_head, pool, d_embeddings, d_tokens);
  if (d_view_embeddings != NULL)
    aclip_head_backward (model->spectrum_view_head, pool, d_view_embeddings, d_tokens);
  if (train_encoder) {
    int first_layer =
        model->mode == ACLIP_MODEL_TRAIN_ALL ? 0 : model->config.spectrum.n_layers - 1;
    aclip_spectrum_encoder_backward_from (model->spectrum, pool, first_layer);
  }
}

void
aclip_model_backward_spectra (AclipModel *model, AclipThreadPool *pool, const float *d_embeddings)
{
  aclip_model_backward_spectra_with_views (model, pool, d_embeddings, NULL);
}

void
aclip_model_backward_images (AclipModel *model, AclipThreadPool *pool, const float *d_embeddings)
{
  g_return_if_fail (model->mode != ACLIP_MODEL_INFERENCE);
  if (model->mode == ACLIP_MODEL_TRAIN_ALL || model->mode == ACLIP_MODEL_TRAIN_LAST_LAYERS) {
    const AclipImageEncoderConfig *e = &model->config.image;
    gsize n = (gsize) model->image_batch * aclip_image_encoder_config_n_tokens (e) *
              aclip_image_encoder_config_channels (e);
    memset (model->image_d_tokens, 0, sizeof (float) * n);
    aclip_head_backward (model->image_head, pool, d_embeddings, model->image_d_tokens);
    int first_stage = model->mode == ACLIP_MODEL_TRAIN_ALL ? 0 : e->n_stages - 1;
    aclip_image_encoder_backward_from (model->image, pool, model->image_d_tokens, first_stage,
                                       NULL);
  } else {
    aclip_head_backward (model->image_head, pool, d_embeddings, NULL);
  }
}

const float *
aclip_model_embed_spectra (AclipModel *model, AclipThreadPool *pool, const float *flux,
                           const float *ivar, int batch)
{
  return aclip_model_forward_spectra (model, pool, flux, ivar, batch);
}

const float *
aclip_model_embed_images (AclipModel *model, AclipThreadPool *pool, const float *images,
                          int batch, int height, int width)
{
  AclipAugmentConfig augment;
  aclip_augment_config_init_none (&augment, model->config.image.crop,
                                  model->config.image.downsample);
  int threads = aclip_thread_pool_n_threads (pool);
  if (model->augment_workspace == NULL || model->augment_threads != threads) {
    g_free (model->augment_workspace);
    model->augment_workspace =
        g_new (float, MAX (aclip_augment_batch_workspace_size (&augment, threads), 1));
    model->augment_threads = threads;
  }
  AclipRgbParams rgb;
  aclip_rgb_params_init_legacy (&rgb);
  aclip_augment_batch (pool, &augment, &rgb, NULL, model->input, images, batch, 1, height, width,
                       model->augment_workspace);
  return aclip_model_forward_images (model, pool, model->input, batch);
}
