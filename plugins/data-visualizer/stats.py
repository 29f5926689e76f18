"""Summary statistics and histograms of number series (pure Python, standard library only)."""
import math
import statistics


def numbers(values):
    """The values as floats; raises ValueError naming the first one that is not a finite number."""
    if not isinstance(values, list) or not values:
        raise ValueError("values must be a non-empty list of numbers")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"values[{i}] is not a finite number: {v!r}")
        out.append(float(v))
    return out


def summary(values):
    xs = numbers(values)
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return {
        "count": len(xs),
        "min": min(xs),
        "max": max(xs),
        "mean": statistics.fmean(xs),
        "median": statistics.median(xs),
        "stdev": statistics.stdev(xs) if len(xs) > 1 else 0.0,
        "q1": q[0],
        "q3": q[2],
    }


def histogram(values, bins=10):
    xs = numbers(values)
    if not isinstance(bins, int) or isinstance(bins, bool) or not 1 <= bins <= 1000:
        raise ValueError("bins must be an integer from 1 to 1000")
    lo, hi = min(xs), max(xs)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for x in xs:
        counts[min(int((x - lo) / width), bins - 1)] += 1
    edges = [lo + i * width for i in range(bins + 1)]
    return {"edges": edges, "counts": counts}
