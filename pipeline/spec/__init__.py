"""What to run: input and model specs, the TOML config, the input grid, and loading the user's model."""
