"""Results: the sealed, schema-validated documents of evaluations, their provenance and tables, and the paper's reported numbers."""
