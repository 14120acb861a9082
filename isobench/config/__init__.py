"""What the user asks for: the benchfile schema, durations, scenarios, the articles' presets."""
