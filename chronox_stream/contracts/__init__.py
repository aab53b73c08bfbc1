"""Wire formats: what travels on our topics and what users send us, with strict parsers."""
