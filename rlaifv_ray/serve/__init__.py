"""The best-of-N ranker on Ray Serve (`app.build_app`)."""
