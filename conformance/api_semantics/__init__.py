"""Check 1: API semantics, compared response by response with the full-history model."""
