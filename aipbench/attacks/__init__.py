"""Reference attacks (library side); submissions under ``submissions/`` wrap them."""
