"""interlock's adapters: everything that does I/O around the sans-IO engine."""
