"""Sources: where raw documents come from (folders now, feeds later)."""
