"""The core: what every operator and backend builds on. Knows no AD library and no operator."""
