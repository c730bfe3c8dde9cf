"""Ray Data pipelines: the only place that sets actor pools, concurrency, batch sizes and resources."""
