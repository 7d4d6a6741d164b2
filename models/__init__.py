"""The built-in zoo. Each model is a factory (`module:callable`) plus an entry in graphmint.toml."""
