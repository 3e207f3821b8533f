"""Reference implementations, data, plots, widgets and grading checks for the course notebooks."""
