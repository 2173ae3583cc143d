/* reference-dense.h — plain double-precision references for the dense and attention kernels
 * (core/aclip-nn.h, core/aclip-transformer.h), written from the definitions with no concern
 * for speed, and small helpers shared by the nn-dense and nn-attention suites.
 *
 * Same conventions as the kernels: forward functions write their outputs, backward functions
 * accumulate (+=) into every gradient pointer that is not null. Shapes as in aclip-nn.h.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace dense_reference {

/* ---- Kernels -------------------------------------------------------------------------------- */

void linear_forward (double *out, const double *in, const double *weight, const double *bias,
                     int n_rows, int in_features, int out_features);
void linear_backward (double *d_in, double *d_weight, double *d_bias, const double *d_out,
                      const double *in, const double *weight, int n_rows, int in_features,
                      int out_features);

void bias_forward (double *out, const double *in, const double *bias, int n_rows, int channels);
void bias_backward (double *d_in, double *d_bias, const double *d_out, int n_rows, int channels);

/* mean and rstd may be null. The backward recomputes the statistics from `in`. */
void layernorm_forward (double *out, double *mean, double *rstd, const double *in,
                        const double *weight, const double *bias, int n_rows, int channels,
                        double eps);
void layernorm_backward (double *d_in, double *d_weight, double *d_bias, const double *d_out,
                         const double *in, const double *weight, int n_rows, int channels,
                         double eps);

double gelu (double x, bool tanh_form);
double gelu_derivative (double x, bool tanh_form);
void gelu_forward (double *out, const double *in, size_t n, bool tanh_form);
void gelu_backward (double *d_in, const double *d_out, const double *in, size_t n, bool tanh_form);

void relu_forward (double *out, const double *in, size_t n);
void relu_backward (double *d_in, const double *d_out, const double *in, size_t n);

void softmax_forward (double *out, const double *in, int n_rows, int length);
void softmax_backward (double *d_in, const double *d_out, const double *out, int n_rows,
                       int length);

void add_forward (double *out, const double *a, const double *b, size_t n);
void add_backward (double *d_a, double *d_b, const double *d_out, size_t n);

void positional_embedding_forward (double *out, const double *in, const double *table, int batch,
                                   int seq_len, int channels);
void positional_embedding_backward (double *d_in, double *d_table, const double *d_out, int batch,
                                    int seq_len, int channels);

/* Whether dropout keeps element i: the (counter + i)-th splitmix64 output for `seed`, as an
 * integer u, against u ≥ p·2^64 (compared in exact integer arithmetic). */
bool dropout_keeps (uint64_t seed, uint64_t counter, uint64_t index, double p);
void dropout_forward (double *out, const uint8_t *mask, const double *in, size_t n, double p);
void dropout_backward (double *d_in, const double *d_out, const uint8_t *mask, size_t n, double p);

void l2_normalize_forward (double *out, const double *in, int n_rows, int channels, double eps);
void l2_normalize_backward (double *d_in, const double *d_out, const double *in, int n_rows,
                            int channels, double eps);

void feature_map_to_tokens_forward (double *out, const double *in, int batch, int channels,
                                    int n_pixels);
void feature_map_to_tokens_backward (double *d_in, const double *d_out, int batch, int channels,
                                     int n_pixels);

/* Multi-head attention from the definition, over separate q [B, Tq, C] (or [Tq, C] shared by
 * the batch when queries_shared), k and v [B, Tk, C]; out [B, Tq, C]; probs [B, H, Tq, Tk] or
 * null. key_mask [B, Tk] or null, nonzero = masked. A query with every key masked has zero
 * probabilities and output. */
void attention_forward (double *out, double *probs, const double *q, const double *k,
                        const double *v, const uint8_t *key_mask, int batch, int n_queries,
                        int n_keys, int channels, int n_heads, bool queries_shared);
void attention_backward (double *d_q, double *d_k, double *d_v, const double *d_out,
                         const double *q, const double *k, const double *v, const uint8_t *key_mask,
                         int batch, int n_queries, int n_keys, int channels, int n_heads,
                         bool queries_shared);

/* The packed forms of aclip_self_attention_* and aclip_cross_attention_*. */
void self_attention_forward (double *out, double *probs, const double *qkv, const uint8_t *key_mask,
                             int batch, int seq_len, int channels, int n_heads);
void self_attention_backward (double *d_qkv, const double *d_out, const double *qkv,
                              const uint8_t *key_mask, int batch, int seq_len, int channels,
                              int n_heads);
void cross_attention_forward (double *out, double *probs, const double *queries, const double *kv,
                              const uint8_t *key_mask, int batch, int n_queries, int seq_len,
                              int channels, int n_heads);
void cross_attention_backward (double *d_queries, double *d_kv, const double *d_out,
                               const double *queries, const double *kv, const uint8_t *key_mask,
                               int batch, int n_queries, int seq_len, int channels, int n_heads);

/* The pre-LayerNorm transformer block. Parameters are one flat array in the order of
 * aclip_transformer_params_bind (the state_dict order of nn.TransformerEncoderLayer). */
struct TransformerShape
{
  int channels;
  int n_heads;
  int hidden;
  double layernorm_eps;
  bool gelu_tanh;
};
size_t transformer_params_size (const TransformerShape &shape);
void transformer_block_forward (double *out, const double *params, const double *in,
                                const uint8_t *key_mask, int batch, int seq_len,
                                const TransformerShape &shape);
void transformer_block_backward (double *d_in, double *d_params, const double *d_out,
                                 const double *params, const double *in, const uint8_t *key_mask,
                                 int batch, int seq_len, const TransformerShape &shape);

/* ---- Test helpers --------------------------------------------------------------------------- */

std::vector<double> random_uniform (size_t n, std::mt19937_64 &rng, double low = -1.0,
                                    double high = 1.0);
/* Values rounded to float, so that float kernels and double references see the same inputs. */
std::vector<double> float_representable (std::vector<double> values);
std::vector<float> to_float (const std::vector<double> &values);
std::vector<double> to_double (const std::vector<float> &values);

/* Central finite differences of loss(x) = Σ_i weights[i]·f(x)[i] with step h, against the
 * analytic gradient `analytic` (∂loss/∂x). Returns the largest |numeric − analytic| /
 * (atol + rtol·|numeric|) over x: ≤ 1 passes. */
double
finite_difference_ratio (const std::function<std::vector<double> (const std::vector<double> &)> &f,
                         const std::vector<double> &x, const std::vector<double> &weights,
                         const std::vector<double> &analytic, double h, double atol, double rtol);

} // namespace dense_reference
