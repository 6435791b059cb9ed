"""The analyses a bundle stores for the app to show (computed once, at build time, by the CLI)."""
