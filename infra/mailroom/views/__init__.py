"""Renderings that are more than a line: the HTML access matrix."""
