"""The active models at an hour: loaded once per version, run top-down over the market
(`predictor`), and the on-demand price forecasts that `POST /predictions` persists."""
