#include "reference-training.h"

#include "aclip-loss.h"

#include <cmath>
#include <gtest/gtest.h>

double
reference_masked_mse (const std::vector<double> &pred, const std::vector<double> &target,
                      const std::vector<uint8_t> &mask, int64_t n, int64_t c,
                      std::vector<double> *dpred)
{
  int64_t count = 0;
  for (int64_t row = 0; row < n; row++)
    count += mask.empty () || mask[row];
  double sum = 0.0;
  if (dpred)
    dpred->assign (n * c, 0.0);
  for (int64_t row = 0; row < n; row++) {
    if (!mask.empty () && !mask[row])
      continue;
    for (int64_t j = 0; j < c; j++) {
      double d = pred[row * c + j] - target[row * c + j];
      sum += d * d;
      if (dpred)
        (*dpred)[row * c + j] = 2.0 * d / (double) (count * c);
    }
  }
  return count ? sum / (double) (count * c) : 0.0;
}

double
reference_infonce (const std::vector<double> &a, const std::vector<double> &b, int64_t batch,
                   int64_t dim, double log_scale, std::vector<double> *da, std::vector<double> *db,
                   double *dlog_scale)
{
  const int64_t B = batch;
  const double scale = std::exp (log_scale);
  std::vector<double> dot (B * B), logits (B * B);
  for (int64_t i = 0; i < B; i++)
    for (int64_t j = 0; j < B; j++) {
      double s = 0.0;
      for (int64_t d = 0; d < dim; d++)
        s += a[i * dim + d] * b[j * dim + d];
      dot[i * B + j] = s;
      logits[i * B + j] = scale * s;
    }
  /* Softmax over each row (P) and each column (Q), straight from the definition. */
  std::vector<double> P (B * B), Q (B * B);
  double loss = 0.0;
  for (int64_t i = 0; i < B; i++) {
    double z = 0.0;
    for (int64_t j = 0; j < B; j++)
      z += std::exp (logits[i * B + j]);
    for (int64_t j = 0; j < B; j++)
      P[i * B + j] = std::exp (logits[i * B + j]) / z;
    loss += -std::log (P[i * B + i]) / (2.0 * B);
  }
  for (int64_t j = 0; j < B; j++) {
    double z = 0.0;
    for (int64_t i = 0; i < B; i++)
      z += std::exp (logits[i * B + j]);
    for (int64_t i = 0; i < B; i++)
      Q[i * B + j] = std::exp (logits[i * B + j]) / z;
    loss += -std::log (Q[j * B + j]) / (2.0 * B);
  }
  if (da || db || dlog_scale) {
    std::vector<double> G (B * B);
    double dlog = 0.0;
    for (int64_t i = 0; i < B; i++)
      for (int64_t j = 0; j < B; j++) {
        G[i * B + j] = (P[i * B + j] + Q[i * B + j] - (i == j ? 2.0 : 0.0)) / (2.0 * B);
        dlog += G[i * B + j] * logits[i * B + j];
      }
    if (da) {
      da->assign (B * dim, 0.0);
      for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < B; j++)
          for (int64_t d = 0; d < dim; d++)
            (*da)[i * dim + d] += scale * G[i * B + j] * b[j * dim + d];
    }
    if (db) {
      db->assign (B * dim, 0.0);
      for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < B; j++)
          for (int64_t d = 0; d < dim; d++)
            (*db)[j * dim + d] += scale * G[i * B + j] * a[i * dim + d];
    }
    if (dlog_scale)
      *dlog_scale = dlog;
  }
  return loss;
}

double
reference_cross_entropy (const std::vector<double> &logits, const std::vector<int32_t> &targets,
                         int64_t n, int64_t k, std::vector<double> *dlogits)
{
  int64_t count = 0;
  for (int64_t row = 0; row < n; row++)
    count += targets[row] >= 0;
  if (dlogits)
    dlogits->assign (n * k, 0.0);
  double loss = 0.0;
  for (int64_t row = 0; row < n; row++) {
    if (targets[row] < 0)
      continue;
    double z = 0.0;
    for (int64_t j = 0; j < k; j++)
      z += std::exp (logits[row * k + j]);
    loss += (std::log (z) - logits[row * k + targets[row]]) / (double) count;
    if (dlogits)
      for (int64_t j = 0; j < k; j++)
        (*dlogits)[row * k + j] =
            (std::exp (logits[row * k + j]) / z - (j == targets[row] ? 1.0 : 0.0)) / count;
  }
  return loss;
}

