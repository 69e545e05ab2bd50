"""The command line: parse -> operation -> view, one error handler, one exit-code table."""
