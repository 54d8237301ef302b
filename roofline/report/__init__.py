"""HTML reports: the page kit (page.py) and one module per page."""
