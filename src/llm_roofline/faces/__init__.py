"""Parse, call the Python API, format: the command line, the web app, tables, pictures and reports."""
