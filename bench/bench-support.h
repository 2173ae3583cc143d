/* bench-support.h — what the C benchmarks share: how much other processes ran beside a timed
 * stretch (the "foreign load" each JSON line reports) and the median of timings. */
#pragma once

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* CPU time the whole machine spent busy (steal included) and this process's own, to tell how
 * much other processes ran beside the timed iterations. */
typedef struct
{
  double machine_busy_s;
  double own_s;
  gint64 wall_us;
} CpuSample;

static inline void
cpu_sample (CpuSample *sample)
{
  sample->machine_busy_s = 0.0;
  FILE *stat = fopen ("/proc/stat", "r");
  if (stat != NULL) {
    unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
    if (fscanf (stat, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle,
                &iowait, &irq, &softirq, &steal) == 8)
      sample->machine_busy_s =
          (double) (user + nice + system + irq + softirq + steal) / (double) sysconf (_SC_CLK_TCK);
    fclose (stat);
  }
  struct rusage usage;
  getrusage (RUSAGE_SELF, &usage);
  sample->own_s = (double) usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6 +
                  (double) usage.ru_stime.tv_sec + usage.ru_stime.tv_usec * 1e-6;
  sample->wall_us = g_get_monotonic_time ();
}

/* Cores' worth of CPU used by other processes (or taken by the hypervisor) between the two
 * samples: 0 on an otherwise idle machine (to the 10 ms resolution of /proc/stat). */
static inline double
foreign_load (const CpuSample *before, const CpuSample *after)
{
  double wall = (double) (after->wall_us - before->wall_us) * 1e-6;
  double foreign =
      (after->machine_busy_s - before->machine_busy_s) - (after->own_s - before->own_s);
  return wall > 0.0 ? MAX (foreign, 0.0) / wall : 0.0;
}

static inline int
bench_compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* The median of n values (n ≥ 1), left in place. */
static inline double
median_of (const double *values, int n)
{
  double *sorted = g_memdup2 (values, sizeof (double) * (gsize) n);
  qsort (sorted, (gsize) n, sizeof (double), bench_compare_doubles);
  double median = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  g_free (sorted);
  return median;
}
