"""The nbgrader course root (its nbgrader_config.py lives here) and the instructor's grading tools."""
