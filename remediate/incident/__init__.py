"""The incident, normalised from whatever event carried it."""
