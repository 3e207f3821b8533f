"""nbgrader configuration of the course. Run nbgrader from this folder (the course root)."""
import os

from nbgrader.converters.generate_assignment import GenerateAssignment

from autograde.release import TagExpectedErrors

HERE = os.path.dirname(os.path.abspath(__file__))

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.root = HERE
c.CourseDirectory.source_directory = "../solutions"
c.CourseDirectory.release_directory = "../notebooks"
# The gradebook lives in the course root (never committed), wherever nbgrader is started from.
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")

# The student stub: defining the function works, calling it raises.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

c.GenerateAssignment.preprocessors = GenerateAssignment.class_traits()["preprocessors"].default() + [TagExpectedErrors]

# Per-cell time limit while autograding and validating (seconds).
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# Any stderr output in a test cell scores 0; drop the harmless warnings libraries print.
c.IgnorePattern.pattern = r"site-packages/(torch|numpy|matplotlib|sklearn|ipywidgets)/\S+:\d+: \w*Warning"
