"""Storage under every layer: the run directory, content-addressed images, input images by reference
and model folders in object stores."""
