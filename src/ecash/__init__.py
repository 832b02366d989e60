"""ecash: anonymous offline electronic cash (ECASH-1, Brands' scheme on ristretto255)."""

__version__ = "0.1.0"
