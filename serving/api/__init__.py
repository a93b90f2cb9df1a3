"""HTTP: the FastAPI app, its dependencies, routers by area and the request size limit."""
