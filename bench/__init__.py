"""The benchmark: our consumer and a tutorial-style one, side by side on the real stack."""
