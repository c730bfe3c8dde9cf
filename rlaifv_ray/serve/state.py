"""Per-replica settings shared by the request gate and the deployment. Serve may ship the app and
the deployment class by value; a module is always imported by reference, so both see this dict."""

LIMITS: dict = {}
