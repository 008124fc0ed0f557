"""Running the digital twin from a scenario."""
