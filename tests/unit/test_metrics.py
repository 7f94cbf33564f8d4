from services.gateway.metrics import Histogram


def test_histogram_counts_cumulatively_per_bound() -> None:
    histogram = Histogram((0.01, 0.05))
    for value in (0.001, 0.01, 0.02, 0.3):
        histogram.observe(value)
    assert histogram.lines("d") == [
        'd_bucket{le="0.01"} 2',  # a bound includes values equal to it
        'd_bucket{le="0.05"} 3',
        'd_bucket{le="+Inf"} 4',
        "d_sum 0.331000",
        "d_count 4",
    ]
