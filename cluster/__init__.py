"""Training on a Dask cluster: where it runs, time-block partitions, the rows they give."""
