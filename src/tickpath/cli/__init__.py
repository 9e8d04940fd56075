"""The ``tickpath`` command line: a thin shell over the library API."""
