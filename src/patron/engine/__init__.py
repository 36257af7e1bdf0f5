"""Pure analytics on dataframes: no Django, no Patron app (see DESIGN.md)."""
