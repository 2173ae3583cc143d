/* nn-test-helpers.h — helpers shared by the nn-dense and nn-attention suites (header only). */
#pragma once

#include "test-support.h"

#include "aclip-nn.h"
#include "aclip-parallel.h"
#include "reference-dense.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>

namespace nn_test {

using namespace dense_reference;

struct PoolDeleter
{
  void operator() (AclipThreadPool *pool) const
  {
    aclip_thread_pool_free (pool);
  }
};
using Pool = std::unique_ptr<AclipThreadPool, PoolDeleter>;

inline Pool
make_pool (int n_threads)
{
  return Pool (aclip_thread_pool_new (n_threads));
}

inline const double kFdStep = 1e-5, kFdAtol = 1e-8, kFdRtol = 1e-6;

inline std::mt19937_64
seeded (uint64_t seed)
{
  return std::mt19937_64 (seed);
}

inline std::vector<double>
random_inputs (size_t n, std::mt19937_64 &rng, double low = -1.0, double high = 1.0)
{
  return float_representable (random_uniform (n, rng, low, high));
}

inline bool
bit_identical (const std::vector<float> &a, const std::vector<float> &b)
{
  return a.size () == b.size () &&
         std::memcmp (a.data (), b.data (), a.size () * sizeof (float)) == 0;
}

/* After a second identical backward every gradient must be twice the first: the backward adds
 * to what is there. Our own kernels compute the same increment both times and g + g is exact,
 * so by default the check is exact. sgemm (beta = 1) may add its blocks of the sum into the
 * output one at a time, so the second call can round differently: those checks pass the
 * sgemm tolerance. */
inline void
expect_doubled (const std::vector<float> &once, const std::vector<float> &twice, const char *what,
                double atol = 0.0, double rtol = 0.0)
{
  ASSERT_EQ (once.size (), twice.size ());
  for (size_t i = 0; i < once.size (); i++)
    ASSERT_LE (std::fabs ((double) twice[i] - 2.0 * once[i]),
               atol + rtol * std::fabs (2.0 * once[i]))
        << what << " element " << i << ": " << twice[i] << " after two calls, " << once[i]
        << " after one";
}

/* Prints the worst absolute error and tolerance ratio, so the measured errors can be read from
 * the test log ("measured ..." lines). */
inline void
report_measured (const char *what, const std::vector<float> &actual,
                 const std::vector<double> &reference, double atol, double rtol)
{
  double worst_abs = 0.0;
  for (size_t i = 0; i < actual.size () && i < reference.size (); i++)
    worst_abs = std::max (worst_abs, std::fabs ((double) actual[i] - reference[i]));
  const ::testing::TestInfo *info = ::testing::UnitTest::GetInstance ()->current_test_info ();
  std::cout << "measured " << info->test_suite_name () << "." << info->name () << " " << what
            << ": max |error| " << worst_abs << ", tolerance ratio "
            << tolerance_ratio (actual.data (), reference.data (), actual.size (), atol, rtol)
            << " (atol " << atol << ", rtol " << rtol << ")\n";
}

/* finite_difference_ratio, printing the measured ratio. */
inline double
fd_ratio (const std::function<std::vector<double> (const std::vector<double> &)> &f,
          const std::vector<double> &x, const std::vector<double> &weights,
          const std::vector<double> &analytic, double h, double atol, double rtol)
{
  double value = finite_difference_ratio (f, x, weights, analytic, h, atol, rtol);
  const ::testing::TestInfo *info = ::testing::UnitTest::GetInstance ()->current_test_info ();
  std::cout << "measured " << info->test_suite_name () << "." << info->name ()
            << " finite differences: tolerance ratio " << value << " (atol " << atol << ", rtol "
            << rtol << ")\n";
  return value;
}

#define EXPECT_VECTOR_CLOSE(actual, reference, atol, rtol, what)                                   \
  do {                                                                                             \
    ASSERT_EQ ((actual).size (), (reference).size ()) << (what);                                   \
    EXPECT_CLOSE_TO_REFERENCE ((actual).data (), (reference).data (), (actual).size (), (atol),    \
                               (rtol), (what));                                                    \
    report_measured ((what), (actual), (reference), (atol), (rtol));                               \
  } while (0)

/* Runs `body` once with the instruction-set variant chosen for this CPU and once with the
 * baseline code forced (aclip_nn_use_baseline_code), naming each run in the log. */
inline void
for_each_code_variant (const std::function<void ()> &body)
{
  for (bool baseline : { false, true }) {
    SCOPED_TRACE (baseline ? "baseline code" : "code chosen for this CPU");
    std::cout << "variant: " << (baseline ? "baseline code" : "code chosen for this CPU") << "\n";
    aclip_nn_use_baseline_code (baseline);
    body ();
  }
  aclip_nn_use_baseline_code (FALSE);
}

} // namespace nn_test
