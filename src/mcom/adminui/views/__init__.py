"""Views of the MCOM section; one small module per page."""
