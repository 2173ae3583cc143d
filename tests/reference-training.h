/* reference-training.h — double-precision references of the losses, written straight from
 * their definitions (docs/kernels.md), and a tiny MLP regression shared by the optimiser and
 * checkpoint tests. */
#pragma once

#include "aclip-params.h"

#include <cstdint>
#include <vector>

/* Losses: arrays in double with the shapes of aclip-loss.h; each returns the loss and, when
 * the gradient pointers are not null, writes (=, not +=) the gradients with dloss = 1. */

/* pred, target [n, c]; mask [n] (empty: every row counts). */
double reference_masked_mse (const std::vector<double> &pred, const std::vector<double> &target,
                             const std::vector<uint8_t> &mask, int64_t n, int64_t c,
                             std::vector<double> *dpred);

/* a, b [batch, dim]; scale = exp (log_scale); dlog_scale: ∂L/∂log_scale. */
double reference_infonce (const std::vector<double> &a, const std::vector<double> &b, int64_t batch,
                          int64_t dim, double log_scale, std::vector<double> *da,
                          std::vector<double> *db, double *dlog_scale);

/* logits [n, k]; targets [n] (negative: ignored). */
double reference_cross_entropy (const std::vector<double> &logits,
                                const std::vector<int32_t> &targets, int64_t n, int64_t k,
                                std::vector<double> *dlogits);

/* A 2-layer MLP regression: y = W2 tanh (W1 x + b1) + b2, mean squared error. Parameters in an
 * AclipParams table: "w1" [hidden, in] and "w2" [out, hidden] with weight decay and PyTorch's
 * default initialisation rule, "b1" [hidden] and "b2" [out] without decay. Plain float loops
 * in a fixed order, so a single-threaded run is bit-reproducible. */
struct TinyMlp
{
  int n_in, n_hidden, n_out;
  AclipParams *params = nullptr;
  std::vector<float> hidden; /* [n, n_hidden] activations, sized for the largest batch */
  std::vector<float> out;    /* [n, n_out] */
  std::vector<float> dout, dhidden;

  TinyMlp (int n_in, int n_hidden, int n_out, int max_batch, AclipParamsMode mode);
  ~TinyMlp ();
  TinyMlp (const TinyMlp &) = delete;
  TinyMlp &operator= (const TinyMlp &) = delete;

  /* x [n, n_in], y [n, n_out]: the loss; with `backward`, also accumulates dloss·∂L/∂θ into
   * the gradient block (call aclip_params_zero_grads first). */
  float loss (const float *x, const float *y, int n, bool backward, float dloss = 1.0f);
};
