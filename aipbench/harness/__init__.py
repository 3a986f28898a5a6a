"""The harness: submissions, image checks, the attack sandbox, image sources, and evaluation of attacks and defenses."""
