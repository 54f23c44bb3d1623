"""Hardware: device roles over Micro-Manager backends, and laser safety."""
