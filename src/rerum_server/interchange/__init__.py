"""Moving a RERUM collection in and out: MongoDB Extended JSON, id prefixes, framing, progress."""
