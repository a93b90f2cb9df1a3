"""What training and serving both stand on: candles and panels read from `price_data`, the
MLflow model store and tracking, and the `ai_models` registry. Imports `db` and `models`,
never `training`, `serving` or the command line."""
