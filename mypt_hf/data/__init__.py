"""Episode data: schema, generators, mixing, preparation and packing."""