/* TinyMlp ------------------------------------------------------------------------------------ */

TinyMlp::TinyMlp (int in, int hidden_size, int out_size, int max_batch, AclipParamsMode mode)
    : n_in (in), n_hidden (hidden_size), n_out (out_size)
{
  params = aclip_params_new ();
  GError *error = nullptr;
  const int64_t w1[] = { n_hidden, n_in }, b1[] = { n_hidden };
  const int64_t w2[] = { n_out, n_hidden }, b2[] = { n_out };
  const AclipInit weight_init = { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, 0, 0 };
  const AclipInit bias1_init = { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, n_in, 0 };
  const AclipInit bias2_init = { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, n_hidden, 0 };
  EXPECT_EQ (aclip_params_add (params, "w1", 2, w1, weight_init, ACLIP_PARAM_DECAY, &error), 0);
  EXPECT_EQ (aclip_params_add (params, "b1", 1, b1, bias1_init, ACLIP_PARAM_NONE, &error), 1);
  EXPECT_EQ (aclip_params_add (params, "w2", 2, w2, weight_init, ACLIP_PARAM_DECAY, &error), 2);
  EXPECT_EQ (aclip_params_add (params, "b2", 1, b2, bias2_init, ACLIP_PARAM_NONE, &error), 3);
  EXPECT_TRUE (aclip_params_seal (params, mode, &error));
  EXPECT_EQ (error, nullptr) << error->message;
  g_clear_error (&error);
  hidden.resize ((size_t) max_batch * n_hidden);
  dhidden.resize (hidden.size ());
  out.resize ((size_t) max_batch * n_out);
  dout.resize (out.size ());
}

TinyMlp::~TinyMlp ()
{
  aclip_params_free (params);
}

float
TinyMlp::loss (const float *x, const float *y, int n, bool backward, float dloss)
{
  const float *w1 = aclip_params_value (params, 0), *b1 = aclip_params_value (params, 1);
  const float *w2 = aclip_params_value (params, 2), *b2 = aclip_params_value (params, 3);
  for (int s = 0; s < n; s++) {
    for (int h = 0; h < n_hidden; h++) {
      float z = b1[h];
      for (int i = 0; i < n_in; i++)
        z += w1[h * n_in + i] * x[s * n_in + i];
      hidden[s * n_hidden + h] = std::tanh (z);
    }
    for (int o = 0; o < n_out; o++) {
      float z = b2[o];
      for (int h = 0; h < n_hidden; h++)
        z += w2[o * n_hidden + h] * hidden[s * n_hidden + h];
      out[s * n_out + o] = z;
    }
  }
  float value = aclip_mse_forward (out.data (), y, n, n_out);
  if (!backward)
    return value;

  float *dw1 = aclip_params_grad (params, 0), *db1 = aclip_params_grad (params, 1);
  float *dw2 = aclip_params_grad (params, 2), *db2 = aclip_params_grad (params, 3);
  std::fill (dout.begin (), dout.begin () + (size_t) n * n_out, 0.0f);
  aclip_mse_backward (dout.data (), out.data (), y, n, n_out, dloss);
  for (int s = 0; s < n; s++) {
    for (int h = 0; h < n_hidden; h++) {
      float dh = 0.0f;
      for (int o = 0; o < n_out; o++)
        dh += dout[s * n_out + o] * w2[o * n_hidden + h];
      float t = hidden[s * n_hidden + h];
      dhidden[s * n_hidden + h] = dh * (1.0f - t * t);
    }
  }
  /* Parameter gradients reduce over the batch in sample order. */
  for (int o = 0; o < n_out; o++)
    for (int s = 0; s < n; s++) {
      float d = dout[s * n_out + o];
      db2[o] += d;
      for (int h = 0; h < n_hidden; h++)
        dw2[o * n_hidden + h] += d * hidden[s * n_hidden + h];
    }
  for (int h = 0; h < n_hidden; h++)
    for (int s = 0; s < n; s++) {
      float d = dhidden[s * n_hidden + h];
      db1[h] += d;
      for (int i = 0; i < n_in; i++)
        dw1[h * n_in + i] += d * x[s * n_in + i];
    }
  return value;
}
