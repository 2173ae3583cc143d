#!/usr/bin/python3
"""FAISS IndexFlatIP on the same embeddings and queries as bench-search, in the same run.

Reads the JSON lines bench-search printed (--ours FILE): its setup line names the data files
and sizes. Times FAISS's exact inner-product search the same way (median of single queries,
median of batches), checks that FAISS and we return the same neighbours (up to float32
near-ties), and prints JSON lines comparing ours, FAISS and the memory-bandwidth bound.

Run it with Debian's python3 (/usr/bin/python3) and python3-faiss; bench/bench-search.sh does.
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np

try:
    import faiss
except ImportError:
    sys.exit("bench_faiss: FAISS is not installed (apt-get install python3-faiss)")


def read_ours(path):
    lines = [json.loads(line) for line in open(path) if line.startswith("{")]
    setup = next(line for line in lines if line["what"] == "setup")
    auto = {line["what"]: line for line in lines
            if line.get("kernel") == "auto" and line["what"] in ("single", "batch")}
    click = next((line for line in lines if line["what"] == "click"), None)
    return setup, auto, click


def exact_scores(base, query, rows):
    """Inner products in float64 of query with base[rows]."""
    return base[rows].astype(np.float64) @ query.astype(np.float64)


def agreement(base, queries, ours, theirs):
    """Lists identical, and the largest gap between the exact scores at equal ranks (0 when
    the lists differ only by ties or float32 near-ties)."""
    identical = 0
    gap = 0.0
    for q in range(ours.shape[0]):
        if np.array_equal(ours[q], theirs[q]):
            identical += 1
            continue
        a = np.sort(exact_scores(base, queries[q], ours[q]))[::-1]
        b = np.sort(exact_scores(base, queries[q], theirs[q]))[::-1]
        gap = max(gap, float(np.max(np.abs(a - b))))
    return identical, gap


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", required=True, help="JSON lines printed by bench-search")
    args = parser.parse_args()
    setup, ours, click = read_ours(args.ours)
    n, dim, k = setup["n"], setup["dim"], setup["k"]
    n_single, batch, repeats = setup["queries"], setup["batch"], setup["repeats"]
    prefix = setup["data"]

    base = np.fromfile(prefix + ".base.f32", dtype="<f4").reshape(n, dim)
    queries = np.fromfile(prefix + ".queries.f32", dtype="<f4").reshape(-1, dim)
    faiss.omp_set_num_threads(setup["threads"])
    index = faiss.IndexFlatIP(dim)
    index.add(base)

    index.search(queries[:1], k)  # warm-up, as bench-search does
    times, single_rows = [], []
    for q in range(n_single):
        start = time.perf_counter()
        _, rows = index.search(queries[q:q + 1], k)
        times.append((time.perf_counter() - start) * 1e3)
        single_rows.append(rows[0])
    faiss_single = statistics.median(times)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _, batch_rows = index.search(queries[:batch], k)
        times.append((time.perf_counter() - start) * 1e3)
    faiss_batch = statistics.median(times)

    ours_single = np.fromfile(prefix + ".ours-single.i64", dtype="<i8").reshape(n_single, k)
    ours_batch = np.fromfile(prefix + ".ours-batch.i64", dtype="<i8").reshape(batch, k)
    same_single, gap_single = agreement(base, queries, ours_single, np.array(single_rows))
    same_batch, gap_batch = agreement(base, queries, ours_batch, batch_rows)

    print(json.dumps({
        "bench": "search", "what": "faiss", "faiss_version": faiss.__version__,
        "index": "IndexFlatIP", "threads": setup["threads"],
        "single_lists_identical": f"{same_single}/{n_single}",
        "batch_lists_identical": f"{same_batch}/{batch}",
        "max_exact_score_gap_between_differing_lists": max(gap_single, gap_batch)}))
    for what, faiss_ms in (("single", faiss_single), ("batch", faiss_batch)):
        line = ours[what]
        result = {
            "bench": "search", "what": what + "-comparison", "n": n, "dim": dim, "k": k,
            "queries": 1 if what == "single" else batch, "threads": setup["threads"],
            "ours_ms": line["ours_ms"], "faiss_ms": round(faiss_ms, 3),
            "bound_ms": line["bound_ms"],
            "ours_over_faiss": round(line["ours_ms"] / faiss_ms, 3),
            "ours_over_bound": round(line["ours_ms"] / line["bound_ms"], 3),
            "faiss_over_bound": round(faiss_ms / line["bound_ms"], 3),
        }
        if what == "single":
            result["scanned_mb"] = line["scanned_mb"]
            result["scan_bound_ms"] = line["scan_bound_ms"]
            result["ours_over_scan_bound"] = line["ours_over_scan_bound"]
        if what == "batch":
            result["sgemm_bound_ms"] = line["sgemm_bound_ms"]
            result["ours_over_sgemm_bound"] = line["ours_over_sgemm_bound"]
            result["faiss_over_sgemm_bound"] = round(faiss_ms / line["sgemm_bound_ms"], 3)
            if line.get("bf16_compute_bound_ms") is not None:
                result["bf16_compute_bound_ms"] = line["bf16_compute_bound_ms"]
                result["ours_over_bf16_compute_bound"] = line["ours_over_bf16_compute_bound"]
        print(json.dumps(result))
    if click:
        print(json.dumps({"bench": "search", "what": "click-comparison", **{
            key: click[key] for key in ("n", "ours_ms", "goal_ms")}}))


if __name__ == "__main__":
    main()
